"""The kubelet's streaming server: logs, exec, attach and port-forward for the API server.

kube-apiserver never runs anything on a node; for ``pods/log``, ``pods/exec``,
``pods/attach`` and ``pods/portforward`` it proxies the request (and the protocol
upgrade) to the kubelet of the pod's node, at the node's address and
``status.daemonEndpoints.kubeletEndpoint.Port``.  These are the kubelet's paths::

    GET       /containerLogs/<ns>/<pod>/<container>?follow&previous&timestamps&tailLines
                                                    &sinceSeconds&sinceTime&limitBytes
    GET|POST  /exec/<ns>/<pod>[/<uid>]/<container>?command=…&input=1&output=1&error=1&tty=1
    GET|POST  /attach/<ns>/<pod>[/<uid>]/<container>?input=1&output=1&error=1&tty=1
    GET|POST  /portForward/<ns>/<pod>[/<uid>][?ports=…]
    GET       /metrics/resource     CPU and memory of the node and its containers, for the
                                    metrics server (see .resourcemetrics)
    GET       /healthz

exec/attach/port-forward must be upgrades: ``Upgrade: websocket`` (channel
protocols, :mod:`.streams.channels`) or ``Upgrade: SPDY/3.1`` with
``X-Stream-Protocol-Version`` (:mod:`.streams.spdy_connection`).  Errors before an
upgrade are plain-text bodies with an HTTP status, as a kubelet writes them; the
API server passes them through and kubectl prints ``unable to upgrade
connection: <text>``.

The kubelet's pod workers know which runtime container serves which pod and
container; they plug in through :class:`ContainerLocator`.  Serve with TLS whose
context requires client certificates from the cluster CA, so that only the API
server can use these endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from aiohttp import web

from .resourcemetrics import CONTENT_TYPE as METRICS_CONTENT_TYPE, ResourceMetrics
from .runtime.interface import Runtime, RuntimeFailure, Session
from .streams import channels, hijack
from .streams.logs import LogOptions, copy_while_connected, render, validate
from .streams.portforward import SpdyPortForward, parse_ports, serve_websocket_port_forward
from .streams.remotecommand import (SPDY_PROTOCOLS, ClientStreams, SpdyStreams, Status,
                                    StreamOptions, exit_status, internal_status, run_session,
                                    success_status)
from .streams.spdy_connection import SpdyConnection

log = logging.getLogger(__name__)

PORT_FORWARD_SPDY_PROTOCOL = "portforward.k8s.io"
PROTOCOL_HEADER = "X-Stream-Protocol-Version"
CLIENT_CLOSE_GRACE = 5.0


class ContainerLocator(Protocol):
    """What the kubelet's pod workers tell the streaming server."""

    async def find(self, namespace: str, pod: str, container: str, *,
                   previous: bool = False) -> str | None:
        """The runtime ID of the container's current instance (running, or exited and not
        yet restarted); with ``previous``, of the last terminated instance before it.
        None when there is no such instance (unknown pod or container, not started)."""
        ...

    async def pod_netns(self, namespace: str, pod: str) -> Path | None:
        """The pod's network namespace file (port-forward connects inside it); None for an
        unknown pod.  A hostNetwork pod answers the kubelet's own: ``/proc/self/ns/net``."""
        ...


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _offered_stream_protocols(request: web.Request) -> list[str]:
    raw = request.headers.getall(PROTOCOL_HEADER, [])
    return [p.strip() for value in raw for p in value.split(",") if p.strip()]


def _upgrade_kind(request: web.Request) -> str:
    upgrade = request.headers.get("Upgrade", "").strip().lower()
    if upgrade == "websocket":
        return "websocket"
    if upgrade.startswith("spdy/3.1"):
        return "spdy"
    return ""


