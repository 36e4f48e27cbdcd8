"""ServiceProxy: Services and EndpointSlices from the API, kept in the node's
nftables table, one Service at a time.

::

    informers (Services, EndpointSlices)
        │ handlers only mark "ns/name" dirty and wake the sync loop
        ▼
    sync loop ── first run, or after any failure: full sync ──▶ the whole table,
        │                                                        one transaction
        └─ otherwise: the dirty Services ──▶ .serviceports ──▶ .rules ──▶ diff against
                     what is applied ──▶ one ``nft -f`` transaction for all of them
                     (nothing when nothing changed) ──▶ waiters notified

Changes that arrive while a transaction runs are batched into the next one, so
a burst of endpoint updates costs a few transactions, not one per update.
Everything applied is remembered (:attr:`programs`), so a diff never has to
read the kernel's state back.

Two Services may claim the same ``ip . proto . port`` (externalIPs and load
balancer IPs are not allocated, so nothing stops it): the oldest Service keeps
it, the other's claim waits until it is released, and the proxy keeps going.
Full and incremental syncs settle a conflict the same way.

Restarting the proxy rebuilds the table from the API in one transaction; other
tables are never touched. A full sync also runs every ``resync_period`` (an
hour, as kube-proxy), which repairs a table someone else changed. Stopping it leaves the rules in place (traffic keeps
flowing while it restarts) unless asked to delete them. (Starting, the loop,
retries and stopping are .tablesync's, shared with the network policy agent.)
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..client.factory import InformerFactory
from ..client.informer import Informer, object_key
from ..client.resources import ENDPOINTSLICES, SERVICES
from ..client.rest import ApiClient
from .nft import Nft
from .preflight import check_routes
from .rules import Program, service_program
from .serviceports import service_key_of_slice, service_ports
from .table import TableSpec, delete_text, full_text, transaction
from .tablesync import TableSync

Obj = dict[str, Any]
log = logging.getLogger(__name__)

SLICE_INDEX = "skiff-proxy/service"
#: Map pairs that share one key space (a key may be in only one of each pair).
KEY_SPACES = {"service-ips": "ips", "no-endpoint-services": "ips",
              "service-nodeports": "nodeports", "no-endpoint-nodeports": "nodeports"}


def default_table_name(node_name: str) -> str:
    return f"skiff-proxy-{node_name}"


@dataclass(frozen=True)
class SyncRecord:
    """One transaction: ``full`` or not, how many Services, how long nft took (s)."""

    full: bool
    services: int
    seconds: float
    finished: float          # time.monotonic() when the rules were in place


class ServiceProxy(TableSync):
    """The nftables service proxy of one node (see module docstring)."""

    def __init__(self, *, node_name: str, cluster_cidr: str, service_cidr: str,
                 node_netns: Path | None = None, node_ips: Sequence[str] | None = None,
                 table: str | None = None, require_routes: bool = True,
                 resync_period: float = 3600.0) -> None:
        self.node_name = node_name
        self.require_routes = require_routes
        self.cluster_cidr = str(ipaddress.IPv4Network(cluster_cidr))
        service_cidr = str(ipaddress.IPv4Network(service_cidr))
        for address in node_ips or ():
            ipaddress.IPv4Address(address)
        self.spec = TableSpec(name=table or default_table_name(node_name), service_cidr=service_cidr,
                              node_ips=tuple(node_ips) if node_ips is not None else None,
                              comment=f"skiff service proxy of node {node_name}")
        super().__init__(Nft(node_netns), f"proxy {self.spec.name}", resync_period=resync_period)
        #: What is applied, per Service key ("ns/name").
        self.programs: dict[str, Program] = {}
        self.syncs: collections.deque[SyncRecord] = collections.deque(maxlen=10_000)
        #: Seconds from a Service being marked dirty to its rules being in place.
        self.latencies: collections.deque[float] = collections.deque(maxlen=10_000)
        self._hairpin: collections.Counter[str] = collections.Counter()
        self._owners: dict[tuple[str, str], str] = {}
        self._waiting: dict[tuple[str, str], set[str]] = {}
        self._services: Informer | None = None
        self._slices: Informer | None = None
        self._dirty: dict[str, float] = {}
        self._needs_full = True
        self._busy = False                      # a transaction is being computed or applied

    # -- what others read ---------------------------------------------------------

    def endpoints(self, service_key: str) -> dict[str, tuple[str, ...]]:
        """Applied endpoints (``ip:port``) of a Service, by port id (``ns/name/proto/port``)."""
        program = self.programs.get(service_key)
        return dict(program.endpoints) if program else {}

    @property
    def idle(self) -> bool:
        """Nothing the informers reported is still waiting to be applied."""
        return not self._dirty and not self._needs_full and not self._busy

    # -- informer handlers --------------------------------------------------------

    def _mark(self, key: str | None) -> None:
        if key is not None:
            self._dirty.setdefault(key, time.monotonic())
            self._wake.set()

    def _service_event(self, service: Obj) -> None:
        self._mark(object_key(service))

    def _slice_event(self, slice_: Obj) -> None:
        self._mark(service_key_of_slice(slice_))

    def _slice_update(self, old: Obj, new: Obj) -> None:
        before, after = service_key_of_slice(old), service_key_of_slice(new)
        if before != after:
            self._mark(before)
        self._mark(after)

    # -- running ------------------------------------------------------------------

    async def run(self, client: ApiClient, *, informers: InformerFactory | None = None,
                  started: asyncio.Event | None = None, delete_on_exit: bool = False) -> None:
        """Sync until cancelled. ``informers``: a shared factory the caller runs (by
        default the proxy runs its own). ``started`` is set once the first full sync
        is in place. The first full sync's failure is raised, and so is
        RoutesMissing (.preflight) before anything is written; later failures are
        retried."""
        if self.require_routes:
            await check_routes(self.nft.netns, [self.cluster_cidr, self.spec.service_cidr])
        await self._run(client, informers=informers, started=started, delete_on_exit=delete_on_exit)

    def _watch(self, factory: InformerFactory) -> list[Informer]:
        self._services = factory.informer(SERVICES)
        self._slices = factory.informer(ENDPOINTSLICES)
        self._slices.add_index(SLICE_INDEX, lambda s: [k] if (k := service_key_of_slice(s)) else [])
        self._services.add_handler(on_add=self._service_event,
                                   on_update=lambda _old, new: self._service_event(new),
                                   on_delete=self._service_event)
        self._slices.add_handler(on_add=self._slice_event, on_update=self._slice_update,
                                 on_delete=self._slice_event)
        return [self._services, self._slices]

    async def delete_rules(self) -> None:
        """Remove the proxy's table (and forget what was applied)."""
        await self.nft.apply(delete_text(self.spec))
        self.programs.clear()
        self._hairpin.clear()
        self._owners.clear()
        self._waiting.clear()
        self._needs_full = True

    def _table_unknown(self) -> bool:
        return self._needs_full

    def _forget_applied(self) -> None:
        self._needs_full = True

    async def _sync(self, *, full: bool) -> None:
        if full:
            self._needs_full = True
        self._busy = True
        try:
            if self._needs_full:
                await self._full_sync()
            elif self._dirty:
                await self._partial_sync()
        finally:
            self._busy = False

    # -- syncing ------------------------------------------------------------------

    def _program_of(self, key: str) -> Program:
        assert self._services is not None and self._slices is not None
        namespace, _, name = key.partition("/")
        service = self._services.get_by(namespace, name)
        if service is None:
            return Program()
        slices = self._slices.by_index(SLICE_INDEX, key)
        try:
            return service_program(service_ports(service, slices), node_name=self.node_name,
                                   cluster_cidr=self.cluster_cidr)
        except ValueError as error:
            log.warning("proxy %s: service %s is not programmed: %s", self.spec.name, key, error)
            return Program()

    def _claim(self, key: str, program: Program) -> list[str]:
        """Settle ``program``'s map keys with the other Services' claims: the oldest
        Service keeps a key. Keys an older Service holds are dropped from ``program``;
        the younger holders of keys taken here are returned (to be recomputed)."""
        losers = []
        for map_name, elements in program.maps().items():
            space = KEY_SPACES[map_name]
            for element in list(elements):
                claim = (space, element)
                owner = self._owners.get(claim)
                if owner is None or owner == key:
                    continue
                if self._age(owner) <= self._age(key):
                    del elements[element]
                    self._waiting.setdefault(claim, set()).add(key)
                    log.warning("proxy %s: %s wants %s, which %s holds", self.spec.name, key,
                                element, owner)
                else:
                    self._owners[claim] = key
                    self._waiting.setdefault(claim, set()).add(owner)
                    losers.append(owner)
        return losers

    def _age(self, key: str) -> tuple[str, str]:
        assert self._services is not None
        namespace, _, name = key.partition("/")
        service = self._services.get_by(namespace, name)
        return _age(service) if service is not None else ("~", key)

    def _record_owners(self, key: str, old: Program, new: Program) -> None:
        held = {(KEY_SPACES[m], e) for m, elements in new.maps().items() for e in elements}
        for map_name, elements in old.maps().items():
            for element in elements:
                claim = (KEY_SPACES[map_name], element)
                if claim not in held and self._owners.get(claim) == key:
                    del self._owners[claim]
                    for waiter in self._waiting.pop(claim, set()):
                        self._mark(waiter)
        for claim in held:
            self._owners[claim] = key
            # A waiter older than the holder (the holder was deleted and created
            # again meanwhile, so it is younger now) takes the key back.
            for waiter in self._waiting.get(claim, ()):
                if self._age(waiter) < self._age(key):
                    self._mark(waiter)

    async def _full_sync(self) -> None:
        assert self._services is not None
        started = time.monotonic()
        dirty, self._dirty = self._dirty, {}
        self._owners.clear()
        self._waiting.clear()
        programs: dict[str, Program] = {}
        for service in sorted(self._services.list(), key=_age):
            key = object_key(service)
            program = self._program_of(key)
            self._claim(key, program)
            self._record_owners(key, Program(), program)
            if program.chains or any(program.maps().values()):
                programs[key] = program
        hairpin: collections.Counter[str] = collections.Counter()
        for program in programs.values():
            hairpin.update(program.local_ips)
        try:
            await self.nft.apply(full_text(self.spec, programs.values(), hairpin))
        except BaseException:
            self._dirty = {**dirty, **self._dirty}
            raise
        self.programs, self._hairpin, self._needs_full = programs, hairpin, False
        await self._finished(True, len(programs), started, dirty)

    async def _partial_sync(self) -> None:
        started = time.monotonic()
        dirty, self._dirty = self._dirty, {}
        fresh: dict[str, Program] = {}
        pending = list(dirty)
        while pending:               # recomputing a Service that lost a key may cascade
            key = pending.pop()
            program = self._program_of(key)
            pending += self._claim(key, program)
            self._record_owners(key, fresh.get(key) or self.programs.get(key, Program()), program)
            fresh[key] = program
        old, new = Program(), Program()
        delta: collections.Counter[str] = collections.Counter()   # hairpin references
        for key, program in fresh.items():
            applied = self.programs.get(key, Program())
            old.add(applied)
            new.add(program)
            delta.subtract(applied.local_ips)
            delta.update(program.local_ips)
        added = sorted(ip for ip, n in delta.items() if n > 0 and not self._hairpin[ip])
        removed = sorted(ip for ip, n in delta.items() if n < 0 and self._hairpin[ip] + n == 0)
        changes = transaction(self.spec, old, new, added, removed)
        try:
            await self.nft.apply(changes.text)
        except BaseException:
            self._dirty = {**dirty, **self._dirty}
            raise
        for key, program in fresh.items():
            if program.chains or any(program.maps().values()):
                self.programs[key] = program
            else:
                self.programs.pop(key, None)
        for ip, n in delta.items():
            if n:
                self._hairpin[ip] += n
                if self._hairpin[ip] <= 0:
                    del self._hairpin[ip]
        await self._finished(False, len(fresh), started, dirty)

    async def _finished(self, full: bool, services: int, started: float,
                        dirty: dict[str, float]) -> None:
        now = time.monotonic()
        self.syncs.append(SyncRecord(full, services, now - started, now))
        self.latencies.extend(now - since for since in dirty.values())
        self._busy = False
        await self._notify_applied()


