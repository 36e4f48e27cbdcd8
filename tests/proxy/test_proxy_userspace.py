"""The userspace relay (the fallback without root): NodePorts on 127.0.0.1 relayed
to endpoints on other loopback addresses, with the real API server."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from apiserver_support import ApiServer
from background_support import running
from skiff.client.resources import ENDPOINTSLICES, SERVICES
from skiff.proxy.userspace import UserspaceProxy
from test_proxy_support import DEADLINE

Obj = dict[str, Any]
BACKENDS = ("127.0.0.2", "127.0.0.3")


@contextlib.asynccontextmanager
async def relay(api: ApiServer) -> AsyncIterator[UserspaceProxy]:
    proxy = UserspaceProxy(node_name="node-a", node_ips=("127.0.0.1",))
    started = asyncio.Event()
    async with running(proxy.run(api.client, started=started), started, "the userspace proxy"):
        yield proxy


@contextlib.asynccontextmanager
async def name_servers(port: int) -> AsyncIterator[None]:
    """A TCP and a UDP server on each backend address answering with that address."""
    servers: list[asyncio.Server] = []
    transports: list[asyncio.BaseTransport] = []

    class Udp(asyncio.DatagramProtocol):
        def __init__(self, name: str) -> None:
            self.name = name

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(self.name.encode(), addr)  # type: ignore[attr-defined]

    try:
        for address in BACKENDS:
            async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             name: str = address) -> None:
                writer.write(name.encode())
                await writer.drain()
                writer.close()
            servers.append(await asyncio.start_server(answer, address, port))
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda name=address: Udp(name), local_addr=(address, port))   # type: ignore[misc]
            transports.append(transport)
        yield
    finally:
        for server in servers:
            server.close()
        for transport in transports:
            transport.close()


def free_port() -> int:
    """A port free for TCP and UDP on every backend address."""
    while True:
        with socket.socket() as probe:
            probe.bind((BACKENDS[0], 0))
            port: int = probe.getsockname()[1]
        try:
            for address in BACKENDS:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as check:
                        check.bind((address, port))
            return port
        except OSError:
            continue


async def tcp_name(port: int) -> str:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), DEADLINE)
    try:
        return (await asyncio.wait_for(reader.read(100), DEADLINE)).decode()
    finally:
        writer.close()


async def udp_name(port: int) -> str:
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    try:
        transport.sendto(b"who")
        return (await asyncio.wait_for(got, DEADLINE)).decode()
    finally:
        transport.close()


def node_port_service(name: str, **spec: Any) -> Obj:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"type": "NodePort", "ports": [
                {"name": "tcp", "port": 80, "protocol": "TCP"},
                {"name": "udp", "port": 53, "protocol": "UDP"}], **spec}}


def backend_slice(name: str, port: int, ready: tuple[bool, ...] = (True, True)) -> Obj:
    return {"metadata": {"name": f"{name}-1", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4",
            "ports": [{"name": "tcp", "port": port, "protocol": "TCP"},
                      {"name": "udp", "port": port, "protocol": "UDP"}],
            "endpoints": [{"addresses": [address], "nodeName": "node-a", "conditions": {"ready": ok}}
                          for address, ok in zip(BACKENDS, ready)]}


async def test_node_ports_are_relayed_to_ready_endpoints(api: ApiServer) -> None:
    port = free_port()
    async with name_servers(port), relay(api) as proxy:
        svc = await api.client.create(SERVICES, node_port_service("web"), namespace="default")
        tcp_port, udp_port = (p["nodePort"] for p in svc["spec"]["ports"])
        await api.client.create(ENDPOINTSLICES, backend_slice("web", port), namespace="default")
        await asyncio.wait_for(proxy.wait_for(lambda: len(proxy.listeners) == 2), DEADLINE)
        assert {await tcp_name(tcp_port) for _ in range(30)} == set(BACKENDS)
        assert {await udp_name(udp_port) for _ in range(30)} == set(BACKENDS)

        slice_ = backend_slice("web", port, ready=(False, True))
        slice_["metadata"]["resourceVersion"] = (await api.client.get(
            ENDPOINTSLICES, "web-1", namespace="default"))["metadata"]["resourceVersion"]
        await api.client.update(ENDPOINTSLICES, slice_, namespace="default")
        await asyncio.wait_for(proxy.wait_for(
            lambda: [e.ip for e in proxy.listeners[("127.0.0.1", "tcp", tcp_port)].backends.endpoints]
            == ["127.0.0.3"]), DEADLINE)
        assert {await tcp_name(tcp_port) for _ in range(10)} == {"127.0.0.3"}

        # No endpoints: no listener, refused at once.
        await api.client.delete(ENDPOINTSLICES, "web-1", namespace="default")
        await asyncio.wait_for(proxy.wait_for(lambda: not proxy.listeners), DEADLINE)
        with pytest.raises(OSError) as refused:
            await tcp_name(tcp_port)
        assert refused.value.errno == errno.ECONNREFUSED


async def test_session_affinity_pins_the_client(api: ApiServer) -> None:
    port = free_port()
    async with name_servers(port), relay(api) as proxy:
        svc = await api.client.create(SERVICES, node_port_service(
            "sticky", sessionAffinity="ClientIP"), namespace="default")
        tcp_port = svc["spec"]["ports"][0]["nodePort"]
        await api.client.create(ENDPOINTSLICES, backend_slice("sticky", port), namespace="default")
        await asyncio.wait_for(proxy.wait_for(lambda: len(proxy.listeners) == 2), DEADLINE)
        assert len({await tcp_name(tcp_port) for _ in range(15)}) == 1
