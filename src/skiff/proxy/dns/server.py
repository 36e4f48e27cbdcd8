"""The cluster DNS server: UDP and TCP on one port, answers from the record table.

::

    run_dns(client) ─▶ informers (Services, EndpointSlices) ─▶ ClusterRecords
                          (synced before the port opens: no early NXDOMAINs)
    UDP datagram / TCP frame (2-byte length prefix, several per connection)
       │ scan the question (wire.parse_query)
       ├─ table hit ─────────────▶ header + question + precomputed body  (no await)
       │     UDP reply > 512 B (or the client's EDNS size, at most 1232 B):
       │     TC bit, no records: the client retries over TCP
       ├─ ExternalName CNAME ────▶ + the target's records: from the table when it
       │                            is a cluster name, else from the upstream
       └─ outside the zone ──────▶ Forwarder (upstream from /etc/resolv.conf or
                                   ``upstream=``); SERVFAIL if it does not answer

Cluster names are answered synchronously inside ``datagram_received``: no
task, no await, no per-query allocation beyond the reply bytes.  Only
forwarding runs as a task (held by the server and cancelled on close).

``await run_dns(...)`` returns a started :class:`DnsServer` (``.port``,
``.records``, ``close()``, ``async with``).  ``skiff up`` decides the listen
address; pods reach it through the kube-dns Service's cluster IP.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, cast

from ...client.factory import InformerFactory
from ...client.resources import ENDPOINTSLICES, SERVICES
from ...client.rest import ApiClient
from .forwarder import DEFAULT_TIMEOUT, Address, Forwarder, upstreams_from_resolv_conf
from .records import ClusterRecords
from .wire import (
    A, AAAA, CLASS_IN, CNAME, NOERROR, NOTIMP, OPCODE_MASK, REFUSED, SERVFAIL, Answer, Query,
    Record, WireError, error_reply, format_error, is_subdomain, parse_query, parse_records,
    question_packet, rehome, reply, rr, udp_limit,
)

log = logging.getLogger(__name__)

CLASS_ANY = 255
#: How many CNAME hops an ExternalName answer follows.
MAX_CHASE = 8
#: Tries to find one port free for both UDP and TCP.
BIND_ATTEMPTS = 20
#: A TCP client silent for this long is disconnected.
TCP_IDLE = 10.0


class DnsServer:
    """Answers DNS queries from a :class:`ClusterRecords` (see module docstring)."""

    def __init__(self, records: ClusterRecords, forwarder: Forwarder) -> None:
        self.records = records
        self.forwarder = forwarder
        self.host = ""
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._cleanup: list[Callable[[], None]] = []
        self._changed = asyncio.Event()
        records.on_change(self._changed.set)

    # -- answering ------------------------------------------------------------------------

    def respond(self, data: bytes, *, udp: bool) -> bytes | Query | None:
        """The reply now (bytes), a :class:`Query` that needs :meth:`respond_later`, or None (drop)."""
        query = parse_query(data)
        if query is None:
            return format_error(data)
        if query.flags & OPCODE_MASK:
            return error_reply(query, NOTIMP)
        if query.qclass != CLASS_IN and query.qclass != CLASS_ANY:
            return error_reply(query, REFUSED)
        answer = self.records.lookup(query.key, query.qtype)
        if answer is None or (answer.cname_target is not None and query.qtype != CNAME):
            return query
        return reply(query, answer, limit=udp_limit(query) if udp else None)

    async def respond_later(self, query: Query, data: bytes, *, udp: bool) -> bytes:
        """Forwarded names and ExternalName targets (may wait for the upstream)."""
        limit = udp_limit(query) if udp else None
        answer = self.records.lookup(query.key, query.qtype)
        if answer is None:
            upstream = await self.forwarder.query(data, tcp=not udp)
            return upstream if upstream is not None else error_reply(query, SERVFAIL)
        return reply(query, await self._chase(query, answer), limit=limit)

    async def _chase(self, query: Query, first: Answer) -> Answer:
        """The CNAME chain of an ExternalName plus the final target's records."""
        body = first.body
        count, rcode = first.answers, NOERROR
        target = first.cname_target
        for _ in range(MAX_CHASE):
            if target is None:
                break
            if is_subdomain(target, self.records.zone_wire):
                answer = self.records.lookup(target, query.qtype)
                if answer is None:
                    break
                rcode = answer.rcode
                if answer.answers:
                    body += rehome(answer.body, answer.answers, target)
                    count += answer.answers
                target = answer.cname_target
                continue
            if query.qtype not in (A, AAAA):
                break
            found = await self._ask_upstream(target, query.qtype)
            if found is not None:
                rcode, records = found
                body += b"".join(r.encode() for r in records)
                count += len(records)
            break
        return Answer(rcode, count, 0, 0, body)

    async def _ask_upstream(self, name: bytes, qtype: int) -> tuple[int, list[Record]] | None:
        packet = question_packet(random.randrange(0x10000), name, qtype, edns=1232)
        answer = await self.forwarder.query(packet)
        if answer is None:
            return None
        try:
            return parse_records(answer)
        except (WireError, struct.error, IndexError):
            return None

    # -- transports ---------------------------------------------------------------------

    async def start(self, listen: Address) -> None:
        """Listen on UDP and TCP at ``listen`` (port 0: one free port for both)."""
        host, port = listen
        for attempt in range(BIND_ATTEMPTS):
            tcp = await asyncio.start_server(self._tcp_client, host, port)
            bound = tcp.sockets[0].getsockname()[1]
            try:
                transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(host, bound))
            except OSError:
                tcp.close()
                await tcp.wait_closed()
                if port or attempt == BIND_ATTEMPTS - 1:
                    raise
                continue  # the free TCP port is taken for UDP: pick another
            self._tcp, self._udp = tcp, transport
            self.host, self.port = host, bound
            break
        # Never forward to ourselves.
        self.forwarder.upstreams = [u for u in self.forwarder.upstreams
                                    if u != (self.host, self.port)]

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tcp_client(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2),
                                                                  TCP_IDLE))[0]
                data = await reader.readexactly(size)
                out = self.respond(data, udp=False)
                if isinstance(out, Query):
                    out = await self.respond_later(out, data, udp=False)
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    # -- lifecycle ---------------------------------------------------------------------

    async def wait_changed(self, version: int, timeout: float | None = None) -> int:
        """Wait until the records are newer than ``version``; the current version."""
        async def wait() -> None:
            while self.records.version <= version:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(wait(), timeout)
        return self.records.version

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for writer in list(self._writers):
            writer.close()
        for cleanup in reversed(self._cleanup):
            cleanup()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
        self.forwarder.close()

    async def __aenter__(self) -> "DnsServer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        out = self.server.respond(data, udp=True)
        if out is None:
            return
        if isinstance(out, bytes):
            assert self.transport is not None
            self.transport.sendto(out, addr)
            return
        self.server.spawn(self._later(out, data, addr))

    async def _later(self, query: Query, data: bytes, addr: Address) -> None:
        out = await self.server.respond_later(query, data, udp=True)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("dns udp: %s", exc)


