"""The userspace fallback: Services relayed by asyncio, for nodes without root or
nftables (the ``process`` runtime).

Without root there are no virtual IPs: nothing can make the kernel deliver a
ClusterIP to this process. What the relay can offer is every Service's
*node-reachable* addresses, on sockets it owns::

    NodePort        <node IP>:<nodePort>     for each of ``node_ips`` (default 127.0.0.1)
    load balancer   <ingress IP>:<port>      when the ingress IP is one of ``node_ips``
    external IP     <externalIP>:<port>      likewise

    client ──TCP──▶ listener ──pick an endpoint──▶ endpoint (asyncio streams, both ways)
    client ──UDP──▶ listener ──one upstream socket per client address──▶ endpoint
                               (replies relayed back; idle sessions closed after 60 s)

A pod of the process runtime therefore reaches a Service as ``127.0.0.1:<nodePort>``
(give it type NodePort). Endpoint choice follows the nftables proxy: random among
the usable endpoints (ready, else serving-and-terminating); externalTrafficPolicy
Local keeps to this node's endpoints; sessionAffinity ClientIP pins a client
address to its endpoint for the timeout. A port with no usable endpoint has no
listener at all, so a client is refused at once (TCP reset / ICMP port
unreachable from the kernel), never left hanging. SCTP ports are not relayed.

This is the slow path (every byte crosses Python); the nftables proxy is the
real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..client.factory import InformerFactory
from ..client.informer import Informer, object_key
from ..client.resources import ENDPOINTSLICES, SERVICES
from ..client.rest import ApiClient
from .serviceports import Endpoint, ServicePort, service_key_of_slice, service_ports

log = logging.getLogger(__name__)

SLICE_INDEX = "skiff-userspace-proxy/service"
UDP_IDLE = 60.0
CONNECT_TIMEOUT = 5.0
Address = tuple[str, str, int]          # (ip, "tcp" | "udp", port)


@dataclass
class Backends:
    """Where one listener sends clients; replaced in place when endpoints change."""

    endpoints: tuple[Endpoint, ...] = ()
    affinity_timeout: int | None = None
    sticky: dict[str, tuple[Endpoint, float]] = field(default_factory=dict)

    def order(self, client_ip: str) -> list[Endpoint]:
        """Endpoints to try for ``client_ip``: its pinned one first, else random order."""
        choices = list(self.endpoints)
        random.shuffle(choices)
        if self.affinity_timeout is not None:
            pinned = self.sticky.get(client_ip)
            if pinned is not None and pinned[1] > time.monotonic() and pinned[0] in self.endpoints:
                choices.remove(pinned[0])
                choices.insert(0, pinned[0])
        return choices

    def chose(self, client_ip: str, endpoint: Endpoint) -> None:
        if self.affinity_timeout is not None:
            self.sticky[client_ip] = (endpoint, time.monotonic() + self.affinity_timeout)


class _Listener:
    """One listening socket (TCP server or UDP endpoint) and its backends."""

    def __init__(self, address: Address, backends: Backends) -> None:
        self.address = address
        self.backends = backends
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._sessions: dict[tuple[str, int], _UdpSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        ip, protocol, port = self.address
        if protocol == "tcp":
            self._server = await asyncio.start_server(self._relay_tcp, ip, port, reuse_address=True)
        else:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _UdpFront(self), local_addr=(ip, port), reuse_port=False)
            self._udp = transport

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._udp is not None:
            self._udp.close()
        for session in list(self._sessions.values()):
            session.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- TCP ----------------------------------------------------------------------

    async def _relay_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            client_ip = str(writer.get_extra_info("peername")[0])
            for endpoint in self.backends.order(client_ip):
                try:
                    up_reader, up_writer = await asyncio.wait_for(
                        asyncio.open_connection(endpoint.ip, endpoint.port), CONNECT_TIMEOUT)
                except (OSError, TimeoutError) as error:
                    log.info("userspace proxy %s: endpoint %s: %s", self.address, endpoint.address, error)
                    continue
                self.backends.chose(client_ip, endpoint)
                try:
                    await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                finally:
                    up_writer.close()
                return
        finally:
            writer.close()
            self._tasks.discard(task)

    # -- UDP ----------------------------------------------------------------------

    def datagram(self, data: bytes, client: tuple[str, int]) -> None:
        session = self._sessions.get(client)
        if session is not None and session.endpoint in self.backends.endpoints:
            session.send(data)
            return
        if session is not None:
            session.close()
        choices = self.backends.order(client[0])
        if not choices:
            return
        endpoint = choices[0]
        self.backends.chose(client[0], endpoint)
        task = asyncio.ensure_future(self._open_session(client, endpoint, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _open_session(self, client: tuple[str, int], endpoint: Endpoint, first: bytes) -> None:
        loop = asyncio.get_running_loop()
        session = _UdpSession(self, client, endpoint)
        try:
            await loop.create_datagram_endpoint(lambda: session, remote_addr=(endpoint.ip, endpoint.port))
        except OSError as error:
            log.info("userspace proxy %s: endpoint %s: %s", self.address, endpoint.address, error)
            return
        self._sessions[client] = session
        session.send(first)

    def reply(self, data: bytes, client: tuple[str, int]) -> None:
        if self._udp is not None:
            self._udp.sendto(data, client)

    def forget(self, client: tuple[str, int], session: _UdpSession) -> None:
        if self._sessions.get(client) is session:
            del self._sessions[client]

    def sweep(self) -> None:
        now = time.monotonic()
        for session in [s for s in self._sessions.values() if now - s.last > UDP_IDLE]:
            session.close()


class _UdpFront(asyncio.DatagramProtocol):
    def __init__(self, listener: _Listener) -> None:
        self.listener = listener

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.listener.datagram(data, addr)


class _UdpSession(asyncio.DatagramProtocol):
    """One client address's socket towards its endpoint."""

    def __init__(self, listener: _Listener, client: tuple[str, int], endpoint: Endpoint) -> None:
        self.listener, self.client, self.endpoint = listener, client, endpoint
        self.transport: asyncio.DatagramTransport | None = None
        self.last = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last = time.monotonic()
        self.listener.reply(data, self.client)

    def send(self, data: bytes) -> None:
        self.last = time.monotonic()
        if self.transport is not None:
            self.transport.sendto(data)

    def close(self) -> None:
        self.listener.forget(self.client, self)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.listener.forget(self.client, self)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close the other side."""
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()


class UserspaceProxy:
    """The relay of one node (see module docstring)."""

    def __init__(self, *, node_name: str, node_ips: Sequence[str] = ("127.0.0.1",)) -> None:
        self.node_name = node_name
        self.node_ips = tuple(node_ips)
        #: Open listeners by (ip, protocol, port).
        self.listeners: dict[Address, _Listener] = {}
        self._wanted: dict[str, dict[Address, Backends]] = {}
        self._services: Informer | None = None
        self._slices: Informer | None = None
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._applied = asyncio.Condition()

    async def wait_for(self, predicate: Any) -> None:
        """Return once ``predicate()`` holds, checked after every pass."""
        async with self._applied:
            await self._applied.wait_for(predicate)

    def _mark(self, key: str | None) -> None:
        if key is not None:
            self._dirty.add(key)
            self._wake.set()

    def _slice_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self._mark(service_key_of_slice(old))
        self._mark(service_key_of_slice(new))

    async def run(self, client: ApiClient, *, informers: InformerFactory | None = None,
                  started: asyncio.Event | None = None) -> None:
        """Relay until cancelled (``informers``: a shared factory the caller runs)."""
        factory = informers if informers is not None else InformerFactory(client)
        self._services = factory.informer(SERVICES)
        self._slices = factory.informer(ENDPOINTSLICES)
        self._slices.add_index(SLICE_INDEX, lambda s: [k] if (k := service_key_of_slice(s)) else [])
        self._services.add_handler(on_add=lambda s: self._mark(object_key(s)),
                                   on_update=lambda _o, s: self._mark(object_key(s)),
                                   on_delete=lambda s: self._mark(object_key(s)))
        self._slices.add_handler(on_add=lambda s: self._mark(service_key_of_slice(s)),
                                 on_update=self._slice_update,
                                 on_delete=lambda s: self._mark(service_key_of_slice(s)))
        try:
            async with asyncio.TaskGroup() as group:
                if informers is None:
                    group.create_task(factory.run(), name="userspace-proxy-informers")
                try:
                    await asyncio.gather(self._services.wait_synced(), self._slices.wait_synced())
                    await self._sync()
                    if started is not None:
                        started.set()
                    swept = time.monotonic()
                    while True:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), UDP_IDLE / 2)
                        if time.monotonic() - swept >= UDP_IDLE / 2:
                            swept = time.monotonic()
                            for listener in self.listeners.values():
                                listener.sweep()
                        if self._wake.is_set():
                            self._wake.clear()
                            await self._sync()
                finally:
                    if informers is None:
                        factory.stop()
        finally:
            for listener in list(self.listeners.values()):
                await listener.close()
            self.listeners.clear()

    def _backends(self, port: ServicePort) -> Backends:
        local = port.external_local
        endpoints = port.local_endpoints(self.node_name) if local else port.cluster_endpoints()
        return Backends(endpoints=endpoints, affinity_timeout=port.affinity_timeout)

    async def _sync(self) -> None:
        assert self._services is not None and self._slices is not None
        dirty, self._dirty = self._dirty, set()
        for key in dirty:
            namespace, _, name = key.partition("/")
            service = self._services.get_by(namespace, name)
            wanted: dict[Address, Backends] = {}
            if service is not None:
                for port in service_ports(service, self._slices.by_index(SLICE_INDEX, key)):
                    if port.protocol == "sctp":
                        continue
                    backends = self._backends(port)
                    addresses = [(ip, port.node_port) for ip in self.node_ips if port.node_port]
                    addresses += [(ip, port.port) for ip in port.external_ips if ip in self.node_ips]
                    for ip, number in addresses:
                        wanted[(ip, port.protocol, number)] = backends
            self._wanted[key] = wanted
            if not wanted:
                del self._wanted[key]
        await self._reconcile_listeners()
        async with self._applied:
            self._applied.notify_all()

    async def _reconcile_listeners(self) -> None:
        desired: dict[Address, Backends] = {}
        for key in sorted(self._wanted):
            for address, backends in self._wanted[key].items():
                if backends.endpoints:
                    desired.setdefault(address, backends)        # first Service keeps a port
        for address in [a for a in self.listeners if a not in desired]:
            await self.listeners.pop(address).close()
        for address, backends in desired.items():
            listener = self.listeners.get(address)
            if listener is not None:
                backends.sticky = listener.backends.sticky
                listener.backends = backends
                continue
            listener = _Listener(address, backends)
            try:
                await listener.start()
            except OSError as error:
                log.warning("userspace proxy: can not listen on %s:%s/%s: %s", address[0], address[2],
                            address[1], error)
                continue
            self.listeners[address] = listener


async def run_userspace_proxy(client: ApiClient, *, node_name: str,
                              node_ips: Sequence[str] = ("127.0.0.1",),
                              informers: InformerFactory | None = None,
                              started: asyncio.Event | None = None) -> None:
    """Run the userspace relay of ``node_name`` until cancelled (see module docstring)."""
    await UserspaceProxy(node_name=node_name, node_ips=node_ips).run(
        client, informers=informers, started=started)
