"""A Service and its EndpointSlices as the proxy sees them: one :class:`ServicePort`
per ``spec.ports[]`` entry, with the endpoints that may receive its traffic.

::

    Service ns/web                      EndpointSlices labelled kubernetes.io/service-name=web
      clusterIP 10.96.0.20                ports [{name: http, port: 8080, protocol: TCP}]
      ports [{name: http, port: 80,       endpoints [{addresses: [10.244.0.5],
              targetPort: 8080,                       conditions: {ready, serving, terminating},
              nodePort: 30080}]                       nodeName: node-a}, ...]
      status.loadBalancer.ingress[].ip
                   │
                   ▼
    ServicePort ns/web/tcp/http: 10.96.0.20:80, nodePort 30080, external IPs,
                 affinity, traffic policies, endpoints [10.244.0.5:8080 (ready, node-a), ...]

An endpoint's port is the slice port with the service port's *name* and protocol
(``targetPort`` may be a named container port that differs from pod to pod, which
is why slices carry resolved numbers). The same address and port in two slices
counts once.

Which endpoints take traffic (as kube-proxy decides)::

    usable(E) = the ready endpoints of E, or, when none is ready, those that are
                serving and terminating (a rolling update's last replicas keep
                answering instead of the Service going dark)
    cluster endpoints = usable(all endpoints)
    local endpoints   = usable(endpoints whose nodeName is this node)

Unset conditions mean: ready -> true, serving -> the value of ready, terminating -> false.
Not programmed at all: ExternalName and headless Services, Services without a
ClusterIP, Services labelled ``service.kubernetes.io/service-proxy-name`` (they
belong to another proxy), IPv6 slices and addresses (the pod network is IPv4).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

Obj = dict[str, Any]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_PROXY_NAME = "service.kubernetes.io/service-proxy-name"
PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


class Endpoint(NamedTuple):
    """One address and port of a slice (a tuple: there are many of them)."""

    ip: str
    port: int
    node_name: str
    ready: bool
    serving: bool
    terminating: bool

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service, with everything the rules for it depend on."""

    namespace: str
    name: str
    port_name: str
    protocol: str                      # "tcp" | "udp" | "sctp" (nft spelling)
    port: int
    cluster_ip: str
    node_port: int | None
    external_ips: tuple[str, ...]      # spec.externalIPs + load-balancer ingress IPs
    affinity_timeout: int | None       # seconds, when sessionAffinity is ClientIP
    internal_local: bool               # internalTrafficPolicy: Local
    external_local: bool               # externalTrafficPolicy: Local
    endpoints: tuple[Endpoint, ...]

    @property
    def service_key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def id(self) -> str:
        """``ns/name/proto/port-name`` (the port number when the port has no name)."""
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name or self.port}"

    def cluster_endpoints(self) -> tuple[Endpoint, ...]:
        return usable(self.endpoints)

    def local_endpoints(self, node_name: str) -> tuple[Endpoint, ...]:
        return usable(e for e in self.endpoints if e.node_name == node_name)


def usable(endpoints: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    """The ready endpoints, else the serving-and-terminating ones (see module docstring)."""
    candidates = tuple(endpoints)
    ready = tuple(e for e in candidates if e.ready)
    if ready:
        return ready
    return tuple(e for e in candidates if e.serving and e.terminating)


def service_key_of_slice(slice_: Obj) -> str | None:
    """``ns/name`` of the Service an EndpointSlice belongs to (its service-name label)."""
    meta = slice_.get("metadata") or {}
    name = (meta.get("labels") or {}).get(LABEL_SERVICE_NAME)
    return f"{meta.get('namespace', '')}/{name}" if name else None


def is_proxied(service: Obj) -> bool:
    """Whether this proxy programs the Service at all (see module docstring)."""
    spec = service.get("spec") or {}
    labels = (service.get("metadata") or {}).get("labels") or {}
    if LABEL_PROXY_NAME in labels or spec.get("type") == "ExternalName":
        return False
    return _ipv4(spec.get("clusterIP")) is not None


def service_ports(service: Obj, slices: Iterable[Obj]) -> list[ServicePort]:
    """Every port of ``service`` with its endpoints from ``slices`` ([] when not proxied)."""
    if not is_proxied(service):
        return []
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    cluster_ip = _ipv4(spec.get("clusterIP"))
    assert cluster_ip is not None
    affinity = None
    if spec.get("sessionAffinity") == "ClientIP":
        timeout = (((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
                   .get("timeoutSeconds"))
        affinity = int(timeout) if timeout else 10800
    external = [ip for ip in (_ipv4(a) for a in spec.get("externalIPs") or []) if ip]
    if spec.get("type") == "LoadBalancer":
        for ingress in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            ip = _ipv4(ingress.get("ip"))
            # ipMode Proxy: the load balancer proxies itself, the node does not own the IP.
            if ip and ingress.get("ipMode", "VIP") == "VIP":
                external.append(ip)
    usable_slices = sorted((s for s in slices if s.get("addressType", "IPv4") == "IPv4"),
                           key=lambda s: str((s.get("metadata") or {}).get("name", "")))
    ports = []
    for port in spec.get("ports") or []:
        protocol = PROTOCOLS.get(str(port.get("protocol") or "TCP"))
        if protocol is None or not port.get("port"):
            continue
        node_port = port.get("nodePort") if spec.get("type") in ("NodePort", "LoadBalancer") else None
        ports.append(ServicePort(
            namespace=str(meta.get("namespace", "")), name=str(meta.get("name", "")),
            port_name=str(port.get("name") or ""), protocol=protocol, port=int(port["port"]),
            cluster_ip=cluster_ip, node_port=int(node_port) if node_port else None,
            external_ips=tuple(dict.fromkeys(external)), affinity_timeout=affinity,
            internal_local=spec.get("internalTrafficPolicy") == "Local",
            external_local=spec.get("externalTrafficPolicy") == "Local",
            endpoints=_endpoints_for(port, usable_slices)))
    return ports


def _endpoints_for(service_port: Obj, slices: list[Obj]) -> tuple[Endpoint, ...]:
    name = str(service_port.get("name") or "")
    protocol = str(service_port.get("protocol") or "TCP")
    found: dict[tuple[str, int], Endpoint] = {}
    for slice_ in slices:
        number = next((p.get("port") for p in slice_.get("ports") or []
                       if str(p.get("name") or "") == name
                       and str(p.get("protocol") or "TCP") == protocol), None)
        if not number:
            continue
        for endpoint in slice_.get("endpoints") or []:
            addresses = endpoint.get("addresses") or []
            ip = _ipv4(addresses[0]) if addresses else None
            if ip is None or (ip, int(number)) in found:
                continue
            conditions = endpoint.get("conditions") or {}
            ready = conditions.get("ready") is not False
            serving = conditions.get("serving")
            found[(ip, int(number))] = Endpoint(
                ip=ip, port=int(number), node_name=str(endpoint.get("nodeName") or ""),
                ready=ready, serving=ready if serving is None else bool(serving),
                terminating=bool(conditions.get("terminating")))
    return tuple(found.values())


def _ipv4(value: Any) -> str | None:
    """``value`` as a canonical dotted quad, or None (this runs for every endpoint:
    the C parser, not :mod:`ipaddress`)."""
    if not isinstance(value, str):
        return None
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, value))
    except OSError:
        return None
