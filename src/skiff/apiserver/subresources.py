"""Subresources served generically: status, scale, pods/binding, namespaces/finalize, pods/ephemeralcontainers.

=====================  =========  =================================================
subresource            verbs      effect
=====================  =========  =================================================
``<kind>/status``      GET        the whole object
                       PUT/PATCH  only ``status`` changes (spec and metadata kept)
``<kind>/scale``       GET        an ``autoscaling/v1`` Scale built from the kind's
                                  :class:`ScalePaths`
                       PUT/PATCH  writes ``spec.replicas`` (generation bumps)
``pods/binding``       POST       sets ``spec.nodeName`` once (409 when bound) and
                                  the PodScheduled condition; 201 Status Success
``namespaces/finalize`` PUT       replaces ``spec.finalizers``; the Namespace goes
                                  when the last one is removed during deletion
``pods/ephemeral...``  PUT/PATCH  adds ``spec.ephemeralContainers`` (kubectl debug);
                                  existing ones may not change or go
=====================  =========  =================================================
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web

from ..api.errors import StatusError, bad_request, conflict, invalid, method_not_allowed
from ..api.errors import Cause
from ..api.resource import ResourceInfo
from ..api.selectors import SelectorError, label_selector_from_object
from .context import ServerContext
from .conversion import StorageView
from .negotiation import decode_body, decode_patch, json_response, media_type
from .objects import format_time


def decode_copy(obj: Obj) -> Obj:
    """An independent copy of a JSON-shaped object."""
    return orjson.loads(orjson.dumps(obj))  # type: ignore[no-any-return]
from .patching import Patcher
from .paths import ResourcePath
from .writes import Writer, ensure_metadata, parse_write_options

Obj = dict[str, Any]

NOT_FOUND = StatusError(404, "NotFound", "the server could not find the requested resource")


def get_path(obj: Obj, dotted: str) -> Any:
    cur: Any = obj
    for part in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def set_path(obj: Obj, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


def scale_of(info: ResourceInfo, obj: Obj) -> Obj:
    """The autoscaling/v1 Scale view of ``obj``."""
    assert info.scale is not None
    paths = info.scale
    meta = obj["metadata"]
    selector = get_path(obj, paths.label_selector)
    if isinstance(selector, dict):
        if selector and not {"matchLabels", "matchExpressions"} & selector.keys():
            # a plain label map (ReplicationController.spec.selector)
            selector = {"matchLabels": selector}
        try:
            selector = str(label_selector_from_object(selector))
        except SelectorError:
            selector = ""
    status: Obj = {"replicas": get_path(obj, paths.status_replicas) or 0}
    if selector:
        status["selector"] = selector
    scale_meta = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                  if k in meta}
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
            "spec": {"replicas": get_path(obj, paths.spec_replicas) or 0}, "status": status}


class Subresources:
    def __init__(self, ctx: ServerContext, writer: Writer, patcher: Patcher) -> None:
        self.ctx = ctx
        self.writer = writer
        self.patcher = patcher

    async def handle(self, request: web.Request, info: ResourceInfo, target: ResourcePath,
                     view: StorageView | None = None) -> web.StreamResponse:
        sub, method = target.subresource, request.method
        ns, name = target.namespace, target.name
        if sub == "status" and info.has_status:
            if method == "GET":
                obj, _ = await self.ctx.store.get(view.storage if view else info, ns, name)
                return json_response(view.present(obj) if view else obj)
            return await self._write(request, info, ns, name, "status", view)
        if view is not None:
            if not (sub == "scale" and info.scale is not None and view.storage.scale is not None):
                raise NOT_FOUND
            info = view.storage  # a Scale is the same in every version: read and write the stored one
        if sub == "scale" and info.scale is not None:
            if method == "GET":
                obj, _ = await self.ctx.store.get(info, ns, name)
                return json_response(scale_of(info, obj))
            if method in ("PUT", "PATCH"):
                return await self._scale(request, info, ns, name)
            raise method_not_allowed()
        if sub == "binding" and (info.group, info.plural) == ("", "pods"):
            if method != "POST":
                raise method_not_allowed()
            return await self.bind_request(request, ns, name)
        if sub == "finalize" and (info.group, info.plural) == ("", "namespaces"):
            if method != "PUT":
                raise method_not_allowed()
            return await self._finalize(request, info, name)
        if sub == "ephemeralcontainers" and (info.group, info.plural) == ("", "pods"):
            if method == "GET":
                obj, _ = await self.ctx.store.get(info, ns, name)
                return json_response(obj)
            if method in ("PUT", "PATCH"):
                return await self._ephemeral(request, info, ns, name)
            raise method_not_allowed()
        raise NOT_FOUND

    async def _ephemeral(self, request: web.Request, info: ResourceInfo, ns: str,
                         name: str) -> web.StreamResponse:
        """``kubectl debug``: only ``spec.ephemeralContainers`` changes, and only by additions."""
        opts = parse_write_options(request.query, request.headers.get("User-Agent", ""))
        content_type = media_type(request)
        raw = await request.read()
        if request.method == "PUT":
            body = decode_body(raw, content_type, expected_kind=info.kind,
                               protobuf_decoder=self.ctx.decode_protobuf)
        else:
            patch = decode_patch(raw, content_type)

        def mutate(current: Obj, old: Obj) -> Obj:
            if request.method == "PUT":
                wanted = body
            else:
                wanted = self.patcher.apply_patch(info, decode_copy(current), content_type, patch, opts)
            containers = (wanted.get("spec") or {}).get("ephemeralContainers") or []
            before = {c.get("name"): c for c in (current.get("spec") or {}).get("ephemeralContainers") or []}
            for c in containers:
                if c.get("name") in before and before[c.get("name")] != c:
                    raise invalid("Pod", "", name, [Cause(
                        "FieldValueForbidden", "Forbidden: existing ephemeral containers may not be changed",
                        "spec.ephemeralContainers")])
            if len(containers) < len(before):
                raise invalid("Pod", "", name, [Cause(
                    "FieldValueForbidden", "Forbidden: existing ephemeral containers may not be removed",
                    "spec.ephemeralContainers")])
            current.setdefault("spec", {})["ephemeralContainers"] = containers
            rv = (wanted.get("metadata") or {}).get("resourceVersion")
            if rv:
                current["metadata"]["resourceVersion"] = rv
            return current

        obj = await self.writer.read_modify_write(info, ns, name, mutate, opts,
                                                  subresource="ephemeralcontainers")
        return json_response(obj)

    async def _write(self, request: web.Request, info: ResourceInfo, ns: str, name: str,
                     sub: str, view: StorageView | None) -> web.StreamResponse:
        from .handlers import object_response

        opts = parse_write_options(request.query, request.headers.get("User-Agent", ""))
        warnings: list[str] = []
        if request.method == "PUT":
            body = decode_body(await request.read(), media_type(request), expected_kind=info.kind,
                               protobuf_decoder=self.ctx.decode_protobuf)
            if view is None:
                obj = await self.writer.update(info, ns, name, body, opts, warnings, subresource=sub)
            else:
                self.writer.check_type(info, body)
                obj = view.present(await self.writer.update(
                    view.storage, ns, name, view.store(body), replace(opts, field_validation="Ignore"),
                    warnings, subresource=sub))
            return object_response(obj, 200, warnings)
        if request.method == "PATCH":
            content_type = media_type(request)
            patch = decode_patch(await request.read(), content_type)
            obj, _ = await self.patcher.patch(info, ns, name, content_type, patch, opts, warnings,
                                              subresource=sub, view=view)
            return object_response(obj, 200, warnings)
        raise method_not_allowed()

    async def _scale(self, request: web.Request, info: ResourceInfo, ns: str,
                     name: str) -> web.StreamResponse:
        assert info.scale is not None
        paths = info.scale
        opts = parse_write_options(request.query, request.headers.get("User-Agent", ""))
        content_type = media_type(request)
        raw = await request.read()
        if request.method == "PUT":
            body = decode_body(raw, content_type, expected_kind="Scale",
                               protobuf_decoder=self.ctx.decode_protobuf)
        else:
            patch = decode_patch(raw, content_type)

        def mutate(current: Obj, old: Obj) -> Obj:
            scale = scale_of(info, current)
            if request.method == "PUT":
                new_scale = body
                meta = ensure_metadata(new_scale)
                if meta.get("name", name) != name:
                    raise bad_request(f"the name of the object ({meta.get('name')}) does not match "
                                      f"the name on the URL ({name})")
            else:
                new_scale = self.patcher.apply_patch(_SCALE_INFO, scale, content_type, patch, opts)
            replicas = (new_scale.get("spec") or {}).get("replicas", 0)
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise invalid("Scale", "autoscaling", name, [Cause(
                    "FieldValueInvalid", f"Invalid value: {replicas}: must be greater than or equal to 0",
                    "spec.replicas")])
            wanted = (new_scale.get("metadata") or {}).get("resourceVersion")
            if wanted:
                current["metadata"]["resourceVersion"] = wanted
            set_path(current, paths.spec_replicas, replicas)
            return current

        obj = await self.writer.read_modify_write(info, ns, name, mutate, opts, subresource="scale")
        return json_response(scale_of(info, obj))

    async def bind_request(self, request: web.Request, ns: str, name: str) -> web.StreamResponse:
        """``pods/<name>/binding`` or the ``bindings`` collection (pod named in the body)."""
        info = self.ctx.registry.get("", "v1", "pods")
        if info is None:
            raise NOT_FOUND
        body = decode_body(await request.read(), media_type(request), expected_kind="Binding",
                           protobuf_decoder=self.ctx.decode_protobuf)
        body_name = (body.get("metadata") or {}).get("name") or ""
        if not name:
            name = body_name
        elif body_name and body_name != name:
            raise bad_request(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
        target = body.get("target") or {}
        node = target.get("name") or ""
        if not node:
            raise invalid("Binding", "", name, [Cause("FieldValueRequired", "Required value", "target.name")])
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        opts = parse_write_options(request.query, request.headers.get("User-Agent", ""))
        now = format_time(self.ctx.clock())

        def mutate(current: Obj, old: Obj) -> Obj:
            spec = current.setdefault("spec", {})
            if current["metadata"].get("deletionTimestamp"):
                raise conflict("pods/binding", "", name,
                               f"pod {name} is being deleted, cannot be assigned to a host")
            if spec.get("nodeName"):
                raise conflict("pods/binding", "", name,
                               f'pod {name} is already assigned to node "{spec["nodeName"]}"')
            spec["nodeName"] = node
            if annotations:
                current["metadata"].setdefault("annotations", {}).update(annotations)
            conditions = current.setdefault("status", {}).setdefault("conditions", [])
            for c in conditions:
                if c.get("type") == "PodScheduled":
                    if c.get("status") != "True":
                        c.update(status="True", lastTransitionTime=now)
                        c.pop("reason", None)
                        c.pop("message", None)
                    break
            else:
                conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                   "lastTransitionTime": now})
            return current

        await self.writer.read_modify_write(info, ns, name, mutate, opts, subresource="binding")
        return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Success", "code": 201}, status=201)

    async def _finalize(self, request: web.Request, info: ResourceInfo, name: str) -> web.StreamResponse:
        body = decode_body(await request.read(), media_type(request), expected_kind=info.kind,
                           protobuf_decoder=self.ctx.decode_protobuf)
        finalizers = (body.get("spec") or {}).get("finalizers") or []
        opts = parse_write_options(request.query, request.headers.get("User-Agent", ""))

        def mutate(current: Obj, old: Obj) -> Obj:
            spec = current.setdefault("spec", {})
            if finalizers:
                spec["finalizers"] = list(finalizers)
            else:
                spec.pop("finalizers", None)
            return current

        obj = await self.writer.read_modify_write(info, "", name, mutate, opts, subresource="finalize")
        return json_response(obj)


_SCALE_INFO = ResourceInfo(group="autoscaling", version="v1", kind="Scale", plural="scale",
                           singular="scale", namespaced=True,
                           schema_type="io.k8s.api.autoscaling.v1.Scale")

