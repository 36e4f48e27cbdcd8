"""Create, update and patch: the generic write path every kind goes through.

Create::

    body ─▶ type check (apiVersion/kind) ─▶ namespace/name (generateName)
         ─▶ unknown fields (fieldValidation Strict 400 | Warn header | Ignore)
         ─▶ namespace exists and is not Terminating
         ─▶ uid, creationTimestamp, generation=1 (kinds with spec)
         ─▶ kind.prepare_create ─▶ kind.default ─▶ mutating webhooks ─▶ kind.validate (422)
         ─▶ hooks.admit (ClusterIP/NodePort) ─▶ admission (LimitRanger, ResourceQuota)
         ─▶ validating webhooks ─▶ store.create (409 AlreadyExists)

Update (PUT, PATCH, and internal read-modify-write callers)::

    current (404) ─▶ new object ─▶ keep identity and system fields from current
         ─▶ main resource: keep status (kinds with a status subresource)
            status subresource: keep everything but status
         ─▶ kind.prepare_update ─▶ default ─▶ mutating webhooks ─▶ validate ─▶ generation+1
            if spec changed ─▶ hooks, admission ─▶ validating webhooks
         ─▶ nothing changed? answer current, write nothing
         ─▶ deletionTimestamp set and last finalizer gone? delete instead
         ─▶ CAS on the current mod revision (409 Conflict when it moved)

Patches without a resourceVersion precondition are retried on CAS conflicts.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

import orjson

from ..api.errors import (
    Cause,
    StatusError,
    bad_request,
    forbidden,
    invalid,
    not_found,
    stale_conflict,
)
from ..api.resource import ResourceInfo
from ..storage.interface import KeyNotFound, KeyValue, RevisionMismatch
from ..api.omitempty import EmptyFields
from ..api.patch import FieldManager
from .context import ServerContext
from .negotiation import query_flag
from .unknownfields import UnknownFields
from .webhooks import admission_attributes
from .webhooks.dispatch import MUTATING, VALIDATING
from .objects import decode, format_time, object_key

Obj = dict[str, Any]

GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATE_NAME_SUFFIX = 5
GENERATE_NAME_ATTEMPTS = 8  # kube-apiserver retries a taken generated name (RetryGenerateName)
MAX_PATCH_RETRIES = 16
FIELD_VALIDATIONS = ("Strict", "Warn", "Ignore")

# Fields of metadata the server owns: a client write never changes them.
SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
               "generation", "selfLink")
_NOT_SPEC = frozenset({"metadata", "status", "apiVersion", "kind"})

#: Metadata a status write may change, where it differs from (labels, annotations):
#: a Deployment's status strategy also resets labels.
STATUS_WRITABLE_META: dict[str, tuple[str, ...]] = {"Deployment": ("annotations",)}
#: Writes the server makes on a client's behalf with their own checks (as Kubernetes'
#: binding and finalize storage do): the kind's update validation does not apply.
UNVALIDATED_SUBRESOURCES = frozenset({"binding", "finalize", "ephemeralcontainers"})
#: writes admission webhooks are asked about: the object itself and its status
#: (the other subresources' writes are the server's own or carry another kind)
WEBHOOK_SUBRESOURCES = frozenset({"", "status"})


@dataclass(frozen=True, slots=True)
class WriteOptions:
    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"  # Strict | Warn | Ignore
    force: bool = False  # server-side apply: take over conflicting fields


def default_manager(user_agent: str) -> str:
    """The field manager of a write that names none: the User-Agent's product (``kubectl``)."""
    return user_agent.split("/", 1)[0].strip()[:128] or "unknown"


def parse_write_options(query: Mapping[str, str], user_agent: str = "") -> WriteOptions:
    dry = query.get("dryRun", "")
    if dry and dry != "All":
        raise bad_request(f'dryRun: Unsupported value: "{dry}": supported values: "All"')
    validation = query.get("fieldValidation", "") or "Warn"
    if validation not in FIELD_VALIDATIONS:
        raise bad_request(f'fieldValidation: Invalid value: "{validation}": '
                          'fieldValidation must be one of "Ignore", "Warn", or "Strict"')
    force = query_flag(query, "force")
    manager = query.get("fieldManager", "") or default_manager(user_agent)
    return WriteOptions(dry_run=bool(dry), field_manager=manager,
                        field_validation=validation, force=force)


