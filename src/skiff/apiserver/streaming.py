"""pods/log, pods/exec, pods/attach, pods/portforward: proxied to the pod's kubelet.

The API server runs nothing itself.  As kube-apiserver does, it checks the request
against the pod, finds the kubelet of the pod's node and proxies to it::

    kubectl ──▶ GET .../pods/web/exec?command=sh&container=c&stdin=true  (Upgrade: websocket)
                 │ pod exists, has a node, is not Succeeded/Failed; container is valid
                 │ node: status.addresses (InternalIP, ExternalIP, Hostname) +
                 │       status.daemonEndpoints.kubeletEndpoint.Port
                 ▼
            kubelet  /exec/<ns>/<pod>/<container>?command=sh&input=1&output=1&error=1
                 │ 101 Switching Protocols ─▶ relayed to the client, then raw bytes
                 ▼   both ways until either side closes (websocket or SPDY alike)

Logs are a plain GET streamed back as ``text/plain`` (``follow`` keeps it open).
Upgrade failures from the kubelet (plain text) pass through unchanged, so kubectl
reports them as the kubelet worded them.  Nodes whose runtime is ``fake://`` are
simulated and have no kubelet server: the API server answers for them itself (empty
logs; exec, attach and port-forward refused with a message that says why).

Call :func:`install_streaming` on the application before it starts.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from ..api.errors import Cause, StatusError, bad_request, invalid
from ..api.resource import ResourceInfo
from .app import CONTEXT, SUBRESOURCE_HANDLERS
from .context import ServerContext
from .paths import ResourcePath

Obj = dict[str, Any]

ADDRESS_PREFERENCE = ("InternalIP", "ExternalIP", "Hostname")
DEFAULT_KUBELET_PORT = 10250
IDLE_CHECK = 5.0
READ_LIMIT = 1 << 20
#: Request headers that carry an upgrade to the kubelet, and response headers that carry it back.
UPGRADE_REQUEST_HEADERS = ("Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                           "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions",
                           "X-Stream-Protocol-Version", "User-Agent")
UPGRADE_RESPONSE_HEADERS = ("Upgrade", "Connection", "Sec-WebSocket-Accept",
                            "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions",
                            "X-Stream-Protocol-Version")
ERROR_RESPONSE_HEADERS = ("Content-Type", "X-Accepted-Stream-Protocol-Versions")
_TRUE = ("1", "t", "true")


def install_streaming(app: web.Application, *, kubelet_tls: ssl.SSLContext | None = None,
                      kubelet_scheme: str = "https") -> None:
    """Serve the pod streaming subresources on ``app`` (before it starts).

    ``kubelet_tls``: the client TLS context for kubelets (the API server's kubelet
    client certificate, the CA that signed the kubelets' serving certificates); by
    default kubelet certificates are not verified, as kube-apiserver without
    ``--kubelet-certificate-authority``.  ``kubelet_scheme="http"`` for plain kubelets.
    """
    if kubelet_scheme == "https" and kubelet_tls is None:
        kubelet_tls = ssl.create_default_context()
        kubelet_tls.check_hostname = False
        kubelet_tls.verify_mode = ssl.CERT_NONE
    streams = PodStreams(app[CONTEXT], kubelet_tls if kubelet_scheme == "https" else None)
    handlers = app[SUBRESOURCE_HANDLERS]
    handlers[("", "pods", "log")] = streams.log
    handlers[("", "pods", "exec")] = streams.exec
    handlers[("", "pods", "attach")] = streams.attach
    handlers[("", "pods", "portforward")] = streams.portforward
    app.on_cleanup.append(streams.close)


@dataclass(frozen=True)
class Kubelet:
    host: str
    port: int
    simulated: bool          # a fake:// node: nothing listens there


def kubelet_of(node: Obj) -> Kubelet:
    """Where a Node's kubelet listens: its preferred address (InternalIP, ExternalIP,
    Hostname) and ``status.daemonEndpoints.kubeletEndpoint.Port``, as kube-apiserver finds it."""
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = next((str(addresses[t]) for t in ADDRESS_PREFERENCE if addresses.get(t)), "")
    if not host:
        raise StatusError(500, "", f"no preferred addresses found; known addresses: "
                                   f"{status.get('addresses') or []}")
    endpoint = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
    runtime = str((status.get("nodeInfo") or {}).get("containerRuntimeVersion") or "")
    return Kubelet(host, int(endpoint.get("Port") or DEFAULT_KUBELET_PORT), runtime.startswith("fake://"))


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in _TRUE


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message)


class PodStreams:
    def __init__(self, ctx: ServerContext, tls: ssl.SSLContext | None) -> None:
        self.ctx = ctx
        self.tls = tls
        self._session: aiohttp.ClientSession | None = None

    async def close(self, _: web.Application | None = None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- lookups --------------------------------------------------------------------------

    async def _pod(self, info: ResourceInfo, target: ResourcePath) -> Obj:
        pod, _ = await self.ctx.store.get(info, target.namespace, target.name)
        return pod

    async def _kubelet(self, node_name: str) -> Kubelet:
        nodes = self.ctx.registry.get("", "v1", "nodes")
        assert nodes is not None
        node, _ = await self.ctx.store.get(nodes, "", node_name)
        return kubelet_of(node)

    @staticmethod
    def _container(pod: Obj, requested: str) -> str:
        name = pod["metadata"]["name"]
        spec = pod.get("spec") or {}
        names = [c["name"] for c in spec.get("containers") or []]
        init = [c["name"] for c in spec.get("initContainers") or []]
        ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
        if not requested:
            if len(names) == 1:
                return str(names[0])
            if not names:
                raise bad_request(f"a container name must be specified for pod {name}")
            message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
            if init:
                message += f" or one of the init containers: [{' '.join(init)}]"
            raise bad_request(message)
        if requested not in (*names, *init, *ephemeral):
            raise bad_request(f"container {requested} is not valid for pod {name}")
        return requested

    def _url(self, kubelet: Kubelet, path: str, query: list[tuple[str, str]]) -> str:
        scheme = "https" if self.tls is not None else "http"
        host = f"[{kubelet.host}]" if ":" in kubelet.host else kubelet.host
        return f"{scheme}://{host}:{kubelet.port}{path}" + (f"?{urlencode(query)}" if query else "")

    # -- pods/log -------------------------------------------------------------------------

    async def log(self, request: web.Request, info: ResourceInfo,
                  target: ResourcePath) -> web.StreamResponse:
        if request.method != "GET":
            raise StatusError(405, "MethodNotAllowed",
                              "the server does not allow this method on the requested resource")
        pod = await self._pod(info, target)
        container = self._container(pod, request.query.get("container", ""))
        query = [(k, v) for k in ("follow", "previous", "timestamps", "tailLines", "sinceSeconds",
                                  "sinceTime", "limitBytes") if (v := request.query.get(k, ""))]
        _check_log_options(target.name, dict(query))
        _check_log_status(pod, container, _flag(request.query, "previous"))
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        if not node_name:
            return web.Response(body=b"", content_type="text/plain")   # nothing ran yet
        kubelet = await self._kubelet(node_name)
        if kubelet.simulated:
            return web.Response(body=b"", content_type="text/plain")
        path = f"/containerLogs/{_seg(target.namespace)}/{_seg(target.name)}/{_seg(container)}"
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.tls if self.tls is not None else False))
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        try:
            upstream = await self._session.get(self._url(kubelet, path, query), timeout=timeout)
        except (aiohttp.ClientError, OSError) as err:
            raise _dial_error(kubelet, err) from None
        async with upstream:
            if upstream.status != 200:
                raise _kubelet_error(upstream.status, (await upstream.text()).strip())
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            transport = request.transport
            try:
                await _copy_while_connected(upstream.content, response,
                                            lambda: transport is not None and not transport.is_closing())
                await response.write_eof()
            except (ConnectionError, aiohttp.ClientError):
                pass
        return response

    # -- pods/exec, pods/attach, pods/portforward -----------------------------------------

    async def exec(self, request: web.Request, info: ResourceInfo,
                   target: ResourcePath) -> web.StreamResponse:
        return await self._remote_command(request, info, target, "exec")

    async def attach(self, request: web.Request, info: ResourceInfo,
                     target: ResourcePath) -> web.StreamResponse:
        return await self._remote_command(request, info, target, "attach")

    async def _remote_command(self, request: web.Request, info: ResourceInfo,
                              target: ResourcePath, verb: str) -> web.StreamResponse:
        _allow_connect(request)
        q = request.query
        command = q.getall("command", [])
        if verb == "exec" and not command:
            raise bad_request("you must specify at least 1 command")
        streams = [(name, "1") for param, name in (("stdin", "input"), ("stdout", "output"),
                                                   ("stderr", "error"), ("tty", "tty"))
                   if _flag(q, param)]
        if not any(name in ("input", "output", "error") for name, _ in streams):
            raise bad_request("you must specify at least one of stdin, stdout, stderr")
        pod = await self._pod(info, target)
        container = self._container(pod, q.get("container", ""))
        phase = (pod.get("status") or {}).get("phase", "")
        if phase in ("Succeeded", "Failed"):
            doing = "exec into" if verb == "exec" else "attach"
            raise bad_request(f"cannot {doing} a container in a completed pod; current phase is {phase}")
        kubelet = await self._node_of(pod, target.name)
        if kubelet.simulated:
            doing = "exec into" if verb == "exec" else "attach to"
            return _text(404, f'container "{container}" runs on simulated node '
                              f'{(pod.get("spec") or {}).get("nodeName")} (skiff up --runtime fake): '
                              f"there is no process to {doing}")
        path = f"/{verb}/{_seg(target.namespace)}/{_seg(target.name)}/{_seg(container)}"
        return await self._proxy_upgrade(request, kubelet, path, [("command", c) for c in command] + streams)

    async def portforward(self, request: web.Request, info: ResourceInfo,
                          target: ResourcePath) -> web.StreamResponse:
        _allow_connect(request)
        pod = await self._pod(info, target)
        phase = (pod.get("status") or {}).get("phase", "")
        if phase != "Running":
            raise bad_request(f"unable to forward port because pod is not running. "
                              f"Current status={phase}")
        kubelet = await self._node_of(pod, target.name)
        if kubelet.simulated:
            return _text(404, f"pod {target.name} runs on simulated node {(pod.get('spec') or {}).get('nodeName')} "
                              "(skiff up --runtime fake): there is no port to forward to")
        path = f"/portForward/{_seg(target.namespace)}/{_seg(target.name)}"
        query = [("ports", p) for p in request.query.getall("ports", [])]
        return await self._proxy_upgrade(request, kubelet, path, query)

    async def _node_of(self, pod: Obj, name: str) -> Kubelet:
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        if not node_name:
            raise bad_request(f"pod {name} does not have a host assigned")
        return await self._kubelet(node_name)

    # -- the upgrade-aware proxy -----------------------------------------------------------

    async def _proxy_upgrade(self, request: web.Request, kubelet: Kubelet, path: str,
                             query: list[tuple[str, str]]) -> web.StreamResponse:
        if "upgrade" not in request.headers.get("Connection", "").lower():
            raise bad_request("Upgrade request required")
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                kubelet.host, kubelet.port, ssl=self.tls, limit=READ_LIMIT,
                server_hostname=kubelet.host if self.tls is not None else None), 10)
        except (OSError, asyncio.TimeoutError) as err:
            raise _dial_error(kubelet, err) from None
        try:
            target = path + (f"?{urlencode(query)}" if query else "")
            lines = [f"{request.method} {target} HTTP/1.1", f"Host: {kubelet.host}:{kubelet.port}",
                     "Connection: Upgrade", "Content-Length: 0"]
            for name in UPGRADE_REQUEST_HEADERS:
                lines += [f"{name}: {value}" for value in request.headers.getall(name, [])]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
            status, reason, headers = await _read_head(reader)
            if status != 101:
                body = await _read_body(reader, headers)
                return web.Response(status=status, reason=reason, body=body, headers={
                    k: v for k, v in headers.items() if k.lower() in
                    {h.lower() for h in ERROR_RESPONSE_HEADERS}})
            try:
                client = await _take_over(request, {k: v for k, v in headers.items() if k.lower() in
                                                    {h.lower() for h in UPGRADE_RESPONSE_HEADERS}})
            except ConnectionResetError:
                return web.Response(status=400, text="the client went away")   # nobody reads it
            await _relay(client, reader, writer)
            return client.response
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as err:
            raise StatusError(502, "", f"error reading the kubelet's answer: {err}") from None
        finally:
            writer.close()


# -- helpers ------------------------------------------------------------------------------


def _seg(text: str) -> str:
    return quote(text, safe="")


def _allow_connect(request: web.Request) -> None:
    if request.method not in ("GET", "POST"):
        raise StatusError(405, "MethodNotAllowed",
                          "the server does not allow this method on the requested resource")


def _dial_error(kubelet: Kubelet, err: BaseException) -> StatusError:
    code = getattr(err, "errno", None)
    why = f"connect: {os.strerror(code).lower()}" if code else str(err) or type(err).__name__
    return StatusError(500, "", f"error dialing backend: dial tcp {kubelet.host}:{kubelet.port}: {why}")


def _kubelet_error(code: int, message: str) -> StatusError:
    reason = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
              409: "Conflict", 500: "InternalError", 503: "ServiceUnavailable"}.get(code, "")
    return StatusError(code, reason, message or f"the kubelet answered {code}")


def _check_log_options(name: str, query: Mapping[str, str]) -> None:
    causes = []
    for field, minimum, wording in (("tailLines", 0, "must be greater than or equal to 0"),
                                    ("sinceSeconds", 1, "must be greater than 0"),
                                    ("limitBytes", 1, "must be greater than 0")):
        raw = query.get(field)
        if raw is None:
            continue
        try:
            value = int(raw)
        except ValueError:
            raise bad_request(f"{field}: Invalid value: {raw!r}: must be an integer") from None
        if value < minimum:
            causes.append(Cause("FieldValueInvalid", f"Invalid value: {value}: {wording}", field))
    if "sinceSeconds" in query and "sinceTime" in query:
        causes.append(Cause("FieldValueForbidden",
                            "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
                            "sinceSeconds"))
    if causes:
        raise invalid("PodLogOptions", "", name, causes)


def _check_log_status(pod: Obj, container: str, previous: bool) -> None:
    """The kubelet's answers for containers whose state has no logs (from the pod status)."""
    status = pod.get("status") or {}
    entries = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or []),
               *(status.get("ephemeralContainerStatuses") or [])]
    entry = next((s for s in entries if s.get("name") == container), None)
    if entry is None:
        return   # not reported yet: the kubelet decides
    name = pod["metadata"]["name"]
    state, last = entry.get("state") or {}, entry.get("lastState") or {}
    if previous:
        if not last.get("terminated"):
            raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        return
    if state.get("running") or state.get("terminated") or last.get("terminated"):
        return
    waiting = state.get("waiting")
    if waiting is not None:
        reason = waiting.get("reason") or ""
        why = {"ErrImagePull": "image can't be pulled",
               "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
        raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: {why}')
    raise bad_request(f'container "{container}" in pod "{name}" is waiting to start - no logs yet')


async def _copy_while_connected(source: aiohttp.StreamReader, response: web.StreamResponse,
                                connected: Any) -> None:
    """Copy the kubelet's body as it comes; also notice a client that left during silence."""
    pending: asyncio.Future[bytes] = asyncio.ensure_future(source.readany())
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=IDLE_CHECK)
            if not done:
                if not connected():
                    return
                continue
            chunk = pending.result()
            if not chunk:
                return
            await response.write(chunk)
            pending = asyncio.ensure_future(source.readany())
    finally:
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, dict[str, str]]:
    raw = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = raw.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP response: {status_line!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        if ":" in line:
            name, value = line.split(":", 1)
            key = name.strip()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return int(parts[1]), parts[2] if len(parts) > 2 else "", headers


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    lower = {k.lower(): v for k, v in headers.items()}
    if "content-length" in lower:
        return await reader.readexactly(min(int(lower["content-length"]), READ_LIMIT))
    if "chunked" in lower.get("transfer-encoding", "").lower():
        parts = []
        while (size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16)) > 0:
            parts.append(await reader.readexactly(size))
            await reader.readline()
        return b"".join(parts)
    return await reader.read(READ_LIMIT)