def _age(service: Obj) -> tuple[str, str]:
    """Oldest first (the oldest claim on a key wins), then by key."""
    meta = service.get("metadata") or {}
    return (str(meta.get("creationTimestamp", "")), object_key(service))


async def run_proxy(client: ApiClient, *, node_name: str, cluster_cidr: str, service_cidr: str,
                    node_netns: Path | None = None, node_ips: Sequence[str] | None = None,
                    informers: InformerFactory | None = None, table: str | None = None,
                    started: asyncio.Event | None = None, delete_on_exit: bool = False) -> None:
    """Run the nftables service proxy of ``node_name`` until cancelled.

    ``node_netns``: the node's network namespace (None: this process's, e.g. the
    host for ``skiff up``); it must already hold routes for ``cluster_cidr`` and
    ``service_cidr`` through the node bridge (NodeNetwork.setup does that).
    ``node_ips``: the addresses NodePorts answer on (None: every local address,
    127.0.0.1 included). ``table``: default ``skiff-proxy-<node_name>``.
    """
    proxy = ServiceProxy(node_name=node_name, cluster_cidr=cluster_cidr, service_cidr=service_cidr,
                         node_netns=node_netns, node_ips=node_ips, table=table)
    await proxy.run(client, informers=informers, started=started, delete_on_exit=delete_on_exit)
