"""A node network in this process's own namespace, as ``skiff up`` runs it on the host.

The CIDRs and the bridge name are unique to the test (other suites may use the
host at the same time); the test checks that the host's routes come back exactly
as they were. Traffic goes only to pod addresses behind the test's bridge and to
loopback.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from podnet_support import (PeerAddressServer, ask_peer_address, free_port, in_ns, ip_json, link_names,
                            new_uid, nft_tables, ping, unique_name, unused_private_16s)

from skiff.kubelet.network import HostPort, NodeNetwork


def host_routes(bridge: str) -> list[dict[str, object]]:
    """The host's main table, less routes of other tests' bridges (they come and go)."""
    return [route for route in ip_json(None, "-4", "route", "show", "table", "main")
            if not str(route.get("dev")).startswith("skiff-") or route.get("dev") == bridge]


def host_rules(bridge: str) -> list[dict[str, object]]:
    return [rule for rule in ip_json(None, "-4", "rule", "show")
            if not str(rule.get("iif")).startswith("skiff-") or rule.get("iif") == bridge]


async def test_node_network_in_the_host_namespace(tmp_path: Path) -> None:
    cluster, service = unused_private_16s(2)
    pod_cidr = next(cluster.subnets(new_prefix=24))
    bridge = unique_name("skiff-")
    routes_before = host_routes(bridge)
    rules_before = host_rules(bridge)
    made: list[Path] = []
    network = NodeNetwork(state_dir=tmp_path / "net", pod_cidr=str(pod_cidr),
                          cluster_cidr=str(cluster), service_cidr=str(service), bridge_name=bridge)
    try:
        await network.setup()
        ours = {str(r["dst"]): r for r in host_routes(bridge) if r.get("dev") == bridge}
        assert set(ours) == {str(pod_cidr), str(cluster), str(service)}
        for address in (cluster.network_address + 77 * 256 + 9, service.network_address + 10):
            assert ip_json(None, "-4", "route", "get", str(address))[0]["dev"] == bridge
        assert network.mtu >= 576 and network.node_ip != str(network.gateway.ip)
        # A route lookup (nothing is sent): from a pod to an outside address, no route.
        code, output = await in_ns(None, "ip", "route", "get", "198.51.100.7", "from",
                                   str(pod_cidr.network_address + 9), "iif", bridge)
        assert code != 0 and "No route to host" in output

        port = free_port()
        web = await network.add_pod(new_uid(), "web", "default", host_ports=[HostPort(port, 80)])
        other = await network.add_pod(new_uid(), "other", "default")
        assert web.netns_path is not None and other.netns_path is not None
        made += [web.netns_path, other.netns_path]
        assert ipaddress.ip_address(web.ip) in pod_cidr
        assert await ping(web.netns_path, other.ip)
        assert await ping(other.netns_path, str(network.gateway.ip))
        server = await PeerAddressServer.start(web.netns_path, 80)
        try:
            assert await ask_peer_address(None, "127.0.0.1", port) == str(network.gateway.ip)
            assert await ask_peer_address(None, web.ip, 80) == str(network.gateway.ip)
        finally:
            await server.close()
    finally:
        await network.teardown()
    assert bridge not in link_names(None)
    assert network.table not in nft_tables(None)
    assert host_routes(bridge) == routes_before
    assert host_rules(bridge) == rules_before
    assert made and not any(path.exists() for path in made)
