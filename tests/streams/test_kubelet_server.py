"""The kubelet streaming server over HTTP, against a scripted runtime (no containers).

Exec is checked on both carriers (websocket channels v5/v4, raw SPDY after ``Upgrade:
SPDY/3.1``) with the bytes a client would send; logs against records the runtime
hands out; the errors a kubelet answers before upgrading.  Port-forward, which needs
a network namespace, is in test_port_forward.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from skiff.kubelet.runtime.interface import InvalidState, NotFound, Stream
from skiff.kubelet.runtime.logs import LogRecord
from skiff.kubelet.server import KubeletServer
from skiff.kubelet.streams import channels
from skiff.kubelet.streams.spdy import DataFrame, FrameDecoder, FrameEncoder, SynReply, SynStream


class ScriptedSession:
    """``cmd a b``: stdout "a b", stderr "!", exit 0; ``exit N``: exit N; ``upper``: stdin
    upper-cased once it is closed; ``sh``: prints every resize as ``WxH``, exits on ``q``."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.queue: asyncio.Queue[tuple[Stream, bytes] | None] = asyncio.Queue()
        self.stdin = bytearray()
        self.code = 0
        self.closed = False
        if command[0] == "cmd":
            self._emit((Stream.STDOUT, " ".join(command[1:]).encode()), (Stream.STDERR, b"!"), None)
        elif command[0] == "exit":
            self.code = int(command[1])
            self._emit(None)

    def _emit(self, *items: tuple[Stream, bytes] | None) -> None:
        for item in items:
            self.queue.put_nowait(item)

    async def write(self, data: bytes) -> None:
        self.stdin += data
        if self.command[0] == "sh" and b"q" in data:
            self._emit(None)

    async def close_stdin(self) -> None:
        if self.command[0] == "upper":
            self._emit((Stream.STDOUT, bytes(self.stdin).upper()), None)

    async def output(self) -> AsyncIterator[tuple[Stream, bytes]]:
        while (item := await self.queue.get()) is not None:
            yield item

    async def resize(self, columns: int, rows: int) -> None:
        self._emit((Stream.STDOUT, f"{columns}x{rows}".encode()))

    async def wait(self) -> int:
        return self.code

    async def close(self) -> None:
        self.closed = True


class ScriptedRuntime:
    def __init__(self) -> None:
        self.sessions: list[ScriptedSession] = []
        self.records: dict[str, list[LogRecord]] = {}
        self.follow_queue: asyncio.Queue[LogRecord | None] = asyncio.Queue()
        self.log_calls: list[dict[str, Any]] = []

    async def status(self, container_id: str) -> None:
        if container_id not in ("c1", "c0", "stopped"):
            raise NotFound(container_id)

    async def logs(self, container_id: str, *, follow: bool = False, tail_lines: int | None = None,
                   since: datetime | None = None) -> AsyncIterator[LogRecord]:
        self.log_calls.append({"id": container_id, "follow": follow, "tail": tail_lines, "since": since})
        records = self.records.get(container_id, [])
        for record in records[-tail_lines:] if tail_lines else records:
            yield record
        while follow and (record := await self.follow_queue.get()) is not None:
            yield record

    async def exec(self, container_id: str, command: list[str], *, stdin: bool = False,
                   tty: bool = False) -> ScriptedSession:
        if container_id == "stopped":
            raise InvalidState("container is not running")
        self.sessions.append(ScriptedSession(command))
        return self.sessions[-1]

    async def attach(self, container_id: str, *, stdin: bool = False) -> ScriptedSession:
        self.sessions.append(ScriptedSession(["exit", "7"]))
        return self.sessions[-1]


class Locator:
    async def find(self, namespace: str, pod: str, container: str, *,
                   previous: bool = False) -> str | None:
        if (namespace, pod) != ("ns", "web"):
            return None
        ids = {"c": "c0" if previous else "c1", "down": "stopped"}
        return ids.get(container) if not previous or container == "c" else None

    async def pod_netns(self, namespace: str, pod: str) -> Path | None:
        return None


def record(second: int, text: str) -> LogRecord:
    return LogRecord(f"2024-05-01T12:00:{second:02d}.250000000Z", "stdout", False, text.encode())


