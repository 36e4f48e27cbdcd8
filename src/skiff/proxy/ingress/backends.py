"""A Service backend → the pod addresses to proxy to, and round-robin over them.

Like ingress-nginx, the proxy skips the Service's virtual IP and connects to the
endpoints themselves, read from the Service's EndpointSlices::

    BackendRef(ns, name, port: 80 | "http")
        │ Service ns/name: the spec.ports entry whose port == 80 (or name == "http")
        ▼
    that port's name ("" when unnamed) ──▶ in every EndpointSlice labelled
        kubernetes.io/service-name=name: the slice port with that name
        ▼
    (address, slice port) for each endpoint whose conditions.ready is not false

Nothing here does I/O: the controller hands in the cached Service and slices.
An empty answer (no such Service or port, an ExternalName Service, no ready
endpoint) makes the proxy answer 503.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from .routes import BackendRef

Obj = dict[str, Any]
Address = tuple[str, int]


def service_port(service: Obj, port: int | str) -> Obj | None:
    """The Service's ``spec.ports`` entry an Ingress backend names (number or name)."""
    for entry in (service.get("spec") or {}).get("ports") or []:
        if (entry.get("protocol") or "TCP") != "TCP":
            continue
        if isinstance(port, int) and entry.get("port") == port:
            return dict(entry)
        if isinstance(port, str) and port and entry.get("name") == port:
            return dict(entry)
    return None


def ready_endpoints(service: Obj | None, slices: Iterable[Obj], port: int | str) -> list[Address]:
    """The ready ``(address, port)`` pairs behind a Service port, sorted (see module docstring)."""
    if service is None or (service.get("spec") or {}).get("type") == "ExternalName":
        return []
    wanted = service_port(service, port)
    if wanted is None:
        return []
    name = str(wanted.get("name") or "")
    found: set[Address] = set()
    for endpoint_slice in slices:
        if endpoint_slice.get("addressType") not in ("IPv4", "IPv6"):
            continue
        number = next((p.get("port") for p in endpoint_slice.get("ports") or []
                       if str(p.get("name") or "") == name and (p.get("protocol") or "TCP") == "TCP"),
                      None)
        if not number:
            continue
        for endpoint in endpoint_slice.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            for address in endpoint.get("addresses") or []:
                found.add((str(address), int(number)))
    return sorted(found)


def host_port(address: Address) -> str:
    """``10.0.0.1:80`` or ``[fd00::1]:80``, as a URL wants it."""
    ip, port = address
    try:
        bracketed = isinstance(ipaddress.ip_address(ip), ipaddress.IPv6Address)
    except ValueError:
        bracketed = False
    return f"[{ip}]:{port}" if bracketed else f"{ip}:{port}"


class RoundRobin:
    """Hands out each backend's endpoints in turn (one counter per backend)."""

    def __init__(self) -> None:
        self._next: dict[BackendRef, int] = {}

    def order(self, backend: BackendRef, endpoints: Sequence[Address]) -> list[Address]:
        """All endpoints, starting at this backend's turn: the first is the pick, the
        rest are the ones to retry when it refuses the connection."""
        if not endpoints:
            return []
        start = self._next.get(backend, 0) % len(endpoints)
        self._next[backend] = start + 1
        return [*endpoints[start:], *endpoints[:start]]

    def forget_all_but(self, backends: Iterable[BackendRef]) -> None:
        """Drop the counters of backends no route names any more."""
        keep = set(backends)
        for backend in [b for b in self._next if b not in keep]:
            del self._next[backend]
