"""The API server as an aiohttp application: :func:`make_app`.

One catch-all route feeds every request to :class:`Dispatcher`, which parses
the path once (memoised), then answers discovery/documents itself or hands
resource requests to :class:`~skiff.apiserver.handlers.ResourceHandlers`.
Every :class:`StatusError` becomes its Status JSON; anything else is logged
and answered with a 500 InternalError Status, never a traceback.

Start-up (``on_startup``): start the backend, rebuild the Service allocators
from the store, start the watch cache, then :func:`~.bootstrap.bootstrap`, then
serve the stored CustomResourceDefinitions (:mod:`.customresources`).
Clean-up stops the watch cache (the backend belongs to the caller).

Other components can serve extra subresources (``pods/log``, ``pods/exec`` ...)
by adding ``(group, plural, subresource) -> handler`` entries to
``app[SUBRESOURCE_HANDLERS]`` before the app starts, and answer create-only
review resources by replacing entries of ``app[CONTEXT].reviews``.

Authentication and RBAC are on when ``auth=AuthOptions(...)`` is given
(:mod:`.auth.gate`): every request then passes the gate first (401/403).
Without it every request is allowed, as with ``--authorization-mode=AlwaysAllow``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web, web_urldispatcher

from ..api.errors import StatusError, internal_error
from ..api.kinds import Registry, builtin_registry
from ..api.schema import Schema
from ..storage.interface import Backend
from .admission import Admission
from .allocators import ServiceAllocators
from .priority import PodAdmission, PriorityClasses
from .ingressadmission import IngressAdmission, IngressClasses
from .storageadmission import StorageAdmission
from .bootstrap import bootstrap
from .context import ServerContext
from .customresources import DefinitionController
from .webhooks import WebhookAdmission
from .discovery import Discovery, aggregated_content_type
from .documents import Documents
from .handlers import NO_RESOURCE, ResourceHandlers, SubresourceHandler
from .lifecycle import NamespaceLifecycle
from .negotiation import JSON, compressed, parse_accept, status_response
from .paths import ApiPath, PathCache, ResourcePath
from .reviews import default_reviews
from .watchcache import WatchCache

if TYPE_CHECKING:
    from .auth.gate import AuthGate, AuthOptions

log = logging.getLogger(__name__)

CONTEXT = web.AppKey("skiff.apiserver.context", ServerContext)
SUBRESOURCE_HANDLERS = web.AppKey("skiff.apiserver.subresource_handlers",
                                  dict)  # dict[tuple[str, str, str], SubresourceHandler]
ALLOCATORS = web.AppKey("skiff.apiserver.allocators", ServiceAllocators)
#: the AuthGate when authentication is on (tests wait on its policy cache)
AUTH_GATE = web.AppKey("skiff.apiserver.auth_gate", object)
MAX_BODY = 16 * 1024 * 1024


class Dispatcher:
    def __init__(self, ctx: ServerContext, resources: ResourceHandlers,
                 gate: "AuthGate | None" = None) -> None:
        self.ctx = ctx
        self.gate = gate
        self.paths = PathCache()
        self.resources = resources
        self._built_for = -1
        self._refresh()

    def _refresh(self) -> None:
        """Rebuild discovery and the OpenAPI documents when the served kinds changed."""
        if self._built_for != self.ctx.registry_generation:
            self._built_for = self.ctx.registry_generation
            self.discovery = Discovery(self.ctx.registry)
            self.documents = Documents(self.ctx.registry, self.ctx.schema)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            target = self.paths.parse(request.path)
            if self.gate is not None:
                await self.gate.admit(request, target)
                if type(target) is ResourcePath and target.group == "authentication.k8s.io":
                    return await self.gate.serve_authentication(request, target)
            if type(target) is ResourcePath:
                return await self.resources.handle(request, target)
            assert isinstance(target, ApiPath)
            return self.document(request, target)
        except StatusError as err:
            return status_response(err)
        except (web.HTTPException, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug: log it, answer a Status
            log.exception("internal error serving %s %s", request.method, request.path_qs)
            return status_response(internal_error(f"{type(exc).__name__}: {exc}"))

    def document(self, request: web.Request, target: ApiPath) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            if target.kind == "unknown":
                raise NO_RESOURCE
            raise StatusError(405, "MethodNotAllowed",
                              "the server does not allow this method on the requested resource")
        kind = target.kind
        self._refresh()
        d = self.discovery
        if kind in ("api", "apis"):
            wanted = parse_accept(request.headers.get("Accept", "")).discovery
            if wanted:
                return web.Response(body=d.aggregated[(wanted, kind)],
                                    headers={"Content-Type": aggregated_content_type(wanted),
                                             "Vary": "Accept"})
            return _json(d.api_versions if kind == "api" else d.group_list)
        if kind == "group" and target.group in d.group:
            return _json(d.group[target.group])
        if kind == "groupversion":
            body = d.resource_list.get((target.group, target.version))
            if body is not None:
                return _json(body)
        if kind == "version":
            return self.documents.version_response()
        if kind == "health":
            return self.documents.health_response()
        if kind == "openapi":
            return compressed(request, self.documents.openapi_response(
                target.rest, request.headers.get("Accept", ""), request.headers.get("If-None-Match", "")))
        raise NO_RESOURCE


class _EveryPath(web_urldispatcher.PlainResource):
    """A route resource matching every path without building match info.

    The API server parses paths itself (:class:`PathCache`); aiohttp's generic
    ``/{tail:.*}`` route would unquote and regex-match every URL first.
    """

    def _match(self, path: str) -> dict[str, str] | None:
        return _NO_MATCH_INFO


_NO_MATCH_INFO: dict[str, str] = {}


def _json(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=JSON)


def _default_schema() -> Schema | None:
    try:
        from ..api.schema import builtin_schema

        return builtin_schema()
    except (ImportError, OSError, ValueError):
        log.warning("no built-in schema available: protobuf bodies, strategic merge and "
                    "OpenAPI are disabled")
        return None


def _core_getter(ctx: ServerContext) -> Callable[[str, str, str], Awaitable[dict[str, Any]]]:
    """``get(plural, namespace, name)`` of a core object from the store (NotFound if absent)."""
    async def get(plural: str, namespace: str, name: str) -> dict[str, Any]:
        info = ctx.registry.get("", "v1", plural)
        assert info is not None
        obj, _ = await ctx.store.get(info, namespace, name)
        return obj
    return get


def make_app(backend: Backend, *, registry: Registry | None = None, schema: Schema | None = None,
             service_cidr: str = "10.96.0.0/12", node_port_range: tuple[int, int] = (30000, 32767),
             clock: Callable[[], float] | Any = None, bookmark_interval: float = 60.0,
             watch_window: int = 10000, auth: "AuthOptions | None" = None) -> web.Application:
    """The API server for ``backend``.

    ``registry``: the served kinds (default: every built-in kind).  ``schema``:
    the type table (default: the built-in one).  ``clock``: wall-clock seconds
    for timestamps: a function, or an object with ``time()`` such as
    :class:`skiff.client.clock.FakeClock` (default ``time.time``).  ``bookmark_interval``:
    seconds between watch BOOKMARK events.  ``watch_window``: events kept in
    memory for watch replay before falling back to the store.
    """
    registry = registry if registry is not None else builtin_registry()
    if auth is not None:
        from .auth.gate import with_authentication_kinds

        registry = with_authentication_kinds(registry)
    schema = schema if schema is not None else _default_schema()
    allocators = ServiceAllocators(service_cidr, node_port_range)
    wall: Callable[[], float] = time.time
    if clock is not None:
        wall = clock if callable(clock) else clock.time
    ctx = ServerContext(backend=backend, registry=registry, schema=schema,
                        clock=wall, bookmark_interval=bookmark_interval)
    ctx.hooks[("", "services")] = allocators
    priorities = PriorityClasses()
    ctx.hooks[("scheduling.k8s.io", "priorityclasses")] = priorities
    ctx.hooks[("", "pods")] = PodAdmission(priorities)
    ctx.hooks[("", "namespaces")] = NamespaceLifecycle()
    storage = StorageAdmission()
    storage.install(ctx)
    ingress_classes = IngressClasses()
    ctx.hooks[("networking.k8s.io", "ingressclasses")] = ingress_classes
    ctx.hooks[("networking.k8s.io", "ingresses")] = IngressAdmission(ingress_classes)
    admission = Admission(backend, registry, wall)
    admission.install(ctx)
    ctx.reviews.update(default_reviews())
    ctx.watch_cache = WatchCache(backend, window=watch_window)

    app = web.Application(client_max_size=MAX_BODY)
    extra: dict[tuple[str, str, str], SubresourceHandler] = {}
    app[CONTEXT] = ctx
    app[SUBRESOURCE_HANDLERS] = extra
    app[ALLOCATORS] = allocators
    resources = ResourceHandlers(ctx, extra)
    gate = None
    if auth is not None:
        from .auth.gate import AuthGate

        gate = AuthGate(ctx, resources.writer, auth, clock=wall)
        gate.install(extra)
        app[AUTH_GATE] = gate
    definitions = DefinitionController(ctx, resources.writer, resources.deleter)
    webhooks = WebhookAdmission(ctx, _core_getter(ctx))
    ctx.webhooks = webhooks
    dispatcher = Dispatcher(ctx, resources, gate)
    every_path = _EveryPath("/")
    app.router.register_resource(every_path)
    every_path.add_route("*", dispatcher.handle)

    async def startup(_: web.Application) -> None:
        await backend.start()
        await allocators.rebuild(backend)
        await priorities.rebuild(backend)
        await storage.rebuild(backend)
        await ingress_classes.rebuild(backend)
        await admission.rebuild(backend)
        assert ctx.watch_cache is not None
        await ctx.watch_cache.start()
        await bootstrap(ctx, resources.writer, allocators.kubernetes_ip)
        await definitions.start()
        await webhooks.start()
        if gate is not None:
            await gate.start()

    async def stop_watches(_: web.Application) -> None:
        await definitions.stop()
        await webhooks.stop()
        if gate is not None:
            await gate.stop()
        if ctx.watch_cache is not None:  # ends every open watch stream (idempotent)
            await ctx.watch_cache.stop()

    app.on_startup.append(startup)
    app.on_shutdown.append(stop_watches)
    app.on_cleanup.append(stop_watches)
    return app