class KubeletServer:
    def __init__(self, runtime: Runtime, locator: ContainerLocator, *,
                 clock: Callable[[], datetime] = _now) -> None:
        self.runtime = runtime
        self.locator = locator
        self.clock = clock
        self.resource_metrics = ResourceMetrics.for_runtime(runtime)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics/resource", self.metrics_resource)
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.logs)
        for verb, handler in (("exec", self.exec), ("attach", self.attach)):
            for path in (f"/{verb}/{{namespace}}/{{pod}}/{{container}}",
                         f"/{verb}/{{namespace}}/{{pod}}/{{uid}}/{{container}}"):
                app.router.add_route("GET", path, handler)
                app.router.add_route("POST", path, handler)
        for path in ("/portForward/{namespace}/{pod}", "/portForward/{namespace}/{pod}/{uid}"):
            app.router.add_route("GET", path, self.port_forward)
            app.router.add_route("POST", path, self.port_forward)
        return app

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the bound port."""
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False,
                               shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context, reuse_address=True)
        await site.start()
        self._runner = runner
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        return self.port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def metrics_resource(self, request: web.Request) -> web.Response:
        body = await self.resource_metrics.render()
        return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})

    # -- logs -----------------------------------------------------------------------------

    async def logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        try:
            options = LogOptions.from_query(request.query)
        except ValueError as err:
            return _text(400, str(err))
        problems = validate(options)
        if problems:
            return _text(400, "; ".join(problems))
        container_id = await self.locator.find(ns, pod, container, previous=options.previous)
        if container_id is None:
            if options.previous:
                return _text(400, f'previous terminated container "{container}" in pod "{pod}" '
                                  f'not found')
            return _text(400, f'container "{container}" in pod "{pod}" is not available')
        try:
            await self.runtime.status(container_id)
        except RuntimeFailure as err:
            return _text(404, f'container "{container}" in pod "{pod}": {err}')
        records = self.runtime.logs(container_id, follow=options.follow and not options.previous,
                                    tail_lines=options.tail_lines, since=options.since(self.clock()))
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        transport = request.transport

        def connected() -> bool:
            return transport is not None and not transport.is_closing()

        try:
            await copy_while_connected(render(records, options), response.write, connected)
            await response.write_eof()
        except (ConnectionError, RuntimeFailure):
            pass
        return response

    # -- exec and attach ------------------------------------------------------------------

    async def exec(self, request: web.Request) -> web.StreamResponse:
        command = request.query.getall("command", [])
        if not command:
            return _text(400, "you must specify at least 1 command")

        def final(code: int) -> Status:
            return exit_status(code, command)

        return await self._remote_command(request, lambda cid, opts: self.runtime.exec(
            cid, list(command), stdin=opts.stdin, tty=opts.tty), final, "executing command in")

    async def attach(self, request: web.Request) -> web.StreamResponse:
        return await self._remote_command(
            request, lambda cid, opts: self.runtime.attach(cid, stdin=opts.stdin),
            lambda code: success_status(), "attaching to")

    async def _remote_command(self, request: web.Request,
                              start: Callable[[str, StreamOptions], Awaitable[Session]],
                              final: Callable[[int], Status], doing: str) -> web.StreamResponse:
        ns, pod, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        options = StreamOptions.from_query(request.query)
        if not (options.stdin or options.stdout or options.stderr):
            return _text(400, "you must specify at least one of stdin, stdout, stderr")
        kind = _upgrade_kind(request)
        if not kind:
            return _text(400, "Upgrade request required")
        container_id = await self.locator.find(ns, pod, container)
        if container_id is None:
            return _text(404, f'container not found ("{container}")')
        connection: SpdyConnection | None = None
        runner: asyncio.Future[None] | None = None
        client: ClientStreams
        if kind == "websocket":
            offered = channels.offered_protocols(request)
            if channels.choose(offered, channels.EXEC_PROTOCOLS) is None:
                return _text(400, f"unable to upgrade: unable to negotiate protocol: client "
                                  f"supports {offered}, server supports "
                                  f"{list(channels.EXEC_PROTOCOLS)}")
            ws = await channels.accept(request, channels.EXEC_PROTOCOLS)
            response: web.StreamResponse = ws
            client = channels.WebSocketStreams(ws)
        else:
            chosen = self._negotiate_spdy(request, SPDY_PROTOCOLS)
            if isinstance(chosen, web.Response):
                return chosen
            raw = await hijack.upgrade(request, {"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                                 PROTOCOL_HEADER: chosen})
            response = raw.response
            connection = SpdyConnection(raw)
            runner = asyncio.ensure_future(connection.run())
            try:
                client = await SpdyStreams.accept(connection, options)
            except (asyncio.TimeoutError, ConnectionError):
                await self._end_spdy(connection, runner, wait=False)
                return response
        try:
            try:
                session = await start(container_id, options)
            except RuntimeFailure as err:
                await client.finish(internal_status(f"error {doing} container: {err}"))
                return response
            await run_session(session, client, options, final)
        except ConnectionError:
            pass
        finally:
            if connection is not None and runner is not None:
                await self._end_spdy(connection, runner, wait=True)
            elif isinstance(client, channels.WebSocketStreams) and not client.ws.closed:
                await client.close()
        return response

    @staticmethod
    def _negotiate_spdy(request: web.Request, supported: tuple[str, ...]) -> str | web.Response:
        offered = _offered_stream_protocols(request)
        chosen = next((p for p in offered if p in supported), None)
        if chosen is not None:
            return chosen
        response = _text(403, f"unable to upgrade: unable to negotiate protocol: client supports "
                              f"{offered}, server accepts {list(supported)}")
        for protocol in supported:
            response.headers.add("X-Accepted-Stream-Protocol-Versions", protocol)
        return response

    @staticmethod
    async def _end_spdy(connection: SpdyConnection, runner: asyncio.Future[None], *,
                        wait: bool) -> None:
        """Let the client hang up first (it does once it has read everything), then close."""
        if wait:
            try:
                await asyncio.wait_for(asyncio.shield(connection.ended.wait()), CLIENT_CLOSE_GRACE)
            except asyncio.TimeoutError:
                pass
        await connection.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

    # -- port-forward ---------------------------------------------------------------------

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        ns, pod = request.match_info["namespace"], request.match_info["pod"]
        uid = request.match_info.get("uid", "")
        kind = _upgrade_kind(request)
        if not kind:
            return _text(400, "Upgrade request required")
        netns = await self.locator.pod_netns(ns, pod)
        if netns is None:
            return _text(404, "pod does not exist")
        label = f"{pod}_{ns}"
        if kind == "spdy":
            chosen = self._negotiate_spdy(request, (PORT_FORWARD_SPDY_PROTOCOL,))
            if isinstance(chosen, web.Response):
                return chosen
            raw = await hijack.upgrade(request, {"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                                 PROTOCOL_HEADER: chosen})
            await self._serve_spdy_port_forward(SpdyConnection(raw), netns, label, uid)
            return raw.response
        offered = channels.offered_protocols(request)
        protocol = channels.choose(offered, channels.PORT_FORWARD_PROTOCOLS)
        if protocol is None:
            return _text(400, f"unable to upgrade: unable to negotiate protocol: client supports "
                              f"{offered}, server supports {list(channels.PORT_FORWARD_PROTOCOLS)}")
        ports: list[int] = []
        if protocol != channels.SPDY_TUNNEL:
            try:
                ports = parse_ports(request.query.getall("ports", []))
            except ValueError as err:
                return _text(400, str(err))
            if not ports:
                return _text(400, 'query parameter "ports" is required')
        ws = await channels.accept(request, channels.PORT_FORWARD_PROTOCOLS)
        if protocol == channels.SPDY_TUNNEL:
            await self._serve_spdy_port_forward(SpdyConnection(channels.WebSocketBytes(ws)),
                                                netns, label, uid)
        else:
            await serve_websocket_port_forward(ws, netns, ports, label, uid)
        return ws

    @staticmethod
    async def _serve_spdy_port_forward(connection: SpdyConnection, netns: Path, pod: str,
                                       uid: str) -> None:
        runner = asyncio.ensure_future(connection.run())
        try:
            await SpdyPortForward(connection, netns, pod, uid).serve()
        finally:
            await connection.close()
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

