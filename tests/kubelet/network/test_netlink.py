"""The rtnetlink requests pod plumbing makes, and how the kernel's refusals come back
(the plumbing itself is checked end to end in test_podnet_node)."""

from __future__ import annotations

import errno
import ipaddress
import os
from pathlib import Path

import pytest
from podnet_support import ip_json, link_names

from skiff.kubelet.network import netns
from skiff.kubelet.network.netlink import Netlink, NetlinkFailed


def _veth_into(peer_namespace: Path, mtu: int = 1400) -> None:
    fd = os.open(peer_namespace, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with Netlink() as link:
            link.add_veth("vtest0", "inside0", fd, mtu)
    finally:
        os.close(fd)


async def test_a_veth_pair_spans_two_namespaces_and_goes_as_a_pair(node_ns: Path) -> None:
    pod_ns = node_ns.with_name(node_ns.name + "-pod")
    await netns.create(pod_ns)
    try:
        await netns.run_inside(node_ns, lambda: _veth_into(pod_ns))
        assert "vtest0" in link_names(node_ns) and "inside0" in link_names(pod_ns)
        assert ip_json(pod_ns, "link", "show", "dev", "inside0")[0]["mtu"] == 1400

        with pytest.raises(NetlinkFailed) as refused:          # the name is taken
            await netns.run_inside(node_ns, lambda: _veth_into(pod_ns))
        assert refused.value.errno == errno.EEXIST

        def address_and_route() -> None:
            with Netlink() as link:
                link.set_link("inside0", up=True)
                link.add_address("inside0", ipaddress.IPv4Interface("10.77.0.2/24"))
                link.add_default_route("inside0", ipaddress.IPv4Address("10.77.0.1"))
                with pytest.raises(NetlinkFailed, match="File exists"):
                    link.add_address("inside0", ipaddress.IPv4Interface("10.77.0.2/24"))

        await netns.run_inside(pod_ns, address_and_route)
        routes = ip_json(pod_ns, "-4", "route", "show")
        assert {"dst": "default", "gateway": "10.77.0.1", "dev": "inside0"}.items() <= routes[0].items()

        def delete() -> tuple[bool, bool]:
            with Netlink() as link:
                return link.delete_link("vtest0"), link.delete_link("vtest0")

        assert await netns.run_inside(node_ns, delete) == (True, False)
        assert "inside0" not in link_names(pod_ns)             # the peer went with it
    finally:
        netns.remove(pod_ns)


async def test_a_missing_bridge_is_reported(node_ns: Path) -> None:
    def attach() -> None:
        with Netlink() as link:
            link.set_link("lo", master="no-such-bridge")

    with pytest.raises(NetlinkFailed, match="no-such-bridge: No such device"):
        await netns.run_inside(node_ns, attach)
