"""NodeNetwork: a node's pod network, set up once and asked for pods by the kubelet.

::

    NodeNetwork(...)          nothing touched yet
      │ setup()               nft table (egress guard, hostPort maps) ─▶ bridge, gateway
      │                       address, catch-all routes, forwarding on the bridge
      │                       (adopts what an earlier run of the same node left)
      ├─ add_pod(...)  ──▶ PodNetwork (netns path, IP, gateway)     ┐ any number,
      ├─ add_host_ports(...)                                        │ any order;
      ├─ remove_pod(uid)      idempotent, also after a crash        │ list_pods()
      │                                                             ┘ after restart
      └ teardown()            every pod, the bridge (routes go with it), the table,
                              the state; idempotent

State (``state_dir``, one per node)::

    node.json                 written before the first object is created: the bridge of
                              that name is ours to adopt or delete
    pods/<uid>.json           see .podnet
    ipam/<subnet>/…           see .ipam

``node_netns`` is the namespace the node lives in: None for the one this process
is in (the host, for ``skiff up``), or the path of a namespace standing for a
node (several nodes on one host). Every object is created there; the pod
namespaces are separate, named by pod UID under ``netns_dir``.

Work runs on throwaway threads inside the right namespace (.netns), never on the
event loop. Calls for one pod are serialised; calls for different pods overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import bridge, netns, podnet
from .errors import NetworkConflict, NetworkError
from .hostport import HostPort, HostPortMapping, check_conflicts, nat_rules
from .ipam import HostLocalIPAM, directory_for
from .podnet import PodNetwork, PodRecord, PodRecords
from .safety import (EGRESS_COUNTER, catch_all_routes, check_route_conflicts,
                     ensure_egress_routing_here, guard_rules, parse_networks,
                     remove_egress_routing_here)

DEFAULT_MTU = 1500
NFT = "nft"


@dataclass
class _PodLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class NodeNetwork:
    """The pod network of one node: a bridge, host-local IPAM, veths, nft rules."""

    def __init__(self, *, state_dir: Path, pod_cidr: str, cluster_cidr: str = "10.244.0.0/16",
                 service_cidr: str = "10.96.0.0/12", bridge_name: str = "skiff0",
                 node_netns: Path | None = None, mtu: int | None = None,
                 node_ip: str | None = None, uplinks: Sequence[str] = (),
                 netns_dir: Path = Path("/run/netns")) -> None:
        if not 0 < len(bridge_name) <= 15 or "/" in bridge_name:
            raise ValueError(f"invalid bridge name {bridge_name!r}")
        self.pod_cidr, self.cluster_cidr, self.service_cidr = parse_networks(
            pod_cidr, cluster_cidr, service_cidr)
        self.state_dir = state_dir
        self.bridge_name = bridge_name
        self.node_netns = node_netns
        self.netns_dir = netns_dir
        self.uplinks = tuple(uplinks)
        self.table = f"skiff-net-{bridge_name}"
        self.gateway = ipaddress.IPv4Interface(
            f"{self.pod_cidr.network_address + 1}/{self.pod_cidr.prefixlen}")
        self._mtu = mtu
        self._node_ip = node_ip
        self._node_device: str | None = None
        self.ipam = HostLocalIPAM(directory_for(state_dir / "ipam", self.pod_cidr), self.pod_cidr)
        self.records = PodRecords(state_dir / "pods")
        self._pod_locks: dict[str, _PodLock] = {}
        self._table_lock = asyncio.Lock()
        self._ready = False

    # -- what the kubelet reads -------------------------------------------------------

    @property
    def node_ip(self) -> str:
        """The node's address (status.hostIP; the podIP of hostNetwork pods)."""
        return self._node_ip or str(self.gateway.ip)

    @property
    def mtu(self) -> int:
        return self._mtu or DEFAULT_MTU

    def list_pods(self) -> list[PodNetwork]:
        """Every pod with a network on this node, from disk (adoption after a restart)."""
        return [record.network() for record in self.records.all()]

    # -- node lifecycle ---------------------------------------------------------------

    async def setup(self) -> None:
        """Create (or adopt) the node's pod network. Safe to call again."""
        state = self.state_dir / "node.json"
        wanted = {"bridge": self.bridge_name, "table": self.table, "podCIDR": str(self.pod_cidr),
                  "clusterCIDR": str(self.cluster_cidr), "serviceCIDR": str(self.service_cidr)}
        adopt = state.exists()
        if adopt:
            previous = json.loads(state.read_text())
            if previous != wanted:
                raise NetworkConflict(f"the node network in {self.state_dir} was set up as {previous}; "
                                      f"tear it down before setting it up as {wanted}")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps(wanted))
        routes = catch_all_routes(self.pod_cidr, self.cluster_cidr, self.service_cidr)
        table_text = self._table_text(self._host_port_mappings(self.records.all()))

        def work() -> bridge.NamespaceFacts:
            facts = bridge.inspect_here()
            check_route_conflicts(facts.routes, self.pod_cidr, self.cluster_cidr,
                                  self.service_cidr, self.bridge_name, self.uplinks)
            # Both egress layers exist before the bridge may route anything.
            netns.run_command_here([NFT, "-f", "-"], table_text)
            ensure_egress_routing_here(self.bridge_name, [self.cluster_cidr, self.service_cidr])
            spec = bridge.BridgeSpec(name=self.bridge_name, gateway=self.gateway,
                                     mtu=self._mtu or facts.default_device_mtu or DEFAULT_MTU,
                                     routes=tuple(routes))
            bridge.ensure_here(spec, adopt=adopt)
            return facts

        async with self._table_lock:
            facts = await netns.run_inside(self.node_netns, work)
        self._mtu = self._mtu or facts.default_device_mtu or DEFAULT_MTU
        self._node_ip = self._node_ip or facts.default_device_ip
        self._node_device = facts.default_device
        await asyncio.to_thread(self._collect_orphan_addresses)
        self._ready = True

    def _collect_orphan_addresses(self) -> None:
        """Release addresses whose pod has no record (a crash between the two writes)."""
        known = {record.uid for record in self.records.all()}
        for address, owner in self.ipam.allocations().items():
            if owner not in known:
                self.ipam.release(address, owner)

    async def teardown(self) -> None:
        """Remove every pod's network, the bridge, the nft table and the state."""
        for record in self.records.all():
            await self.remove_pod(record.uid)

        def work() -> None:
            bridge.delete_here(self.bridge_name)
            remove_egress_routing_here(self.bridge_name)
            # Declaring the table first makes the delete succeed when it is absent.
            netns.run_command_here([NFT, "-f", "-"],
                                   f"table inet {self.table}\ndelete table inet {self.table}\n")

        async with self._table_lock:
            await netns.run_inside(self.node_netns, work)
        await asyncio.to_thread(self._remove_state)
        self._ready = False

    def _remove_state(self) -> None:
        self.ipam.destroy()
        for directory in (self.state_dir / "ipam", self.state_dir / "pods"):
            try:
                directory.rmdir()
            except OSError:
                pass        # gone already, or something not ours lives there: leave it
        (self.state_dir / "node.json").unlink(missing_ok=True)

    # -- pods ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _lock(self, pod_uid: str) -> AsyncIterator[None]:
        """Serialise calls for one pod; the lock lives only while someone uses it."""
        entry = self._pod_locks.setdefault(pod_uid, _PodLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._pod_locks[pod_uid]

    async def add_pod(self, pod_uid: str, pod_name: str, namespace: str, *,
                      netns_path: Path | None = None, host_network: bool = False,
                      host_ports: Sequence[HostPort] = ()) -> PodNetwork:
        """Give a pod its network and return it.

        ``netns_path``: a namespace the runtime made (used, not owned); None makes one
        under ``netns_dir``. If the pod already has a healthy network in the same
        namespace, that one is returned (``host_ports``, when given, replace its
        ports); a broken one, or one in another namespace (a new sandbox), is
        removed and built again. hostNetwork pods get the node's address and nothing
        else.
        """
        if host_network:
            return PodNetwork(pod_uid=pod_uid, ip=self.node_ip, netns_path=None, gateway=None,
                              interface=self._node_device or "", prefix_length=32,
                              host_interface=None, host_network=True)
        if not self._ready:
            raise NetworkError("NodeNetwork.setup() has not run")
        async with self._lock(pod_uid):
            existing = self.records.load(pod_uid)
            if existing is not None:
                same_namespace = netns_path is None or str(netns_path) == existing.netns_path
                if same_namespace and await netns.run_inside(
                        self.node_netns, lambda: podnet.healthy_here(existing)):
                    if host_ports:
                        await self._set_host_ports(existing, host_ports)
                    return existing.network()
                await self._remove_locked(existing)
            if host_ports:
                check_conflicts(self._host_port_mappings(self.records.all())
                                + [HostPortMapping(pod_uid, "0.0.0.0", port) for port in host_ports])
            owns = netns_path is None
            path = netns_path or self.netns_dir / f"skiff-{pod_uid}"

            def work() -> PodRecord:
                address = self.ipam.allocate(pod_uid)
                record = PodRecord(
                    uid=pod_uid, name=pod_name, namespace=namespace, netns_path=str(path),
                    owns_netns=owns, ip=str(address), prefix_length=self.pod_cidr.prefixlen,
                    gateway=str(self.gateway.ip),
                    host_interface=podnet.host_interface_name(self.bridge_name, pod_uid))
                self.records.save(record)
                if owns:
                    netns.create_here(path)
                podnet.plumb_node_side_here(record, self.bridge_name, self.mtu)
                netns.enter_here(path)
                podnet.plumb_pod_side_here(record)
                return record

            try:
                record = await netns.run_inside(self.node_netns, work)
                if host_ports:
                    await self._set_host_ports(record, host_ports)
            except BaseException:
                leftover = self.records.load(pod_uid)
                if leftover is not None:
                    await asyncio.shield(self._remove_locked(leftover))
                else:
                    await asyncio.to_thread(self.ipam.release_all_of, pod_uid)
                raise
            return record.network()

    async def remove_pod(self, pod_uid: str) -> None:
        """Take a pod's network down. Idempotent: unknown pods are fine."""
        async with self._lock(pod_uid):
            record = self.records.load(pod_uid)
            if record is None:
                await asyncio.to_thread(self.ipam.release_all_of, pod_uid)
            else:
                await self._remove_locked(record)

    async def _remove_locked(self, record: PodRecord) -> None:
        def work() -> None:
            podnet.unplumb_here(record.host_interface)
            if record.owns_netns:
                netns.remove(Path(record.netns_path))
            self.ipam.release(ipaddress.IPv4Address(record.ip), record.uid)
            self.records.delete(record.uid)

        await netns.run_inside(self.node_netns, work)
        if record.host_ports:
            await self._sync_table()

    async def add_host_ports(self, pod_uid: str, ports: Sequence[HostPort]) -> None:
        """Forward ``ports`` of the node to the pod (replacing what it had before)."""
        async with self._lock(pod_uid):
            record = self.records.load(pod_uid)
            if record is None:
                raise NetworkError(f"pod {pod_uid} has no network on this node")
            await self._set_host_ports(record, ports)

    async def _set_host_ports(self, record: PodRecord, ports: Sequence[HostPort]) -> None:
        others = [r for r in self.records.all() if r.uid != record.uid]
        check_conflicts(self._host_port_mappings(others)
                        + [HostPortMapping(record.uid, record.ip, port) for port in ports])
        record.host_ports = list(ports)
        self.records.save(record)
        await self._sync_table()

    # -- nftables -----------------------------------------------------------------------

    @staticmethod
    def _host_port_mappings(records: Sequence[PodRecord]) -> list[HostPortMapping]:
        return [HostPortMapping(record.uid, record.ip, port)
                for record in records for port in record.host_ports]

    def _table_text(self, mappings: Sequence[HostPortMapping]) -> str:
        """The node's whole table, replacing the previous one in one transaction."""
        allowed = [self.cluster_cidr, self.service_cidr]
        return (f"table inet {self.table}\n"
                f"delete table inet {self.table}\n"
                f"table inet {self.table} {{\n"
                f"\tcomment \"skiff pod network of bridge {self.bridge_name}\"\n"
                + guard_rules(self.bridge_name, allowed, self.uplinks)
                + nat_rules(self.bridge_name, mappings)
                + "}\n")

    async def _sync_table(self) -> None:
        async with self._table_lock:
            text = self._table_text(self._host_port_mappings(self.records.all()))
            await netns.run_command(self.node_netns, [NFT, "-f", "-"], text)

    async def egress_dropped_packets(self) -> int:
        """Packets from pods dropped for heading out of the cluster (the guard's counter)."""
        output = await netns.run_command(
            self.node_netns, [NFT, "-j", "list", "counter", "inet", self.table, EGRESS_COUNTER])
        for entry in json.loads(output).get("nftables", []):
            counter: dict[str, Any] | None = entry.get("counter")
            if counter is not None:
                return int(counter["packets"])
        raise NetworkError(f"counter {EGRESS_COUNTER} not found in table {self.table}")