class _RawFeed:
    """Takes aiohttp's place as the reader of an upgraded client connection."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.eof = False
        self.paused = False
        self.readable = asyncio.Event()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.chunks.append(bytes(data))
            self.size += len(data)
            self.readable.set()
            if self.size > READ_LIMIT and not self.paused:
                self.paused = True
                self.transport.pause_reading()
        return False, b""

    def feed_eof(self) -> None:
        self.eof = True
        self.readable.set()

    async def read(self) -> bytes:
        while not self.chunks:
            if self.eof:
                return b""
            self.readable.clear()
            await self.readable.wait()
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.size = 0
        if self.paused:
            self.paused = False
            if not self.transport.is_closing():
                self.transport.resume_reading()
        return data


@dataclass
class _Upgraded:
    response: web.StreamResponse
    feed: _RawFeed


async def _take_over(request: web.Request, headers: Mapping[str, str]) -> _Upgraded:
    """Answer 101 with the kubelet's headers; from now on the connection is raw bytes."""
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away")
    response = web.StreamResponse(status=101, reason="Switching Protocols", headers=headers)
    response.force_close()
    feed = _RawFeed(transport)
    protocol: Any = request.protocol
    protocol.set_parser(feed)       # installed before the 101: the client may answer at once
    protocol.keep_alive(False)
    await response.prepare(request)
    return _Upgraded(response, feed)


async def _relay(client: _Upgraded, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
    """Bytes both ways until one side closes."""

    async def up() -> None:
        while data := await client.feed.read():
            writer.write(data)
            await writer.drain()

    async def down() -> None:
        while data := await reader.read(64 * 1024):
            await client.response.write(data)

    tasks = {asyncio.ensure_future(up()), asyncio.ensure_future(down())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        transport = client.feed.transport
        if not transport.is_closing():
            transport.close()
