"""PATCH: apply a JSON / merge / strategic-merge / server-side-apply patch and write.

The patch algorithms themselves live in :mod:`skiff.api.patch`; this module
chooses one from the Content-Type, applies it to the current object and hands
the result to the generic update path (:meth:`Writer.read_modify_write`), which
retries on write conflicts unless the patch itself pins a resourceVersion.

==========================================  ================================================
Content-Type                                behaviour
==========================================  ================================================
``application/json-patch+json``             RFC 6902 operations
``application/merge-patch+json``            RFC 7386 merge
``application/strategic-merge-patch+json``  merge keys from the schema (built-in kinds only)
``application/apply-patch+yaml``            server-side apply; creates a missing object (201)
==========================================  ================================================
"""

from __future__ import annotations

from typing import Any

from dataclasses import replace

from ..api.errors import StatusError, bad_request, not_found
from ..api.resource import ResourceInfo
from .context import ServerContext
from .conversion import StorageView
from .negotiation import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH
from .objects import format_time, object_key
from .writes import WriteOptions, Writer, ensure_metadata

Obj = dict[str, Any]


def strategic_unsupported() -> StatusError:
    return StatusError(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types include: "
                       "application/json-patch+json, application/merge-patch+json, "
                       "application/apply-patch+yaml")


class Patcher:
    def __init__(self, ctx: ServerContext, writer: Writer) -> None:
        self.ctx = ctx
        self.writer = writer

    def supports_strategic(self, info: ResourceInfo) -> bool:
        schema = self.ctx.schema
        return bool(info.schema_type) and schema is not None and schema.type(info.schema_type) is not None

    def apply_patch(self, info: ResourceInfo, current: Obj, content_type: str, patch: Any,
                    opts: WriteOptions, subresource: str = "") -> Obj:
        """The object ``patch`` turns ``current`` into.

        ``current`` is the caller's own copy (every caller decodes or builds a fresh
        one): it is patched in place, and is the result, for the patch types that can.
        """
        from ..api import patch as algorithms

        if content_type == JSON_PATCH:
            if not isinstance(patch, list):
                raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            result = algorithms.json_patch(current, patch, in_place=True)
        elif content_type == MERGE_PATCH:
            result = algorithms.json_merge_patch(current, patch, in_place=True)
        elif content_type == STRATEGIC_PATCH:
            schema = self.ctx.schema
            if schema is None or not self.supports_strategic(info):
                raise strategic_unsupported()
            result = algorithms.strategic_merge_patch(current, patch, schema, info.schema_type,
                                                      in_place=True)
        elif content_type == APPLY_PATCH:
            if not isinstance(patch, dict):
                raise bad_request("error decoding YAML: the applied configuration must be an object")
            if subresource:  # an apply to /status owns status only
                reset = tuple(k for k in patch if k not in ("status", "metadata", "apiVersion", "kind"))
            else:
                reset = ("status",) if info.has_status else ()
            # Kinds the schema lacks are applied schema-less (objects granular, lists atomic).
            fields = self.writer.fields if self.supports_strategic(info) else algorithms.FieldManager(None)
            result = fields.apply(
                current or None, patch, manager=opts.field_manager, force=opts.force,
                type_name=info.schema_type or None, now=format_time(self.ctx.clock()),
                subresource=subresource, reset_fields=reset)
        else:  # negotiation already refused other types
            raise bad_request(f"unsupported patch type {content_type}")
        if not isinstance(result, dict):
            raise bad_request("the patch did not produce an object")
        return result

    async def patch(self, info: ResourceInfo, namespace: str, name: str, content_type: str,
                    patch: Any, opts: WriteOptions, warnings: list[str],
                    *, subresource: str = "", view: StorageView | None = None) -> tuple[Obj, bool]:
        """Patch the object (or its status); returns (object, created).

        With a ``view`` the patch applies to the served form of the stored object.
        """
        if content_type == STRATEGIC_PATCH and not self.supports_strategic(info):
            raise strategic_unsupported()
        storage = view.storage if view else info
        attempt_warnings: list[str] = []

        def mutate(current: Obj, old: Obj) -> Obj:
            attempt_warnings.clear()
            base = view.present(current) if view else current
            patched = self.apply_patch(info, base, content_type, patch, opts, subresource)
            if content_type != APPLY_PATCH or "apiVersion" in patch:
                self.writer.check_type(info, patched)
            self.writer.check_unknown_fields(info, patched, opts, attempt_warnings, for_patch=True)
            return view.store(patched) if view else patched

        for _ in range(3):
            try:
                result = await self.writer.read_modify_write(storage, namespace, name, mutate, opts,
                                                             subresource=subresource,
                                                             record=content_type != APPLY_PATCH,
                                                             warnings=attempt_warnings)
            except StatusError as err:
                if not (err.code == 404 and content_type == APPLY_PATCH and not subresource
                        and await self._missing(storage, namespace, name)):
                    raise
                created = await self._apply_create(info, namespace, name, patch, opts, warnings, view)
                if created is None:
                    continue  # created by someone else meanwhile: patch it
                return created, True
            warnings.extend(attempt_warnings)
            return (view.present(result) if view else result), False
        raise not_found(info.plural, info.group, name)

    async def _missing(self, info: ResourceInfo, namespace: str, name: str) -> bool:
        return await self.ctx.backend.get(object_key(info, namespace, name)) is None

    async def _apply_create(self, info: ResourceInfo, namespace: str, name: str, patch: Obj,
                            opts: WriteOptions, warnings: list[str],
                            view: StorageView | None) -> Obj | None:
        """Server-side apply of a missing object: apply onto nothing, then create (None if it appeared)."""
        raw_meta = patch.get("metadata")
        meta: Obj = raw_meta if isinstance(raw_meta, dict) else {}
        if meta.get("name", name) != name:
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name "
                              f"on the URL ({name})")
        obj = self.apply_patch(info, {}, APPLY_PATCH, patch, opts)
        ensure_metadata(obj)["name"] = name
        try:
            if view is None:
                return await self.writer.create(info, namespace, obj, opts, warnings, record=False)
            self.writer.check_type(info, obj)
            self.writer.check_unknown_fields(info, obj, opts, warnings)
            created = await self.writer.create(view.storage, namespace, view.store(obj),
                                               replace(opts, field_validation="Ignore"), warnings,
                                               record=False)
            return view.present(created)
        except StatusError as err:
            if err.code == 409 and err.reason == "AlreadyExists":
                return None
            raise
