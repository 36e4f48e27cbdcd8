"""The agent's nftables table: compiled policy as nft objects, written whole or as the
difference between two versions — one transaction either way.

One table per node bridge, ``table inet skiff-netpol-<bridge>``, and nothing else
is ever touched::

    map ingress-pods    pod IP : jump ingress-<pod IP>    (pods isolated for ingress)
    map egress-pods     pod IP : jump egress-<pod IP>     (pods isolated for egress)
    set from-<ns>/<policy>/<i>      peers of an ingress rule  (ipv4_addr, intervals)
    set to-<ns>/<policy>/<i>        peers of an egress rule
    set to-<ns>/<policy>/<i>/named  pod IP . protocol . port  (egress named ports)
    counters ingress-denied, egress-denied

    chain forward   (hook forward, priority filter; policy accept)
        ct state established,related accept     replies of allowed connections
        ip saddr vmap @egress-pods              the sender's egress rules (return = allowed)
        ip daddr vmap @ingress-pods             the receiver's ingress rules

    chain egress-10.244.0.5                     chain ingress-10.244.0.7
        ip daddr 10.244.0.5 return                  ip saddr 10.244.0.7 accept     itself
        ip daddr @to-ns/p/0 meta l4proto tcp        ip saddr @from-ns/q/0 meta l4proto tcp
            th dport 5432 return                        th dport 8080 accept
        counter name egress-denied                  counter name ingress-denied
            reject with icmpx admin-prohibited          reject with icmpx admin-prohibited

Why the ``forward`` hook of an ``inet`` table: a pod's packets to another pod of the
same node are *bridged*, and the node bridge has ``nf_call_iptables`` on (it needs
it for Service DNAT between pods of one node), so br_netfilter hands them to the IP
hooks; packets to and from other nodes are routed. Either way they pass the IP
forward hook, after ``prerouting`` — so after the proxy's DNAT: policy sees the pod
IP a Service address was translated to, as in Kubernetes. (A ``bridge`` family
table would see bridged packets only, not those routed in from other nodes.)
Packets the node itself sends or receives (kubelet probes, the DNS server on the
gateway) take the output and input hooks and are never filtered here.

Denied packets are rejected (ICMP admin-prohibited: a connect fails at once with
"no route to host") rather than silently dropped, and counted.

Writing, as the proxy does (.proxy.table): a full sync replaces the table in one
transaction; an incremental one adds new sets and chains, changes set elements one by
one, refills changed chains, updates the two maps, then deletes what nothing
refers to any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .compiler import Allow, Compiled, PodRules
from .policy import EGRESS, INGRESS

INGRESS_MAP, EGRESS_MAP = "ingress-pods", "egress-pods"
INGRESS_COUNTER, EGRESS_COUNTER = "ingress-denied", "egress-denied"
PEER_SET_TYPE = "type ipv4_addr; flags interval;"
DESTINATION_SET_TYPE = "type ipv4_addr . inet_proto . inet_service;"
REJECT = "reject with icmpx admin-prohibited"


def default_table_name(bridge: str) -> str:
    return f"skiff-netpol-{bridge}"


@dataclass(frozen=True)
class NftSet:
    kind: str                              # PEER_SET_TYPE or DESTINATION_SET_TYPE
    elements: tuple[str, ...]


@dataclass
class Ruleset:
    """The variable part of the table, as nft text pieces."""

    sets: dict[str, NftSet] = field(default_factory=dict)
    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ingress: dict[str, str] = field(default_factory=dict)     # pod IP → chain
    egress: dict[str, str] = field(default_factory=dict)


def chain_name(direction: str, ip: str) -> str:
    return f"{'ingress' if direction == INGRESS else 'egress'}-{ip}"


def _ports_text(ranges: tuple[tuple[int, int], ...]) -> str:
    items = [str(first) if first == last else f"{first}-{last}" for first, last in ranges]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


def _comment(policy: str) -> str:
    return f'comment "{policy[:120]}"'


def allow_rules(direction: str, allow: Allow) -> list[str]:
    """The nft rules of one Allow (one per protocol when it names ports)."""
    verdict = "accept" if direction == INGRESS else "return"
    field_ = "saddr" if direction == INGRESS else "daddr"
    comment = _comment(allow.policy)
    if allow.destinations is not None:
        return [f"ip daddr . meta l4proto . th dport @{allow.destinations} {verdict} {comment}"]
    peers = f"ip {field_} @{allow.peers} " if allow.peers is not None else ""
    if allow.ports is None:
        return [f"{peers}{verdict} {comment}"]
    rules = []
    for ports in allow.ports:
        match = f"meta l4proto {ports.protocol}"
        if ports.ranges is not None:
            match += f" th dport {_ports_text(ports.ranges)}"
        rules.append(f"{peers}{match} {verdict} {comment}")
    return rules


def pod_chain(direction: str, rules: PodRules, allows: Iterable[Allow]) -> tuple[str, ...]:
    """A pod's chain for one direction: itself, its allows, then reject."""
    if direction == INGRESS:
        lines = [f"ip saddr {rules.ip} accept {_comment('the pod itself')}"]
    else:
        lines = [f"ip daddr {rules.ip} return {_comment('the pod itself')}"]
    for allow in allows:
        lines += allow_rules(direction, allow)
    counter = INGRESS_COUNTER if direction == INGRESS else EGRESS_COUNTER
    lines.append(f"counter name {counter} {REJECT} {_comment(rules.pod)}")
    return tuple(lines)