async def run_dns(client: ApiClient, *, listen: Address = ("127.0.0.1", 0),
                  upstream: Sequence[Address] | None = None,
                  cluster_domain: str = "cluster.local",
                  informers: InformerFactory | None = None, ttl: int = 5,
                  resolv_conf: str = "/etc/resolv.conf",
                  forward_timeout: float = DEFAULT_TIMEOUT) -> DnsServer:
    """Start the cluster DNS; returns once its caches are synced and it listens.

    ``upstream``: where names outside the zone go (default: the nameservers of
    ``resolv_conf``; ``[]`` answers them SERVFAIL), each tried for
    ``forward_timeout`` seconds.  ``informers``: a shared
    factory that is running (or will be run by the caller); by default the
    server runs its own and stops it on :meth:`DnsServer.close`.
    """
    records = ClusterRecords(cluster_domain, ttl=ttl)
    upstreams = list(upstream) if upstream is not None else upstreams_from_resolv_conf(resolv_conf)
    server = DnsServer(records, Forwarder(upstreams, timeout=forward_timeout))
    factory = informers if informers is not None else InformerFactory(client)
    services = factory.informer(SERVICES)
    slices = factory.informer(ENDPOINTSLICES)
    services.add_handler(on_add=records.set_service,
                         on_update=lambda _old, new: records.set_service(new),
                         on_delete=records.delete_service)
    slices.add_handler(on_add=records.set_slice,
                       on_update=lambda _old, new: records.set_slice(new),
                       on_delete=records.delete_slice)
    if informers is None:
        server.spawn(factory.run())
        server._cleanup.append(factory.stop)
    try:
        await asyncio.gather(services.wait_synced(), slices.wait_synced())
        await server.start(listen)
    except BaseException:
        if informers is None:
            factory.stop()
        await server.close()
        raise
    return server
