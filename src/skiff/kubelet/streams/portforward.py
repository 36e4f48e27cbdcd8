"""Port forwarding: client connections spliced to ``localhost:<port>`` inside a pod.

The connection to the pod is made from a thread that has joined the pod's network
namespace (:func:`~skiff.kubelet.network.netns.run_inside`): a socket keeps the
namespace it was created in, so once connected it is used from the event loop
like any other.  Nothing ever connects on the host's loopback for a pod.

Two wire protocols::

    SPDY (kubectl; raw, or in websocket binary messages "SPDY/3.1+portforward.k8s.io")
      per local connection the client opens a pair of streams sharing a requestid:
        error stream {streamtype: error, port, requestid}   we write a message on failure
        data stream  {streamtype: data,  port, requestid}   bytes both ways
      pod closes ──▶ FIN data, then FIN error (empty: no error)
      client FIN ──▶ half-close the pod socket;  client RST ──▶ drop the connection

    websocket channels "v4.channel.k8s.io" (other clients; ``?ports=8080,9090``)
      one connection per requested port for the life of the websocket; port i uses
      channel 2i (data) and 2i+1 (error), each opened by a message holding the port
      number (2 bytes, little-endian); the websocket closes once every port is done.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import WSMsgType, web

from ..network.netns import run_inside
from .channels import send as send_channel
from .spdy_connection import SpdyConnection, SpdyStream, StreamClosed

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
READ_CHUNK = 64 * 1024


def parse_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError(f"invalid port {text!r}") from None
    if not 0 < port < 65536:
        raise ValueError(f"port {port} must be between 1 and 65535")
    return port


def parse_ports(values: list[str]) -> list[int]:
    """``?ports=80&ports=443`` or ``?ports=80,443``."""
    return [parse_port(p.strip()) for value in values for p in value.split(",") if p.strip()]


def _connect_here(port: int) -> socket.socket:
    """Connect to localhost:port from the calling thread's namespace (IPv4, then IPv6)."""
    failures = []
    for family, address, label in ((socket.AF_INET, ("127.0.0.1", port), "IPv4"),
                                   (socket.AF_INET6, ("::1", port), "IPv6")):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect(address)
            sock.setblocking(False)
            return sock
        except OSError as err:
            sock.close()
            failures.append(f"{label}: {err.strerror or err}")
    raise ConnectionRefusedError(f"failed to connect to localhost:{port} inside the pod's "
                                 f"network namespace, {', '.join(failures)}")


def _is_ours(netns: Path) -> bool:
    """Whether ``netns`` is the namespace the kubelet is in already (hostNetwork pods,
    the process runtime): then no setns, which would need privileges."""
    try:
        theirs, ours = os.stat(netns), os.stat("/proc/thread-self/ns/net")
    except OSError:
        return False
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


async def dial(netns: Path, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = await run_inside(None if _is_ours(netns) else netns, lambda: _connect_here(port))
    try:
        return await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise


async def splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 read_client: Callable[[], Awaitable[bytes]],
                 write_client: Callable[[bytes], Awaitable[None]],
                 client_aborted: Callable[[], bool]) -> None:
    """Copy both ways until the pod side is done (or the client aborted)."""

    async def upstream() -> None:
        while data := await read_client():
            writer.write(data)
            await writer.drain()
        if not client_aborted() and writer.can_write_eof():
            writer.write_eof()

    async def downstream() -> None:
        while data := await reader.read(READ_CHUNK):
            await write_client(data)

    up, down = asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())
    try:
        pending: set[asyncio.Future[None]] = {up, down}
        while down in pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if up in done and (up.exception() is not None or client_aborted()):
                break
    finally:
        for task in (up, down):
            task.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
        writer.close()


# -- SPDY ---------------------------------------------------------------------------------


class SpdyPortForward:
    """Serves every stream pair a SPDY port-forward connection opens."""

    def __init__(self, connection: SpdyConnection, netns: Path, pod: str, uid: str) -> None:
        self.connection = connection
        self.netns = netns
        self.pod = pod
        self.uid = uid

    async def serve(self) -> None:
        pairs: dict[str, dict[str, SpdyStream]] = {}
        tasks: set[asyncio.Future[None]] = set()
        try:
            while (stream := await self.connection.accept()) is not None:
                kind = stream.header("streamtype")
                if kind not in ("error", "data"):
                    await stream.reset()
                    continue
                key = stream.header("requestid") or stream.header("port")
                pair = pairs.setdefault(key, {})
                if kind in pair:
                    await stream.reset()
                    continue
                pair[kind] = stream
                if len(pair) == 2:
                    del pairs[key]
                    task: asyncio.Future[None] = asyncio.ensure_future(
                        self._forward(pair["error"], pair["data"]))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _forward(self, error: SpdyStream, data: SpdyStream) -> None:
        text = data.header("port")
        try:
            try:
                port = parse_port(text)
                reader, writer = await dial(self.netns, port)
            except (OSError, ValueError) as err:
                message = f"error forwarding port {text} to pod {self.pod}, uid {self.uid}: {err}"
                log.info("%s", message)
                await error.write(message.encode())
                return
            await splice(reader, writer, data.read, data.write, lambda: data.was_reset)
        except (StreamClosed, ConnectionError):
            pass
        finally:
            try:
                await data.close()
                await error.close()
            except (StreamClosed, ConnectionError, RuntimeError):
                pass


# -- websocket channels (v4.channel.k8s.io) -------------------------------------------------


async def serve_websocket_port_forward(ws: web.WebSocketResponse, netns: Path, ports: list[int],
                                       pod: str, uid: str) -> None:
    """One connection per requested port, for as long as the websocket lives."""
    writers: dict[int, asyncio.StreamWriter] = {}
    tasks: list[asyncio.Future[None]] = []

    async def downstream(index: int, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(READ_CHUNK):
                await send_channel(ws, 2 * index, data)
        except ConnectionError:
            pass

    for index, port in enumerate(ports):
        number = struct.pack("<H", port)
        await send_channel(ws, 2 * index, number)
        await send_channel(ws, 2 * index + 1, number)
        try:
            reader, writer = await dial(netns, port)
        except OSError as err:
            message = f"error forwarding port {port} to pod {pod}, uid {uid}: {err}"
            await send_channel(ws, 2 * index + 1, message.encode())
            continue
        writers[index] = writer
        tasks.append(asyncio.ensure_future(downstream(index, reader)))

    async def upstream() -> None:
        async for message in ws:
            if message.type != WSMsgType.BINARY or len(message.data) < 2:
                continue
            channel = message.data[0]
            writer = writers.get(channel // 2) if channel % 2 == 0 else None
            if writer is not None and not writer.is_closing():
                writer.write(message.data[1:])
                await writer.drain()

    async def all_done() -> None:
        await asyncio.gather(*tasks, return_exceptions=True)

    reading = asyncio.ensure_future(upstream())
    finished = asyncio.ensure_future(all_done())
    try:
        if tasks:
            await asyncio.wait({reading, finished}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (reading, finished, *tasks):
            task.cancel()
        await asyncio.gather(reading, finished, *tasks, return_exceptions=True)
        for writer in writers.values():
            writer.close()
        await ws.close()
