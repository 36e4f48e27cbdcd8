"""The node bridge: one Linux bridge per node that every pod's veth plugs into.

::

      node namespace (the host's, or a namespace standing for a node)
    ┌─────────────────────────────────────────────────────────────────┐
    │  skiff0  10.244.0.1/24  (gateway of the node's pod CIDR)        │
    │    │ fixed MAC, STP off, nf_call_iptables on, forwarding on,    │
    │    │ route_localnet on (hostPorts on 127.0.0.1, see .hostport)  │
    │    ├── veth3f…  ⇄ eth0 10.244.0.2  (pod A's namespace)          │
    │    └── veth91…  ⇄ eth0 10.244.0.3  (pod B's namespace)          │
    │  routes: cluster CIDR, service CIDR  dev skiff0  (see .safety)  │
    └─────────────────────────────────────────────────────────────────┘

Pods on one bridge talk at layer 2. ``nf_call_iptables`` sends bridged IPv4
through netfilter too (br_netfilter), which Service DNAT between two pods of the
same node needs. The bridge's MAC is fixed (derived from its name): otherwise a
bridge takes the lowest MAC of its ports and changes it as pods come and go,
which leaves stale gateway entries in the pods' ARP caches.

Everything here is synchronous and must run on a thread inside the node's
namespace (see .netns.run_inside); it is driven by .node.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from .errors import NetworkConflict
from .netns import interface_exists_here, run_command_here, write_sysctl_here

IP = "ip"


@dataclass(frozen=True)
class BridgeSpec:
    name: str
    gateway: ipaddress.IPv4Interface           # e.g. 10.244.0.1/24
    mtu: int
    routes: tuple[ipaddress.IPv4Network, ...]  # the catch-all routes through the bridge


@dataclass(frozen=True)
class NamespaceFacts:
    """What the node's namespace looks like before skiff adds anything."""

    routes: list[dict[str, Any]]     # ip -j -4 route show table main
    default_device: str | None
    default_device_ip: str | None
    default_device_mtu: int | None


def bridge_mac(name: str) -> str:
    """A stable, locally administered unicast MAC for the bridge ``name``."""
    digest = hashlib.sha256(f"skiff-bridge/{name}".encode()).digest()
    return ":".join(f"{byte:02x}" for byte in (0x02,) + tuple(digest[:5]))


def _json_documents(text: str) -> list[Any]:
    """Split the concatenated JSON arrays ``ip -j -batch`` prints."""
    decoder = json.JSONDecoder()
    documents: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return documents
        document, index = decoder.raw_decode(text, index)
        documents.append(document)


def inspect_here() -> NamespaceFacts:
    """Routes, and the device/address/MTU of the default route, of this namespace."""
    routes, links = _json_documents(run_command_here(
        [IP, "-j", "-4", "-batch", "-"], "route show table main\naddr show\n"))
    device = next((route.get("dev") for route in routes if route.get("dst") == "default"), None)
    address: str | None = None
    mtu: int | None = None
    for link in links:
        if link.get("ifname") == device:
            mtu = link.get("mtu")
            address = next((entry["local"] for entry in link.get("addr_info", [])
                            if entry.get("family") == "inet" and entry.get("scope") == "global"), None)
    return NamespaceFacts(routes=routes, default_device=device, default_device_ip=address,
                          default_device_mtu=mtu)


def ensure_here(spec: BridgeSpec, *, adopt: bool) -> bool:
    """Create the bridge (or, with ``adopt``, complete an existing one of ours).

    Returns True when the bridge was created. Without ``adopt`` an existing link
    of that name belongs to someone else: NetworkConflict.
    """
    created = False
    if interface_exists_here(spec.name):
        if not adopt:
            raise NetworkConflict(f"a link named {spec.name} already exists and was not made by skiff")
    else:
        run_command_here([IP, "link", "add", spec.name, "address", bridge_mac(spec.name),
                          "mtu", str(spec.mtu), "type", "bridge", "stp_state", "0",
                          "nf_call_iptables", "1", "nf_call_ip6tables", "1"])
        created = True
    routes, addresses = _json_documents(run_command_here(
        [IP, "-j", "-4", "-batch", "-"],
        f"route show table main dev {spec.name}\naddr show dev {spec.name}\n"))
    present_addresses = {f"{entry['local']}/{entry['prefixlen']}"
                         for link in addresses for entry in link.get("addr_info", [])}
    present_routes = {route.get("dst") for route in routes}
    commands = []
    if str(spec.gateway) not in present_addresses:
        commands.append(f"addr add {spec.gateway} dev {spec.name}")
    commands.append(f"link set {spec.name} up")
    commands += [f"route add {route} dev {spec.name}" for route in spec.routes
                 if str(route) not in present_routes]
    run_command_here([IP, "-batch", "-"], "\n".join(commands) + "\n")
    # Routing out of the bridge (pod → Service → pod, pod → other nodes) and
    # hostPorts on 127.0.0.1; per interface, the host's own settings stay as they are.
    write_sysctl_here(f"net/ipv4/conf/{spec.name}/forwarding", "1")
    write_sysctl_here(f"net/ipv4/conf/{spec.name}/route_localnet", "1")
    return created


def delete_here(name: str) -> bool:
    """Delete the bridge (its routes go with it); False when it was not there."""
    if not interface_exists_here(name):
        return False
    run_command_here([IP, "link", "del", name])
    return True
