"""The actions probes and lifecycle hooks run against a container.

::

    exec       the command inside the container (runtime exec); exit 0 succeeds
    httpGet    GET scheme://host:port/path from the pod's own network namespace
               (host: the pod IP unless given); 200-399 succeeds
    tcpSocket  a TCP connection to host:port succeeds
    grpc       grpc.health.v1.Health/Check answers SERVING (see .grpchealth)
    sleep      (hooks only) wait ``seconds``

Connections are opened inside the pod's network namespace, so they work whatever
the node's routing (a kubelet on the host and pods behind a bridge in another
namespace alike), and never leave the machine. Named ports are looked up in the
container's ``ports``.

Every action returns an :class:`Outcome` (success, and the message Kubernetes
would show in an Unhealthy or FailedPostStartHook event); none raises.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import grpchealth
from .network.netns import open_socket
from .runtime.interface import Runtime, RuntimeFailure

Obj = dict[str, Any]
USER_AGENT = "kube-probe/1.32"
MAX_BODY = 10 * 1024


@dataclass(frozen=True)
class Target:
    """The container an action is about."""

    container_id: str
    pod_ip: str
    netns: Path | None                   # None: this process's own namespace
    ports: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str = ""


def _port(value: Any, target: Target) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.isdigit():
        return int(text)
    if text in target.ports:
        return target.ports[text]
    raise ValueError(f"port {text!r} is not a named port of the container")


async def _connect(target: Target, host: str, port: int, timeout: float) -> socket.socket:
    sock = await open_socket(target.netns)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host, port)), timeout)
    except BaseException:
        sock.close()
        raise
    return sock


def _dial_error(host: str, port: int, err: BaseException) -> str:
    if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
        return f"dial tcp {host}:{port}: i/o timeout"
    if isinstance(err, OSError) and err.errno:
        reason = os.strerror(err.errno).lower()
    else:
        reason = str(err)
    return f"dial tcp {host}:{port}: connect: {reason}"


async def exec_action(runtime: Runtime, target: Target, command: list[str], timeout: float) -> Outcome:
    try:
        result = await runtime.exec_sync(target.container_id, command, timeout=timeout)
    except RuntimeFailure as err:
        return Outcome(False, str(err))
    if result.timed_out:
        return Outcome(False, f"command {command!r} timed out")
    output = (result.stdout + result.stderr).decode(errors="replace")
    return Outcome(result.exit_code == 0, output)


async def http_get(target: Target, action: Obj, timeout: float) -> Outcome:
    host = str(action.get("host") or target.pod_ip)
    try:
        port = _port(action.get("port"), target)
    except ValueError as err:
        return Outcome(False, str(err))
    path = str(action.get("path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    https = str(action.get("scheme") or "HTTP").upper() == "HTTPS"
    headers = {"Host": f"{host}:{port}", "User-Agent": USER_AGENT, "Accept": "*/*",
               "Connection": "close"}
    for header in action.get("httpHeaders") or []:
        headers[str(header.get("name", ""))] = str(header.get("value", ""))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        sock = await _connect(target, host, port, timeout)
    except (OSError, asyncio.TimeoutError) as err:
        return Outcome(False, f'Get "{"https" if https else "http"}://{host}:{port}{path}": '
                              + _dial_error(host, port, err))
    context = None
    if https:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            sock=sock, ssl=context, server_hostname=host if https else None), deadline - loop.time())
        request = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(request.encode())
        status_line = await asyncio.wait_for(reader.readline(), max(0.01, deadline - loop.time()))
        parts = status_line.decode(errors="replace").split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return Outcome(False, f"malformed HTTP response: {status_line[:80]!r}")
        code = int(parts[1])
        body = b""
        if not 200 <= code < 400:
            try:
                body = await asyncio.wait_for(reader.read(MAX_BODY + 4096), max(0.01, deadline - loop.time()))
            except asyncio.TimeoutError:
                pass
        if 200 <= code < 400:
            return Outcome(True, "")
        return Outcome(False, f"HTTP probe failed with statuscode: {code}")
    except asyncio.TimeoutError:
        return Outcome(False, f'Get "http://{host}:{port}{path}": context deadline exceeded '
                              "(Client.Timeout exceeded while awaiting headers)")
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as err:
        return Outcome(False, f'Get "http://{host}:{port}{path}": {err}')
    finally:
        if writer is not None:
            writer.close()
        else:
            sock.close()


async def tcp_socket(target: Target, action: Obj, timeout: float) -> Outcome:
    host = str(action.get("host") or target.pod_ip)
    try:
        port = _port(action.get("port"), target)
        sock = await _connect(target, host, port, timeout)
    except ValueError as err:
        return Outcome(False, str(err))
    except (OSError, asyncio.TimeoutError) as err:
        return Outcome(False, _dial_error(host, port, err))
    sock.close()
    return Outcome(True, "")


async def grpc_check(target: Target, action: Obj, timeout: float) -> Outcome:
    port = int(action.get("port") or 0)
    host = target.pod_ip
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        sock = await _connect(target, host, port, timeout)
    except (OSError, asyncio.TimeoutError):
        return Outcome(False, f"timeout: failed to connect service \"{host}:{port}\" within {timeout:g}s")
    writer = None
    try:
        reader, writer = await asyncio.open_connection(sock=sock)
        status = await asyncio.wait_for(
            grpchealth.check(reader, writer, f"{host}:{port}", str(action.get("service") or "")),
            max(0.01, deadline - loop.time()))
    except asyncio.TimeoutError:
        return Outcome(False, f"timeout: health rpc did not complete within {timeout:g}s")
    except (OSError, asyncio.IncompleteReadError, grpchealth.GrpcHealthError, IndexError) as err:
        return Outcome(False, f"error: health rpc probe failed: {err}")
    finally:
        if writer is not None:
            writer.close()
        else:
            sock.close()
    if status == 1:
        return Outcome(True, "")
    return Outcome(False, f'service unhealthy (responded with "{grpchealth.STATUS_NAMES.get(status, status)}")')


async def run_handler(runtime: Runtime, handler: Obj, target: Target, timeout: float) -> Outcome:
    """Run whichever action ``handler`` (a probe or a hook handler) names."""
    if isinstance(handler.get("exec"), dict):
        return await exec_action(runtime, target, [str(a) for a in handler["exec"].get("command") or []],
                                 timeout)
    if isinstance(handler.get("httpGet"), dict):
        return await http_get(target, handler["httpGet"], timeout)
    if isinstance(handler.get("tcpSocket"), dict):
        return await tcp_socket(target, handler["tcpSocket"], timeout)
    if isinstance(handler.get("grpc"), dict):
        return await grpc_check(target, handler["grpc"], timeout)
    if isinstance(handler.get("sleep"), dict):
        await asyncio.sleep(float(handler["sleep"].get("seconds") or 0))
        return Outcome(True, "")
    return Outcome(False, "the handler names no action")
