"""Taking over an HTTP connection after ``101 Switching Protocols`` (``Upgrade: SPDY/3.1``).

aiohttp upgrades connections to websockets only; for any other protocol the
handler answers 101 itself and then reads and writes the raw connection::

    handler ── upgrade(request, headers) ──▶ parser swapped for a raw feed, 101 sent
       │                                           │
       ├── conn.read()  ◀── bytes as they arrive ──┘ (reading pauses past READ_LIMIT)
       ├── conn.write() ──▶ straight to the transport (with backpressure)
       └── conn.close(); return conn.response   (aiohttp then closes the connection)

The feed is installed *before* the 101 goes out: a client starts talking the new
protocol as soon as it sees it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import Any

from aiohttp import web

READ_LIMIT = 1 << 20


class _RawFeed:
    """Stands in for aiohttp's payload parser: keeps what arrives for ``read``."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.eof = False
        self.paused = False
        self.readable = asyncio.Event()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.chunks.append(bytes(data))
            self.size += len(data)
            self.readable.set()
            if self.size > READ_LIMIT and not self.paused:
                self.paused = True
                self.transport.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self.eof = True
        self.readable.set()

    async def read(self) -> bytes:
        while not self.chunks:
            if self.eof:
                return b""
            self.readable.clear()
            await self.readable.wait()
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.size = 0
        if self.paused:
            self.paused = False
            if not self.transport.is_closing():
                self.transport.resume_reading()
        return data


class HijackedConnection:
    """The raw byte stream of an upgraded connection (a ``ByteChannel``)."""

    def __init__(self, request: web.BaseRequest, response: web.StreamResponse, feed: _RawFeed) -> None:
        self.request = request
        self.response = response
        self._feed = feed

    async def read(self) -> bytes:
        return await self._feed.read()

    async def write(self, data: bytes) -> None:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        await self.response.write(data)

    async def close(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.close()


async def upgrade(request: web.BaseRequest, headers: Mapping[str, str]) -> HijackedConnection:
    """Answer 101 with ``headers`` and hand back the raw connection."""
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away")
    response = web.StreamResponse(status=101, reason="Switching Protocols", headers=headers)
    response.force_close()
    feed = _RawFeed(transport)
    protocol: Any = request.protocol
    protocol.set_parser(feed)
    protocol.keep_alive(False)
    await response.prepare(request)
    return HijackedConnection(request, response, feed)
