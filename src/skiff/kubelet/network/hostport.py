"""hostPort: a port of the node forwarded (DNAT) to a pod's containerPort.

The node's whole hostPort state is three nftables maps/sets in the node's table,
rewritten from the pods' records in one atomic ``nft -f`` whenever it changes
(level-triggered: no rule handles to remember, nothing to leak after a crash)::

    map hostport-any   proto . port        → podIP . containerPort   (hostIP unset: every
                                                                      local address)
    map hostport-addr  proto . addr . port → podIP . containerPort   (hostIP given)
    set hostport-hairpin  podIP . podIP      a pod reaching itself through its hostPort

    prerouting / output (nat):  fib daddr type local → jump hostports → dnat via the maps
    postrouting (nat):          from 127.0.0.0/8 out of the bridge → masquerade
                                hairpin pairs                      → masquerade

Traffic from the node itself (output hook) and from pods on the bridge
(prerouting) is forwarded, to every local address of the node's namespace,
127.0.0.1 included: the bridge has ``route_localnet`` on so a loopback-sourced
packet may be routed to a pod, and it is masqueraded to the bridge's address on
its way out so the pod can answer. (Packets *from* the bridge to or from 127/8 are
dropped by the guard chain, see .safety.) Clients on other interfaces of the
namespace reach hostPorts only where the namespace's owner enabled forwarding on
them; skiff enables it on the bridge alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import HostPortConflict

PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
ANY_ADDRESS = ("", "0.0.0.0")


@dataclass(frozen=True)
class HostPort:
    """One ``containers[].ports[]`` entry with a hostPort."""

    host_port: int
    container_port: int
    protocol: str = "TCP"
    host_ip: str = ""        # "" or "0.0.0.0": every address of the node

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unsupported hostPort protocol {self.protocol!r}")
        for port in (self.host_port, self.container_port):
            if not 0 < port < 65536:
                raise ValueError(f"port {port} out of range")
        if self.host_ip not in ANY_ADDRESS:
            if not isinstance(ipaddress.ip_address(self.host_ip), ipaddress.IPv4Address):
                raise ValueError(f"hostIP {self.host_ip} is not IPv4")

    @property
    def any_address(self) -> bool:
        return self.host_ip in ANY_ADDRESS

    def to_json(self) -> dict[str, object]:
        return {"hostPort": self.host_port, "containerPort": self.container_port,
                "protocol": self.protocol, "hostIP": self.host_ip}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> HostPort:
        return cls(host_port=int(str(data["hostPort"])), container_port=int(str(data["containerPort"])),
                   protocol=str(data.get("protocol", "TCP")), host_ip=str(data.get("hostIP", "")))


@dataclass(frozen=True)
class HostPortMapping:
    """A pod's hostPort, bound to the pod's address."""

    pod_uid: str
    pod_ip: str
    port: HostPort


def check_conflicts(mappings: Iterable[HostPortMapping]) -> None:
    """Raise HostPortConflict when two pods claim one (protocol, address, port).

    An any-address claim conflicts with every specific address on the same port.
    """
    any_claims: dict[tuple[str, int], str] = {}
    addr_claims: dict[tuple[str, str, int], str] = {}
    for mapping in mappings:
        port = mapping.port
        if port.any_address:
            key = (port.protocol, port.host_port)
            holders = {uid for (proto, _, number), uid in addr_claims.items()
                       if (proto, number) == key}
            holders |= {any_claims[key]} if key in any_claims else set()
        else:
            key = (port.protocol, port.host_port)
            holders = {any_claims[key]} if key in any_claims else set()
            specific = (port.protocol, port.host_ip, port.host_port)
            if specific in addr_claims:
                holders.add(addr_claims[specific])
        holders.discard(mapping.pod_uid)
        if holders:
            raise HostPortConflict(
                f"hostPort {port.host_ip or '0.0.0.0'}:{port.host_port}/{port.protocol} "
                f"of pod {mapping.pod_uid} is already used by pod {sorted(holders)[0]}")
        if port.any_address:
            any_claims[(port.protocol, port.host_port)] = mapping.pod_uid
        else:
            addr_claims[(port.protocol, port.host_ip, port.host_port)] = mapping.pod_uid


def nat_rules(bridge: str, mappings: Sequence[HostPortMapping]) -> str:
    """The nat part of the node's nft table (see the module docstring)."""
    any_elements: list[str] = []
    addr_elements: list[str] = []
    hairpin: set[str] = set()
    for mapping in mappings:
        port = mapping.port
        target = f"{mapping.pod_ip} . {port.container_port}"
        proto = PROTOCOLS[port.protocol]
        if port.any_address:
            any_elements.append(f"{proto} . {port.host_port} : {target}")
        else:
            addr_elements.append(f"{proto} . {port.host_ip} . {port.host_port} : {target}")
        hairpin.add(f"{mapping.pod_ip} . {mapping.pod_ip}")
    quoted_bridge = f'"{bridge}"'
    return (
        "\tmap hostport-any {\n\t\ttype inet_proto . inet_service : ipv4_addr . inet_service\n"
        f"{_elements(any_elements)}\t}}\n"
        "\tmap hostport-addr {\n"
        "\t\ttype inet_proto . ipv4_addr . inet_service : ipv4_addr . inet_service\n"
        f"{_elements(addr_elements)}\t}}\n"
        "\tset hostport-hairpin {\n\t\ttype ipv4_addr . ipv4_addr\n"
        f"{_elements(sorted(hairpin))}\t}}\n"
        "\tchain hostports {\n"
        "\t\tdnat ip to meta l4proto . ip daddr . th dport map @hostport-addr\n"
        "\t\tdnat ip to meta l4proto . th dport map @hostport-any\n"
        "\t}\n"
        "\tchain prerouting {\n"
        "\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
        "\t\tfib daddr type local jump hostports\n"
        "\t}\n"
        "\tchain output {\n"
        "\t\ttype nat hook output priority -100; policy accept;\n"
        "\t\tfib daddr type local jump hostports\n"
        "\t}\n"
        "\tchain postrouting {\n"
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        f"\t\toifname {quoted_bridge} ip saddr 127.0.0.0/8 masquerade\n"
        "\t\tct status dnat ip saddr . ip daddr @hostport-hairpin masquerade\n"
        "\t}\n")


def _elements(elements: Sequence[str]) -> str:
    return f"\t\telements = {{ {', '.join(elements)} }}\n" if elements else ""