#: Kubernetes cuts a generateName prefix so prefix + suffix fits a 63-character name.
MAX_GENERATE_NAME_PREFIX = 63 - GENERATE_NAME_SUFFIX


def generate_name(prefix: str) -> str:
    return prefix[:MAX_GENERATE_NAME_PREFIX] + "".join(secrets.choice(GENERATE_NAME_ALPHABET) for _ in range(GENERATE_NAME_SUFFIX))


def spec_of(obj: Obj) -> dict[str, Any]:
    """Everything that counts as the object's desired state (for ``metadata.generation``)."""
    return {k: v for k, v in obj.items() if k not in _NOT_SPEC}


def ensure_metadata(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    elif not isinstance(meta, dict):
        raise bad_request("metadata must be an object")
    return meta


class Writer:
    """The write verbs over one :class:`ServerContext`."""

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        #: managedFields bookkeeping, kept for the server's life (it remembers schema walks)
        self.fields = FieldManager(ctx.schema)
        #: the unknown-field walk, likewise (it remembers member lookups)
        self.unknown = UnknownFields(ctx.schema) if ctx.schema is not None else None
        #: the omitempty zeros of status, likewise
        self.empty = EmptyFields(ctx.schema) if ctx.schema is not None else None

    # -- checks shared by create and update ----------------------------------------

    def check_type(self, info: ResourceInfo, obj: Obj) -> None:
        """The body's apiVersion/kind (when given) must be the endpoint's."""
        api_version = obj.get("apiVersion") or info.api_version
        kind = obj.get("kind") or info.kind
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        if group != info.group or api_version != info.api_version:
            raise bad_request(f"the API version in the data ({api_version}) does not match the "
                              f"expected API version ({info.api_version})")
        if kind != info.kind:
            version = api_version.rpartition("/")[2]
            raise bad_request(f'{kind} in version "{version}" cannot be handled as a {info.kind}: '
                              f"no kind \"{kind}\" is registered for version \"{api_version}\"")
        obj["apiVersion"] = info.api_version
        obj["kind"] = info.kind

    def check_unknown_fields(self, info: ResourceInfo, obj: Obj, opts: WriteOptions,
                             warnings: list[str], *, for_patch: bool = False) -> None:
        """Decode the body as Kubernetes does: a value of the wrong JSON type is 400 BadRequest;
        keys the kind's type does not declare are dropped, 400 (Strict) or warned about (Warn)."""
        if info.prune is not None:  # a custom resource: its schema says what is kept
            paths = info.prune(obj)
        elif self.unknown is None or not info.schema_type:
            return
        else:
            findings = self.unknown.inspect(info.schema_type, obj)
            if findings.type_error is not None:
                if for_patch:
                    raise bad_request(findings.type_error)
                raise bad_request(f'{info.kind} in version "{info.version}" cannot be handled as a '
                                  f'{info.kind}: {findings.type_error}')
            paths = findings.unknown
        if not paths or opts.field_validation == "Ignore":
            return
        quoted = [_unknown(p) for p in paths]
        if opts.field_validation == "Strict":
            detail = "strict decoding error: " + ", ".join(quoted)
            if for_patch:
                raise bad_request(detail)
            version = info.version
            raise bad_request(f'{info.kind} in version "{version}" cannot be handled as a {info.kind}: {detail}')
        warnings.extend(quoted)

    async def check_namespace(self, info: ResourceInfo, namespace: str, name: str = "") -> None:
        """The namespace must exist (404) and not be terminating (403) for new objects."""
        if not info.namespaced:
            return
        ns_info = self.ctx.registry.get("", "v1", "namespaces")
        if ns_info is None:
            return
        kv = await self.ctx.backend.get(object_key(ns_info, "", namespace))
        if kv is None:
            raise not_found("namespaces", "", namespace)
        if b'"Terminating"' in kv.value:  # cheap pre-check before decoding
            phase = decode(kv).get("status", {}).get("phase")
            if phase == "Terminating":
                raise forbidden(info.plural, info.group, name,
                                f"unable to create new content in namespace {namespace} "
                                "because it is being terminated")

    def record_fields(self, info: ResourceInfo, old: Obj | None, new: Obj, opts: WriteOptions,
                      subresource: str = "") -> Obj:
        """``new`` with ``metadata.managedFields`` updated for this write's field manager."""
        if not opts.field_manager:
            return new
        return self.fields.update(old, new, opts.field_manager, type_name=info.schema_type or None,
                                  now=format_time(self.ctx.clock()), subresource=subresource)

    def drop_empty_status(self, info: ResourceInfo, obj: Obj) -> None:
        """Leave out of a built-in kind's status the zeros Kubernetes never shows (omitempty)."""
        if self.empty is not None and info.schema_type and "status" in obj:
            self.empty.drop_in_status(info.schema_type, obj)

    def validate(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        causes = info.validate(obj, old)
        if causes:
            raise invalid(info.kind, info.group, obj["metadata"].get("name", ""), causes)

    # -- admission webhooks ------------------------------------------------------------

    async def mutating_webhooks(self, info: ResourceInfo, operation: str, subresource: str, namespace: str,
                                obj: Obj, old: Obj | None, opts: WriteOptions, warnings: list[str]) -> Obj:
        """``obj`` as the matching MutatingWebhookConfigurations leave it (see skiff.apiserver.webhooks)."""
        webhooks = self.ctx.webhooks
        if webhooks is None or not webhooks.active(MUTATING) or subresource not in WEBHOOK_SUBRESOURCES:
            return obj
        attrs = await admission_attributes(self.ctx, info, operation, subresource, namespace,
                                           str(obj["metadata"].get("name", "")), obj, old, opts.dry_run)
        return await webhooks.mutate(attrs, obj, warnings)

    async def validating_webhooks(self, info: ResourceInfo, operation: str, subresource: str, namespace: str,
                                  obj: Obj | None, old: Obj | None, opts: WriteOptions,
                                  warnings: list[str]) -> None:
        """Refuse the write if a matching ValidatingWebhookConfiguration's webhook denies it."""
        webhooks = self.ctx.webhooks
        if webhooks is None or not webhooks.active(VALIDATING) or subresource not in WEBHOOK_SUBRESOURCES:
            return
        name = str(((obj or old or {}).get("metadata") or {}).get("name", ""))
        attrs = await admission_attributes(self.ctx, info, operation, subresource, namespace, name, obj, old,
                                           opts.dry_run)
        await webhooks.validate(attrs, obj, warnings)

    async def deletion_webhooks(self, info: ResourceInfo, namespace: str, current: Obj, dry_run: bool) -> None:
        """A DELETE of ``current``: mutating, then validating webhooks may refuse it."""
        opts = WriteOptions(dry_run=dry_run)
        await self.mutating_webhooks(info, "DELETE", "", namespace, current, current, opts, [])
        await self.validating_webhooks(info, "DELETE", "", namespace, None, current, opts, [])

    # -- create --------------------------------------------------------------------

    async def create(self, info: ResourceInfo, namespace: str, obj: Obj, opts: WriteOptions,
                     warnings: list[str], *, record: bool = True) -> Obj:
        """Create ``obj``; ``record=False`` when managedFields are already set (server-side apply)."""
        self.check_type(info, obj)
        meta = ensure_metadata(obj)
        if info.namespaced:
            body_ns = meta.get("namespace") or ""
            if body_ns and namespace and body_ns != namespace:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            namespace = namespace or body_ns
            if not namespace:
                raise bad_request("the namespace of the provided object does not match the "
                                  "namespace sent on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        generated = not meta.get("name") and bool(meta.get("generateName"))
        if generated:
            meta["name"] = generate_name(meta["generateName"])
        self.check_unknown_fields(info, obj, opts, warnings)
        if meta.get("resourceVersion"):  # as kube-apiserver's storage layer answers it
            raise StatusError(500, "InternalError", "resourceVersion should not be set on objects to be created")
        await self.check_namespace(info, namespace, meta.get("name") or "")
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = format_time(self.ctx.clock())
        if "spec" in obj:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        info.prepare_create(obj)
        info.default(obj)
        if not meta.get("name"):
            raise invalid(info.kind, info.group, "", [Cause(
                "FieldValueRequired", "Required value: name or generateName is required", "metadata.name")])
        obj = await self.mutating_webhooks(info, "CREATE", "", namespace, obj, None, opts, warnings)
        self.drop_empty_status(info, obj)
        self.validate(info, obj, None)
        if record:
            obj = self.record_fields(info, None, obj, opts)
        hooks = self.ctx.hooks_for(info)
        reservation = hooks.admit(obj, None)
        try:
            if self.ctx.admission is not None:
                await self.ctx.admission.admit(info, obj, None, dry_run=opts.dry_run)
            await self.validating_webhooks(info, "CREATE", "", namespace, obj, None, opts, warnings)
            if opts.dry_run:
                reservation.abort()
                return obj
            for attempt in range(GENERATE_NAME_ATTEMPTS if generated else 1):
                try:
                    await self.ctx.store.create(info, obj)
                    break
                except StatusError as err:  # a generated name that is taken: draw another
                    if err.reason != "AlreadyExists" or attempt + 1 == GENERATE_NAME_ATTEMPTS or not generated:
                        raise
                    obj["metadata"]["name"] = generate_name(obj["metadata"]["generateName"])
        except BaseException:
            reservation.abort()
            raise
        reservation.commit()
        return obj

    # -- update --------------------------------------------------------------------

    async def update(self, info: ResourceInfo, namespace: str, name: str, obj: Obj,
                     opts: WriteOptions, warnings: list[str], *, subresource: str = "") -> Obj:
        """PUT: replace the object (or its status) with ``obj``; 409 on a stale resourceVersion."""
        self.check_type(info, obj)
        meta = ensure_metadata(obj)
        check_identity(info, namespace, name, meta)
        self.check_unknown_fields(info, obj, opts, warnings)
        key = object_key(info, namespace, name)
        kv = await self.ctx.backend.get(key)
        if kv is None:
            raise not_found(info.plural, info.group, name)
        old = decode(kv)
        wanted = meta.get("resourceVersion")
        if wanted and wanted != old["metadata"]["resourceVersion"]:
            raise stale_conflict(info.plural, info.group, name)
        try:
            return await self.finish_update(info, key, kv, old, obj, opts, subresource=subresource,
                                            warnings=warnings)
        except RevisionMismatch:
            raise stale_conflict(info.plural, info.group, name) from None

    async def read_modify_write(self, info: ResourceInfo, namespace: str, name: str,
                                mutate: Callable[[Obj, Obj], Awaitable[Obj] | Obj],
                                opts: WriteOptions, *, subresource: str = "",
                                precondition_rv: bool = True, record: bool = True,
                                warnings: list[str] | None = None) -> Obj:
        """Apply ``mutate(current_copy, current)`` and write, retrying on CAS conflicts.

        ``mutate`` returns the new object; when it carries a resourceVersion other
        than the current one (a client precondition), the result is a 409.
        """
        key = object_key(info, namespace, name)
        for _ in range(MAX_PATCH_RETRIES):
            kv = await self.ctx.backend.get(key)
            if kv is None:
                raise not_found(info.plural, info.group, name)
            old = decode(kv)
            result = mutate(decode(kv), old)
            new: Obj = await result if isinstance(result, Awaitable) else result
            meta = ensure_metadata(new)
            wanted = meta.get("resourceVersion")
            if precondition_rv and wanted and wanted != old["metadata"]["resourceVersion"]:
                raise stale_conflict(info.plural, info.group, name)
            check_identity(info, namespace, name, meta)
            try:
                return await self.finish_update(info, key, kv, old, new, opts, subresource=subresource,
                                                record=record, warnings=warnings)
            except RevisionMismatch:
                continue
        raise stale_conflict(info.plural, info.group, name)

    async def finish_update(self, info: ResourceInfo, key: str, kv: KeyValue, old: Obj, new: Obj,
                            opts: WriteOptions, *, subresource: str = "", record: bool = True,
                            warnings: list[str] | None = None) -> Obj:
        """Merge system fields, validate, and CAS-write ``new`` over ``old`` (read at ``kv``).

        ``new`` is the caller's own object (it shares nothing with ``old``) and may be
        changed or become the result.
        """
        old_meta = old["metadata"]
        if subresource == "status":
            # As Kubernetes' status strategies: spec (and system metadata) stay as stored,
            # while labels and annotations may change along with status -- controllers
            # rely on it (the Deployment controller records its revision annotation with
            # its status write, so the Deployment's generation does not move).
            status = new.get("status")
            body_meta = new.get("metadata") or {}
            if not same_but_status(new, old):  # else the body is the stored object already
                new = decode(kv)
            for field in STATUS_WRITABLE_META.get(info.kind, ("labels", "annotations")):
                if body_meta.get(field):
                    new["metadata"][field] = body_meta[field]
                else:
                    new["metadata"].pop(field, None)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif subresource:  # other subresources mutate a full copy themselves
            pass
        else:
            if info.has_status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
        meta = new["metadata"]
        for field in SYSTEM_META:
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["name"] = old_meta["name"]
        if info.namespaced:
            meta["namespace"] = old_meta.get("namespace", "")
        if "managedFields" not in meta and "managedFields" in old_meta:
            meta["managedFields"] = old_meta["managedFields"]
        new["apiVersion"] = info.api_version
        new["kind"] = info.kind
        if not subresource:
            info.prepare_update(new, old)
        info.default(new)
        webhook_warnings: list[str] = [] if warnings is None else warnings
        namespace = str(old_meta.get("namespace") or "")
        new = await self.mutating_webhooks(info, "UPDATE", subresource, namespace, new, old, opts,
                                           webhook_warnings)
        self.drop_empty_status(info, new)
        meta = new["metadata"]
        if "generation" in old_meta and spec_of(new) != spec_of(old):
            meta["generation"] = int(old_meta["generation"]) + 1
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if record and subresource not in UNVALIDATED_SUBRESOURCES:
            new = self.record_fields(info, old, new, opts, subresource)
            meta = new["metadata"]
        if new == old:
            return old  # a no-op write changes nothing, not even the resourceVersion
        if subresource not in UNVALIDATED_SUBRESOURCES:
            self.validate(info, new, old)
        if should_delete_during_update(new, old) and not self.ctx.hooks_for(info).blocks_removal(new):
            if opts.dry_run:
                return new
            deleted = await self.ctx.store.delete(key, kv.mod_revision)
            self.ctx.hooks_for(info).removed(deleted)
            return deleted
        reservation = self.ctx.hooks_for(info).admit(new, old)
        try:
            if self.ctx.admission is not None:
                await self.ctx.admission.admit(info, new, old, dry_run=opts.dry_run,
                                               subresource=subresource)
            await self.validating_webhooks(info, "UPDATE", subresource, namespace, new, old, opts,
                                           webhook_warnings)
        except BaseException:
            reservation.abort()
            raise
        if opts.dry_run:
            reservation.abort()
            return new
        try:
            await self.ctx.store.update(key, new, kv.mod_revision)
        except KeyNotFound:
            reservation.abort()
            raise not_found(info.plural, info.group, old_meta["name"]) from None
        except BaseException:
            reservation.abort()
            raise
        reservation.commit()
        return new


def new_uid() -> str:
    """A random (version 4) UUID in its text form, as ``str(uuid.uuid4())`` makes it,
    without building a :class:`uuid.UUID` first (every create makes one)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def check_identity(info: ResourceInfo, namespace: str, name: str, meta: Obj) -> None:
    """Name and namespace in the body must agree with the URL (and are filled from it)."""
    body_name = meta.get("name") or ""
    if body_name != name:
        raise bad_request(f"the name of the object ({body_name}) does not match the name on the URL ({name})")
    if info.namespaced:
        body_ns = meta.get("namespace") or ""
        if body_ns and body_ns != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace "
                              "sent on the request")
        meta["namespace"] = namespace


def same_but_status(body: Obj, stored: Obj) -> bool:
    """Is ``body`` exactly ``stored`` (the same JSON, keys in the same order) apart from ``status``?

    Then a status write may keep ``body`` as its base instead of decoding the stored
    object once more: the result is the same object, down to the order of its keys
    (``status`` where the stored object has it, else last): their texts are equal
    (``==`` would take ``1`` for ``true``).
    """
    has_status = body.get("status") is not None
    keys = [k for k in body if k != "status" or has_status]
    expected = [k for k in stored if k != "status" or has_status]
    if has_status and "status" not in stored:
        expected.append("status")
    if keys != expected:
        return False
    rest = {k: v for k, v in body.items() if k != "status"}
    stored_rest = {k: v for k, v in stored.items() if k != "status"}
    try:
        return orjson.dumps(rest) == orjson.dumps(stored_rest)
    except TypeError:  # not plain JSON: take the safe way
        return False


def should_delete_during_update(new: Obj, old: Obj) -> bool:
    """An update that clears the last finalizer of an object being deleted removes it."""
    if new["metadata"].get("finalizers"):
        return False
    old_meta = old["metadata"]
    if not old_meta.get("deletionTimestamp"):
        return False
    return not old_meta.get("deletionGracePeriodSeconds")


def _unknown(path: str) -> str:
    escaped = path.replace("\\", "\\\\").replace('"', '\\"')
    return f'unknown field "{escaped}"'
