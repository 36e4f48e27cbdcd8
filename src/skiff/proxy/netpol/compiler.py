"""Policies + pods + namespaces → what one node allows, per pod and direction.

A pure function (:func:`compile_policies`), so every rule of Kubernetes'
NetworkPolicy semantics is testable without root::

    for each pod on this node with an IP:
        selected by no Ingress policy   → not isolated for ingress (everything allowed)
        selected by some                → isolated: allowed = the union of the ingress
                                          rules of every policy selecting it
        (the same for Egress)

    a rule  ──▶ Allow(peers=<set>, ports=…)       one per rule (per pod for ingress rules
                                                  with named ports: they are looked up on
                                                  the pod itself)
            ──▶ Allow(destinations=<set>)         egress rules with named ports: the set
                                                  of (peer pod IP, protocol, port) they name

Peers become shared *sets* of IPv4 networks, one per rule, named after the policy
(``from-<ns>/<policy>/<rule index>``, ``to-…``), so a pod coming or going changes a
set's elements, not the chains of the pods the policy protects. Sets are only made
for policies that select a pod of this node. :meth:`Compiled.permits` answers
"would this packet be allowed" from the same data the nft rules are made of (see
.ruleset), for tests and for people asking.

Not modelled here because the node's table handles them before these rules:
replies of allowed connections, and the node's own traffic (see the package
docstring). A pod may always talk to itself.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .inventory import PodInfo, labels_of_namespace
from .policy import EGRESS, INGRESS, Peer, Policy, PortSpec, Rule

IPv4Network = ipaddress.IPv4Network
#: nft's protocol names.
NFT_PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}
MAX_NAME = 200          # nft allows 255 characters for set and chain names


@dataclass(frozen=True)
class Ports:
    """Ports of one protocol: disjoint sorted ranges, or None for every port."""

    protocol: str                                   # tcp | udp | sctp
    ranges: tuple[tuple[int, int], ...] | None = None

    def matches(self, protocol: str, port: int | None) -> bool:
        if protocol != self.protocol:
            return False
        if self.ranges is None:
            return True
        return port is not None and any(first <= port <= last for first, last in self.ranges)


@dataclass(frozen=True)
class Allow:
    """One way in (or out) for an isolated pod; becomes one nft rule per protocol."""

    policy: str                                     # "ns/name", shown as the rule's comment
    peers: str | None = None                        # a peer set; None: every address
    ports: tuple[Ports, ...] | None = None          # None: every protocol and port
    destinations: str | None = None                 # a destination set (egress named ports)


@dataclass(frozen=True)
class PodRules:
    pod: str                                        # "ns/name"
    ip: str
    ingress: tuple[Allow, ...] | None = None        # None: not isolated for ingress
    egress: tuple[Allow, ...] | None = None         # None: not isolated for egress

    def allows(self, direction: str) -> tuple[Allow, ...] | None:
        return self.ingress if direction == INGRESS else self.egress


@dataclass
class Compiled:
    """What a node enforces: sets, and the rules of each isolated pod of the node."""

    peer_sets: dict[str, tuple[IPv4Network, ...]] = field(default_factory=dict)
    destination_sets: dict[str, tuple[tuple[str, str, int], ...]] = field(default_factory=dict)
    pods: dict[str, PodRules] = field(default_factory=dict)          # by pod IP

    def isolated(self, direction: str, pod_ip: str) -> bool:
        rules = self.pods.get(pod_ip)
        return rules is not None and rules.allows(direction) is not None

    def permits(self, direction: str, pod_ip: str, peer_ip: str, protocol: str,
                port: int | None = None) -> bool:
        """Is a new connection of ``pod_ip`` with ``peer_ip`` allowed in ``direction``?

        Ingress: the peer connects to the pod's ``port``; Egress: the pod connects to
        the peer's ``port``. ``protocol``: tcp, udp, sctp, icmp... (any case).
        """
        rules = self.pods.get(pod_ip)
        allows = rules.allows(direction) if rules is not None else None
        if allows is None or peer_ip == pod_ip:
            return True
        protocol = protocol.lower()
        address = ipaddress.IPv4Address(peer_ip)
        for allow in allows:
            if allow.peers is not None and not any(address in network
                                                   for network in self.peer_sets[allow.peers]):
                continue
            if allow.destinations is not None:
                if (peer_ip, protocol, port) in self.destination_sets[allow.destinations]:
                    return True
                continue
            if allow.ports is None or any(p.matches(protocol, port) for p in allow.ports):
                return True
        return False


def set_name(prefix: str, policy: str, index: int, suffix: str = "") -> str:
    """A set's name (an nft identifier: letters, digits, ``/ - _ .``), at most MAX_NAME long."""
    name = f"{prefix}-{policy}/{index}{suffix}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"{name[:MAX_NAME - 13]}-{digest}"


