"""HTTP verbs on resource paths: request -> generic operation -> response.

::

    GET    collection            list (or watch with ?watch=true / the /watch/ prefix)
    POST   collection            create                                  201
    DELETE collection            deletecollection
    GET    item                  get
    PUT    item                  update (optimistic concurrency)
    PATCH  item                  patch (json, merge, strategic, apply)    200 | 201
    DELETE item                  delete
    *      item/<subresource>    status, scale, binding, finalize, and handlers
                                 registered by other components (log, exec ...)
    GET    not stored            metrics.k8s.io: from a component's memory (readonly.py)

Only this module touches aiohttp request objects for resources; the
operations themselves live in :mod:`.writes`, :mod:`.lists`, :mod:`.deletion`,
:mod:`.subresources` and :mod:`.watch`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from ..api.errors import StatusError, bad_request, invalid, method_not_allowed, not_found
from ..api.resource import ResourceInfo
from .context import ServerContext
from .conversion import StorageView, storage_views
from .deletion import Deleter
from .eviction import Evictor
from .lists import ListPage, list_objects, parse_list_query
from .negotiation import (
    APPLY_PATCH,
    Accept,
    compressed,
    decode_body,
    decode_patch,
    json_response,
    media_type,
    parse_accept,
    query_flag,
)
from .objects import decode, object_key, with_resource_version
from .patching import Patcher
from .paths import ResourcePath
from .readonly import serve_read_only
from .subresources import Subresources
from .tables import include_object_mode, partial_metadata, partial_metadata_list, table
from .watch import serve_watch
from .writes import WriteOptions, Writer, ensure_metadata, parse_write_options

Obj = dict[str, Any]
#: A handler for a subresource other components serve (pods/log, pods/exec ...).
SubresourceHandler = Callable[[web.Request, ResourceInfo, ResourcePath], Awaitable[web.StreamResponse]]

NO_RESOURCE = StatusError(404, "NotFound", "the server could not find the requested resource")


class ResourceHandlers:
    def __init__(self, ctx: ServerContext,
                 extra_subresources: dict[tuple[str, str, str], SubresourceHandler]) -> None:
        self.ctx = ctx
        self.writer = Writer(ctx)
        self.patcher = Patcher(ctx, self.writer)
        self.deleter = Deleter(ctx, self.writer)
        self.subresources = Subresources(ctx, self.writer, self.patcher)
        self.evictor = Evictor(ctx, self.writer, self.deleter)
        self.extra = extra_subresources
        self.views = storage_views(ctx.registry)

    def resolve(self, target: ResourcePath) -> ResourceInfo:
        info = self.ctx.registry.get(target.group, target.version, target.plural)
        if info is None or (target.namespace and not info.namespaced):
            raise NO_RESOURCE
        return info

    async def handle(self, request: web.Request, target: ResourcePath) -> web.StreamResponse:
        info = self.resolve(target)
        if not info.stored:
            return await serve_read_only(request, info, target,
                                         self.ctx.read_only.get((info.group, info.plural)))
        gvr = (info.group, info.version, info.plural)
        view = self.views.get(gvr) or self.ctx.custom_views.get(gvr)
        method = request.method
        ns, name = target.namespace, target.name
        if target.subresource:
            extra = self.extra.get((info.group, info.plural, target.subresource))
            if extra is not None:
                return await extra(request, info, target)
            if target.subresource == "eviction" and (info.group, info.plural) == ("", "pods"):
                if method != "POST":
                    raise method_not_allowed()
                return await self.evictor.evict_request(request, info, ns, name)
            return await self.subresources.handle(request, info, target, view)
        if info.namespaced and not ns and (name or method == "POST"):
            raise NO_RESOURCE
        watching = target.watch or query_flag(request.query, "watch")
        if not name:
            if method == "GET":
                if watching:
                    self._allow(info, "watch")
                    return await serve_watch(self.ctx, request, info, ns, "",
                                             storage=view.storage if view else None,
                                             transform=view.present if view else None)
                self._allow(info, "list")
                return await self.list_request(request, info, ns, view)
            if method == "POST":
                self._allow(info, "create")
                if (info.group, info.plural) == ("", "bindings"):
                    return await self.subresources.bind_request(request, ns, "")
                review = self.ctx.reviews.get((info.group, info.plural))
                if review is not None:
                    return await self.review(request, info, ns, review)
                return await self.create(request, info, ns, view)
            if method == "DELETE":
                self._allow(info, "deletecollection")
                return await self.deleter.delete_collection_request(request, info, ns, view)
            raise method_not_allowed()
        if method == "GET":
            if watching:
                self._allow(info, "watch")
                return await serve_watch(self.ctx, request, info, ns, name,
                                         storage=view.storage if view else None,
                                         transform=view.present if view else None)
            self._allow(info, "get")
            return await self.get(request, info, ns, name, view)
        if method == "PUT":
            self._allow(info, "update")
            return await self.update(request, info, ns, name, view)
        if method == "PATCH":
            self._allow(info, "patch")
            return await self.patch(request, info, ns, name, view)
        if method == "DELETE":
            self._allow(info, "delete")
            return await self.deleter.delete_request(request, info, ns, name, view)
        raise method_not_allowed()

    @staticmethod
    def _allow(info: ResourceInfo, verb: str) -> None:
        if verb not in info.verbs:
            raise method_not_allowed()

    # -- reads -----------------------------------------------------------------------

    async def get(self, request: web.Request, info: ResourceInfo, namespace: str,
                  name: str, view: StorageView | None = None) -> web.StreamResponse:
        kv = await self.ctx.backend.get(object_key(view.storage if view else info, namespace, name))
        if kv is None:
            raise not_found(info.plural, info.group, name)
        accept = parse_accept(request.headers.get("Accept", ""))
        if accept.table or accept.partial_metadata or view is not None:
            obj = decode(kv)
            if view is not None:
                obj = view.present(obj)
            if accept.table:
                return json_response(table(info, [obj], include_object_mode(request.query),
                                           {"resourceVersion": obj["metadata"]["resourceVersion"]}))
            if accept.partial_metadata:
                return json_response(partial_metadata(obj))
            return json_response(obj)
        return json_response(with_resource_version(kv.value, kv.mod_revision))

    async def list_request(self, request: web.Request, info: ResourceInfo, namespace: str,
                   view: StorageView | None = None) -> web.StreamResponse:
        q = parse_list_query(info, request.query)
        if view is None:
            page = await list_objects(self.ctx.backend, info, namespace, q)
        else:
            page = await list_objects(self.ctx.backend, view.storage, namespace, q, view.present)
        accept = parse_accept(request.headers.get("Accept", ""))
        return compressed(request, json_response(render_list(info, page, accept, request.query)))

    # -- writes ----------------------------------------------------------------------

    async def _body(self, request: web.Request, info: ResourceInfo) -> Obj:
        body = await request.read()
        return decode_body(body, media_type(request), expected_kind=info.kind,
                           protobuf_decoder=self.ctx.decode_protobuf)

    def _to_storage(self, info: ResourceInfo, view: StorageView, obj: Obj, opts: WriteOptions,
                    warnings: list[str]) -> tuple[Obj, WriteOptions]:
        """Check a body in the served form, then convert it for the storage kind's write path."""
        self.writer.check_type(info, obj)
        self.writer.check_unknown_fields(info, obj, opts, warnings)
        return view.store(obj), replace(opts, field_validation="Ignore")

    async def create(self, request: web.Request, info: ResourceInfo, namespace: str,
                     view: StorageView | None = None) -> web.StreamResponse:
        opts = parse_write_options(request.query, request.headers.get("User-Agent", ""))
        obj = await self._body(request, info)
        warnings: list[str] = []
        if view is None:
            created = await self.writer.create(info, namespace, obj, opts, warnings)
        else:
            stored, store_opts = self._to_storage(info, view, obj, opts, warnings)
            created = view.present(await self.writer.create(view.storage, namespace, stored,
                                                            store_opts, warnings))
        return object_response(created, 201, warnings)

    async def review(self, request: web.Request, info: ResourceInfo, namespace: str,
                     answer: Callable[[Obj], Obj]) -> web.StreamResponse:
        """A create-only resource (an access review): validated and answered, never stored."""
        obj = await self._body(request, info)
        self.writer.check_type(info, obj)
        meta = ensure_metadata(obj)
        if info.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace "
                                  "sent on the request")
            meta["namespace"] = namespace
        info.default(obj)
        causes = info.validate(obj, None)
        if causes:
            raise invalid(info.kind, info.group, meta.get("name", ""), causes)
        return object_response(answer(obj), 201)

    async def update(self, request: web.Request, info: ResourceInfo, namespace: str,
                     name: str, view: StorageView | None = None) -> web.StreamResponse:
        opts = parse_write_options(request.query, request.headers.get("User-Agent", ""))
        obj = await self._body(request, info)
        warnings: list[str] = []
        if view is None:
            updated = await self.writer.update(info, namespace, name, obj, opts, warnings)
        else:
            stored, store_opts = self._to_storage(info, view, obj, opts, warnings)
            updated = view.present(await self.writer.update(view.storage, namespace, name, stored,
                                                            store_opts, warnings))
        return object_response(updated, 200, warnings)

    async def patch(self, request: web.Request, info: ResourceInfo, namespace: str,
                    name: str, view: StorageView | None = None) -> web.StreamResponse:
        opts = parse_write_options(request.query, request.headers.get("User-Agent", ""))
        content_type = media_type(request)
        patch = decode_patch(await request.read(), content_type)
        if content_type == APPLY_PATCH and not request.query.get("fieldManager"):
            raise bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                              "is required for apply patch")
        warnings: list[str] = []
        obj, created = await self.patcher.patch(info, namespace, name, content_type, patch, opts, warnings,
                                                view=view)
        return object_response(obj, 201 if created else 200, warnings)


