"""Kubernetes' websocket channel protocol: many byte streams over one websocket.

Every binary message starts with a channel number; the rest is that channel's data::

    exec / attach                       port-forward (v4.channel.k8s.io, Python client)
      0  stdin     client -> server       2i    data  of the i-th requested port
      1  stdout    server -> client       2i+1  error of the i-th requested port
      2  stderr    server -> client       (the first message on each channel is the port
      3  error     one Status, then close  number, 2 bytes little-endian)
      4  resize    {"Width":..,"Height":..}
    255  close     [255, ch]: no more data on ``ch`` (v5 only; kubectl closes stdin so)

Subprotocols (``Sec-WebSocket-Protocol``): ``v5.channel.k8s.io`` (kubectl 1.29+,
adds the close signal) and ``v4.channel.k8s.io``; port-forward also accepts
``SPDY/3.1+portforward.k8s.io``, SPDY frames carried in binary messages
(:class:`WebSocketBytes` turns such a websocket back into a byte stream).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web

from ..runtime.interface import Stream
from .remotecommand import ResizeDecoder, Status

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
EXEC_PROTOCOLS = (V5, V4)
PORT_FORWARD_PROTOCOLS = (SPDY_TUNNEL, V4)

STDIN_QUEUE = 16          # chunks of stdin buffered before the websocket stops being read


def frame(channel: int, data: bytes = b"") -> bytes:
    return bytes((channel,)) + data


def unframe(message: bytes) -> tuple[int, bytes]:
    if not message:
        raise ValueError("an empty channel message")
    return message[0], message[1:]


def offered_protocols(request: web.Request) -> list[str]:
    raw = request.headers.getall("Sec-WebSocket-Protocol", [])
    return [p.strip() for value in raw for p in value.split(",") if p.strip()]


def choose(offered: list[str], supported: tuple[str, ...]) -> str | None:
    """The first protocol the client offered that we speak (the client's preference wins)."""
    return next((p for p in offered if p in supported), None)


async def accept(request: web.Request, protocols: tuple[str, ...]) -> web.WebSocketResponse:
    """Complete the websocket handshake (the caller checked a protocol matches)."""
    ws = web.WebSocketResponse(protocols=protocols, autoping=True, max_msg_size=16 << 20)
    await ws.prepare(request)
    return ws


async def send(ws: web.WebSocketResponse, channel: int, data: bytes = b"") -> None:
    if ws.closed:
        raise ConnectionResetError("the websocket is closed")
    await ws.send_bytes(frame(channel, data))


class WebSocketStreams:
    """An exec/attach client over websocket channels (implements ``ClientStreams``)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.v5 = ws.ws_protocol == V5
        self._stdin: asyncio.Queue[bytes] = asyncio.Queue(STDIN_QUEUE)
        self._resizes: asyncio.Queue[tuple[int, int] | None] = asyncio.Queue()
        self._decoder = ResizeDecoder()
        self._gone = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type != WSMsgType.BINARY or not message.data:
                    continue
                channel, payload = unframe(message.data)
                if channel == STDIN and payload:
                    await self._stdin.put(payload)
                elif channel == RESIZE:
                    for size in self._decoder.feed(payload):
                        self._resizes.put_nowait(size)
                elif channel == CLOSE and self.v5 and payload[:1] == bytes((STDIN,)):
                    await self._stdin.put(b"")
        finally:
            self._gone.set()
            self._resizes.put_nowait(None)
            try:
                self._stdin.put_nowait(b"")
            except asyncio.QueueFull:
                pass

    async def read_stdin(self) -> bytes:
        if self._gone.is_set() and self._stdin.empty():
            return b""
        return await self._stdin.get()

    async def next_resize(self) -> tuple[int, int] | None:
        return await self._resizes.get()

    async def send(self, stream: Stream, data: bytes) -> None:
        await send(self.ws, STDOUT if stream is Stream.STDOUT else STDERR, data)

    async def finish(self, status: Status) -> None:
        await send(self.ws, ERROR, json.dumps(status).encode())
        await self.close()

    async def close(self, code: int = 1000) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self.ws.close(code=code)

    async def wait_gone(self) -> None:
        await self._gone.wait()


class WebSocketBytes:
    """A websocket as a byte stream: binary messages in and out (a SPDY tunnel)."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def read(self) -> bytes:
        while True:
            message: Any = await self.ws.receive()
            if message.type == WSMsgType.BINARY:
                if message.data:
                    return bytes(message.data)
                continue
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                                WSMsgType.ERROR):
                return b""

    async def write(self, data: bytes) -> None:
        if self.ws.closed:
            raise ConnectionResetError("the websocket is closed")
        await self.ws.send_bytes(data)

    async def close(self) -> None:
        await self.ws.close()