@pytest.fixture
async def runtime() -> ScriptedRuntime:
    return ScriptedRuntime()


@pytest.fixture
async def client(runtime: ScriptedRuntime) -> AsyncIterator[TestClient]:
    server = KubeletServer(runtime, Locator())  # type: ignore[arg-type]
    test_client = TestClient(TestServer(server.make_app()))
    await test_client.start_server()
    try:
        yield test_client
    finally:
        await test_client.close()


async def read_channels(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict[int, bytes], int | None]:
    got: dict[int, bytes] = {}
    async for message in ws:
        assert message.type == aiohttp.WSMsgType.BINARY
        got[message.data[0]] = got.get(message.data[0], b"") + message.data[1:]
    return got, ws.close_code


# -- logs -----------------------------------------------------------------------------------


async def test_logs_with_options(client: TestClient, runtime: ScriptedRuntime) -> None:
    runtime.records["c1"] = [record(1, "one"), record(2, "two"), record(3, "three")]
    resp = await client.get("/containerLogs/ns/web/c")
    assert resp.status == 200 and resp.content_type == "text/plain"
    assert await resp.text() == "one\ntwo\nthree\n"
    resp = await client.get("/containerLogs/ns/web/c?tailLines=2&timestamps=true&limitBytes=40")
    assert await resp.text() == "2024-05-01T12:00:02.25Z two\n2024-05-01T1"   # 40 bytes
    assert runtime.log_calls[-1]["tail"] == 2
    await client.get("/containerLogs/ns/web/c?sinceTime=2024-05-01T12:00:02Z")
    assert runtime.log_calls[-1]["since"].isoformat() == "2024-05-01T12:00:02+00:00"


async def test_logs_previous_and_errors(client: TestClient, runtime: ScriptedRuntime) -> None:
    runtime.records["c0"] = [record(0, "before the restart")]
    resp = await client.get("/containerLogs/ns/web/c?previous=true&follow=true")
    assert await resp.text() == "before the restart\n"
    assert runtime.log_calls[-1] == {"id": "c0", "follow": False, "tail": None, "since": None}
    resp = await client.get("/containerLogs/ns/web/side?previous=true")
    assert (resp.status, await resp.text()) == (
        400, 'previous terminated container "side" in pod "web" not found')
    resp = await client.get("/containerLogs/ns/web/side")
    assert (resp.status, await resp.text()) == (400, 'container "side" in pod "web" is not available')
    resp = await client.get("/containerLogs/ns/web/c?tailLines=-1")
    assert resp.status == 400 and "tailLines" in await resp.text()


async def test_follow_streams_lines_as_they_come(client: TestClient, runtime: ScriptedRuntime) -> None:
    runtime.records["c1"] = [record(1, "first")]
    resp = await client.get("/containerLogs/ns/web/c?follow=true")
    assert await resp.content.readline() == b"first\n"
    runtime.follow_queue.put_nowait(record(2, "second"))
    assert await resp.content.readline() == b"second\n"
    runtime.follow_queue.put_nowait(None)      # the container exited
    assert await resp.content.read() == b""


# -- exec over websocket channels ---------------------------------------------------------


async def test_exec_websocket_v5(client: TestClient, runtime: ScriptedRuntime) -> None:
    async with client.ws_connect("/exec/ns/web/c?command=cmd&command=hi&output=1&error=1",
                                 protocols=("v5.channel.k8s.io",)) as ws:
        assert ws.protocol == "v5.channel.k8s.io"
        got, code = await read_channels(ws)
    assert code == 1000
    assert got == {1: b"hi", 2: b"!", 3: b'{"metadata": {}, "status": "Success"}'}


