"""Helpers for the pod network tests.

Every object a test makes has a unique name (other suites may run at the same
time on this machine) and is removed in ``finally`` blocks. Test traffic goes only
to addresses inside namespaces the tests created, or to loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import secrets
import socket
import subprocess
import uuid
from pathlib import Path

from skiff.kubelet.network.netns import open_socket


def unique_name(prefix: str) -> str:
    """A short unique object name (interfaces allow 15 characters)."""
    return f"{prefix}{secrets.token_hex(4)}"


def new_uid() -> str:
    return str(uuid.uuid4())


def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=20, check=check)


async def in_ns(netns: Path | None, *argv: str, timeout: float = 10) -> tuple[int, str]:
    """Run a command inside ``netns`` (None: here); (exit code, stdout+stderr)."""
    prefix = ["nsenter", f"--net={netns}"] if netns is not None else []
    process = await asyncio.create_subprocess_exec(
        *prefix, *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def ping(netns: Path, address: str) -> bool:
    """One ICMP echo from ``netns``; the target must be an address of a test namespace."""
    code, _ = await in_ns(netns, "busybox", "ping", "-c", "1", "-W", "3", address)
    return code == 0


def ip_json(netns: Path | None, *args: str) -> list[dict[str, object]]:
    prefix = ["nsenter", f"--net={netns}"] if netns is not None else []
    result: list[dict[str, object]] = json.loads(run([*prefix, "ip", "-j", *args]).stdout or "[]")
    return result


def link_names(netns: Path | None) -> set[str]:
    return {str(link["ifname"]) for link in ip_json(netns, "link", "show")}


def nft_tables(netns: Path | None) -> set[str]:
    prefix = ["nsenter", f"--net={netns}"] if netns is not None else []
    listing = json.loads(run([*prefix, "nft", "-j", "list", "tables"]).stdout)
    return {entry["table"]["name"] for entry in listing["nftables"] if "table" in entry}


def free_port() -> int:
    """A TCP port nothing on this host's loopback listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def unused_private_16s(count: int) -> list[ipaddress.IPv4Network]:
    """``count`` random 10.x.0.0/16 networks no route of this namespace overlaps."""
    taken = []
    for route in ip_json(None, "-4", "route", "show", "table", "main"):
        destination = str(route.get("dst"))
        if destination != "default":
            taken.append(ipaddress.ip_network(destination if "/" in destination
                                              else f"{destination}/32", strict=False))
    chosen: list[ipaddress.IPv4Network] = []
    while len(chosen) < count:
        candidate = ipaddress.IPv4Network(f"10.{100 + secrets.randbelow(150)}.0.0/16")
        if candidate not in chosen and not any(candidate.overlaps(net) for net in taken):
            chosen.append(candidate)
    return chosen


class PeerAddressServer:
    """A TCP server inside a namespace that answers every client with the client's
    address as it saw it (shows what NAT did on the way)."""

    def __init__(self, server: asyncio.Server) -> None:
        self.server = server

    @classmethod
    async def start(cls, netns: Path | None, port: int, address: str = "0.0.0.0") -> PeerAddressServer:
        sock = await open_socket(netns)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(16)
        sock.setblocking(False)

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(f"{writer.get_extra_info('peername')[0]}\n".encode())
            await writer.drain()
            writer.close()

        return cls(await asyncio.start_server(answer, sock=sock))

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def ask_peer_address(netns: Path | None, host: str, port: int, timeout: float = 5) -> str:
    """Connect from ``netns`` to host:port and return the line the server sends."""
    sock = await open_socket(netns)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), timeout)
        reader, writer = await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise
    try:
        return (await asyncio.wait_for(reader.readline(), timeout)).decode().strip()
    finally:
        writer.close()


def assert_root() -> None:
    if os.geteuid() != 0:
        raise RuntimeError("the pod network tests need root (namespaces, veths, nftables)")
