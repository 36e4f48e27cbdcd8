"""The pure parts of pod networking: address allocation, hostPort claims, CIDR and
route checks."""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path

import pytest

from skiff.kubelet.network import AddressesExhausted, HostPort, HostPortConflict, NetworkConflict
from skiff.kubelet.network.hostport import HostPortMapping, check_conflicts
from skiff.kubelet.network.ipam import HostLocalIPAM, directory_for
from skiff.kubelet.network.podnet import host_interface_name
from skiff.kubelet.network.safety import catch_all_routes, check_route_conflicts, parse_networks

SUBNET = ipaddress.IPv4Network("10.244.3.0/29")     # .2 … .6 allocatable


def ipam(root: Path) -> HostLocalIPAM:
    return HostLocalIPAM(directory_for(root, SUBNET), SUBNET)


def test_allocation_skips_network_gateway_and_broadcast_and_runs_out(tmp_path: Path) -> None:
    allocator = ipam(tmp_path)
    got = [str(allocator.allocate(f"pod-{i}")) for i in range(5)]
    assert got == [f"10.244.3.{i}" for i in range(2, 7)]
    with pytest.raises(AddressesExhausted):
        allocator.allocate("pod-5")
    assert allocator.allocations()[ipaddress.IPv4Address("10.244.3.4")] == "pod-2"


def test_allocations_persist_and_release_only_for_the_owner(tmp_path: Path) -> None:
    first = ipam(tmp_path)
    a = first.allocate("a")
    b = first.allocate("b")
    restarted = ipam(tmp_path)
    assert restarted.allocations() == {a: "a", b: "b"}
    assert not restarted.release(a, "b")
    assert restarted.release(a, "a")
    assert not restarted.release(a, "a")
    # Round robin: the next address comes after the last reserved, not the freed one.
    assert restarted.allocate("c") == b + 1
    assert restarted.release_all_of("b") == [b]
    restarted.destroy()
    assert not restarted.directory.exists()


def test_concurrent_allocators_never_share_an_address(tmp_path: Path) -> None:
    allocators = [ipam(tmp_path) for _ in range(5)]
    results: dict[str, ipaddress.IPv4Address] = {}

    def take(index: int) -> None:
        results[f"pod-{index}"] = allocators[index].allocate(f"pod-{index}")

    threads = [threading.Thread(target=take, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results.values())) == 5
    assert {str(owner) for owner in ipam(tmp_path).allocations().values()} == set(results)


def test_host_port_claims() -> None:
    def claim(uid: str, port: int, ip: str = "", protocol: str = "TCP") -> HostPortMapping:
        return HostPortMapping(uid, "10.244.0.9", HostPort(port, 80, protocol, ip))

    check_conflicts([claim("a", 80), claim("b", 80, protocol="UDP"), claim("c", 81),
                     claim("d", 82, "10.0.0.1"), claim("e", 82, "10.0.0.2"),
                     claim("a", 83), claim("a", 83, "10.0.0.1")])   # one pod may repeat itself
    for clash in ([claim("a", 80), claim("b", 80)],
                  [claim("a", 80, "10.0.0.1"), claim("b", 80)],
                  [claim("a", 80), claim("b", 80, "10.0.0.1")],
                  [claim("a", 80, "10.0.0.1"), claim("b", 80, "10.0.0.1")]):
        with pytest.raises(HostPortConflict):
            check_conflicts(clash)
    for bad in (dict(host_port=0, container_port=80), dict(host_port=80, container_port=70000),
                dict(host_port=80, container_port=80, protocol="ICMP"),
                dict(host_port=80, container_port=80, host_ip="::1")):
        with pytest.raises(ValueError):
            HostPort(**bad)  # type: ignore[arg-type]
    port = HostPort(8080, 80, "UDP", "127.0.0.1")
    assert HostPort.from_json(port.to_json()) == port


def test_cidrs_are_checked() -> None:
    pod, cluster, service = parse_networks("10.244.1.0/24", "10.244.0.0/16", "10.96.0.0/12")
    assert catch_all_routes(pod, cluster, service) == [cluster, service]
    same = ipaddress.IPv4Network("10.244.0.0/16")
    assert catch_all_routes(same, same, service) == [service]
    for args in (("10.245.0.0/24", "10.244.0.0/16", "10.96.0.0/12"),     # pod outside cluster
                 ("10.244.0.0/24", "10.244.0.0/16", "10.244.128.0/20"),  # service inside cluster
                 ("10.244.0.0/31", "10.244.0.0/16", "10.96.0.0/12"),     # too small
                 ("fd00::/64", "fd00::/48", "10.96.0.0/12"),             # IPv6
                 ("10.244.0.1/24", "10.244.0.0/16", "10.96.0.0/12")):    # host bits set
        with pytest.raises(ValueError):
            parse_networks(*args)


def test_routes_that_would_steal_cluster_traffic_are_conflicts() -> None:
    pod, cluster, service = parse_networks("10.244.0.0/24", "10.244.0.0/16", "10.96.0.0/12")
    fine = [{"dst": "default", "dev": "eth0"}, {"dst": "192.0.2.0/24", "dev": "eth0"},
            {"dst": "10.244.0.0/24", "dev": "skiff0"},            # ours
            {"dst": "10.244.1.0/24", "dev": "upl0"}]              # another node, via an uplink
    check_route_conflicts(fine, pod, cluster, service, "skiff0", uplinks=("upl0",))
    for route in ({"dst": "10.0.0.0/8", "dev": "eth0"},            # a LAN covering the cluster
                  {"dst": "10.100.0.5", "dev": "eth0"},            # a host in the service CIDR
                  {"dst": "10.244.1.0/24", "dev": "eth0"},         # other node, not an uplink
                  {"dst": "10.244.0.128/25", "dev": "upl0"}):      # inside this node's CIDR
        with pytest.raises(NetworkConflict):
            check_route_conflicts([route], pod, cluster, service, "skiff0", uplinks=("upl0",))


def test_host_interface_names_fit_and_differ_per_bridge() -> None:
    name = host_interface_name("skiff0", "0b6e3c4a-2f0e-4f55-9a49-1d1f1c0b2a77")
    assert name.startswith("veth") and len(name) == 15
    assert name == host_interface_name("skiff0", "0b6e3c4a-2f0e-4f55-9a49-1d1f1c0b2a77")
    assert name != host_interface_name("skiff-n2", "0b6e3c4a-2f0e-4f55-9a49-1d1f1c0b2a77")
