"""What keeps a node's pod network on the machine: routes that catch every cluster
address, and two independent layers that stop pod traffic headed anywhere else.

Routes (in the node's namespace, all through the node bridge)::

    <pod CIDR of the node>     dev skiff0   (the kernel's, from the gateway address)
    <cluster CIDR>, e.g. /16   dev skiff0   pod IPs of other nodes: unless a more
                                            specific route says otherwise, they die here
    <service CIDR>, e.g. /12   dev skiff0   a ClusterIP with no DNAT rule dies here

So a packet to a cluster address never falls through to the default route: with
no rule or pod behind it, neighbour resolution on the bridge fails and it is
dropped locally. Routes through the bridge vanish with the bridge.

Firewall (nftables, in the node's own ``table inet skiff-net-<bridge>``)::

    chain guard    (prerouting, raw)      from the bridge: no 127.0.0.0/8 source or
                                          destination (the bridge has route_localnet
                                          on for hostPorts on 127.0.0.1; this keeps
                                          pods away from the node's loopback services)
    chain forward  (forward, filter)      from the bridge:
                                            back out of the bridge            accept
                                            to an uplink, cluster destination accept
                                            replies (ct established/related)  accept
                                            anything else  counter pod-egress-dropped,
                                                           reject (admin-prohibited)

Policy routing, the second layer (it holds if someone flushes nftables, and
nftables holds if someone deletes the rule)::

    ip rule:   iif skiff0 lookup <table>   priority 1000
    <table>:   throw <cluster CIDR>        back to the main table (pods, other nodes)
               throw <service CIDR>        (DNAT has already happened by then)
               unreachable default         everything else: "no route to host"

Packets a pod sends to the node's own addresses are delivered by the local table
(priority 0) before this rule is consulted.

Pod egress to the outside is therefore dropped, never masqueraded: the packet dies
in the node, and the pod gets an ICMP error at once (a connect fails fast instead
of hanging until its timeout). Routing from the bridge is only switched on
(per-interface ``forwarding``) after both layers exist, and they are removed only
after the bridge is gone. Uplinks are interfaces leading to *other nodes of the
same cluster* (a multi-node cluster on one host); there are none on a single node.
Replies to clients outside the cluster CIDRs are stopped by the routing layer
too: letting them through (e.g. hostPorts reached from other nodes' addresses)
would take a ``throw`` for that network, an explicit opt-in not made here.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import NetworkConflict
from .netns import run_command_here

IPv4Network = ipaddress.IPv4Network
EGRESS_COUNTER = "pod-egress-dropped"
RULE_PRIORITY = 1000
IP = "ip"


def parse_networks(pod_cidr: str, cluster_cidr: str, service_cidr: str
                   ) -> tuple[IPv4Network, IPv4Network, IPv4Network]:
    """Parse and check the three CIDRs: the pod CIDR inside the cluster CIDR, the
    service CIDR apart from it. IPv4 only (pods get one IPv4 address)."""
    pod = ipaddress.ip_network(pod_cidr, strict=True)
    cluster = ipaddress.ip_network(cluster_cidr, strict=True)
    service = ipaddress.ip_network(service_cidr, strict=True)
    for label, network in (("pod", pod), ("cluster", cluster), ("service", service)):
        if not isinstance(network, IPv4Network):
            raise ValueError(f"{label} CIDR {network} is not IPv4 (only IPv4 pod networks are supported)")
    assert isinstance(pod, IPv4Network) and isinstance(cluster, IPv4Network)
    assert isinstance(service, IPv4Network)
    if not pod.subnet_of(cluster):
        raise ValueError(f"pod CIDR {pod} is not inside the cluster CIDR {cluster}")
    if service.overlaps(cluster):
        raise ValueError(f"service CIDR {service} overlaps the cluster CIDR {cluster}")
    if pod.num_addresses < 4:
        raise ValueError(f"pod CIDR {pod} is too small (need at least a /30)")
    return pod, cluster, service


def catch_all_routes(pod: IPv4Network, cluster: IPv4Network, service: IPv4Network) -> list[IPv4Network]:
    """The routes to add through the bridge besides the kernel's pod CIDR route."""
    routes = [] if cluster == pod else [cluster]
    return routes + [service]


def check_route_conflicts(routes: Iterable[dict[str, Any]], pod: IPv4Network,
                          cluster: IPv4Network, service: IPv4Network, bridge: str,
                          uplinks: Sequence[str] = ()) -> None:
    """Refuse to go on if the namespace routes cluster addresses elsewhere.

    ``routes`` is ``ip -j -4 route show table main``. A route that overlaps a
    cluster CIDR and is not through our bridge (a LAN on 10.244.0.0/16, another
    cluster's bridge) would steal or leak cluster traffic: that is a conflict.
    Two kinds are not: the default route (it is what the catch-all routes are
    there to beat), and routes to other nodes' pod CIDRs (inside the cluster
    CIDR, clear of this node's) through an uplink.
    """
    for route in routes:
        destination = route.get("dst", "")
        device = route.get("dev")
        if destination == "default" or device == bridge:
            continue
        try:
            network = ipaddress.ip_network(destination if "/" in destination else f"{destination}/32",
                                           strict=False)
        except ValueError:
            continue
        if (device in uplinks and isinstance(network, IPv4Network)
                and network.subnet_of(cluster) and not network.overlaps(pod)):
            continue
        for cidr in (pod, cluster, service):
            if network.overlaps(cidr):
                raise NetworkConflict(
                    f"route {destination} via {device or '?'} overlaps cluster network {cidr}")