def object_response(obj: Obj, status: int, warnings: list[str] | None = None) -> web.Response:
    headers = None
    if warnings:
        from multidict import CIMultiDict

        headers = CIMultiDict(("Warning", f'299 - "{_escape(w)}"') for w in warnings)
    return web.Response(body=orjson.dumps(obj), status=status, content_type="application/json",
                        headers=headers)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def list_meta(page: ListPage) -> Obj:
    meta: Obj = {"resourceVersion": str(page.revision)}
    if page.continue_token:
        meta["continue"] = page.continue_token
        if page.remaining is not None:
            meta["remainingItemCount"] = page.remaining
    return meta


def render_list(info: ResourceInfo, page: ListPage, accept: Accept, query: Any) -> bytes:
    meta = list_meta(page)
    if accept.table:
        return orjson.dumps(table(info, page.decoded(), include_object_mode(query), meta))
    if accept.partial_metadata:
        return orjson.dumps(partial_metadata_list(page.decoded(), meta))
    if page.objects is not None or page.transform is not None:
        items = b",".join(orjson.dumps(o) for o in page.decoded())
    else:
        items = b",".join(with_resource_version(kv.value, kv.mod_revision) for kv in page.kvs)
    head = orjson.dumps({"kind": info.list_kind, "apiVersion": info.api_version, "metadata": meta})
    return head[:-1] + b',"items":[' + items + b"]}"
