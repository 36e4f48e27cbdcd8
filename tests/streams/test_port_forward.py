"""Port-forward through the kubelet server into a network namespace the test creates.

The same port is served twice: inside the pod's namespace (answers ``pod:<data>``)
and on the host's loopback (answers ``host``).  Every forwarded connection must
reach the pod's, never the host's.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from skiff.kubelet.network import netns
from skiff.kubelet.server import KubeletServer
from skiff.kubelet.streams.spdy import DataFrame, FrameDecoder, FrameEncoder, SynReply, SynStream

if os.geteuid() != 0:
    raise RuntimeError("the port-forward tests create network namespaces: they need root")


async def _answer(prefix: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(prefix + data)
        await writer.drain()
    writer.close()


class PodNetwork:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.servers: list[asyncio.Server] = []
        self.port = 0
        self.closed_port = 0

    async def start(self) -> None:
        await netns.create(self.path)
        decoy = await asyncio.start_server(lambda r, w: _answer(b"host", r, w), "127.0.0.1", 0)
        self.servers.append(decoy)
        self.port = decoy.sockets[0].getsockname()[1]

        def listen() -> tuple[socket.socket, int]:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", self.port))
            sock.listen()
            sock.setblocking(False)
            spare = socket.socket(socket.AF_INET, socket.SOCK_STREAM)   # a port nobody listens on
            spare.bind(("127.0.0.1", 0))
            free = spare.getsockname()[1]
            spare.close()
            return sock, free

        sock, self.closed_port = await netns.run_inside(self.path, listen)
        self.servers.append(await asyncio.start_server(lambda r, w: _answer(b"pod:", r, w), sock=sock))

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
            await server.wait_closed()
        netns.remove(self.path)


class Locator:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def find(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> None:
        return None

    async def pod_netns(self, namespace: str, pod: str) -> Path | None:
        return self.path if (namespace, pod) == ("ns", "web") else None


@pytest.fixture
async def pod_net() -> AsyncIterator[PodNetwork]:
    network = PodNetwork(Path("/run/netns") / f"skiff-test-pf-{secrets.token_hex(4)}")
    try:
        await network.start()
        yield network
    finally:
        await network.stop()


@pytest.fixture
async def client(pod_net: PodNetwork) -> AsyncIterator[TestClient]:
    server = KubeletServer(object(), Locator(pod_net.path))  # type: ignore[arg-type]
    test_client = TestClient(TestServer(server.make_app()))
    await test_client.start_server()
    try:
        yield test_client
    finally:
        await test_client.close()


class SpdyClient:
    """Just enough of a SPDY client: open streams, send, collect frames."""

    def __init__(self, send_bytes: Any) -> None:
        self.send_bytes = send_bytes
        self.encoder, self.decoder = FrameEncoder(), FrameDecoder()
        self.frames: list[Any] = []

    async def send(self, *frames: Any) -> None:
        await self.send_bytes(b"".join(self.encoder.encode(f) for f in frames))

    def feed(self, data: bytes) -> None:
        self.frames += self.decoder.feed(data)

    def data(self, sid: int) -> bytes:
        return b"".join(f.data for f in self.frames if isinstance(f, DataFrame) and f.stream_id == sid)

    def finished(self, sid: int) -> bool:
        return DataFrame(sid, b"", fin=True) in self.frames


def pair(request_id: int, port: int, first: int) -> tuple[SynStream, SynStream]:
    headers = {"port": str(port), "requestid": str(request_id)}
    return (SynStream(first, {"streamtype": "error", **headers}),
            SynStream(first + 2, {"streamtype": "data", **headers}))


async def test_spdy_tunnelled_in_websocket_reaches_the_pod(client: TestClient, pod_net: PodNetwork) -> None:
    async with client.ws_connect("/portForward/ns/web",
                                 protocols=("SPDY/3.1+portforward.k8s.io",)) as ws:
        assert ws.protocol == "SPDY/3.1+portforward.k8s.io"
        spdy = SpdyClient(ws.send_bytes)

        async def until(done: Any) -> None:
            while not done():
                message = await asyncio.wait_for(ws.receive(), 5)
                assert message.type == aiohttp.WSMsgType.BINARY, message
                spdy.feed(message.data)

        await spdy.send(*pair(0, pod_net.port, 1), DataFrame(1, b"", fin=True))
        await spdy.send(DataFrame(3, b"hello"))
        await until(lambda: spdy.data(3) == b"pod:hello")
        await spdy.send(DataFrame(3, b"", fin=True))          # the client is done sending
        await until(lambda: spdy.finished(3) and spdy.finished(1))
        assert spdy.data(1) == b""                            # no error
        assert SynReply(1, {}) in spdy.frames and SynReply(3, {}) in spdy.frames

        await spdy.send(*pair(1, pod_net.closed_port, 5))
        await until(lambda: spdy.finished(5) and spdy.finished(7))
        error = spdy.data(5).decode()
        assert error.startswith(f"error forwarding port {pod_net.closed_port} to pod web_ns, uid : ")
        assert "Connection refused" in error


async def test_raw_spdy_upgrade(client: TestClient, pod_net: PodNetwork) -> None:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(b"POST /portForward/ns/web HTTP/1.1\r\nHost: kubelet\r\nConnection: Upgrade\r\n"
                     b"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n"
                     b"Content-Length: 0\r\n\r\n")
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        assert head.startswith("HTTP/1.1 101 ") and "X-Stream-Protocol-Version: portforward.k8s.io" in head

        async def send(data: bytes) -> None:
            writer.write(data)
            await writer.drain()

        spdy = SpdyClient(send)
        await spdy.send(*pair(0, pod_net.port, 1), DataFrame(3, b"raw"))
        while spdy.data(3) != b"pod:raw":
            spdy.feed(await asyncio.wait_for(reader.read(65536), 5))
    finally:
        writer.close()


async def test_websocket_channels_for_other_clients(client: TestClient, pod_net: PodNetwork) -> None:
    port = pod_net.port
    async with client.ws_connect(f"/portForward/ns/web?ports={port}",
                                 protocols=("v5.channel.k8s.io", "v4.channel.k8s.io")) as ws:
        assert ws.protocol == "v4.channel.k8s.io"
        opening = [await ws.receive_bytes(), await ws.receive_bytes()]
        assert opening == [b"\x00" + struct.pack("<H", port), b"\x01" + struct.pack("<H", port)]
        await ws.send_bytes(b"\x00ping")
        assert await asyncio.wait_for(ws.receive_bytes(), 5) == b"\x00pod:ping"


async def test_refusals(client: TestClient, pod_net: PodNetwork) -> None:
    resp = await client.get("/portForward/ns/other", headers={"Connection": "Upgrade",
                                                              "Upgrade": "websocket"})
    assert (resp.status, await resp.text()) == (404, "pod does not exist")
    resp = await client.get("/portForward/ns/web")
    assert (resp.status, await resp.text()) == (400, "Upgrade request required")
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await client.ws_connect("/portForward/ns/web", protocols=("v4.channel.k8s.io",))
    assert err.value.status == 400     # the channel protocol needs ?ports=
