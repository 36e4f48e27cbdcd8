"""Before the first rule: the node's namespace must keep cluster traffic at home.

The proxy DNATs Service traffic to pod IPs. If the namespace had no route for the
cluster CIDR, a translated packet would follow the default route out of the
machine; a ClusterIP without a rule would do the same without the service CIDR
route. So the proxy refuses to start until both CIDRs are covered by routes of
the main table that are not the default route (NodeNetwork.setup puts them on
the node bridge), and says which one is missing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Sequence
from pathlib import Path

NSENTER = "nsenter"


class RoutesMissing(Exception):
    """A cluster CIDR has no route of its own in the node's namespace."""


async def main_routes(netns: Path | None) -> list[dict[str, object]]:
    """``ip -j -4 route show table main`` in ``netns``."""
    prefix = [NSENTER, f"--net={netns}"] if netns is not None else []
    process = await asyncio.create_subprocess_exec(
        *prefix, "ip", "-j", "-4", "route", "show", "table", "main",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RoutesMissing(f"can not read the routes of {netns or 'this namespace'}: "
                            f"{err.decode(errors='replace').strip()}")
    routes: list[dict[str, object]] = json.loads(out or b"[]")
    return routes


def uncovered(routes: Sequence[dict[str, object]], cidrs: Sequence[str]) -> list[str]:
    """The CIDRs no non-default route covers."""
    networks = []
    for route in routes:
        destination = str(route.get("dst", ""))
        if destination in ("", "default") or route.get("type") in ("blackhole", "unreachable", "prohibit"):
            continue
        try:
            networks.append(ipaddress.IPv4Network(destination if "/" in destination else f"{destination}/32",
                                                  strict=False))
        except ValueError:
            continue
    return [cidr for cidr in cidrs
            if not any(ipaddress.IPv4Network(cidr).subnet_of(network) for network in networks)]


async def check_routes(netns: Path | None, cidrs: Sequence[str]) -> None:
    """Raise RoutesMissing unless every CIDR of ``cidrs`` is routed (see module docstring)."""
    missing = uncovered(await main_routes(netns), cidrs)
    if missing:
        raise RoutesMissing(
            f"the node namespace {netns or '(this one)'} has no route for {', '.join(missing)}: "
            "traffic for it would leave the machine; set up the node network first")
