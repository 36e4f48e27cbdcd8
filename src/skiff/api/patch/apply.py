"""Server-side apply and field ownership (``metadata.managedFields``).

Every write records *who* set *which* fields.  Each manager (``kubectl``,
``kubectl-client-side-apply``, ``kube-controller-manager`` ...) has one entry
per operation kind::

    managedFields:
    - manager: kubectl            # an applier: owns exactly what it last applied
      operation: Apply
      apiVersion: apps/v1
      time: "2024-05-01T10:00:00Z"
      fieldsType: FieldsV1
      fieldsV1: {f:spec: {f:replicas: {}, ...}}
    - manager: kubectl-edit       # an updater: owns what its writes changed
      operation: Update
      ...

Apply (:func:`server_side_apply`)::

    live ──┐                        fields the manager applied last time but not now,
           ├─ merge(live, config) ─ and nobody else owns ─────────────── removed (pruned)
    config ┘         │
                     └─ compare(live, result): a changed field another manager owns
                        ─ without force: 409 Conflict, nothing written
                        ─ with force:    the field moves to the applier

Any other write (:func:`update_managed_fields`): the writer gains the fields
it added or changed, every other manager loses them, and fields that
disappeared are dropped from everybody.  That is how ``kubectl scale`` after
``kubectl apply --server-side`` makes the next apply conflict on ``.spec.replicas``.

Implemented (Kubernetes v1.32 semantics, structured-merge-diff v4):
field sets from the schema (keyed lists, sets, atomic lists/structs/maps,
unknown subtrees); merge ordering; pruning of dropped fields (key fields of a
kept item stay); conflicts with kube-apiserver's 409 message and
``FieldManagerConflict`` causes; ``force``; managedFields encoding, entry order
and times; ``status`` (or other reset fields) ignored by an apply to the main
resource; metadata fields no one can own (name, uid, resourceVersion ...);
``managedFields: [{}]`` on an update clears the history.

Not implemented: conversion of ownership between API versions (entries keep the
version they were written with), the cap of 10 Update managers
(``ancient-changes``), the client-side-apply migration that lets ``kubectl``
take over fields it owned through ``last-applied-configuration``, unions
(``discriminator``) and defaulting of list keys other than ``protocol``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ..errors import Cause, StatusError
from ..schema import Schema
from .failures import bad_request, server_error
from .fieldpath import FieldsCodec, Path, from_fields_v1, path_of, path_sort_key, path_string, to_fields_v1
from .shape import Shapes
from .typed import Typed, TypedError

APPLY = "Apply"
UPDATE = "Update"

# Fields nobody owns (kube-apiserver's "strip meta" set).
UNOWNED: frozenset[Path] = frozenset({
    path_of("apiVersion"), path_of("kind"), path_of("metadata"),
    *(path_of("metadata", name) for name in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName",
        "generation", "managedFields", "resourceVersion")),
})

ManagerKey = tuple[str, str, str, str]  # (manager, operation, apiVersion for Update, subresource)


@dataclass(frozen=True)
class ManagedEntry:
    """One ``metadata.managedFields`` entry, decoded."""

    manager: str
    operation: str
    api_version: str
    time: str | None
    fields: frozenset[Path]
    subresource: str = ""

    @property
    def key(self) -> ManagerKey:
        version = self.api_version if self.operation == UPDATE else ""
        return (self.manager, self.operation, version, self.subresource)

    def with_fields(self, fields: frozenset[Path]) -> "ManagedEntry":
        """This entry owning ``fields`` instead (``dataclasses.replace``, without its introspection)."""
        return ManagedEntry(self.manager, self.operation, self.api_version, self.time, fields, self.subresource)

    def describe(self) -> str:
        """How conflicts name the manager: ``"kubectl-edit" using apps/v1``."""
        text = json.dumps(self.manager, ensure_ascii=False)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text

    def to_json(self, codec: FieldsCodec | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {"manager": self.manager, "operation": self.operation,
                                 "apiVersion": self.api_version}
        if self.time is not None:
            entry["time"] = self.time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = codec.encode(self.fields) if codec is not None else to_fields_v1(self.fields)
        if self.subresource:
            entry["subresource"] = self.subresource
        return entry


def decode_managed_fields(obj: dict[str, Any] | None,
                          codec: FieldsCodec | None = None) -> dict[ManagerKey, ManagedEntry]:
    """The entries of ``obj.metadata.managedFields`` (malformed entries are skipped)."""
    entries: dict[ManagerKey, ManagedEntry] = {}
    raw = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or item.get("operation") not in (APPLY, UPDATE):
            continue
        if item.get("fieldsType", "FieldsV1") != "FieldsV1":
            continue
        tree = item.get("fieldsV1") or {}
        try:
            fields = codec.decode(tree) if codec is not None else frozenset(from_fields_v1(tree))
        except ValueError:
            continue
        entry = ManagedEntry(str(item.get("manager", "")), item["operation"], str(item.get("apiVersion", "")),
                             item.get("time"), fields, str(item.get("subresource", "")))
        entries[entry.key] = entry
    return entries


def encode_managed_fields(entries: Collection[ManagedEntry],
                          codec: FieldsCodec | None = None) -> list[dict[str, Any]]:
    """Entries in kube-apiserver's order: Apply before Update, then by time, manager, version."""
    ordered = sorted(entries, key=lambda e: (e.operation, e.time or "", e.manager, e.api_version,
                                             e.subresource))
    return [e.to_json(codec) for e in ordered if e.fields]


