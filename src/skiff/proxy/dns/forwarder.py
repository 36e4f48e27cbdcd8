"""Forwarding names outside the cluster zone to an upstream resolver.

Pods ask the cluster DNS for everything (``dnsPolicy: ClusterFirst``); names
it does not own go to the resolvers the host uses, as CoreDNS's ``forward .
/etc/resolv.conf`` does::

    client query (id 7) ──▶ Forwarder.query(packet)
                               │ fresh random id (no two in flight alike)
                               ▼
            UDP: one connected socket per upstream   TCP: one connection per query
                               │ reply matched by id; first upstream that answers
                               ▼ within the timeout wins, else the next one
    reply with id 7 restored ◀─┘   (None when every upstream failed: SERVFAIL)

The upstream is someone else's server: nothing here retries in a loop or
sends more than one copy per upstream, and tests point the forwarder at a
fake upstream on 127.0.0.1 (the ``upstreams`` argument) - never at the host's.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import cast

log = logging.getLogger(__name__)

Address = tuple[str, int]
DEFAULT_TIMEOUT = 2.0


def upstreams_from_resolv_conf(path: str | Path = "/etc/resolv.conf") -> list[Address]:
    """The ``nameserver`` entries of a resolv.conf, as (address, 53)."""
    out: list[Address] = []
    try:
        text = Path(path).read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            out.append((parts[1].split("%", 1)[0], 53))
    return out


class _UpstreamSocket(asyncio.DatagramProtocol):
    """A connected UDP socket to one upstream; replies resolve futures by query id."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.waiting: dict[int, asyncio.Future[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        if len(data) < 12:
            return
        future = self.waiting.pop(struct.unpack_from("!H", data)[0], None)
        if future is not None and not future.done():
            future.set_result(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("upstream socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        for future in self.waiting.values():
            if not future.done():
                future.set_exception(ConnectionError("upstream socket closed"))
        self.waiting.clear()


class Forwarder:
    """Sends queries to the upstream resolvers in order (see module docstring)."""

    def __init__(self, upstreams: Sequence[Address], *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.upstreams = list(upstreams)
        self.timeout = timeout
        self._sockets: dict[Address, _UpstreamSocket] = {}
        self._opening: dict[Address, asyncio.Lock] = {}
        #: How many queries went upstream (tests check that cluster names never do).
        self.forwarded = 0

    async def query(self, packet: bytes, *, tcp: bool = False) -> bytes | None:
        """The upstream's reply to ``packet`` (with its original id), or ``None``."""
        if len(packet) < 12 or not self.upstreams:
            return None
        original = packet[:2]
        for upstream in self.upstreams:
            self.forwarded += 1
            reply: bytes | None
            try:
                if tcp:
                    reply = await asyncio.wait_for(self._over_tcp(upstream, packet), self.timeout)
                else:
                    reply = await self._over_udp(upstream, packet)
            except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError) as e:
                log.debug("upstream %s:%s failed: %s", *upstream, e)
                continue
            if reply is not None:
                return original + reply[2:]
        return None

    async def _socket(self, upstream: Address) -> _UpstreamSocket:
        sock = self._sockets.get(upstream)
        if sock is not None and sock.transport is not None and not sock.transport.is_closing():
            return sock
        lock = self._opening.setdefault(upstream, asyncio.Lock())
        async with lock:
            sock = self._sockets.get(upstream)
            if sock is None or sock.transport is None or sock.transport.is_closing():
                loop = asyncio.get_running_loop()
                _, sock = await loop.create_datagram_endpoint(_UpstreamSocket,
                                                              remote_addr=upstream)
                self._sockets[upstream] = sock
            return sock

    async def _over_udp(self, upstream: Address, packet: bytes) -> bytes:
        sock = await self._socket(upstream)
        ident = random.randrange(0x10000)
        while ident in sock.waiting:
            ident = random.randrange(0x10000)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        sock.waiting[ident] = future
        try:
            assert sock.transport is not None
            sock.transport.sendto(struct.pack("!H", ident) + packet[2:])
            return await asyncio.wait_for(future, self.timeout)
        finally:
            if sock.waiting.get(ident) is future:
                del sock.waiting[ident]

    async def _over_tcp(self, upstream: Address, packet: bytes) -> bytes:
        reader, writer = await asyncio.open_connection(*upstream)
        try:
            writer.write(struct.pack("!H", len(packet)) + packet)
            await writer.drain()
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            return await reader.readexactly(size)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    def close(self) -> None:
        for sock in self._sockets.values():
            if sock.transport is not None:
                sock.transport.close()
        self._sockets.clear()
