"""The proxy's nftables table: its fixed skeleton, a whole-table rewrite, and the
incremental transaction between two versions of some Services' programs.

One table per node namespace, ``table ip skiff-proxy-<node>``, and nothing else
is ever touched. Its fixed part (the per-Service parts come from .rules)::

    maps     service-ips            ip . proto . port → goto svc-/ext- chain
             service-nodeports      proto . port      → goto ext- chain
             no-endpoint-services   ip . proto . port → goto reject-service | drop
             no-endpoint-nodeports  proto . port      → goto reject-service | drop
    sets     hairpin                endpoint ip . same ip (a pod reaching itself)
             nodeport-ips           only when NodePorts are limited to given addresses

    nat, prerouting (dstnat) and output (-100):  jump services
        services:   ip daddr . meta l4proto . th dport vmap @service-ips
                    fib daddr type local meta l4proto . th dport vmap @service-nodeports
    nat, postrouting (srcnat):
        ct status dnat ip saddr . ip daddr @hairpin jump mark-for-masquerade
        jump masquerading         marked packets: clear the mark, masquerade

    filter, input / forward / output, priority -110, new connections only:
        jump endpoints-check      the no-endpoint maps (output: before DNAT)
    filter, forward (-110) and output (-90, after DNAT):
        ip daddr <service CIDR> goto reject-service
                                  a service address nothing translated: unknown port,
                                  deleted Service, no endpoints: refused at once, so
                                  nothing for a cluster IP ever leaves the node

NodePorts answer on every local address, 127.0.0.1 included: DNAT from the
output hook re-routes a loopback-sourced packet to the bridge, which the bridge's
``route_localnet`` allows, and the masquerade mark gives it the bridge's address
on the way out so the pod can answer.

Writing: a full sync replaces the table in one transaction (``table``; ``delete
table``; the whole table), so a restarted proxy never leaves a half state and
never disturbs other tables. An incremental sync is one transaction too, in an
order the kernel accepts: new sets and chains, chain contents (flush, add rules),
map elements (delete, then add), then the chains and sets nothing refers to any more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .rules import Program

#: The packet mark bit asking for masquerade (kube-proxy's value).
MASQUERADE_MARK = 0x4000
MAP_TYPES = {
    "service-ips": "ipv4_addr . inet_proto . inet_service : verdict",
    "service-nodeports": "inet_proto . inet_service : verdict",
    "no-endpoint-services": "ipv4_addr . inet_proto . inet_service : verdict",
    "no-endpoint-nodeports": "inet_proto . inet_service : verdict",
}


@dataclass(frozen=True)
class TableSpec:
    """What the fixed part of the table depends on."""

    name: str                                   # e.g. skiff-proxy-node-a
    service_cidr: str
    node_ips: tuple[str, ...] | None = None     # None: NodePorts on every local address
    comment: str = "skiff service proxy"


@dataclass
class Changes:
    """What one incremental transaction does, for callers that want to know."""

    chains_written: int = 0
    chains_deleted: int = 0
    elements: int = 0
    text: str = field(default="", repr=False)


def _nodeport_match(spec: TableSpec) -> str:
    return "fib daddr type local" if spec.node_ips is None else "ip daddr @nodeport-ips"


def skeleton(spec: TableSpec) -> list[str]:
    """The fixed objects, as lines inside ``table ip <name> { … }``."""
    mark = f"0x{MASQUERADE_MARK:x}"
    lines = [f'comment "{spec.comment}"']
    for name, kind in MAP_TYPES.items():
        lines += [f"map {name} {{", f"type {kind}", "}"]
    lines += ["set hairpin {", "type ipv4_addr . ipv4_addr", "}"]
    if spec.node_ips is not None:
        elements = f"elements = {{ {', '.join(spec.node_ips)} }}" if spec.node_ips else ""
        lines += ["set nodeport-ips {", "type ipv4_addr", *([elements] if elements else []), "}"]
    nodeport = _nodeport_match(spec)
    chains: dict[str, list[str]] = {
        "mark-for-masquerade": [f"meta mark set meta mark | {mark}"],
        "masquerading": [f"meta mark & {mark} == 0 return",
                         f"meta mark set meta mark ^ {mark}",
                         "masquerade fully-random"],
        "reject-service": ["meta l4proto tcp reject with tcp reset", "reject"],
        "services": ["ip daddr . meta l4proto . th dport vmap @service-ips",
                     f"{nodeport} meta l4proto . th dport vmap @service-nodeports"],
        "endpoints-check": ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
                            f"{nodeport} meta l4proto . th dport vmap @no-endpoint-nodeports"],
        "nat-prerouting": ["type nat hook prerouting priority dstnat; policy accept;",
                           "jump services"],
        "nat-output": ["type nat hook output priority -100; policy accept;", "jump services"],
        "nat-postrouting": ["type nat hook postrouting priority srcnat; policy accept;",
                            "ct status dnat ip saddr . ip daddr @hairpin jump mark-for-masquerade",
                            "jump masquerading"],
        "filter-input": ["type filter hook input priority -110; policy accept;",
                         "ct state new ct status ! dnat jump endpoints-check"],
        "filter-forward": ["type filter hook forward priority -110; policy accept;",
                           "ct state new jump endpoints-check",
                           f"ct state new ip daddr {spec.service_cidr} goto reject-service"],
        "filter-output": ["type filter hook output priority -110; policy accept;",
                          "ct state new jump endpoints-check"],
        "filter-output-post-dnat": ["type filter hook output priority -90; policy accept;",
                                    f"ct state new ip daddr {spec.service_cidr} goto reject-service"],
    }
    for name, rules in chains.items():
        lines += [f"chain {name} {{", *rules, "}"]
    return lines


def hairpin_element(ip: str) -> str:
    return f"{ip} . {ip}"


def full_text(spec: TableSpec, programs: Iterable[Program], hairpin_ips: Iterable[str]) -> str:
    """Replace the whole table (created first if absent, so the delete never fails)."""
    table = f"ip {spec.name}"
    lines = [f"table {table}", f"delete table {table}", f"table {table} {{", *skeleton(spec)]
    maps: dict[str, dict[str, str]] = {name: {} for name in MAP_TYPES}
    sets: list[str] = []
    for program in programs:
        sets += program.sets
        for name, rules in program.chains.items():
            lines += [f"chain {name} {{", *rules, "}"]
        for name, elements in program.maps().items():
            maps[name].update(elements)
    lines += [f"set {name} {{\ntype ipv4_addr\nflags dynamic,timeout\n}}" for name in sorted(sets)]
    lines.append("}")
    for name, elements in maps.items():
        lines += _add_elements(table, name, elements)
    lines += _add_elements(table, "hairpin", {hairpin_element(ip): "" for ip in sorted(hairpin_ips)})
    return "\n".join(lines) + "\n"


def _add_elements(table: str, name: str, elements: Mapping[str, str], chunk: int = 2000) -> list[str]:
    items = [f"{key} : {value}" if value else key for key, value in elements.items()]
    return [f"add element {table} {name} {{ {', '.join(items[i:i + chunk])} }}"
            for i in range(0, len(items), chunk)]


def _delete_elements(table: str, name: str, keys: Sequence[str], chunk: int = 2000) -> list[str]:
    return [f"delete element {table} {name} {{ {', '.join(keys[i:i + chunk])} }}"
            for i in range(0, len(keys), chunk)]


def transaction(spec: TableSpec, old: Program, new: Program,
                hairpin_added: Sequence[str] = (), hairpin_removed: Sequence[str] = ()) -> Changes:
    """The commands turning ``old`` into ``new`` (both may be partial: some Services)."""
    table = f"ip {spec.name}"
    changes = Changes()
    lines = [f"add set {table} {name} {{ type ipv4_addr; flags dynamic,timeout; }}"
             for name in sorted(new.sets - old.sets)]
    lines += [f"add chain {table} {name}" for name in new.chains if name not in old.chains]
    for name, rules in new.chains.items():
        previous = old.chains.get(name)
        if previous == rules:
            continue
        if previous is not None:
            lines.append(f"flush chain {table} {name}")
        lines += [f"add rule {table} {name} {rule}" for rule in rules]
        changes.chains_written += 1
    new_maps = new.maps()
    for name, before in old.maps().items():
        after = new_maps[name]
        gone = [key for key, value in before.items() if after.get(key) != value]
        came = {key: value for key, value in after.items() if before.get(key) != value}
        lines += _delete_elements(table, name, gone)
        lines += _add_elements(table, name, came)
        changes.elements += len(gone) + len(came)
    for name, after in new_maps.items():
        if name not in old.maps():
            lines += _add_elements(table, name, after)
    lines += _add_elements(table, "hairpin", {hairpin_element(ip): "" for ip in hairpin_added})
    lines += _delete_elements(table, "hairpin", [hairpin_element(ip) for ip in hairpin_removed])
    changes.elements += len(hairpin_added) + len(hairpin_removed)
    removed = [name for name in old.chains if name not in new.chains]
    lines += [f"flush chain {table} {name}" for name in removed]
    lines += [f"delete chain {table} {name}" for name in removed]
    lines += [f"delete set {table} {name}" for name in sorted(old.sets - new.sets)]
    changes.chains_deleted = len(removed)
    changes.text = "\n".join(lines) + "\n" if lines else ""
    return changes


def delete_text(spec: TableSpec) -> str:
    """Remove the table (absent is fine)."""
    return f"table ip {spec.name}\ndelete table ip {spec.name}\n"