def guard_rules(bridge: str, allowed: Sequence[IPv4Network], uplinks: Sequence[str]) -> str:
    """The filter part of the node's nft table (see the module docstring)."""
    quoted_bridge = _quote(bridge)
    cluster = ", ".join(str(network) for network in allowed)
    uplink_elements = (f"\t\telements = {{ {', '.join(_quote(name) for name in uplinks)} }}\n"
                       if uplinks else "")
    return (
        f"\tcounter {EGRESS_COUNTER} {{\n\t}}\n"
        f"\tset cluster-v4 {{\n\t\ttype ipv4_addr\n\t\tflags interval\n"
        f"\t\telements = {{ {cluster} }}\n\t}}\n"
        f"\tset uplinks {{\n\t\ttype ifname\n{uplink_elements}\t}}\n"
        "\tchain guard {\n"
        "\t\ttype filter hook prerouting priority raw; policy accept;\n"
        f"\t\tiifname {quoted_bridge} ip saddr 127.0.0.0/8 counter drop\n"
        f"\t\tiifname {quoted_bridge} ip daddr 127.0.0.0/8 counter drop\n"
        "\t}\n"
        "\tchain forward {\n"
        "\t\ttype filter hook forward priority filter; policy accept;\n"
        f"\t\tiifname {quoted_bridge} oifname {quoted_bridge} accept\n"
        f"\t\tiifname {quoted_bridge} oifname @uplinks ip daddr @cluster-v4 accept\n"
        f"\t\tiifname {quoted_bridge} ct state established,related accept\n"
        f"\t\tiifname {quoted_bridge} counter name {EGRESS_COUNTER} reject with icmpx admin-prohibited\n"
        "\t}\n")


def _quote(name: str) -> str:
    if not name or any(char in name for char in "\"\\ \t\n;{}"):
        raise ValueError(f"unsafe interface name {name!r}")
    return f'"{name}"'


def routing_table(bridge: str) -> int:
    """The policy routing table of ``bridge``: a number derived from its name, in a
    high range no distribution or tool hands out."""
    digest = hashlib.sha256(f"skiff-egress/{bridge}".encode()).digest()
    return 0x50000000 + int.from_bytes(digest[:3], "big")


def _table_routes_here(table: int) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = json.loads(
        run_command_here([IP, "-j", "-4", "route", "show", "table", "all"]) or "[]")
    return [route for route in routes if route.get("table") == str(table)]


def _our_rules_here(bridge: str, table: int) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = json.loads(run_command_here([IP, "-j", "-4", "rule", "show"]) or "[]")
    return [rule for rule in rules if rule.get("iif") == bridge and rule.get("table") == str(table)]


def ensure_egress_routing_here(bridge: str, allowed: Sequence[IPv4Network]) -> None:
    """Install the policy routing layer (idempotent). Runs inside the node namespace."""
    table = routing_table(bridge)
    wanted = {("throw", str(network)) for network in allowed} | {("unreachable", "default")}
    present = {(str(route.get("type", "unicast")), str(route.get("dst")))
               for route in _table_routes_here(table)}
    if present - wanted:
        raise NetworkConflict(f"routing table {table} holds routes skiff did not put there: "
                              f"{sorted(present - wanted)}")
    commands = [f"route add {kind} {destination} table {table}"
                for kind, destination in sorted(wanted - present)]
    # The table is complete before the rule points at it: an empty table would
    # fall through to the main table and its default route.
    if not _our_rules_here(bridge, table):
        commands.append(f"rule add iif {bridge} lookup {table} priority {RULE_PRIORITY}")
    if commands:
        run_command_here([IP, "-batch", "-"], "\n".join(commands) + "\n")


def remove_egress_routing_here(bridge: str) -> None:
    """Remove the rule (it outlives the bridge) and then the table's routes."""
    table = routing_table(bridge)
    commands = [f"rule del iif {bridge} lookup {table} priority {rule.get('priority', RULE_PRIORITY)}"
                for rule in _our_rules_here(bridge, table)]
    commands += [f"route del {route.get('type', 'unicast')} {route.get('dst')} table {table}"
                 for route in _table_routes_here(table)]
    if commands:
        run_command_here([IP, "-batch", "-"], "\n".join(commands) + "\n")
