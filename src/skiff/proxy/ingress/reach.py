"""Which endpoint addresses the proxy may dial: only those this host routes itself.

The proxy connects to pod addresses directly. On a real node they are routed
through the cluster bridge; simulated pods (``skiff up --runtime fake``) have
addresses nothing on this host routes, and a connection to one would follow the
default route out of the machine — which skiff never lets cluster traffic do. So
an address is dialled only when it is

* a loopback address, or
* covered by a route of the main table that is not the default route and not a
  blackhole/unreachable/prohibit route (the cluster bridge's 10.244.0.0/16, a
  directly attached LAN, ...).

Anything else counts as an endpoint that is not there (the proxy answers 503).
The routes are read with ``ip -j route show table main`` (IPv4 and IPv6), again
at most every ``max_age`` seconds while an address is refused, so routes a node
adds after start (its bridge) are picked up::

    allows(ip) ── loopback ─▶ yes
               └─ covered by the cached routes? ─ yes ─▶ yes
                     │ no, and the cache is older than max_age
                     ▼
                  re-read the routes, ask again
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Reads the main routing table: a list of ``ip -j route`` entries (``dst``, ``type``, ...).
RouteReader = Callable[[], Awaitable[list[dict[str, Any]]]]
NOT_FORWARDING = ("blackhole", "unreachable", "prohibit", "throw")


async def read_main_routes() -> list[dict[str, Any]]:
    """This namespace's IPv4 and IPv6 main-table routes (``[]`` when ``ip`` fails)."""
    routes: list[dict[str, Any]] = []
    for family in ("-4", "-6"):
        try:
            process = await asyncio.create_subprocess_exec(
                "ip", "-j", family, "route", "show", "table", "main",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
            out, _ = await process.communicate()
        except OSError as error:
            log.warning("ingress: can not read the routes (%s); only loopback endpoints are dialled", error)
            return []
        if process.returncode == 0 and out.strip():
            routes += json.loads(out)
    return routes


def local_networks(routes: list[dict[str, Any]]) -> list[Network]:
    """The destinations of the routes that keep traffic on this host's own links."""
    networks: list[Network] = []
    for route in routes:
        destination = str(route.get("dst", ""))
        if destination in ("", "default") or route.get("type") in NOT_FORWARDING:
            continue
        try:
            networks.append(ipaddress.ip_network(destination, strict=False))
        except ValueError:
            continue
    return networks


class LocalRoutes:
    """Answers "may the proxy dial this address?" (see module docstring)."""

    def __init__(self, read_routes: RouteReader = read_main_routes, *, max_age: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read_routes = read_routes
        self._max_age = max_age
        self._clock = clock
        self._networks: list[Network] | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if ip.is_loopback:
            return True
        if self._networks is not None and self._covered(ip):
            return True
        if self._networks is None or self._clock() - self._read_at >= self._max_age:
            async with self._lock:
                if self._networks is None or self._clock() - self._read_at >= self._max_age:
                    self._networks = local_networks(await self._read_routes())
                    self._read_at = self._clock()
        return self._covered(ip)

    def _covered(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip.version == network.version and ip in network for network in self._networks or ())
