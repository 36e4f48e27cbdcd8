"""Support for the cluster DNS tests: an async DNS client, a fake upstream, a cluster.

Queries are decoded with ``dnslib`` (an independent implementation of the
wire format), never with the server's own codec.  The upstream resolver is a
fake one on 127.0.0.1 started by the test: nothing here ever talks to the
host's resolver.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest
from dnslib import QTYPE, RR, A, DNSRecord, EDNS0

from apiserver_support import ApiServer
from skiff.proxy.dns import DnsServer, run_dns

Obj = dict[str, Any]
DEADLINE = 10.0
#: What the fake upstream answers for any A question.
UPSTREAM_IP = "192.0.2.53"


async def query(port: int, name: str, qtype: str = "A", *, tcp: bool = False,
                edns: int | None = None, raw: bytes | None = None,
                timeout: float = DEADLINE) -> DNSRecord:
    """Ask the server on 127.0.0.1:``port``; the decoded reply."""
    packet = raw
    if packet is None:
        request = DNSRecord.question(name, qtype)
        request.header.id = random.randrange(0x10000)
        if edns is not None:
            request.add_ar(EDNS0(udp_len=edns))
        packet = request.pack()
    data = await asyncio.wait_for(send(port, packet, tcp=tcp), timeout)
    return DNSRecord.parse(data)


async def send(port: int, packet: bytes, *, tcp: bool = False) -> bytes:
    if tcp:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(struct.pack("!H", len(packet)) + packet)
            size = struct.unpack("!H", await reader.readexactly(2))[0]
            return await reader.readexactly(size)
        finally:
            writer.close()
    loop = asyncio.get_running_loop()
    got: asyncio.Future[bytes] = loop.create_future()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            if not got.done():
                got.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
    try:
        transport.sendto(packet)
        return await got
    finally:
        transport.close()


def rdata(reply: DNSRecord, qtype: str | None = None) -> list[str]:
    return sorted(str(r.rdata) for r in reply.rr if qtype is None or QTYPE[r.rtype] == qtype)


async def wait_answer(server: DnsServer, name: str, check: Callable[[DNSRecord], bool],
                      qtype: str = "A", timeout: float = DEADLINE) -> DNSRecord:
    """Ask until ``check(reply)`` holds, re-asking after every record change."""
    async def loop() -> DNSRecord:
        while True:
            version = server.records.version
            reply = await query(server.port, name, qtype)
            if check(reply):
                return reply
            await server.wait_changed(version)
    try:
        return await asyncio.wait_for(loop(), timeout)
    except TimeoutError:
        last = await query(server.port, name, qtype)
        raise AssertionError(f"{name} {qtype}: still {last}") from None


class FakeUpstream:
    """A resolver on 127.0.0.1 (UDP and TCP) answering every A question with UPSTREAM_IP."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, str, str]] = []  # (transport, name, type)
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def answer(self, data: bytes, transport: str) -> bytes:
        request = DNSRecord.parse(data)
        name, qtype = str(request.q.qname), QTYPE[request.q.qtype]
        self.queries.append((transport, name, qtype))
        reply = request.reply(ra=1, aa=0)
        if qtype == "A":
            reply.add_answer(RR(name, QTYPE.A, rdata=A(UPSTREAM_IP), ttl=300))
        return bytes(reply.pack())

    async def __aenter__(self) -> "FakeUpstream":
        loop = asyncio.get_running_loop()
        upstream = self

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(upstream.answer(data, "udp"), addr)

        async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                out = self.answer(await reader.readexactly(size), "tcp")
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
            writer.close()

        for _ in range(20):  # one port free for both TCP and UDP
            server = await asyncio.start_server(tcp, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                self._udp, _ = await loop.create_datagram_endpoint(
                    Udp, local_addr=("127.0.0.1", port))
            except OSError:
                server.close()
                await server.wait_closed()
                continue
            self._tcp, self.port = server, port
            return self
        raise AssertionError("no port free for both TCP and UDP")

    async def __aexit__(self, *exc: object) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()


class DnsCluster:
    """API server + fake upstream + the DNS server under test."""

    def __init__(self, api: ApiServer, upstream: FakeUpstream, dns: DnsServer) -> None:
        self.api = api
        self.client = api.client
        self.upstream = upstream
        self.dns = dns


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[DnsCluster]:
    async with ApiServer(tmp_path) as api, FakeUpstream() as upstream:
        dns = await run_dns(api.client, upstream=[("127.0.0.1", upstream.port)])
        async with dns:
            yield DnsCluster(api, upstream, dns)


def service(name: str, *, namespace: str = "default", ip: str | None = None,
            ports: list[Obj] | None = None, headless: bool = False) -> Obj:
    spec: Obj = {"ports": ports if ports is not None else [
        {"name": "http", "port": 80, "protocol": "TCP"}]}
    if headless:
        spec["clusterIP"] = "None"
    elif ip:
        spec["clusterIP"] = ip
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def endpoint_slice(service_name: str, endpoints: list[Obj], *, name: str | None = None,
                   ports: list[Obj] | None = None, namespace: str = "default") -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name or f"{service_name}-abcde", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": ports if ports is not None else [
                {"name": "http", "port": 8080, "protocol": "TCP"}]}


def endpoint(ip: str, *, ready: bool = True, hostname: str | None = None) -> Obj:
    ep: Obj = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        ep["hostname"] = hostname
    return ep


__all__ = ["query", "send", "rdata", "wait_answer", "FakeUpstream", "DnsCluster", "cluster",
           "service", "endpoint_slice", "endpoint", "UPSTREAM_IP"]
