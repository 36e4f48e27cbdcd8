"""The HTTP and HTTPS reverse proxy of the ingress controller (aiohttp, both ports).

Per request::

    Host header + path ──RouteTable.match──▶ no route ─────────────────▶ 404
        │ route
        ├─ ssl-redirect and plain HTTP ────────────────────────────────▶ 308 https://…
        ├─ choose backend (canary policy) ─▶ ready endpoints this host
        │                                    may dial (reach.py)? none ─▶ 503
        ▼
    endpoint (round-robin) ── connect refused: next endpoint (3 tries) ─▶ 502
        │ connected (a pod address; the Service's virtual IP is skipped)
        ▼
    same method, path (or rewrite-target's), query, headers (hop-by-hop ones
    dropped; Host kept; X-Forwarded-For/-Host/-Port/-Proto, X-Real-IP and
    X-Request-ID set), body streamed both ways, never buffered whole;
    ``Upgrade: websocket`` relayed message by message.

The route table is swapped by the controller (:attr:`IngressProxy.table`);
endpoints come from an :class:`Endpoints` lookup, read per request, so endpoint
changes need no rebuild. Time limits follow ingress-nginx's defaults: 5 s to
connect, 60 s between reads from the upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import quote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from .backends import Address, RoundRobin, host_port
from .canary import Roll
from .certs import CertificateStore
from .routes import BackendRef, Route, RouteTable, normalize_host

log = logging.getLogger(__name__)

#: Headers that describe one connection, never forwarded (RFC 9110 7.6.1).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"})
#: Headers the proxy handles or writes itself (whatever the client sent is replaced).
FORWARDED = frozenset({"expect", "host", "x-forwarded-for", "x-forwarded-host", "x-forwarded-port",
                       "x-forwarded-proto", "x-forwarded-scheme", "x-scheme", "x-real-ip"})
#: The websocket handshake, redone by the proxy towards the upstream.
WEBSOCKET_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version",
                                 "sec-websocket-extensions", "sec-websocket-protocol"})
TRIES = 3
STATUS_TEXT = {404: "Not Found", 502: "Bad Gateway", 503: "Service Temporarily Unavailable",
               504: "Gateway Time-out"}


#: May the proxy connect to this endpoint address? (reach.LocalRoutes.allows)
DialGuard = Callable[[str], Awaitable[bool]]


class Endpoints(Protocol):
    def endpoints(self, backend: BackendRef) -> list[Address]:
        """The ready endpoints behind a Service port (empty: none)."""
        ...


def error_page(status: int) -> web.Response:
    """A small HTML error answer, like nginx's."""
    title = f"{status} {STATUS_TEXT.get(status, '')}".strip()
    body = (f"<html>\n<head><title>{title}</title></head>\n<body>\n<center><h1>{title}</h1></center>\n"
            f"<hr><center>skiff ingress</center>\n</body>\n</html>\n")
    return web.Response(status=status, text=body, content_type="text/html")


def _connection_tokens(value: str | None) -> set[str]:
    return {token.strip().lower() for token in (value or "").split(",") if token.strip()}


def upstream_headers(request: web.BaseRequest, scheme: str, port: int) -> CIMultiDict[str]:
    """The headers to send upstream (see module docstring)."""
    drop = HOP_BY_HOP | FORWARDED | _connection_tokens(request.headers.get("Connection"))
    headers: CIMultiDict[str] = CIMultiDict(
        (name, value) for name, value in request.headers.items() if name.lower() not in drop)
    host = request.headers.get("Host", "")
    remote = request.remote or ""
    if host:
        headers["Host"] = host
    if "X-Request-ID" not in headers:
        headers["X-Request-ID"] = secrets.token_hex(16)
    headers["X-Real-IP"] = remote
    headers["X-Forwarded-For"] = remote
    headers["X-Forwarded-Host"] = host
    headers["X-Forwarded-Port"] = str(port)
    headers["X-Forwarded-Proto"] = scheme
    headers["X-Forwarded-Scheme"] = scheme
    headers["X-Scheme"] = scheme
    return headers


def _is_websocket(request: web.BaseRequest) -> bool:
    return (request.headers.get("Upgrade", "").lower() == "websocket"
            and "upgrade" in _connection_tokens(request.headers.get("Connection")))