def build(compiled: Compiled) -> Ruleset:
    """The nft objects of ``compiled``."""
    ruleset = Ruleset()
    for name, networks in compiled.peer_sets.items():
        ruleset.sets[name] = NftSet(PEER_SET_TYPE, networks)
    for name, elements in compiled.destination_sets.items():
        ruleset.sets[name] = NftSet(DESTINATION_SET_TYPE,
                                    tuple(f"{ip} . {proto} . {port}" for ip, proto, port in elements))
    for ip, rules in compiled.pods.items():
        for direction, by_ip in ((INGRESS, ruleset.ingress), (EGRESS, ruleset.egress)):
            allows = rules.allows(direction)
            if allows is not None:
                name = chain_name(direction, ip)
                ruleset.chains[name] = pod_chain(direction, rules, allows)
                by_ip[ip] = name
    return ruleset


def _elements(items: Iterable[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _map_elements(by_ip: dict[str, str]) -> str:
    return _elements(f"{ip} : jump {chain}" for ip, chain in sorted(by_ip.items()))


def full_text(table: str, ruleset: Ruleset, comment: str) -> str:
    """Replace the whole table (absent or not) in one transaction."""
    lines = [f"table inet {table}", f"delete table inet {table}", f"table inet {table} {{",
             f'\tcomment "{comment[:120]}"',
             f"\tcounter {INGRESS_COUNTER} {{ }}", f"\tcounter {EGRESS_COUNTER} {{ }}"]
    for name, by_ip in ((INGRESS_MAP, ruleset.ingress), (EGRESS_MAP, ruleset.egress)):
        elements = f" elements = {_map_elements(by_ip)};" if by_ip else ""
        lines.append(f"\tmap {name} {{ type ipv4_addr : verdict;{elements} }}")
    for name, nft_set in sorted(ruleset.sets.items()):
        elements = f" elements = {_elements(nft_set.elements)};" if nft_set.elements else ""
        lines.append(f"\tset {name} {{ {nft_set.kind}{elements} }}")
    for name, rules in sorted(ruleset.chains.items()):
        lines.append(f"\tchain {name} {{")
        lines += [f"\t\t{rule}" for rule in rules]
        lines.append("\t}")
    lines += ["\tchain forward {",
              "\t\ttype filter hook forward priority filter; policy accept;",
              "\t\tct state established,related accept",
              f"\t\tip saddr vmap @{EGRESS_MAP}",
              f"\t\tip daddr vmap @{INGRESS_MAP}",
              "\t}", "}"]
    return "\n".join(lines) + "\n"


def transaction(table: str, old: Ruleset, new: Ruleset) -> str:
    """The commands turning ``old`` (what is applied) into ``new``; "" when equal."""
    t = f"inet {table}"
    lines: list[str] = []
    for name, nft_set in sorted(new.sets.items()):
        if name not in old.sets:
            lines.append(f"add set {t} {name} {{ {nft_set.kind} }}")
    lines += [f"add chain {t} {name}" for name in sorted(new.chains) if name not in old.chains]
    for name, nft_set in sorted(new.sets.items()):
        before = old.sets.get(name)
        if before == nft_set:
            continue
        # Element by element: both versions are disjoint, so deleting what went
        # before adding what came never makes two elements overlap.
        previous = set(before.elements) if before is not None else set()
        wanted = set(nft_set.elements)
        removed = [element for element in before.elements if element not in wanted] if before else []
        added = [element for element in nft_set.elements if element not in previous]
        if removed:
            lines.append(f"delete element {t} {name} {_elements(removed)}")
        if added:
            lines.append(f"add element {t} {name} {_elements(added)}")
    for name, rules in sorted(new.chains.items()):
        before_rules = old.chains.get(name)
        if before_rules == rules:
            continue
        if before_rules is not None:
            lines.append(f"flush chain {t} {name}")
        lines += [f"add rule {t} {name} {rule}" for rule in rules]
    for map_name, before_map, after_map in ((INGRESS_MAP, old.ingress, new.ingress),
                                            (EGRESS_MAP, old.egress, new.egress)):
        gone = {ip for ip, chain in before_map.items() if after_map.get(ip) != chain}
        came = {ip: chain for ip, chain in after_map.items() if before_map.get(ip) != chain}
        if gone:
            lines.append(f"delete element {t} {map_name} {_elements(sorted(gone))}")
        if came:
            lines.append(f"add element {t} {map_name} {_map_elements(came)}")
    for name in sorted(set(old.chains) - set(new.chains)):
        lines += [f"flush chain {t} {name}", f"delete chain {t} {name}"]
    lines += [f"delete set {t} {name}" for name in sorted(set(old.sets) - set(new.sets))]
    return "\n".join(lines) + "\n" if lines else ""


def delete_text(table: str) -> str:
    """Remove the table (absent is fine)."""
    return f"table inet {table}\ndelete table inet {table}\n"