async def test_exec_websocket_stdin_close_and_exit_code(client: TestClient) -> None:
    async with client.ws_connect("/exec/ns/web/c?command=upper&input=1&output=1",
                                 protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_bytes(b"\x00hello ")
        await ws.send_bytes(b"\x00world")
        await ws.send_bytes(b"\xff\x00")       # v5: stdin is closed
        got, _ = await read_channels(ws)
    assert got[1] == b"HELLO WORLD"
    async with client.ws_connect("/exec/ns/web/c?command=exit&command=3&output=1",
                                 protocols=("v4.channel.k8s.io",)) as ws:
        got, code = await read_channels(ws)
    status = json.loads(got[3])
    assert code == 1000 and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


async def test_exec_with_a_terminal_gets_resizes(client: TestClient, runtime: ScriptedRuntime) -> None:
    async with client.ws_connect("/exec/ns/web/c?command=sh&input=1&output=1&tty=1",
                                 protocols=("v5.channel.k8s.io",)) as ws:
        await ws.send_bytes(b'\x04{"Width":120,"Height":40}\n')
        first = await ws.receive_bytes()
        await ws.send_bytes(b"\x00q")
        got, code = await read_channels(ws)
    assert first == b"\x01120x40"
    assert code == 1000 and set(got) == {3}
    assert runtime.sessions[-1].closed


async def test_attach_reports_success(client: TestClient) -> None:
    async with client.ws_connect("/attach/ns/web/c?output=1&error=1",
                                 protocols=("v5.channel.k8s.io",)) as ws:
        got, _ = await read_channels(ws)
    assert json.loads(got[3]) == {"metadata": {}, "status": "Success"}


async def test_exec_in_a_stopped_container_is_an_error_status(client: TestClient) -> None:
    async with client.ws_connect("/exec/ns/web/down?command=ls&output=1",
                                 protocols=("v5.channel.k8s.io",)) as ws:
        got, _ = await read_channels(ws)
    status = json.loads(got[3])
    assert status["reason"] == "InternalError"
    assert status["message"] == ("Internal error occurred: error executing command in container: "
                                 "container is not running")


async def test_errors_before_the_upgrade(client: TestClient) -> None:
    resp = await client.get("/exec/ns/web/c?command=ls&output=1")
    assert (resp.status, await resp.text()) == (400, "Upgrade request required")
    resp = await client.get("/exec/ns/web/nope?command=ls&output=1",
                            headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"})
    assert (resp.status, await resp.text()) == (404, 'container not found ("nope")')
    resp = await client.get("/exec/ns/web/c?output=1", headers={"Upgrade": "websocket"})
    assert (resp.status, await resp.text()) == (400, "you must specify at least 1 command")
    resp = await client.post("/exec/ns/web/c?command=ls&output=1", headers={
        "Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v1.channel.k8s.io"})
    assert resp.status == 403
    assert resp.headers.getall("X-Accepted-Stream-Protocol-Versions") == ["v4.channel.k8s.io"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await client.ws_connect("/exec/ns/web/c?command=ls&output=1", protocols=("base64.channel.k8s.io",))
    assert err.value.status == 400


# -- exec over SPDY ---------------------------------------------------------------------------


async def test_exec_over_spdy(client: TestClient) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(b"POST /exec/ns/web/c?command=upper&input=1&output=1&error=1 HTTP/1.1\r\n"
                     b"Host: kubelet\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
                     b"X-Stream-Protocol-Version: v5.channel.k8s.io\r\n"
                     b"X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n")
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        assert head.startswith("HTTP/1.1 101 Switching Protocols\r\n")
        assert "X-Stream-Protocol-Version: v4.channel.k8s.io" in head
        encoder, decoder = FrameEncoder(), FrameDecoder()
        for sid, kind in ((1, "error"), (3, "stdin"), (5, "stdout"), (7, "stderr")):
            writer.write(encoder.encode(SynStream(sid, {"streamtype": kind})))
        writer.write(encoder.encode(DataFrame(3, b"spdy")) + encoder.encode(DataFrame(3, b"", fin=True)))
        frames: list[Any] = []
        while DataFrame(1, b"", fin=True) not in frames:
            data = await asyncio.wait_for(reader.read(65536), 5)
            assert data, f"connection closed early after {frames}"
            frames += decoder.feed(data)
        assert [f for f in frames if isinstance(f, SynReply)] == [SynReply(i, {}) for i in (1, 3, 5, 7)]
        data = {sid: b"".join(f.data for f in frames if isinstance(f, DataFrame) and f.stream_id == sid)
                for sid in (1, 5, 7)}
        assert data[5] == b"SPDY" and data[7] == b""
        assert json.loads(data[1]) == {"metadata": {}, "status": "Success"}
        assert DataFrame(5, b"", fin=True) in frames and DataFrame(7, b"", fin=True) in frames
    finally:
        writer.close()