class IngressProxy:
    """Serves HTTP and HTTPS on the host (see module docstring)."""

    def __init__(self, endpoints: Endpoints, certificates: CertificateStore, *,
                 dial_guard: DialGuard, roll: Roll | None = None, connect_timeout: float = 5.0,
                 read_timeout: float = 60.0) -> None:
        self.table = RouteTable()
        self.http_port = 0
        self.https_port = 0
        self.balancer = RoundRobin()
        self._endpoints = endpoints
        self._dial_guard = dial_guard
        self._refused: set[str] = set()
        self.certificates = certificates
        self._roll: Roll = roll or (lambda n: random.randint(1, n))
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout,
                                              sock_read=read_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None

    # -- lifecycle -----------------------------------------------------------------

    async def start(self, host: str, http_port: int, https_port: int) -> None:
        """Listen on both ports (0: any free port; the bound ones end up in
        :attr:`http_port` and :attr:`https_port`)."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=False), timeout=self._timeout,
            auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"))
        sockets: list[socket.socket] = []
        try:
            self._runner = web.ServerRunner(web.Server(self._handle), handle_signals=False,
                                            shutdown_timeout=1.0)
            await self._runner.setup()
            sockets.append(_listen(host, http_port))
            sockets.append(_listen(host, https_port))
            plain, tls = sockets
            self.http_port, self.https_port = plain.getsockname()[1], tls.getsockname()[1]
            await web.SockSite(self._runner, plain).start()
            await web.SockSite(self._runner, tls, ssl_context=self.certificates.context).start()
        except BaseException:
            for sock in sockets:
                sock.close()
            await self.close()
            raise

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- one request ---------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        route = self.table.match(request.headers.get("Host", ""), request.path)
        if route is None:
            return error_page(404)
        if route.ssl_redirect and not request.secure:
            return self._redirect(request)
        backend = route.choose(request.headers, request.cookies, self._roll)
        addresses: list[Address] = []          # this one's turn first, then the ones to retry
        for address in self.balancer.order(backend, self._endpoints.endpoints(backend)):
            if await self._may_dial(address):
                addresses.append(address)
                if len(addresses) == TRIES:
                    break
        if not addresses:
            return error_page(503)
        scheme = "https" if request.secure else "http"
        headers = upstream_headers(request, scheme, self.https_port if request.secure else self.http_port)
        target = _upstream_target(request, route)
        if _is_websocket(request):
            return await self._websocket(request, addresses, target, headers)
        if request.headers.get("Expect", "").lower() == "100-continue" and request.version >= (1, 1):
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")   # the body may come now
        return await self._forward(request, addresses, target, headers)

    async def _may_dial(self, address: Address) -> bool:
        if await self._dial_guard(address[0]):
            return True
        if address[0] not in self._refused and len(self._refused) < 1024:
            self._refused.add(address[0])
            log.warning("ingress: not dialling endpoint %s: no route on this host keeps it here "
                        "(a simulated pod?)", address[0])
        return False

    def _redirect(self, request: web.BaseRequest) -> web.Response:
        host = normalize_host(request.headers.get("Host", "")) or "localhost"
        port = "" if self.https_port == 443 else f":{self.https_port}"
        location = f"https://{host}{port}{request.rel_url.raw_path_qs}"
        return web.Response(status=308, headers={"Location": location}, text="308 Permanent Redirect\n")

    async def _forward(self, request: web.BaseRequest, addresses: list[Address], target: str,
                       headers: CIMultiDict[str]) -> web.StreamResponse:
        assert self._session is not None
        data = request.content if request.body_exists else None
        upstream: aiohttp.ClientResponse | None = None
        for address in addresses:
            url = URL(f"http://{host_port(address)}{target}", encoded=True)
            try:
                upstream = await self._session.request(request.method, url, headers=headers, data=data,
                                                       allow_redirects=False)
                break
            except aiohttp.ClientConnectorError as error:
                log.info("ingress: %s %s: %s; trying the next endpoint", request.method, url, error)
            except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
                return error_page(504)
            except aiohttp.ClientError as error:
                log.info("ingress: %s %s: %s", request.method, url, error)
                return error_page(502)
        if upstream is None:
            return error_page(502)
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            drop = HOP_BY_HOP | _connection_tokens(upstream.headers.get("Connection"))
            for name, value in upstream.headers.items():
                if name.lower() not in drop:
                    response.headers.add(name, value)
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                log.info("ingress: upstream %s broke off: %s", upstream.url, error)
                if request.transport is not None:
                    request.transport.close()      # the client must see the body is cut short
                return response
            await response.write_eof()
            return response

    async def _websocket(self, request: web.BaseRequest, addresses: list[Address], target: str,
                         headers: CIMultiDict[str]) -> web.StreamResponse:
        assert self._session is not None
        protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
                     if p.strip()]
        for name in WEBSOCKET_HANDSHAKE:
            headers.popall(name, None)
        upstream: aiohttp.ClientWebSocketResponse | None = None
        for address in addresses:
            try:
                upstream = await self._session.ws_connect(
                    URL(f"http://{host_port(address)}{target}", encoded=True), headers=headers,
                    protocols=protocols, max_msg_size=0,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0))
                break
            except aiohttp.ClientConnectorError:
                continue
            except aiohttp.WSServerHandshakeError as error:
                log.info("ingress: websocket upstream refused the upgrade: %s", error)
                return error_page(502)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return error_page(502)
        if upstream is None:
            return error_page(502)
        downstream = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                           max_msg_size=0)
        try:
            await downstream.prepare(request)
            pumps = [asyncio.ensure_future(_pump(upstream, downstream)),
                     asyncio.ensure_future(_pump(downstream, upstream))]
            try:
                await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pump in pumps:
                    pump.cancel()
                await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            await upstream.close()
            await downstream.close()
        return downstream


async def _pump(source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
                sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
    """Copy messages one way until ``source`` closes, then close ``sink`` the same way."""
    async for message in source:
        if message.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif message.type == aiohttp.WSMsgType.ERROR:
            break
    with contextlib.suppress(ConnectionError, RuntimeError):
        await sink.close(code=source.close_code or 1000)


def _upstream_target(request: web.BaseRequest, route: Route) -> str:
    """The request target to send: the raw path and query, or the rewritten path."""
    rewritten = route.rewrite(request.path)
    if rewritten is None:
        return request.rel_url.raw_path_qs
    query = request.rel_url.raw_query_string
    target = quote(rewritten if rewritten.startswith("/") else "/" + rewritten, safe="/%:@!$&'()*+,;=-._~")
    return f"{target}?{query}" if query else target


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
