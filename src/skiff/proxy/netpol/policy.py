"""A NetworkPolicy object read into plain values, with Kubernetes' meaning of each field.

::

    spec.podSelector            which pods of the policy's namespace the policy is about
                                ({} = every pod of the namespace)
    spec.policyTypes            the directions those pods become isolated for; when
                                absent: Ingress, plus Egress if egress rules are given
    spec.ingress[] / egress[]   allow rules; a policy of a type with no rules of it
                                allows nothing (a default deny for that direction)
      from / to                 peers; absent or [] = every address
        podSelector             pods of the policy's namespace
        namespaceSelector       every pod of the matching namespaces
        both in one peer        pods matching podSelector *in* the matching namespaces
        ipBlock                 cidr minus every except
      ports                     absent or [] = every protocol and port
        protocol                TCP (the default), UDP or SCTP
        port                    a number, a name (a container port's name, looked up on
                                the pod the traffic goes to), or absent: every port
        endPort                 with a numeric port: the range port..endPort

Peers and ports of one rule combine as "any peer AND any port"; rules and
policies are OR'ed. What the rules mean for concrete pods is worked out in
.compiler; this module only reads the object. IPv6 ipBlocks are kept aside
(the pod network is IPv4): they match nothing here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from ...api.selectors import LabelSelector, label_selector_from_object

Obj = dict[str, Any]
INGRESS, EGRESS = "Ingress", "Egress"
PROTOCOLS = ("TCP", "UDP", "SCTP")


@dataclass(frozen=True)
class PortSpec:
    """One ``ports[]`` entry."""

    protocol: str                 # TCP | UDP | SCTP
    port: int | str | None        # None: every port of the protocol; str: a named port
    end_port: int | None = None   # with a numeric port: the last port of the range

    @property
    def named(self) -> bool:
        return isinstance(self.port, str)


@dataclass(frozen=True)
class IPBlock:
    cidr: ipaddress.IPv4Network
    excepted: tuple[ipaddress.IPv4Network, ...] = ()

    def networks(self) -> list[ipaddress.IPv4Network]:
        """The addresses of the block as disjoint networks (``cidr`` minus ``except``)."""
        pieces = [self.cidr]
        for hole in self.excepted:
            remaining: list[ipaddress.IPv4Network] = []
            for piece in pieces:
                if hole.subnet_of(piece):
                    remaining.extend(piece.address_exclude(hole))
                elif not piece.subnet_of(hole):
                    remaining.append(piece)
            pieces = remaining
        return pieces


@dataclass(frozen=True)
class Peer:
    """One ``from[]`` / ``to[]`` entry: selectors (either or both), or an ipBlock."""

    pods: LabelSelector | None = None         # None: not given
    namespaces: LabelSelector | None = None   # None: not given (the policy's namespace)
    block: IPBlock | None = None
    ipv6: bool = False                        # an IPv6 ipBlock: matches nothing here


@dataclass(frozen=True)
class Rule:
    peers: tuple[Peer, ...] | None            # None: every address
    ports: tuple[PortSpec, ...] | None        # None: every protocol and port


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    selector: LabelSelector
    ingress: tuple[Rule, ...] | None          # None: not an Ingress policy
    egress: tuple[Rule, ...] | None           # None: not an Egress policy

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: str) -> tuple[Rule, ...] | None:
        return self.ingress if direction == INGRESS else self.egress


def policy_types(spec: Obj) -> tuple[str, ...]:
    """The directions a policy isolates (spec.policyTypes, or Kubernetes' default)."""
    given = spec.get("policyTypes")
    if given:
        return tuple(kind for kind in (INGRESS, EGRESS) if kind in given)
    return (INGRESS, EGRESS) if spec.get("egress") else (INGRESS,)


def _port(entry: Obj) -> PortSpec:
    protocol = entry.get("protocol") or "TCP"
    if protocol not in PROTOCOLS:
        raise ValueError(f"unsupported protocol {protocol!r}")
    port = entry.get("port")
    end = entry.get("endPort")
    if isinstance(port, str) and port.isdigit():
        port = int(port)        # an int-or-string given as a string of digits
    if isinstance(port, int):
        if not 0 < port < 65536 or (end is not None and not port <= int(end) < 65536):
            raise ValueError(f"invalid port range {port}..{end}")
        return PortSpec(protocol, port, int(end) if end is not None else None)
    if port is not None and not isinstance(port, str):
        raise ValueError(f"invalid port {port!r}")
    return PortSpec(protocol, port or None)


def _peer(entry: Obj) -> Peer:
    block = entry.get("ipBlock")
    if block is not None:
        cidr = ipaddress.ip_network(block.get("cidr", ""), strict=False)
        if not isinstance(cidr, ipaddress.IPv4Network):
            return Peer(ipv6=True)
        excepted = []
        for text in block.get("except") or []:
            hole = ipaddress.ip_network(text, strict=False)
            if isinstance(hole, ipaddress.IPv4Network):
                excepted.append(hole)
        return Peer(block=IPBlock(cidr, tuple(excepted)))
    pods = entry.get("podSelector")
    namespaces = entry.get("namespaceSelector")
    if pods is None and namespaces is None:
        raise ValueError("a peer must give podSelector, namespaceSelector or ipBlock")
    return Peer(pods=label_selector_from_object(pods) if pods is not None else None,
                namespaces=label_selector_from_object(namespaces) if namespaces is not None else None)


def _rule(entry: Obj, peers_field: str) -> Rule:
    peers = entry.get(peers_field) or []
    ports = entry.get("ports") or []
    return Rule(peers=tuple(_peer(p) for p in peers) if peers else None,
                ports=tuple(_port(p) for p in ports) if ports else None)


def parse_policy(obj: Obj) -> Policy:
    """Read a NetworkPolicy; ValueError (or SelectorError) for what the API server
    would have refused."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    types = policy_types(spec)
    ingress = egress = None
    if INGRESS in types:
        ingress = tuple(_rule(rule or {}, "from") for rule in spec.get("ingress") or [])
    if EGRESS in types:
        egress = tuple(_rule(rule or {}, "to") for rule in spec.get("egress") or [])
    return Policy(namespace=str(meta.get("namespace") or "default"), name=str(meta.get("name", "")),
                  selector=label_selector_from_object(spec.get("podSelector") or {}),
                  ingress=ingress, egress=egress)
