"""DELETE and deletecollection: preconditions, grace periods, finalizers, propagation.

Lifecycle of a DELETE::

    preconditions (uid, resourceVersion) ──409──▶ Conflict
          │
    finalizers := metadata.finalizers + the propagation policy's
          │        (Orphan -> "orphan", Foreground -> "foregroundDeletion")
    grace := kind hook (Pods: gracePeriodSeconds or spec.terminationGracePeriodSeconds;
          │              0 when unscheduled or finished; other kinds 0)
          ▼
    finalizers, grace > 0 or a kind blocker (Namespace spec.finalizers)?
       yes ─▶ set deletionTimestamp (now + grace) and deletionGracePeriodSeconds,
              write; 200 with the object. It is removed later: by the update that
              clears the last finalizer, or (Pods) a DELETE with grace 0 from the kubelet.
       no  ─▶ remove now; 200 with the object (Pods, Services, Namespaces ...)
              or a Status Success naming it (other kinds), as kube-apiserver answers.

A second DELETE of an object being deleted may shorten its grace period; at 0
with no finalizers left it removes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from aiohttp import web

from ..api.errors import StatusError, bad_request, conflict, not_found
from ..api.resource import ResourceInfo
from ..storage.interface import KeyNotFound, RevisionMismatch
from .context import ServerContext
from .conversion import StorageView
from .lists import parse_filter
from .negotiation import decode_body, json_response, media_type
from .objects import collection_prefix, decode, format_time, object_key, parse_time
from .writes import MAX_PATCH_RETRIES, Writer

Obj = dict[str, Any]

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
POLICIES = ("Orphan", "Background", "Foreground")

#: (group, plural) whose DELETE answers with the object rather than a Status.
RETURNS_DELETED_OBJECT = frozenset({
    ("", "pods"), ("", "services"), ("", "namespaces"), ("", "serviceaccounts"),
    ("storage.k8s.io", "storageclasses"),
})


@dataclass(frozen=True, slots=True)
class DeleteOptions:
    grace_period: int | None = None
    propagation: str | None = None
    uid: str | None = None  # preconditions
    resource_version: str | None = None
    dry_run: bool = False


def parse_delete_options(body: bytes, content_type: str, query: Mapping[str, str],
                         protobuf_decoder: Callable[[bytes], Obj] | None = None) -> DeleteOptions:
    """DeleteOptions from the body (JSON, YAML or protobuf) and/or the query string (the query wins)."""
    data: Obj = {}
    if body.strip():
        data = decode_body(body, content_type, expected_kind="DeleteOptions",
                           protobuf_decoder=protobuf_decoder)
    return delete_options(data, query)


def delete_options(data: Obj, query: Mapping[str, str]) -> DeleteOptions:
    """DeleteOptions from a decoded object and the query string (the query wins)."""
    grace = query.get("gracePeriodSeconds", data.get("gracePeriodSeconds"))
    policy = query.get("propagationPolicy") or data.get("propagationPolicy")
    orphan = query.get("orphanDependents", data.get("orphanDependents"))
    if policy is None and orphan is not None:
        policy = "Orphan" if str(orphan).lower() == "true" else "Background"
    if policy is not None and policy not in POLICIES:
        raise bad_request(f'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: '
                          f'"{policy}": supported values: "Foreground", "Background", "Orphan", "nil"')
    pre = data.get("preconditions") or {}
    dry = query.get("dryRun") or data.get("dryRun")
    try:
        grace_value = None if grace is None else int(grace)
    except (TypeError, ValueError):
        raise bad_request(f'gracePeriodSeconds: Invalid value: "{grace}": must be an integer') from None
    if grace_value is not None and grace_value < 0:
        grace_value = 0
    return DeleteOptions(grace_period=grace_value, propagation=policy, uid=pre.get("uid"),
                         resource_version=pre.get("resourceVersion"), dry_run=bool(dry))


def success_status(info: ResourceInfo, obj: Obj) -> Obj:
    meta = obj.get("metadata", {})
    details: Obj = {"name": meta.get("name", "")}
    if info.group:
        details["group"] = info.group
    details["kind"] = info.plural
    details["uid"] = meta.get("uid", "")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


class Deleter:
    def __init__(self, ctx: ServerContext, writer: Writer) -> None:
        self.ctx = ctx
        self.writer = writer

    async def delete_request(self, request: web.Request, info: ResourceInfo, namespace: str,
                             name: str, view: StorageView | None = None) -> web.StreamResponse:
        opts = parse_delete_options(await request.read(), media_type(request), request.query,
                                    self.ctx.decode_protobuf)
        obj, removed = await self.delete(view.storage if view else info, namespace, name, opts)
        if removed and (info.group, info.plural) not in RETURNS_DELETED_OBJECT:
            return json_response(success_status(info, obj))
        return json_response(view.present(obj) if view else obj)

    async def delete(self, info: ResourceInfo, namespace: str, name: str,
                     opts: DeleteOptions) -> tuple[Obj, bool]:
        """Delete or start deleting; returns (object, removed now)."""
        key = object_key(info, namespace, name)
        hooks = self.ctx.hooks_for(info)
        for _ in range(MAX_PATCH_RETRIES):
            kv = await self.ctx.backend.get(key)
            if kv is None:
                raise not_found(info.plural, info.group, name)
            obj = decode(kv)
            meta = obj["metadata"]
            self._check_preconditions(info, name, meta, opts)
            hooks.check_delete(obj)
            await self.writer.deletion_webhooks(info, namespace, decode(kv), opts.dry_run)
            finalizers = list(meta.get("finalizers") or [])
            if opts.propagation is not None:
                finalizers = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
                if opts.propagation == "Orphan":
                    finalizers.append(ORPHAN)
                elif opts.propagation == "Foreground":
                    finalizers.append(FOREGROUND)
            grace = hooks.grace_period(obj, opts.grace_period)
            now = self.ctx.clock()
            if meta.get("deletionTimestamp"):
                current = meta.get("deletionGracePeriodSeconds") or 0
                if grace < current:
                    deadline = min(parse_time(meta["deletionTimestamp"]), now + grace)
                    meta["deletionTimestamp"] = format_time(deadline)
                    meta["deletionGracePeriodSeconds"] = grace
                else:
                    grace = current
            else:
                meta["deletionTimestamp"] = format_time(now + grace)
                meta["deletionGracePeriodSeconds"] = grace
            if finalizers:
                meta["finalizers"] = finalizers
            else:
                meta.pop("finalizers", None)
            pending = bool(finalizers) or grace > 0 or hooks.blocks_removal(obj)
            if opts.dry_run:
                return obj, not pending
            try:
                if pending:
                    hooks.mark_deleting(obj)
                    old = decode(kv)
                    if obj == old:
                        return old, False
                    await self.ctx.store.update(key, obj, kv.mod_revision)
                    return obj, False
                deleted = await self.ctx.store.delete(key, kv.mod_revision)
            except (RevisionMismatch, KeyNotFound):
                continue
            hooks.removed(deleted)
            return deleted, True
        raise conflict(info.plural, info.group, name, "the object has been modified; please apply "
                       "your changes to the latest version and try again")

    @staticmethod
    def _check_preconditions(info: ResourceInfo, name: str, meta: Obj, opts: DeleteOptions) -> None:
        if opts.uid is not None and opts.uid != meta.get("uid"):
            raise conflict(info.plural, info.group, name,
                           f"Precondition failed: UID in precondition: {opts.uid}, "
                           f"UID in object meta: {meta.get('uid', '')}")
        if opts.resource_version is not None and opts.resource_version != meta.get("resourceVersion"):
            raise conflict(info.plural, info.group, name,
                           f"Precondition failed: ResourceVersion in precondition: {opts.resource_version}, "
                           f"ResourceVersion in object meta: {meta.get('resourceVersion', '')}")

    async def delete_collection_request(self, request: web.Request, info: ResourceInfo,
                                        namespace: str, view: StorageView | None = None
                                        ) -> web.StreamResponse:
        opts = parse_delete_options(await request.read(), media_type(request), request.query,
                                    self.ctx.decode_protobuf)
        flt = parse_filter(info, request.query)
        storage = view.storage if view else info
        r = await self.ctx.backend.range(collection_prefix(storage, namespace))
        items: list[Obj] = []
        for kv in r.kvs:
            obj = view.present(decode(kv)) if view else decode(kv)
            if not flt.matches(obj):
                continue
            meta = obj["metadata"]
            try:
                deleted, _ = await self.delete(storage, meta.get("namespace", ""), meta["name"], opts)
            except StatusError as err:
                if err.code == 404:
                    continue
                raise
            items.append(view.present(deleted) if view else deleted)
        return json_response({"kind": info.list_kind, "apiVersion": info.api_version,
                              "metadata": {"resourceVersion": str(self.ctx.backend.revision)},
                              "items": items})
