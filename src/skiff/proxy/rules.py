"""The nftables objects one Service port needs (a pure function of the port).

A :class:`Program` is what a Service adds to the proxy's table: chains with their
rules, per-endpoint affinity sets, and elements of the shared dispatch maps (see
.table for the fixed part they plug into)::

    service-ips      10.96.0.20 . tcp . 80   : goto svc-ns/web/tcp/http       ClusterIP
                     192.0.2.10 . tcp . 80   : goto ext-ns/web/tcp/http       LB / external IP
    service-nodeports       tcp . 30080      : goto ext-ns/web/tcp/http       NodePort
    no-endpoint-services / no-endpoint-nodeports: the same keys → reject | drop,
                     for ports that have nowhere to send traffic

    chain svc-ns/web/tcp/http                 the cluster's endpoints
        ip daddr 10.96.0.20 ip saddr != <cluster CIDR> jump mark-for-masquerade
        meta l4proto tcp dnat to numgen random mod 3 map { 0 : 10.244.0.5 . 8080, 1 : ... }
    chain local-ns/web/tcp/http               this node's endpoints (traffic policy Local)
    chain ext-ns/web/tcp/http                 NodePort / LB / external IP traffic
        policy Cluster:  jump mark-for-masquerade; goto svc-…
        policy Local:    pods and the node itself → svc-… (masqueraded when from the node);
                         everyone else → local-… (client IP kept), or drop if none here

Random load balancing is one rule: ``numgen random`` picks an index and the map
turns it into the endpoint's address and port. With ClientIP session affinity
each endpoint gets kube-proxy's shape instead, a chain and a set of the clients
it served, each remembered for the affinity timeout after its last connection::

    chain svc-…   ip saddr @affinity-…__10.244.0.5/8080 goto ep-…__10.244.0.5/8080   (per endpoint)
                  numgen random mod 3 vmap { 0 : goto ep-…__10.244.0.5/8080, ... }
    chain ep-…__10.244.0.5/8080
                  update @affinity-…__10.244.0.5/8080 { ip saddr timeout 10800s }
                  meta l4proto tcp dnat to 10.244.0.5:8080

Why not an endpoint chain for every Service: measured here, 1,000 Services × 10
endpoints as 11,000 chains took nft 1.1–1.6 s to load and 50–60 ms for any later
small change (nft reads the whole table first); as 1,000 chains with DNAT maps,
0.4–0.65 s and 10–20 ms.

Drop or reject (as kube-proxy): a port with no usable endpoint at all rejects
(TCP reset / ICMP port unreachable, at once); one whose traffic policy is Local
while its endpoints are all on other nodes drops. Hairpin traffic (a pod reaching
itself through its Service) is masqueraded via the table's ``hairpin`` set of
``ip . ip`` pairs, filled from :attr:`Program.local_ips`: only endpoints on this
node can be the client too (a node has at most a few hundred pods, and every
element in the ruleset makes each later ``nft`` run slower).

Names: chains and sets are named after the port's ``ns/name/proto/port`` (all
DNS labels, so valid nft identifiers; anything else is refused).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .serviceports import Endpoint, ServicePort

REJECT = "goto reject-service"
DROP = "drop"
MARK_FOR_MASQUERADE = "mark-for-masquerade"
_NAME = re.compile(r"^[a-z0-9][a-z0-9./_-]*$")


@dataclass
class Program:
    """The nft objects of one or more Service ports (merge with :meth:`add`)."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sets: set[str] = field(default_factory=set)                 # affinity sets
    service_ips: dict[str, str] = field(default_factory=dict)   # "ip . proto . port" → verdict
    nodeports: dict[str, str] = field(default_factory=dict)     # "proto . port" → verdict
    no_endpoint_ips: dict[str, str] = field(default_factory=dict)
    no_endpoint_nodeports: dict[str, str] = field(default_factory=dict)
    local_ips: set[str] = field(default_factory=set)      # this node's endpoints (hairpin)
    #: What the cluster chain sends to, per port id (for callers and tests to read).
    endpoints: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def add(self, other: Program) -> None:
        self.chains.update(other.chains)
        self.sets |= other.sets
        self.service_ips.update(other.service_ips)
        self.nodeports.update(other.nodeports)
        self.no_endpoint_ips.update(other.no_endpoint_ips)
        self.no_endpoint_nodeports.update(other.no_endpoint_nodeports)
        self.local_ips |= other.local_ips
        self.endpoints.update(other.endpoints)

    def maps(self) -> dict[str, dict[str, str]]:
        """The map elements, by map name (see .table)."""
        return {"service-ips": self.service_ips, "service-nodeports": self.nodeports,
                "no-endpoint-services": self.no_endpoint_ips,
                "no-endpoint-nodeports": self.no_endpoint_nodeports}


