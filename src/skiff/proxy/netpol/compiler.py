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

Peers become shared *sets* of IPv4 addresses and networks, one per rule, named after the policy
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

import bisect
import hashlib
import ipaddress
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ...api.selectors import LabelSelector
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

    #: Set name → elements: addresses ("10.244.0.5") and networks ("10.0.0.0/9"),
    #: disjoint, in address order.
    peer_sets: dict[str, tuple[str, ...]] = field(default_factory=dict)
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
            if allow.peers is not None and not any(address in ipaddress.IPv4Network(element)
                                                   for element in self.peer_sets[allow.peers]):
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


def _in_intervals(intervals: Sequence[tuple[int, int]], address: int) -> bool:
    """Is ``address`` inside one of the sorted, disjoint ``intervals``?"""
    index = bisect.bisect_right(intervals, (address, 2 ** 32)) - 1
    return index >= 0 and intervals[index][0] <= address <= intervals[index][1]


@dataclass(frozen=True)
class _Peers:
    """What the peers of one rule resolve to."""

    elements: tuple[str, ...]               # the peer set (see Compiled.peer_sets)
    pods: tuple[PodInfo, ...]               # pods named by selector peers
    blocks: tuple[tuple[int, int], ...]     # ipBlock addresses as sorted disjoint intervals

    def in_blocks(self, address: int) -> bool:
        return _in_intervals(self.blocks, address)


class _Cluster:
    """Pods and namespaces indexed for peer lookups, with the answers kept for the
    length of one compilation (many policies name the same peers)."""

    def __init__(self, pods: Iterable[PodInfo], namespaces: Mapping[str, Mapping[str, str]]) -> None:
        self.pods = list(pods)
        self.namespaces = namespaces
        self.by_namespace: dict[str, list[PodInfo]] = {}
        for pod in self.pods:
            self.by_namespace.setdefault(pod.namespace, []).append(pod)
        self._namespaces_of: dict[LabelSelector, list[str]] = {}
        self._pods_of: dict[tuple[Peer, str], list[PodInfo]] = {}
        self._peers_of: dict[tuple[tuple[Peer, ...], str], _Peers] = {}

    def _matching_namespaces(self, selector: LabelSelector) -> list[str]:
        found = self._namespaces_of.get(selector)
        if found is None:
            found = [name for name in self.by_namespace
                     if selector.matches(labels_of_namespace(self.namespaces, name))]
            self._namespaces_of[selector] = found
        return found

    def peer_pods(self, peer: Peer, policy_namespace: str) -> list[PodInfo]:
        """The pods a selector peer names (none for an ipBlock peer)."""
        if peer.block is not None or peer.ipv6:
            return []
        key = (peer, policy_namespace if peer.namespaces is None else "")
        found = self._pods_of.get(key)
        if found is None:
            names = ([policy_namespace] if peer.namespaces is None
                     else self._matching_namespaces(peer.namespaces))
            found = [pod for name in names for pod in self.by_namespace.get(name, ())
                     if peer.pods is None or peer.pods.matches(pod.label_map)]
            self._pods_of[key] = found
        return found

    def peers(self, peers: tuple[Peer, ...], policy_namespace: str) -> _Peers:
        """What a rule's peers resolve to: pods, ipBlocks, and the set of both."""
        key = (peers, policy_namespace)
        found = self._peers_of.get(key)
        if found is None:
            pods = [pod for peer in peers for pod in self.peer_pods(peer, policy_namespace)]
            networks = list(ipaddress.collapse_addresses(
                network for peer in peers if peer.block is not None for network in peer.block.networks()))
            blocks = tuple(sorted((int(n.network_address), int(n.broadcast_address)) for n in networks))
            # Blocks, and the pods outside them: disjoint elements, in address order.
            ordered = {int(n.network_address): _network_text(n) for n in networks}
            for pod in pods:
                if not _in_intervals(blocks, pod.address):
                    ordered[pod.address] = pod.ip
            found = _Peers(tuple(ordered[k] for k in sorted(ordered)), tuple(pods), blocks)
            self._peers_of[key] = found
        return found


def _network_text(network: IPv4Network) -> str:
    return str(network.network_address) if network.prefixlen == 32 else str(network)


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
              prefix: str) -> tuple[str | None, _Peers | None]:
    """Make the rule's peer set; (its name, what the peers are), (None, None) for "every address"."""
    if rule.peers is None:
        return None, None
    peers = cluster.peers(rule.peers, policy.namespace)
    name = set_name(prefix, policy.key, index)
    compiled.peer_sets[name] = peers.elements
    return name, peers


def _ingress_rule(compiled: Compiled, cluster: _Cluster, policy: Policy, index: int, rule: Rule,
                  selected: Sequence[PodInfo], per_pod: dict[str, list[Allow]]) -> None:
    name, _ = _peer_set(compiled, cluster, policy, index, rule, "from")
    if rule.ports is None:
        for pod in selected:
            per_pod[pod.ip].append(Allow(policy.key, peers=name))
        return
    named = any(spec.named for spec in rule.ports)
    shared = _numeric_ports(rule.ports, None)
    for pod in selected:
        ports = _numeric_ports(rule.ports, pod) if named else shared
        if ports:         # otherwise only named ports this pod does not have: nothing
            per_pod[pod.ip].append(Allow(policy.key, peers=name, ports=ports))


def _egress_rule(compiled: Compiled, cluster: _Cluster, policy: Policy, index: int, rule: Rule,
                 selected: Sequence[PodInfo], per_pod: dict[str, list[Allow]]) -> None:
    name, peers = _peer_set(compiled, cluster, policy, index, rule, "to")
    allows: list[Allow] = []
    if rule.ports is None:
        allows.append(Allow(policy.key, peers=name))
    else:
        ports = _numeric_ports(rule.ports, None)
        if ports:
            allows.append(Allow(policy.key, peers=name, ports=ports))
        named = [spec for spec in rule.ports if spec.named]
        if named:
            # Named ports are the destination pod's: list (pod IP, protocol, port) of
            # every peer pod (and pod inside an ipBlock) that has one of them.
            if peers is None:
                candidates: Iterable[PodInfo] = cluster.pods
            else:
                candidates = itertools.chain(peers.pods, (pod for pod in cluster.pods
                                                          if peers.blocks and peers.in_blocks(pod.address)))
            elements = set()
            for pod in candidates:
                for spec in named:
                    number = pod.named_port(str(spec.port), spec.protocol)
                    if number is not None:
                        elements.add((pod.ip, NFT_PROTOCOLS[spec.protocol], number))
            destinations = set_name("to", policy.key, index, "/named")
            compiled.destination_sets[destinations] = tuple(sorted(elements))
            allows.append(Allow(policy.key, destinations=destinations))
    for pod in selected:
        per_pod[pod.ip].extend(allows)
