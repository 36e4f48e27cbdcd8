"""Where the API server itself may connect, and how it finds a Service's backend.

The API server opens connections of its own for ``pods|services|nodes/proxy`` and
for admission webhooks.  By the project's safety rules nothing may leave the
machine, so it connects only to:

* a loopback address (``127.0.0.0/8``, ``::1``, ``localhost``), or
* a pod's IP, when that pod's status says so and the IP lies inside its node's pod
  CIDR (pod networks are namespaces skiff made).

Anything else is refused with 400 ``address not allowed: <ip>``.

::

    service_backend(get, namespace, name, port)  -> (pod IP, target port) of a random
                                                    ready endpoint of that Service port
    check_pod_address(get, ip, pod)              -> None, or 400 address not allowed

``get(plural, namespace, name)`` reads a core object (raising NotFound).
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any, Awaitable, Callable

from ..api.errors import StatusError, bad_request

Obj = dict[str, Any]
Getter = Callable[[str, str, str], Awaitable[Obj]]


def no_endpoints(name: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", f"no endpoints available for service \"{name}\"")


async def service_backend(get: Getter, namespace: str, name: str, port: str) -> tuple[str, int]:
    """A random ready endpoint of Service ``namespace/name``'s port (by name or number; ""
    when the Service has exactly one port), checked against the safety rules."""
    service = await get("services", namespace, name)
    ports = (service.get("spec") or {}).get("ports") or []
    wanted = next((p for p in ports if port and (str(p.get("name", "")) == port or str(p.get("port")) == port)),
                  ports[0] if not port and len(ports) == 1 else None)
    if wanted is None:
        raise no_endpoints(name)
    try:
        endpoints = await get("endpoints", namespace, name)
    except StatusError:
        endpoints = {}
    candidates = []
    for subset in endpoints.get("subsets") or []:
        number = next((int(p["port"]) for p in subset.get("ports") or []
                       if str(p.get("name", "")) == str(wanted.get("name", ""))), None)
        if number is not None:
            candidates += [(a, number) for a in subset.get("addresses") or []]
    if not candidates:
        raise no_endpoints(name)
    address, number = random.choice(candidates)
    ref = address.get("targetRef") or {}
    if ref.get("kind") != "Pod":
        raise bad_request(f"address not allowed: {address.get('ip')} is not a pod's")
    pod = await get("pods", str(ref.get("namespace") or namespace), str(ref.get("name", "")))
    await check_pod_address(get, str(address.get("ip", "")), pod)
    return str(address["ip"]), number


async def check_pod_address(get: Getter, ip: str, pod: Obj) -> None:
    """``ip`` is loopback, or ``pod``'s IP inside its node's pod CIDR; else 400."""
    if is_loopback(ip):
        return
    node_name = str((pod.get("spec") or {}).get("nodeName") or "")
    if pod.get("status", {}).get("podIP") == ip and node_name:
        try:
            node = await get("nodes", "", node_name)
        except StatusError:
            node = {}
        cidrs = [*((node.get("spec") or {}).get("podCIDRs") or []), (node.get("spec") or {}).get("podCIDR")]
        if any(c and _within(ip, str(c)) for c in cidrs):
            return
    raise bad_request(f"address not allowed: {ip}")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _within(ip: str, cidr: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