def port_program(port: ServicePort, *, node_name: str, cluster_cidr: str) -> Program:
    """The chains, sets and map elements for one Service port."""
    ident = port.id
    if not _NAME.match(ident) or len(ident) > 180:
        raise ValueError(f"service port {ident!r} does not make a valid nft name")
    program = Program()
    cluster = port.cluster_endpoints()
    local = port.local_endpoints(node_name)
    reachable = {e.address for e in cluster} | {e.address for e in local}
    program.endpoints[ident] = tuple(e.address for e in cluster)
    proto = port.protocol
    cluster_key = f"{port.cluster_ip} . {proto} . {port.port}"
    external_keys = [f"{ip} . {proto} . {port.port}" for ip in port.external_ips]
    nodeport_key = f"{proto} . {port.node_port}" if port.node_port else None
    if not reachable:
        program.no_endpoint_ips[cluster_key] = REJECT
        for key in external_keys:
            program.no_endpoint_ips[key] = REJECT
        if nodeport_key:
            program.no_endpoint_nodeports[nodeport_key] = REJECT
        return program

    masquerade_outsiders = (f"ip daddr {port.cluster_ip} ip saddr != {cluster_cidr} "
                            f"jump {MARK_FOR_MASQUERADE}")
    svc_chain = f"svc-{ident}"
    program.chains[svc_chain] = (masquerade_outsiders, *_pick(program, port, cluster))
    local_chain = f"local-{ident}"
    if local and (port.internal_local or port.external_local):
        program.chains[local_chain] = (masquerade_outsiders, *_pick(program, port, local))
    program.local_ips = {e.ip for e in (*cluster, *local) if e.node_name == node_name}

    if not port.internal_local:
        program.service_ips[cluster_key] = f"goto {svc_chain}"
    elif local:
        program.service_ips[cluster_key] = f"goto {local_chain}"
    else:
        program.no_endpoint_ips[cluster_key] = DROP

    if external_keys or nodeport_key:
        ext_chain = f"ext-{ident}"
        if not port.external_local:
            rules: tuple[str, ...] = (f"jump {MARK_FOR_MASQUERADE}", f"goto {svc_chain}")
        else:
            rules = (f"ip saddr {cluster_cidr} goto {svc_chain}",
                     f"fib saddr type local jump {MARK_FOR_MASQUERADE}",
                     f"fib saddr type local goto {svc_chain}",
                     f"goto {local_chain}" if local else DROP)
        program.chains[ext_chain] = rules
        for key in external_keys:
            program.service_ips[key] = f"goto {ext_chain}"
        if nodeport_key:
            program.nodeports[nodeport_key] = f"goto {ext_chain}"
    return program


def _pick(program: Program, port: ServicePort, endpoints: Sequence[Endpoint]) -> list[str]:
    """Rules choosing one of ``endpoints`` and DNATing to it (affinity chains/sets added
    to ``program`` as a side effect)."""
    proto = port.protocol
    if port.affinity_timeout is None:
        if len(endpoints) == 1:
            return [f"meta l4proto {proto} dnat to {endpoints[0].address}"]
        choices = ", ".join(f"{i} : {e.ip} . {e.port}" for i, e in enumerate(endpoints))
        return [f"meta l4proto {proto} dnat to numgen random mod {len(endpoints)} map {{ {choices} }}"]
    rules = []
    targets = []
    for endpoint in endpoints:
        suffix = f"{port.id}__{endpoint.ip}/{endpoint.port}"
        chain, affinity = f"ep-{suffix}", f"affinity-{suffix}"
        program.sets.add(affinity)
        program.chains[chain] = (f"update @{affinity} {{ ip saddr timeout {port.affinity_timeout}s }}",
                                 f"meta l4proto {proto} dnat to {endpoint.address}")
        rules.append(f"ip saddr @{affinity} goto {chain}")
        targets.append(chain)
    choices = ", ".join(f"{i} : goto {chain}" for i, chain in enumerate(targets))
    rules.append(f"numgen random mod {len(targets)} vmap {{ {choices} }}")
    return rules


def service_program(ports: Iterable[ServicePort], *, node_name: str, cluster_cidr: str) -> Program:
    """Every port of one Service, merged (``cluster_cidr`` is trusted: checked by the caller)."""
    program = Program()
    for port in ports:
        program.add(port_program(port, node_name=node_name, cluster_cidr=cluster_cidr))
    return program