class FieldManager:
    """Field ownership over one schema, for many writes.

    :func:`server_side_apply` and :func:`update_managed_fields` build one per
    call; a server keeps one, and with it what every write would otherwise
    work out again: the schema lookups of the walks (:class:`Typed`) and the
    recently seen FieldsV1 trees (:class:`FieldsCodec`).
    """

    def __init__(self, schema: Schema | None, *, codec_size: int = 1024) -> None:
        self.schema = schema
        self.typed = Typed(Shapes(schema))
        self.codec = FieldsCodec(codec_size)

    def apply(self, live: dict[str, Any] | None, applied: dict[str, Any], *, manager: str, force: bool,
              type_name: str | None, now: str, subresource: str = "",
              reset_fields: Collection[str] = ("status",)) -> dict[str, Any]:
        """:func:`server_side_apply` with this manager's schema."""
        return _apply(self, live, applied, manager=manager, force=force, type_name=type_name, now=now,
                      subresource=subresource, reset_fields=reset_fields)

    def update(self, old: dict[str, Any] | None, new: dict[str, Any], manager: str, *,
               type_name: str | None, now: str, subresource: str = "") -> dict[str, Any]:
        """:func:`update_managed_fields` with this manager's schema."""
        return _update(self, old, new, manager, type_name=type_name, now=now, subresource=subresource)


def server_side_apply(live: dict[str, Any] | None, applied: dict[str, Any], *, manager: str, force: bool,
                      schema: Schema | None, type_name: str | None, now: str, subresource: str = "",
                      reset_fields: Collection[str] = ("status",)) -> dict[str, Any]:
    """Apply ``applied`` (a partial object) for ``manager``; returns the new object.

    ``live`` is None (or ``{}``) when the object does not exist yet (apply creates it).
    Without a schema (or for a type it lacks) objects are granular and lists atomic.
    ``reset_fields`` are top-level fields this endpoint ignores (``status`` on
    the main resource, ``spec`` ... on ``/status``).
    """
    return FieldManager(schema).apply(live, applied, manager=manager, force=force, type_name=type_name,
                                      now=now, subresource=subresource, reset_fields=reset_fields)


def _apply(fm: FieldManager, live: dict[str, Any] | None, applied: dict[str, Any], *, manager: str,
           force: bool, type_name: str | None, now: str, subresource: str,
           reset_fields: Collection[str]) -> dict[str, Any]:
    if not isinstance(applied, dict):
        raise bad_request("error decoding YAML: the applied configuration must be an object")
    typed, schema = fm.typed, fm.schema
    root = typed.root(type_name)
    _check_kind(schema, type_name, applied)
    if (applied.get("metadata") or {}).get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")

    config = {k: v for k, v in copy.deepcopy(applied).items() if k not in reset_fields}
    try:
        applied_set = frozenset(typed.field_set(config, root) - UNOWNED)
    except TypedError as e:
        raise server_error(f"failed to create typed patch object ({_describe(applied)}): {e}") from None

    current = _without_managed_fields(live) if live is not None else {}
    entries = decode_managed_fields(live, fm.codec)
    me = ManagedEntry(manager, APPLY, str(applied.get("apiVersion", "")), now, applied_set, subresource)
    previous = entries.get(me.key)
    entries[me.key] = me

    result = typed.merge(current, config, root)
    if previous is not None:
        dropped = set(previous.fields - applied_set)
        owned = {p for e in entries.values() if e.key != me.key for p in e.fields} | set(applied_set)
        result = typed.prune(result, root, dropped - owned, owned)

    change = typed.compare(current, result, root)
    changed = _owned_paths(change.added | change.modified, reset_fields)
    conflicts = {key: e.fields & changed for key, e in entries.items() if key != me.key and e.fields & changed}
    if conflicts and not force:
        raise _conflict_error({entries[key]: paths for key, paths in conflicts.items()})
    removed = _owned_paths(change.removed, reset_fields)
    for key, entry in list(entries.items()):
        if key != me.key:
            entries[key] = entry.with_fields(entry.fields - conflicts.get(key, frozenset()) - removed)
    return _with_managed_fields(result, entries.values(), fm.codec)


