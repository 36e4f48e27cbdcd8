"""Pod networking inside a namespace standing for a node: real veths, a real bridge,
real nftables, real packets (only between namespaces these tests create)."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
from pathlib import Path

import pytest
from netns_support import add_namespace, delete_namespace
from podnet_support import (PeerAddressServer, ask_peer_address, in_ns, ip_json, link_names, new_uid,
                            nft_tables, ping, run)

from skiff.kubelet.network import (AddressesExhausted, HostPort, HostPortConflict, NetworkConflict,
                                   NodeNetwork, netns)


async def test_two_pods_reach_each_other_and_their_gateway(node: NodeNetwork) -> None:
    first = await node.add_pod(new_uid(), "a", "default")
    second = await node.add_pod(new_uid(), "b", "default")
    assert first.ip != second.ip
    assert {first.ip, second.ip} <= {str(a) for a in ipaddress.ip_network("10.244.0.0/24").hosts()}
    assert first.gateway == second.gateway == "10.244.0.1"
    assert first.netns_path is not None and second.netns_path is not None
    assert await ping(first.netns_path, second.ip)
    assert await ping(second.netns_path, first.ip)
    assert await ping(first.netns_path, "10.244.0.1")


async def test_pod_namespace_has_eth0_loopback_and_default_route(node: NodeNetwork) -> None:
    pod = await node.add_pod(new_uid(), "a", "default")
    assert pod.netns_path is not None and pod.netns_path.parent == Path("/run/netns")
    links = {str(link["ifname"]): link for link in ip_json(pod.netns_path, "addr", "show")}
    assert set(links) == {"lo", "eth0"}
    assert "UP" in links["lo"]["flags"]  # type: ignore[operator]
    assert links["eth0"]["mtu"] == node.mtu == 1500   # the node namespace has no default route
    addresses = [(a["local"], a["prefixlen"]) for a in links["eth0"]["addr_info"]  # type: ignore[attr-defined]
                 if a["family"] == "inet"]
    assert addresses == [(pod.ip, 24)]
    routes = ip_json(pod.netns_path, "-4", "route", "show")
    assert {"dst": "default", "gateway": "10.244.0.1", "dev": "eth0"}.items() <= routes[0].items()
    # The host end sits on the bridge, hairpin on.
    host_end = ip_json(node.node_netns, "-d", "link", "show", "dev", str(pod.host_interface))[0]
    assert host_end["master"] == "skiff0"
    assert host_end["linkinfo"]["info_slave_data"]["hairpin"] is True  # type: ignore[index]
    # Containers of the pod share the namespace: localhost works between two sockets in it.
    server = await PeerAddressServer.start(pod.netns_path, 7000)
    try:
        assert await ask_peer_address(pod.netns_path, "127.0.0.1", 7000) == "127.0.0.1"
    finally:
        await server.close()


async def test_node_routes_catch_cluster_and_service_addresses(node: NodeNetwork) -> None:
    routes = {str(r["dst"]): r for r in ip_json(node.node_netns, "-4", "route", "show")}
    assert routes["10.244.0.0/16"]["dev"] == "skiff0"
    assert routes["10.96.0.0/12"]["dev"] == "skiff0"
    assert routes["10.244.0.0/24"]["dev"] == "skiff0"
    for address in ("10.96.0.10", "10.111.255.254", "10.244.77.5"):
        chosen = ip_json(node.node_netns, "-4", "route", "get", address)[0]
        assert chosen["dev"] == "skiff0", address
    forwarding = await netns.run_inside(node.node_netns, lambda: (
        netns.read_sysctl_here("net/ipv4/conf/skiff0/forwarding"),
        netns.read_sysctl_here("net/ipv4/conf/skiff0/route_localnet"),
        netns.read_sysctl_here("net/ipv4/ip_forward")))
    assert forwarding == ("1", "1", "0")       # on the bridge only
    assert node.table in nft_tables(node.node_netns)
    rules = [r for r in ip_json(node.node_netns, "-4", "rule", "show") if r.get("iif") == "skiff0"]
    assert len(rules) == 1 and rules[0]["priority"] == 1000
    table = ip_json(node.node_netns, "-4", "route", "show", "table", str(rules[0]["table"]))
    assert sorted((r["type"], r["dst"]) for r in table) == [
        ("throw", "10.244.0.0/16"), ("throw", "10.96.0.0/12"), ("unreachable", "default")]


async def test_setup_refuses_a_namespace_whose_routes_overlap_the_cluster(node_ns: Path,
                                                                           tmp_path: Path) -> None:
    run(["ip", "-n", node_ns.name, "route", "add", "10.244.9.0/24", "dev", "lo"])
    network = NodeNetwork(state_dir=tmp_path, pod_cidr="10.244.0.0/24", node_netns=node_ns)
    with pytest.raises(NetworkConflict, match="10.244.9.0/24"):
        await network.setup()
    assert "skiff0" not in link_names(node_ns)
    assert network.table not in nft_tables(node_ns)
    await network.teardown()


async def test_egress_out_of_the_cluster_is_stopped_in_the_node(tmp_path: Path) -> None:
    """Two nodes' worth of plumbing: the node namespace gets an uplink veth into an
    "outside" namespace (made here, nothing beyond it) that also stands for another
    node with pod CIDR 10.244.1.0/24. Pod → other node's pods passes; pod → any
    other address is stopped in the node by either safety layer alone, and never
    reaches the uplink."""
    node_ns, outside = add_namespace(), add_namespace()
    network = NodeNetwork(state_dir=tmp_path, pod_cidr="10.244.0.0/24", node_netns=node_ns,
                          uplinks=("upl0",))
    try:
        for line in (f"ip -n {node_ns.name} link add upl0 type veth peer name eth0 netns {outside.name}",
                     f"ip -n {node_ns.name} addr add 198.51.100.2/24 dev upl0",
                     f"ip -n {node_ns.name} link set upl0 up",
                     f"ip -n {node_ns.name} route add default via 198.51.100.1",
                     f"ip -n {node_ns.name} route add 10.244.1.0/24 via 198.51.100.1",
                     f"ip -n {outside.name} addr add 198.51.100.1/24 dev eth0",
                     f"ip -n {outside.name} link set eth0 up",
                     f"ip -n {outside.name} addr add 10.244.1.1/32 dev lo",
                     f"ip -n {outside.name} route add 10.244.0.0/24 via 198.51.100.2"):
            run(line.split())
        await netns.run_inside(node_ns, lambda: netns.write_sysctl_here(
            "net/ipv4/conf/upl0/forwarding", "1"))          # replies from the other node
        watch = ("table inet watch {\n counter from-pods { }\n chain pre {\n"
                 "  type filter hook prerouting priority raw; policy accept;\n"
                 "  ip saddr 10.244.0.0/24 ip daddr != 10.244.1.1 counter name from-pods\n }\n}\n")
        await netns.run_command(outside, ["nft", "-f", "-"], watch)

        async def outside_saw() -> int:
            listing = json.loads(await netns.run_command(
                outside, ["nft", "-j", "list", "counter", "inet", "watch", "from-pods"]))
            return int(next(e["counter"] for e in listing["nftables"] if "counter" in e)["packets"])

        async def connect_out(pod_ns: Path) -> int:
            sock = await netns.open_socket(pod_ns)
            sock.setblocking(False)
            with sock, pytest.raises(OSError) as failed:
                await asyncio.wait_for(
                    asyncio.get_running_loop().sock_connect(sock, ("198.51.100.1", 80)), 5)
            return failed.value.errno or 0

        await network.setup()
        pod = await network.add_pod(new_uid(), "a", "default")
        assert pod.netns_path is not None
        assert network.node_ip == "198.51.100.2"
        assert await ping(pod.netns_path, "10.244.1.1")          # another node's pod network

        # Both layers: routing answers first ("no route to host", at once).
        assert await connect_out(pod.netns_path) == errno.EHOSTUNREACH
        code, output = await in_ns(node_ns, "ip", "route", "get", "198.51.100.1",
                                   "from", pod.ip, "iif", "skiff0")
        assert code != 0 and "No route to host" in output

        # Without the policy rule, nftables rejects it (admin-prohibited) and counts it.
        rule = next(r for r in ip_json(node_ns, "-4", "rule", "show") if r.get("iif") == "skiff0")
        run(["ip", "-n", node_ns.name, "rule", "del", "priority", str(rule["priority"]),
             "iif", "skiff0", "lookup", str(rule["table"])])
        before = await network.egress_dropped_packets()
        assert await connect_out(pod.netns_path) == errno.EHOSTUNREACH
        assert await network.egress_dropped_packets() == before + 1

        # Without nftables (someone flushed the ruleset), routing still stops it.
        await network.setup()                                     # puts the rule back
        await netns.run_command(node_ns, ["nft", "flush", "ruleset"])
        assert await connect_out(pod.netns_path) == errno.EHOSTUNREACH
        await network.setup()                                     # and the table

        assert await ping(pod.netns_path, "10.244.1.1")
        assert await outside_saw() == 0                           # nothing ever reached the uplink
    finally:
        try:
            await network.teardown()
        finally:
            delete_namespace(node_ns)
            delete_namespace(outside)


async def test_addresses_survive_a_restart_of_the_node_network(node: NodeNetwork) -> None:
    first = await node.add_pod(new_uid(), "a", "default")
    second = await node.add_pod(new_uid(), "b", "default")
    orphan = node.ipam.directory / "10.244.0.200"
    orphan.write_text("uid-of-a-pod-whose-record-never-got-written")

    again = NodeNetwork(state_dir=node.state_dir, pod_cidr="10.244.0.0/24", node_netns=node.node_netns)
    await again.setup()                                            # adopts bridge and table
    assert sorted(p.pod_uid for p in again.list_pods()) == sorted([first.pod_uid, second.pod_uid])
    assert {p.pod_uid: p.ip for p in again.list_pods()} == {first.pod_uid: first.ip,
                                                            second.pod_uid: second.ip}
    assert not orphan.exists()                                     # released: nobody held it
    third = await again.add_pod(new_uid(), "c", "default")
    assert third.ip not in (first.ip, second.ip)
    assert first.netns_path is not None
    assert await ping(first.netns_path, third.ip)                  # old pods kept working
    # Asking again for an existing, healthy pod returns it unchanged.
    assert await again.add_pod(first.pod_uid, "a", "default") == first
    # Round robin: a freed address is not handed out again right away.
    await again.remove_pod(second.pod_uid)
    fourth = await again.add_pod(new_uid(), "d", "default")
    assert fourth.ip != second.ip


async def test_a_pod_whose_namespace_vanished_is_rebuilt(node: NodeNetwork) -> None:
    pod = await node.add_pod(new_uid(), "a", "default")
    assert pod.netns_path is not None
    netns.remove(pod.netns_path)
    rebuilt = await node.add_pod(pod.pod_uid, "a", "default")
    assert rebuilt.netns_path == pod.netns_path and netns.is_namespace(pod.netns_path)
    assert await ping(pod.netns_path, "10.244.0.1")
    assert len(node.ipam.allocations()) == 1


async def test_teardown_and_remove_are_idempotent(node_ns: Path, tmp_path: Path) -> None:
    network = NodeNetwork(state_dir=tmp_path / "state", pod_cidr="10.244.0.0/24", node_netns=node_ns)
    await network.teardown()                                       # never set up: fine
    await network.setup()
    await network.setup()                                          # again: adopts
    pods = [await network.add_pod(new_uid(), f"p{i}", "default") for i in range(3)]
    await network.add_host_ports(pods[0].pod_uid, [HostPort(8080, 80)])
    await network.remove_pod(pods[0].pod_uid)
    await network.remove_pod(pods[0].pod_uid)
    await network.remove_pod(new_uid())                            # never known
    assert len(network.list_pods()) == 2
    await network.teardown()
    await network.teardown()
    assert link_names(node_ns) == {"lo"}
    assert network.table not in nft_tables(node_ns)
    assert [r["table"] for r in ip_json(node_ns, "-4", "rule", "show")] == ["local", "main", "default"]
    assert [r for r in ip_json(node_ns, "-4", "route", "show", "table", "all")
            if r.get("dev") != "lo"] == []
    assert not [p for p in pods if p.netns_path is not None and p.netns_path.exists()]
    assert list((tmp_path / "state").iterdir()) == []


async def test_failed_add_leaves_nothing_behind(node: NodeNetwork, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-namespace"
    with pytest.raises(Exception):
        await node.add_pod(new_uid(), "a", "default", netns_path=missing)
    assert node.list_pods() == []
    assert node.ipam.allocations() == {}
    assert {name for name in link_names(node.node_netns) if name.startswith("veth")} == set()


async def test_the_pod_cidr_runs_out(node_ns: Path, tmp_path: Path) -> None:
    network = NodeNetwork(state_dir=tmp_path, pod_cidr="10.244.0.4/30", node_netns=node_ns,
                          bridge_name="skiff-tiny")
    await network.setup()
    try:
        only = await network.add_pod(new_uid(), "a", "default")
        assert only.ip == "10.244.0.6" and only.gateway == "10.244.0.5"
        with pytest.raises(AddressesExhausted):
            await network.add_pod(new_uid(), "b", "default")
        assert len(network.list_pods()) == 1
        assert len([n for n in link_names(node_ns) if n.startswith("veth")]) == 1
    finally:
        await network.teardown()


async def test_a_namespace_made_by_the_runtime_is_used_and_left_alone(node: NodeNetwork) -> None:
    path = Path("/run/netns") / f"skifft-rt-{new_uid()[:8]}"
    second_sandbox = Path("/run/netns") / f"skifft-rt-{new_uid()[:8]}"
    await netns.create(path)
    await netns.create(second_sandbox)
    try:
        pod = await node.add_pod(new_uid(), "a", "default", netns_path=path)
        assert pod.netns_path == path
        assert await ping(path, "10.244.0.1")
        # The runtime replaced the pod's sandbox: the network moves to the new namespace.
        moved = await node.add_pod(pod.pod_uid, "a", "default", netns_path=second_sandbox)
        assert moved.netns_path == second_sandbox
        assert await ping(second_sandbox, "10.244.0.1")
        code, output = await in_ns(path, "ip", "-br", "link")
        assert code == 0 and "eth0" not in output and netns.is_namespace(path)
        await node.remove_pod(pod.pod_uid)
        assert netns.is_namespace(second_sandbox)
        code, output = await in_ns(second_sandbox, "ip", "-br", "link")
        assert code == 0 and "eth0" not in output
        assert node.ipam.allocations() == {}
    finally:
        netns.remove(path)
        netns.remove(second_sandbox)


async def test_host_network_pods_get_the_node_address(node: NodeNetwork) -> None:
    pod = await node.add_pod(new_uid(), "h", "kube-system", host_network=True)
    assert pod.host_network and pod.netns_path is None and pod.ip == node.node_ip
    assert node.list_pods() == []


async def test_host_ports_forward_node_addresses_to_the_pod(node: NodeNetwork) -> None:
    web = await node.add_pod(new_uid(), "web", "default", host_ports=[HostPort(8080, 80)])
    client = await node.add_pod(new_uid(), "client", "default")
    assert web.netns_path is not None and client.netns_path is not None
    server = await PeerAddressServer.start(web.netns_path, 80)
    try:
        # From the node itself, on loopback: routed to the pod, masqueraded to the gateway.
        assert await ask_peer_address(node.node_netns, "127.0.0.1", 8080) == "10.244.0.1"
        # From the node, on the bridge address: the pod sees the node.
        assert await ask_peer_address(node.node_netns, "10.244.0.1", 8080) == "10.244.0.1"
        # From another pod through the node's address: DNAT there, un-DNAT on the bridge.
        assert await ask_peer_address(client.netns_path, "10.244.0.1", 8080) == client.ip
        # A pod reaching itself through its own hostPort (hairpin, masqueraded).
        assert await ask_peer_address(web.netns_path, "10.244.0.1", 8080) == "10.244.0.1"
        # Replacing the ports: 8080 is gone, 9090 on one address only.
        await node.add_host_ports(web.pod_uid, [HostPort(9090, 80, host_ip="127.0.0.1")])
        assert await ask_peer_address(node.node_netns, "127.0.0.1", 9090) == "10.244.0.1"
        with pytest.raises(OSError):
            await ask_peer_address(node.node_netns, "10.244.0.1", 9090)
        with pytest.raises(OSError):
            await ask_peer_address(node.node_netns, "127.0.0.1", 8080)

        with pytest.raises(HostPortConflict):
            await node.add_host_ports(client.pod_uid, [HostPort(9090, 80)])
        with pytest.raises(HostPortConflict):
            await node.add_pod(new_uid(), "other", "default", host_ports=[HostPort(9090, 81)])
        # Removing the pod removes its forwarding.
        await node.remove_pod(web.pod_uid)
        listing = await netns.run_command(node.node_netns, ["nft", "list", "table", "inet", node.table])
        assert "9090" not in listing and web.ip not in listing
    finally:
        await server.close()


async def test_pods_can_not_reach_the_node_loopback(node: NodeNetwork) -> None:
    """route_localnet is on for the bridge (hostPorts on 127.0.0.1); a pod that routes
    127.0.0.0/8 to its gateway must still not reach the node's loopback services."""
    pod = await node.add_pod(new_uid(), "sneaky", "default")
    assert pod.netns_path is not None
    for line in ("route del local 127.0.0.0/8 dev lo table local",
                 "route add 127.0.0.0/8 via 10.244.0.1 dev eth0"):
        code, output = await in_ns(pod.netns_path, "ip", *line.split())
        assert code == 0, output
    await netns.run_inside(pod.netns_path, lambda: netns.write_sysctl_here(
        "net/ipv4/conf/eth0/route_localnet", "1"))
    listener = await PeerAddressServer.start(node.node_netns, 7001, "127.0.0.2")
    try:
        assert await ask_peer_address(node.node_netns, "127.0.0.2", 7001) == "127.0.0.1"
        before = await guard_drops(node)
        with pytest.raises(asyncio.TimeoutError):     # sent, and dropped by the node's guard
            await ask_peer_address(pod.netns_path, "127.0.0.2", 7001, timeout=0.3)
        assert await guard_drops(node) > before
    finally:
        await listener.close()


async def guard_drops(node: NodeNetwork) -> int:
    listing = json.loads(await netns.run_command(
        node.node_netns, ["nft", "-j", "list", "chain", "inet", node.table, "guard"]))
    return sum(expression["counter"]["packets"]
               for entry in listing["nftables"] if "rule" in entry
               for expression in entry["rule"]["expr"] if "counter" in expression)


async def test_concurrent_calls(node: NodeNetwork) -> None:
    uids = [new_uid() for _ in range(8)]
    pods = await asyncio.gather(*(node.add_pod(uid, "p", "default") for uid in uids))
    assert len({pod.ip for pod in pods}) == 8
    twice = await asyncio.gather(node.add_pod(uids[0], "p", "default"),
                                 node.add_pod(uids[0], "p", "default"))
    assert twice[0] == twice[1] == pods[0]
    assert len([n for n in link_names(node.node_netns) if n.startswith("veth")]) == 8
    await asyncio.gather(*(node.remove_pod(uid) for uid in uids), node.remove_pod(uids[0]))
    assert node.list_pods() == [] and node.ipam.allocations() == {}
    assert [n for n in link_names(node.node_netns) if n.startswith("veth")] == []
