"""Support for the ingress controller's component tests (no tests here).

The API server runs in-process; "pods" are aiohttp servers on 127.0.0.1 ports,
each answering with its own name and what it received. They are reached the way
the controller reaches pods: through a Service WITHOUT a selector plus an
EndpointSlice written by hand (address 127.0.0.1, the backend's port).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from background_support import running
from skiff.client.resources import ENDPOINTSLICES, SERVICES
from skiff.client.rest import ApiClient
from skiff.proxy.ingress import IngressController
from skiff.proxy.ingress.controller import INGRESSES

Obj = dict[str, Any]
DEADLINE = 10.0


class Backend:
    """A fake pod: ``GET /...`` → JSON about the request; ``/stream`` and ``/ws`` extras."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self.release_stream = asyncio.Event()   # /stream sends its second half after this
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> "Backend":
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("GET", "/stream", self._stream)
        app.router.add_route("GET", "/ws", self._websocket)
        app.router.add_route("*", "/{tail:.*}", self._echo)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release_stream.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({
            "backend": self.name, "method": request.method, "path": request.raw_path,
            "headers": {k: v for k, v in request.headers.items()}, "body": body.decode(errors="replace"),
            "body_length": len(body), "chunked": "chunked" in request.headers.get("Transfer-Encoding", "")})

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"first-half\n")
        await self.release_stream.wait()
        await response.write(b"second-half\n")
        await response.write_eof()
        return response

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("echo",))
        await ws.prepare(request)
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str(f"{self.name}:{message.data}")
            elif message.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws


def selectorless_service(name: str, port: int = 80, port_name: str = "http") -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"name": port_name, "port": port, "targetPort": 8080, "protocol": "TCP"}]}}


def endpoint_slice(service: str, ports: list[int], *, ready: bool = True, port_name: str = "http") -> Obj:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-manual", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"} for port in ports[:1]],
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready}}]}


async def expose(client: ApiClient, name: str, backend: Backend | None, **service: Any) -> None:
    """A selector-less Service ``name`` whose one endpoint is ``backend`` (none: no slice)."""
    await client.create(SERVICES, selectorless_service(name, **service), namespace="default")
    if backend is not None:
        await client.create(ENDPOINTSLICES, endpoint_slice(name, [backend.port],
                                                          port_name=service.get("port_name", "http")),
                            namespace="default")


def http_path(p: str, service: str, path_type: str = "Prefix", port: int | str = 80) -> Obj:
    ref = {"number": port} if isinstance(port, int) else {"name": port}
    return {"path": p, "pathType": path_type, "backend": {"service": {"name": service, "port": ref}}}


def ingress(name: str, rules: list[Obj], *, default: str | None = None, class_name: str | None = None,
            annotations: dict[str, str] | None = None, tls: list[Obj] | None = None) -> Obj:
    spec: Obj = {"rules": rules}
    if default is not None:
        spec["defaultBackend"] = {"service": {"name": default, "port": {"number": 80}}}
    if class_name is not None:
        spec["ingressClassName"] = class_name
    if tls is not None:
        spec["tls"] = tls
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
            "spec": spec}


async def create_ingress(client: ApiClient, controller: IngressController, body: Obj,
                         served: bool = True) -> None:
    """Create an Ingress and wait until the controller's pass has taken it in."""
    await client.create(INGRESSES, body, namespace="default")
    key = f"default/{body['metadata']['name']}"
    await wait_for(controller, lambda: (key in controller.served) == served
                   and controller.ingress(key) is not None)


async def wait_for(controller: IngressController, predicate: Any) -> None:
    await asyncio.wait_for(controller.wait_for(predicate), DEADLINE)


@contextlib.asynccontextmanager
async def running_controller(client: ApiClient, **options: Any) -> AsyncIterator[IngressController]:
    """The controller on ephemeral ports of 127.0.0.1; stopped (listeners closed) at the end."""
    controller = IngressController(client, host="127.0.0.1", http_port=0, https_port=0, **options)
    ready = asyncio.Event()
    listening: list[tuple[int, int]] = []
    async with running(controller.run(ready=ready, on_listening=lambda *ports: listening.append(ports)),
                       ready, "the ingress controller"):
        assert listening == [(controller.http_port, controller.https_port)]
        yield controller


async def get(session: aiohttp.ClientSession, controller: IngressController, path: str, *,
              host: str | None = None, **kwargs: Any) -> tuple[int, Any]:
    """A request through the controller's HTTP port: (status, JSON body or text)."""
    headers = dict(kwargs.pop("headers", {}))
    if host is not None:
        headers["Host"] = host
    method = kwargs.pop("method", "GET")
    url = URL(f"http://127.0.0.1:{controller.http_port}{path}", encoded=True)   # sent exactly as written
    async with session.request(method, url, headers=headers,
                               allow_redirects=False, **kwargs) as response:
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


async def served_by(session: aiohttp.ClientSession, controller: IngressController, path: str,
                    **kwargs: Any) -> str:
    status, body = await get(session, controller, path, **kwargs)
    assert status == 200, (status, body)
    return str(body["backend"])


def trusting(cert_pem: bytes) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=cert_pem.decode())
    return context
