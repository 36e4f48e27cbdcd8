"""The server side of a SPDY connection, driven frame by frame through an in-memory channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from skiff.kubelet.streams.spdy import (DataFrame, Frame, FrameDecoder, FrameEncoder, GoAway, Ping,
                                        RstStatus, RstStream, SynReply, SynStream)
from skiff.kubelet.streams.spdy_connection import SpdyConnection, StreamClosed


class Pipe:
    """A ByteChannel whose other end is the test, speaking frames."""

    def __init__(self) -> None:
        self.inbound: asyncio.Queue[bytes] = asyncio.Queue()
        self.outbound: asyncio.Queue[bytes] = asyncio.Queue()
        self.encoder = FrameEncoder()
        self.decoder = FrameDecoder()
        self.received: list[Frame] = []
        self.closed = False

    async def read(self) -> bytes:
        return await self.inbound.get()

    async def write(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("closed")
        self.outbound.put_nowait(data)

    async def close(self) -> None:
        self.closed = True

    def send(self, *frames: Frame) -> None:
        self.inbound.put_nowait(b"".join(self.encoder.encode(f) for f in frames))

    def hang_up(self) -> None:
        self.inbound.put_nowait(b"")

    async def next_frame(self) -> Frame:
        while not self.received:
            self.received += self.decoder.feed(await asyncio.wait_for(self.outbound.get(), 5))
        return self.received.pop(0)


@pytest.fixture
async def conn() -> AsyncIterator[tuple[SpdyConnection, Pipe]]:
    pipe = Pipe()
    connection = SpdyConnection(pipe)
    runner = asyncio.ensure_future(connection.run())
    try:
        yield connection, pipe
    finally:
        pipe.hang_up()
        await asyncio.wait_for(runner, 5)


async def test_streams_are_answered_then_accepted(conn: tuple[SpdyConnection, Pipe]) -> None:
    connection, pipe = conn
    pipe.send(SynStream(1, {"streamtype": "error"}), SynStream(3, {"streamtype": "stdout"}))
    assert await pipe.next_frame() == SynReply(1, {})
    assert await pipe.next_frame() == SynReply(3, {})
    first, second = await connection.accept(), await connection.accept()
    assert first is not None and second is not None
    assert (first.id, first.header("StreamType"), second.id) == (1, "error", 3)


async def test_data_both_ways_and_half_close(conn: tuple[SpdyConnection, Pipe]) -> None:
    connection, pipe = conn
    pipe.send(SynStream(1, {"streamtype": "data"}), DataFrame(1, b"ping "), DataFrame(1, b"pong", fin=True))
    stream = await connection.accept()
    assert stream is not None
    assert await stream.read_all() == b"ping pong"
    assert stream.remote_closed
    await stream.write(b"x" * 70000)          # split into DATA frames of at most 32 KiB
    await stream.close()
    assert await pipe.next_frame() == SynReply(1, {})
    sizes = []
    while (frame := await pipe.next_frame()) != DataFrame(1, b"", fin=True):
        assert isinstance(frame, DataFrame) and frame.stream_id == 1 and not frame.fin
        sizes.append(len(frame.data))
    assert sizes == [32768, 32768, 4464]
    assert 1 not in connection.streams      # both halves closed: forgotten
    with pytest.raises(StreamClosed):
        await stream.write(b"more")


async def test_reset_ends_reads_and_refuses_writes(conn: tuple[SpdyConnection, Pipe]) -> None:
    connection, pipe = conn
    pipe.send(SynStream(1, {}))
    stream = await connection.accept()
    assert stream is not None
    reading = asyncio.ensure_future(stream.read())
    pipe.send(RstStream(1, RstStatus.CANCEL))
    assert await asyncio.wait_for(reading, 5) == b""
    assert stream.was_reset
    with pytest.raises(StreamClosed):
        await stream.write(b"late")


async def test_pings_from_the_client_are_answered(conn: tuple[SpdyConnection, Pipe]) -> None:
    _, pipe = conn
    pipe.send(Ping(1), Ping(2), Ping(3))     # even ids would be our own pings: not echoed
    assert await pipe.next_frame() == Ping(1)
    assert await pipe.next_frame() == Ping(3)


async def test_bad_stream_ids_are_refused(conn: tuple[SpdyConnection, Pipe]) -> None:
    connection, pipe = conn
    pipe.send(SynStream(2, {}), SynStream(5, {}), SynStream(3, {}))
    assert await pipe.next_frame() == RstStream(2, RstStatus.PROTOCOL_ERROR)   # even: ours to use
    assert await pipe.next_frame() == SynReply(5, {})
    assert await pipe.next_frame() == RstStream(3, RstStatus.REFUSED_STREAM)   # ids only grow
    stream = await connection.accept()
    assert stream is not None and stream.id == 5


async def test_after_goaway_no_new_streams_and_hang_up_ends_everything(
        conn: tuple[SpdyConnection, Pipe]) -> None:
    connection, pipe = conn
    pipe.send(SynStream(1, {}), GoAway(1), SynStream(3, {}))
    assert await pipe.next_frame() == SynReply(1, {})
    assert await pipe.next_frame() == RstStream(3, RstStatus.REFUSED_STREAM)
    stream = await connection.accept()
    assert stream is not None
    pipe.hang_up()
    assert await stream.read() == b""
    assert await connection.accept() is None
    await asyncio.wait_for(connection.ended.wait(), 5)


async def test_protocol_errors_end_the_connection_with_goaway(
        conn: tuple[SpdyConnection, Pipe]) -> None:
    connection, pipe = conn
    pipe.send(SynStream(1, {}))
    pipe.inbound.put_nowait(b"\x80\x02\x00\x06\x00\x00\x00\x04\x00\x00\x00\x01")  # SPDY/2
    assert await pipe.next_frame() == SynReply(1, {})
    assert await pipe.next_frame() == GoAway(1, 1)
    await asyncio.wait_for(connection.ended.wait(), 5)