def merge_ranges(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted, disjoint, non-adjacent ranges covering the same ports (nft refuses
    overlapping elements in one set)."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return tuple(merged)


class _Cluster:
    """Pods and namespaces indexed for peer lookups."""

    def __init__(self, pods: Iterable[PodInfo], namespaces: Mapping[str, Mapping[str, str]]) -> None:
        self.pods = list(pods)
        self.namespaces = namespaces
        self.by_namespace: dict[str, list[PodInfo]] = {}
        for pod in self.pods:
            self.by_namespace.setdefault(pod.namespace, []).append(pod)

    def peer_pods(self, peer: Peer, policy_namespace: str) -> list[PodInfo]:
        """The pods a selector peer names (none for an ipBlock peer)."""
        if peer.block is not None or peer.ipv6:
            return []
        if peer.namespaces is None:
            names = [policy_namespace]
        else:
            selector = peer.namespaces
            names = [name for name in self.by_namespace
                     if selector.matches(labels_of_namespace(self.namespaces, name))]
        found = []
        for name in names:
            for pod in self.by_namespace.get(name, ()):
                if peer.pods is None or peer.pods.matches(pod.label_map):
                    found.append(pod)
        return found


def _peer_networks(cluster: _Cluster, rule: Rule, namespace: str
                   ) -> tuple[list[PodInfo], list[IPv4Network]]:
    """(pods named by selector peers, networks of ipBlock peers) of a rule with peers."""
    assert rule.peers is not None
    pods: list[PodInfo] = []
    blocks: list[IPv4Network] = []
    for peer in rule.peers:
        pods += cluster.peer_pods(peer, namespace)
        if peer.block is not None:
            blocks += peer.block.networks()
    return pods, blocks


def _numeric_ports(specs: Sequence[PortSpec], target: PodInfo | None) -> tuple[Ports, ...]:
    """The port matches of ``specs``; named ports are looked up on ``target`` (and
    left out when it is None, or does not have them)."""
    every: set[str] = set()
    ranges: dict[str, list[tuple[int, int]]] = {}
    for spec in specs:
        protocol = NFT_PROTOCOLS[spec.protocol]
        if spec.port is None:
            every.add(protocol)
        elif isinstance(spec.port, int):
            ranges.setdefault(protocol, []).append((spec.port, spec.end_port or spec.port))
        elif target is not None:
            number = target.named_port(spec.port, spec.protocol)
            if number is not None:
                ranges.setdefault(protocol, []).append((number, number))
    result = [Ports(protocol) for protocol in sorted(every)]
    result += [Ports(protocol, merge_ranges(found)) for protocol, found in sorted(ranges.items())
               if protocol not in every]
    return tuple(result)


def _newest_per_ip(pods: Iterable[PodInfo]) -> dict[str, PodInfo]:
    """This node's pods by IP; should an IP show up twice (a reused address the
    API has not caught up with), the newest pod has it."""
    owners: dict[str, PodInfo] = {}
    for pod in sorted(pods, key=lambda p: (p.created, p.key)):
        owners[pod.ip] = pod
    return owners


def compile_policies(policies: Iterable[Policy], pods: Iterable[PodInfo],
                     namespaces: Mapping[str, Mapping[str, str]], node_name: str) -> Compiled:
    """What ``node_name`` must enforce (see the module docstring).

    ``pods``: every pod of the cluster that has an IP (see .inventory.pod_info);
    ``namespaces``: labels by namespace name.
    """
    cluster = _Cluster(pods, namespaces)
    local = _newest_per_ip(pod for pod in cluster.pods if pod.node == node_name)
    local_by_namespace: dict[str, list[PodInfo]] = {}
    for pod in local.values():
        local_by_namespace.setdefault(pod.namespace, []).append(pod)
    compiled = Compiled()
    allowed: dict[str, dict[str, list[Allow]]] = {INGRESS: {}, EGRESS: {}}
    for policy in sorted(policies, key=lambda p: p.key):
        selected = [pod for pod in local_by_namespace.get(policy.namespace, ())
                    if policy.selector.matches(pod.label_map)]
        if not selected:
            continue
        for direction in (INGRESS, EGRESS):
            rules = policy.rules(direction)
            if rules is None:
                continue
            per_pod = allowed[direction]
            for pod in selected:
                per_pod.setdefault(pod.ip, [])
            for index, rule in enumerate(rules):
                if direction == INGRESS:
                    _ingress_rule(compiled, cluster, policy, index, rule, selected, per_pod)
                else:
                    _egress_rule(compiled, cluster, policy, index, rule, selected, per_pod)
    for ip in sorted(set(allowed[INGRESS]) | set(allowed[EGRESS])):
        ingress, egress = allowed[INGRESS].get(ip), allowed[EGRESS].get(ip)
        compiled.pods[ip] = PodRules(pod=local[ip].key, ip=ip,
                                     ingress=tuple(ingress) if ingress is not None else None,
                                     egress=tuple(egress) if egress is not None else None)
    return compiled


def _peer_set(compiled: Compiled, cluster: _Cluster, policy: Policy, index: int, rule: Rule,
              prefix: str) -> tuple[str | None, list[PodInfo], list[IPv4Network]]:
    """Make the rule's peer set; (its name or None for "every address", peer pods, blocks)."""
    if rule.peers is None:
        return None, [], []
    pods, blocks = _peer_networks(cluster, rule, policy.namespace)
    name = set_name(prefix, policy.key, index)
    networks = [IPv4Network(pod.ip) for pod in pods] + blocks
    compiled.peer_sets[name] = tuple(ipaddress.collapse_addresses(networks))
    return name, pods, blocks


def _ingress_rule(compiled: Compiled, cluster: _Cluster, policy: Policy, index: int, rule: Rule,
                  selected: Sequence[PodInfo], per_pod: dict[str, list[Allow]]) -> None:
    peers, _, _ = _peer_set(compiled, cluster, policy, index, rule, "from")
    for pod in selected:
        if rule.ports is None:
            per_pod[pod.ip].append(Allow(policy.key, peers=peers))
            continue
        ports = _numeric_ports(rule.ports, pod)
        if ports:         # otherwise only named ports this pod does not have: nothing
            per_pod[pod.ip].append(Allow(policy.key, peers=peers, ports=ports))


def _egress_rule(compiled: Compiled, cluster: _Cluster, policy: Policy, index: int, rule: Rule,
                 selected: Sequence[PodInfo], per_pod: dict[str, list[Allow]]) -> None:
    peers, peer_pods, blocks = _peer_set(compiled, cluster, policy, index, rule, "to")
    allows: list[Allow] = []
    if rule.ports is None:
        allows.append(Allow(policy.key, peers=peers))
    else:
        ports = _numeric_ports(rule.ports, None)
        if ports:
            allows.append(Allow(policy.key, peers=peers, ports=ports))
        named = [spec for spec in rule.ports if spec.named]
        if named:
            # Named ports are the destination pod's: list (pod IP, protocol, port) of
            # every peer pod (and pod inside an ipBlock) that has one of them.
            if rule.peers is None:
                candidates = cluster.pods
            else:
                candidates = peer_pods + [pod for pod in cluster.pods if any(
                    ipaddress.IPv4Address(pod.ip) in block for block in blocks)]
            elements = set()
            for pod in candidates:
                for spec in named:
                    number = pod.named_port(str(spec.port), spec.protocol)
                    if number is not None:
                        elements.add((pod.ip, NFT_PROTOCOLS[spec.protocol], number))
            name = set_name("to", policy.key, index, "/named")
            compiled.destination_sets[name] = tuple(sorted(elements))
            allows.append(Allow(policy.key, destinations=name))
    for pod in selected:
        per_pod[pod.ip].extend(allows)
