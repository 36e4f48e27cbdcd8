"""One pod's network: its namespace, its veth into the node bridge, and its record.

::

    add:     allocate IP ─▶ write record ─▶ [create netns] ─▶ veth pair ─▶ eth0: IP, up,
             (ipam)          (pods/<uid>.json)  (unless given)    host end on    default route
                                                                  the bridge     via the gateway
                                                     (netlink requests, no `ip` process: .netlink)
    remove:  delete host veth (the pod end goes with it) ─▶ [remove netns] ─▶ release IP
             ─▶ delete record              every step tolerates "already gone"

The record is written before anything is created, so whatever a crash leaves
behind can be found and removed from it. The pod's namespace is either made
here (``/run/netns/skiff-<pod uid>``, so ``ip netns exec skiff-<uid> …`` works for
people poking around; ``owns_netns`` true, removed with the pod) or handed in by the
runtime (CNI style: the sandbox's ``ns/net``; left for the runtime to remove).

The host end of the veth is named ``veth`` + 11 hex digits of a hash of the bridge
name and the pod UID: at most 15 characters, stable for a pod, distinct between
bridges sharing a namespace.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .hostport import HostPort
from .netlink import Netlink
from .netns import interface_exists_here, is_namespace

POD_INTERFACE = "eth0"


@dataclass(frozen=True)
class PodNetwork:
    """What the kubelet needs to know about a pod's network (and reports in its status)."""

    pod_uid: str
    ip: str                       # status.podIP
    netns_path: Path | None       # containers join this; None for hostNetwork
    gateway: str | None
    interface: str                # the pod's interface ("eth0"; the node's for hostNetwork)
    prefix_length: int
    host_interface: str | None    # the host end of the veth
    host_network: bool = False

    @property
    def ips(self) -> list[str]:
        """status.podIPs (one IPv4 address)."""
        return [self.ip]


@dataclass
class PodRecord:
    """The on-disk truth about a pod's network (``pods/<uid>.json``)."""

    uid: str
    name: str
    namespace: str
    netns_path: str
    owns_netns: bool
    ip: str
    prefix_length: int
    gateway: str
    host_interface: str
    host_ports: list[HostPort] = field(default_factory=list)

    def network(self) -> PodNetwork:
        return PodNetwork(pod_uid=self.uid, ip=self.ip, netns_path=Path(self.netns_path),
                          gateway=self.gateway, interface=POD_INTERFACE,
                          prefix_length=self.prefix_length, host_interface=self.host_interface)

    def to_json(self) -> dict[str, Any]:
        return {"uid": self.uid, "name": self.name, "namespace": self.namespace,
                "netnsPath": self.netns_path, "ownsNetns": self.owns_netns, "ip": self.ip,
                "prefixLength": self.prefix_length, "gateway": self.gateway,
                "hostInterface": self.host_interface,
                "hostPorts": [port.to_json() for port in self.host_ports]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PodRecord:
        return cls(uid=data["uid"], name=data["name"], namespace=data["namespace"],
                   netns_path=data["netnsPath"], owns_netns=data["ownsNetns"], ip=data["ip"],
                   prefix_length=data["prefixLength"], gateway=data["gateway"],
                   host_interface=data["hostInterface"],
                   host_ports=[HostPort.from_json(port) for port in data.get("hostPorts", [])])


class PodRecords:
    """``<state>/pods/<uid>.json``, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, uid: str) -> Path:
        if not uid or "/" in uid or uid.startswith("."):
            raise ValueError(f"invalid pod UID {uid!r}")
        return self.directory / f"{uid}.json"

    def save(self, record: PodRecord) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(record.uid)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(record.to_json()))
        os.replace(temporary, path)

    def load(self, uid: str) -> PodRecord | None:
        try:
            return PodRecord.from_json(json.loads(self._path(uid).read_text()))
        except FileNotFoundError:
            return None

    def delete(self, uid: str) -> None:
        self._path(uid).unlink(missing_ok=True)

    def all(self) -> list[PodRecord]:
        try:
            names = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        records = []
        for name in names:
            if name.endswith(".json") and not name.startswith("."):
                record = self.load(name[:-len(".json")])
                if record is not None:
                    records.append(record)
        return records


def host_interface_name(bridge: str, pod_uid: str) -> str:
    return "veth" + hashlib.sha256(f"{bridge}/{pod_uid}".encode()).hexdigest()[:11]


def plumb_node_side_here(record: PodRecord, bridge: str, mtu: int) -> None:
    """In the node namespace: the veth pair, its pod end moved into the pod's namespace
    as eth0, its host end on the bridge (hairpin on, so a pod can reach itself
    through a hostPort or a Service) and up."""
    host = record.host_interface
    pod_namespace = os.open(record.netns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with Netlink() as link:
            link.add_veth(host, POD_INTERFACE, pod_namespace, mtu)
            link.set_link(host, master=bridge)
            link.set_link(host, hairpin=True, up=True)
    finally:
        os.close(pod_namespace)


def plumb_pod_side_here(record: PodRecord) -> None:
    """In the pod namespace: loopback up, eth0 addressed and up, default route."""
    with Netlink() as link:
        link.set_link("lo", up=True)
        link.add_address(POD_INTERFACE, ipaddress.IPv4Interface(f"{record.ip}/{record.prefix_length}"))
        link.set_link(POD_INTERFACE, up=True)
        link.add_default_route(POD_INTERFACE, ipaddress.IPv4Address(record.gateway))


def unplumb_here(host_interface: str) -> bool:
    """In the node namespace: delete the host end (the pair goes); False if absent."""
    with Netlink() as link:
        return link.delete_link(host_interface)


def healthy_here(record: PodRecord) -> bool:
    """In the node namespace: are the pod's namespace and its veth still there?"""
    return is_namespace(Path(record.netns_path)) and interface_exists_here(record.host_interface)
