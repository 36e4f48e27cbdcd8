"""pods/proxy, services/proxy, nodes/proxy: HTTP through the API server to a pod, a Service or a kubelet.

What ``kubectl proxy`` users open in a browser, and what ``kubectl get --raw`` reaches::

    /api/v1/namespaces/<ns>/pods/[<scheme>:]<pod>[:<port>]/proxy/<path>
    /api/v1/namespaces/<ns>/services/[<scheme>:]<service>[:<port name|number>]/proxy/<path>
    /api/v1/nodes/[<scheme>:]<node>[:<port>]/proxy/<path>

Any method; the query string and body pass through; the answer comes back with its
status, headers (hop-by-hop ones dropped) and body, streamed.  As in kube-apiserver:

    pod      its status.podIP, at <port> (default 80; the scheme http unless "https:")
    service  a ready endpoint, at random, of the Service port named (or numbered) by
             <port> (the only port when none is given); 503 ``no endpoints available
             for service "web"`` when there is none
    node     its kubelet (status.addresses, daemonEndpoints.kubeletEndpoint.Port), e.g.
             ``/api/v1/nodes/skiff-node-0/proxy/metrics/resource``

skiff's safety rule applies on top: the API server connects only to loopback or to an
address inside a node's pod CIDR that is a pod's IP -- never to an address a user wrote
into an Endpoints object or a pod status that would lead out of the machine (400
``address not allowed``).  Protocol upgrades (websockets) are not proxied.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from ..api.errors import StatusError, bad_request
from ..api.resource import ResourceInfo
from .app import CONTEXT, SUBRESOURCE_HANDLERS
from .context import ServerContext
from .paths import ResourcePath
from .reach import check_pod_address, is_loopback, service_backend
from .streaming import kubelet_of

Obj = dict[str, Any]

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                        "trailer", "transfer-encoding", "upgrade", "host", "authorization",
                        "content-length", "content-encoding"})
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=300)


@dataclass(frozen=True)
class Location:
    scheme: str
    host: str
    port: int

    def url(self, rest: str, query: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}/{rest}" + (f"?{query}" if query else "")


def split_name(text: str) -> tuple[str, str, str]:
    """``[scheme:]name[:port]`` -> (scheme, name, port), as Kubernetes' SplitSchemeNamePort."""
    parts = text.split(":")
    if len(parts) == 1:
        return "", parts[0], ""
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3 and parts[0] in ("http", "https"):
        return parts[0], parts[1], parts[2]
    raise bad_request(f"invalid proxy name {text!r}")


def install_proxy(app: web.Application, *, kubelet_tls: ssl.SSLContext | None = None,
                  kubelet_scheme: str = "http") -> None:
    """Serve the proxy subresources of pods, services and nodes on ``app`` (before it starts)."""
    proxy = Proxy(app[CONTEXT], kubelet_tls, kubelet_scheme)
    handlers = app[SUBRESOURCE_HANDLERS]
    handlers[("", "pods", "proxy")] = proxy.pod
    handlers[("", "services", "proxy")] = proxy.service
    handlers[("", "nodes", "proxy")] = proxy.node
    app.on_cleanup.append(proxy.close)


class Proxy:
    def __init__(self, ctx: ServerContext, kubelet_tls: ssl.SSLContext | None, kubelet_scheme: str) -> None:
        self.ctx = ctx
        self.kubelet_tls = kubelet_tls
        self.kubelet_scheme = kubelet_scheme
        self._session: aiohttp.ClientSession | None = None

    async def close(self, _: web.Application | None = None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, plural: str, namespace: str, name: str) -> Obj:
        info = self.ctx.registry.get("", "v1", plural)
        assert info is not None
        obj, _ = await self.ctx.store.get(info, namespace, name)
        return obj

    # -- where to -----------------------------------------------------------------------

    async def pod(self, request: web.Request, info: ResourceInfo, target: ResourcePath) -> web.StreamResponse:
        scheme, name, port = split_name(target.name)
        pod = await self._get("pods", target.namespace, name)
        ip = str((pod.get("status") or {}).get("podIP") or "")
        if not ip:
            raise StatusError(503, "ServiceUnavailable", f"pod {name} does not have an IP address yet")
        await check_pod_address(self._get, ip, pod)
        return await self.forward(request, target, Location(scheme or "http", ip, _port(port, 80)))

    async def service(self, request: web.Request, info: ResourceInfo, target: ResourcePath) -> web.StreamResponse:
        scheme, name, port = split_name(target.name)
        ip, number = await service_backend(self._get, target.namespace, name, port)
        return await self.forward(request, target, Location(scheme or "http", ip, number))

    async def node(self, request: web.Request, info: ResourceInfo, target: ResourcePath) -> web.StreamResponse:
        scheme, name, port = split_name(target.name)
        node = await self._get("nodes", "", name)
        endpoint = ((node.get("status") or {}).get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
        try:
            kubelet = kubelet_of(node)
        except StatusError:
            kubelet = None
        if kubelet is None or kubelet.simulated or not endpoint.get("Port"):
            raise StatusError(503, "ServiceUnavailable", f"node {name} has no kubelet to proxy to")
        if not is_loopback(kubelet.host):
            raise bad_request(f"address not allowed: {kubelet.host}")
        return await self.forward(request, target,
                                  Location(scheme or self.kubelet_scheme, kubelet.host, _port(port, kubelet.port)))

    # -- the request --------------------------------------------------------------------

    async def forward(self, request: web.Request, target: ResourcePath, where: Location) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False)
        rest = target.rest + ("/" if request.path.endswith("/") and target.rest else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read() if request.can_read_body else None
        tls: ssl.SSLContext | bool = (self.kubelet_tls or False) if where.scheme == "https" else True
        try:
            upstream = await self._session.request(request.method, where.url(rest, request.query_string),
                                                   headers=headers, data=body, allow_redirects=False, ssl=tls)
        except (aiohttp.ClientError, OSError) as exc:
            raise StatusError(503, "ServiceUnavailable",
                              f"error trying to reach {where.host}:{where.port}: {exc or type(exc).__name__}") from None
        async with upstream:
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP or key.lower() == "content-encoding":
                    response.headers.add(key, value)
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response


def _port(text: str, default: int) -> int:
    if not text:
        return default
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise bad_request(f"invalid port {text!r}")
    return int(text)
