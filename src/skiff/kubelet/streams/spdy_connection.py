"""The server side of a SPDY/3.1 connection: streams the client opens, served concurrently.

Kubernetes' streaming clients (client-go over moby/spdystream) open every
stream themselves and never expect the server to open one::

    client                                   server (this module)
      SYN_STREAM id=1 {streamtype: error}  ─▶  new SpdyStream, SYN_REPLY id=1  ─▶ accept()
      SYN_STREAM id=3 {streamtype: stdout} ─▶  ...
      DATA id=1 FIN (nothing to say)       ─▶  stream 1: remote half closed
                                           ◀─  DATA id=3 "output"   (stream.write)
                                           ◀─  DATA id=3 FIN        (stream.close)
      RST_STREAM id=3                      ─▶  stream 3 reset: reads end, writes fail
      PING id=1                            ─▶  PING id=1 (answered)
      GOAWAY / end of the byte stream      ─▶  accept() returns None, every stream ends

Bytes come and go through a :class:`ByteChannel`: a hijacked HTTP connection
(``Upgrade: SPDY/3.1``) or websocket binary messages (``SPDY/3.1+portforward.k8s.io``).

Flow control: like spdystream, WINDOW_UPDATE and SETTINGS are ignored; instead
a stream that buffers more than :data:`STREAM_BUFFER` unread bytes pauses the
whole connection's reading until its reader catches up.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from .spdy import (DataFrame, Frame, FrameDecoder, FrameEncoder, GoAway, GoAwayStatus, Headers,
                   HeadersFrame, Ping, ProtocolError, RstStatus, RstStream, SynReply, SynStream)

log = logging.getLogger(__name__)

STREAM_BUFFER = 1 << 20
DATA_CHUNK = 32 * 1024


class ByteChannel(Protocol):
    """A reliable byte stream both ways (a socket, or a websocket carrying bytes)."""

    async def read(self) -> bytes: ...        # b"" once the peer is gone
    async def write(self, data: bytes) -> None: ...
    async def close(self) -> None: ...


class StreamClosed(Exception):
    """Writing to a stream the client reset, or this side already finished."""


class SpdyStream:
    """One stream the client opened: a byte pipe each way, with half-close."""

    def __init__(self, connection: "SpdyConnection", stream_id: int, headers: Headers) -> None:
        self.connection = connection
        self.id = stream_id
        self.headers = headers
        self.remote_closed = False     # the client sent FIN
        self.local_closed = False      # we sent FIN
        self.was_reset = False
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._readable = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    async def read(self) -> bytes:
        """The next chunk the client sent; b"" after its FIN or a reset."""
        while not self._chunks:
            if self.remote_closed or self.was_reset:
                self.connection._forget_if_done(self)
                return b""
            self._readable.clear()
            await self._readable.wait()
        data = self._chunks.popleft()
        self._buffered -= len(data)
        if self._buffered <= STREAM_BUFFER:
            self._drained.set()
        return data

    async def read_all(self) -> bytes:
        parts = []
        while chunk := await self.read():
            parts.append(chunk)
        return b"".join(parts)

    async def write(self, data: bytes) -> None:
        if self.was_reset or self.local_closed:
            raise StreamClosed(f"stream {self.id} is closed")
        view = memoryview(data)
        while view:
            await self.connection.send(DataFrame(self.id, bytes(view[:DATA_CHUNK])))
            view = view[DATA_CHUNK:]

    async def close(self) -> None:
        """Finish our half (FIN); the client may still send."""
        if self.was_reset or self.local_closed:
            return
        self.local_closed = True
        await self.connection.send(DataFrame(self.id, b"", fin=True))
        self.connection._forget_if_done(self)

    async def reset(self, status: int = RstStatus.CANCEL) -> None:
        if self.was_reset:
            return
        self._on_reset()
        await self.connection.send(RstStream(self.id, status))

    # -- fed by the connection ------------------------------------------------------------

    async def _feed(self, data: bytes, fin: bool) -> None:
        if self.was_reset:
            return
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
        if fin:
            self.remote_closed = True
            self.connection._forget_if_done(self)
        self._readable.set()
        if self._buffered > STREAM_BUFFER:
            self._drained.clear()
            await self._drained.wait()

    def _on_reset(self) -> None:
        self.was_reset = True
        self._chunks.clear()
        self._buffered = 0
        self._readable.set()
        self._drained.set()
        self.connection.streams.pop(self.id, None)

    def _on_connection_end(self) -> None:
        self.remote_closed = True
        self._readable.set()
        self._drained.set()


class SpdyConnection:
    """Run :meth:`run` in a task; take new streams with :meth:`accept`."""

    def __init__(self, channel: ByteChannel) -> None:
        self.channel = channel
        self.streams: dict[int, SpdyStream] = {}
        self._encoder = FrameEncoder()
        self._decoder = FrameDecoder()
        self._incoming: asyncio.Queue[SpdyStream | None] = asyncio.Queue()
        self._write_lock = asyncio.Lock()
        self._last_stream_id = 0
        self._going_away = False
        self.ended = asyncio.Event()

    async def send(self, frame: Frame) -> None:
        async with self._write_lock:   # header compression state follows the write order
            await self.channel.write(self._encoder.encode(frame))

    async def accept(self) -> SpdyStream | None:
        """The next stream the client opened (already answered); None once the connection ended."""
        stream = await self._incoming.get()
        if stream is None:
            self._incoming.put_nowait(None)   # later callers see the end too
        return stream

    async def run(self) -> None:
        """Read frames until the client goes away; then end every stream."""
        try:
            while data := await self.channel.read():
                for frame in self._decoder.feed(data):
                    await self._dispatch(frame)
        except ProtocolError as err:
            log.info("closing a SPDY connection: %s", err)
            try:
                await self.send(GoAway(self._last_stream_id, GoAwayStatus.PROTOCOL_ERROR))
            except (ConnectionError, RuntimeError):
                pass
        except ConnectionError:
            pass
        finally:
            for stream in list(self.streams.values()):
                stream._on_connection_end()
            self._incoming.put_nowait(None)
            self.ended.set()

    async def close(self) -> None:
        """Say GOAWAY and drop the connection."""
        try:
            await self.send(GoAway(self._last_stream_id, GoAwayStatus.OK))
        except (ConnectionError, RuntimeError):
            pass
        await self.channel.close()

    async def _dispatch(self, frame: Frame) -> None:
        if isinstance(frame, DataFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                await stream._feed(frame.data, frame.fin)
        elif isinstance(frame, SynStream):
            await self._open(frame)
        elif isinstance(frame, RstStream):
            stream = self.streams.get(frame.stream_id)
            if stream is not None:
                stream._on_reset()
        elif isinstance(frame, Ping):
            if frame.ping_id % 2 == 1:     # the client's ping: answer it (ours would be even)
                await self.send(frame)
        elif isinstance(frame, GoAway):
            self._going_away = True
        elif isinstance(frame, HeadersFrame):
            stream = self.streams.get(frame.stream_id)
            if stream is not None and frame.fin:
                await stream._feed(b"", True)
        # SETTINGS, WINDOW_UPDATE, SYN_REPLY (we open nothing): nothing to do

    async def _open(self, frame: SynStream) -> None:
        sid = frame.stream_id
        if self._going_away or sid % 2 == 0 or sid <= self._last_stream_id:
            await self.send(RstStream(sid, RstStatus.PROTOCOL_ERROR if sid % 2 == 0
                                      else RstStatus.REFUSED_STREAM))
            return
        self._last_stream_id = sid
        stream = SpdyStream(self, sid, frame.headers)
        stream.remote_closed = frame.fin
        self.streams[sid] = stream
        await self.send(SynReply(sid, {}))
        self._incoming.put_nowait(stream)

    def _forget_if_done(self, stream: SpdyStream) -> None:
        if stream.local_closed and stream.remote_closed and not stream._chunks:
            self.streams.pop(stream.id, None)