def update_managed_fields(old: dict[str, Any] | None, new: dict[str, Any], manager: str,
                          operation: str = UPDATE, *, schema: Schema | None, type_name: str | None, now: str,
                          subresource: str = "") -> dict[str, Any]:
    """Record that ``manager`` turned ``old`` (None on create) into ``new``; returns ``new`` with managedFields.

    A client that sends managedFields it changed on purpose is believed; one that
    omits them keeps the old ones; ``[{}]`` clears them.  The result is a new
    top-level object and ``metadata`` that share every other value with ``new``
    (no deep copy: a write's object is large and this runs on every write).
    """
    if operation != UPDATE:
        raise ValueError("update_managed_fields records Update operations; use server_side_apply")
    return FieldManager(schema).update(old, new, manager, type_name=type_name, now=now, subresource=subresource)


def _update(fm: FieldManager, old: dict[str, Any] | None, new: dict[str, Any], manager: str, *,
            type_name: str | None, now: str, subresource: str) -> dict[str, Any]:
    sent = (new.get("metadata") or {}).get("managedFields")
    result = _stripped(new)
    if sent == [{}]:
        return result
    old_sent = ((old or {}).get("metadata") or {}).get("managedFields")
    entries = decode_managed_fields(new if sent and sent != old_sent else old, fm.codec)

    typed = fm.typed
    before = _stripped(old) if old is not None else {}
    change = typed.compare(before, result, typed.root(type_name))
    changed = _owned_paths(change.added | change.modified, ())
    removed = _owned_paths(change.removed, ())
    lost = changed | removed
    me = ManagedEntry(manager, UPDATE, str(new.get("apiVersion", "")), now, frozenset(), subresource)
    for key, entry in list(entries.items()):
        if not entry.fields.isdisjoint(lost):  # untouched entries keep their (remembered) field set
            entries[key] = entry.with_fields(entry.fields - lost)
    if changed:
        mine = entries.get(me.key, me).fields
        entries[me.key] = me.with_fields(mine if changed <= mine else mine | changed)
    return _with_managed_fields(result, entries.values(), fm.codec)


# -- helpers -----------------------------------------------------------------------


def _owned_paths(paths: set[Path], reset_fields: Collection[str]) -> frozenset[Path]:
    """Drop paths nobody can own: stripped metadata and everything under a reset field."""
    if not reset_fields:  # the common case, as one set operation
        return frozenset(paths).difference(UNOWNED)
    reset = {("f", name) for name in reset_fields}
    return frozenset(p for p in paths if p not in UNOWNED and not (p and p[0] in reset))


def _without_managed_fields(obj: dict[str, Any] | None) -> dict[str, Any]:
    out = copy.deepcopy(obj or {})
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return out


def _stripped(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without managedFields: a new top level and ``metadata``, sharing everything else."""
    out = dict(obj)
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return out


def _with_managed_fields(obj: dict[str, Any], entries: Collection[ManagedEntry],
                         codec: FieldsCodec | None = None) -> dict[str, Any]:
    encoded = encode_managed_fields(entries, codec)
    metadata = obj.setdefault("metadata", {})
    if encoded:
        metadata["managedFields"] = encoded
    else:
        metadata.pop("managedFields", None)
    return obj


def _gvk_text(api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={kind}"


def _check_kind(schema: Schema | None, type_name: str | None, applied: dict[str, Any]) -> None:
    t = schema.type(type_name) if schema is not None and type_name is not None else None
    if t is None or t.gvk is None:
        return
    group, version, kind = t.gvk
    expected = f"{group}/{version}" if group else version
    if applied.get("apiVersion") != expected or applied.get("kind") != kind:
        raise bad_request("invalid object type: " + _gvk_text(str(applied.get("apiVersion", "")),
                                                              str(applied.get("kind", ""))))


def _describe(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return (f"{metadata.get('namespace', '')}/{metadata.get('name', '')}; "
            f"{_gvk_text(str(obj.get('apiVersion', '')), str(obj.get('kind', '')))}")


def _conflict_error(conflicts: dict[ManagedEntry, frozenset[Path]]) -> StatusError:
    """409 exactly as kube-apiserver words it."""
    pairs = sorted(((entry.describe(), path) for entry, paths in conflicts.items() for path in paths),
                   key=lambda pair: (pair[0], path_sort_key(pair[1])))
    causes = [Cause("FieldManagerConflict", f"conflict with {who}", path_string(path)) for who, path in pairs]
    if len(pairs) == 1:
        who, path = pairs[0]
        message = f"Apply failed with 1 conflict: conflict with {who}: {path_string(path)}"
    else:
        lines: list[str] = []
        for who in sorted({who for who, _ in pairs}):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {path_string(path)}" for w, path in pairs if w == who)
        message = f"Apply failed with {len(pairs)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, causes=causes)
