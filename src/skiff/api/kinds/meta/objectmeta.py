"""ObjectMeta validation (create and update) and small accessors for plain-dict objects."""

from __future__ import annotations

from typing import Any, Mapping

from ...errors import Cause
from .field_errors import (
    child, forbidden, format_value, invalid, invalid_each, required, too_long, validate_immutable,
    validate_nonnegative,
)
from .names import (
    TOTAL_ANNOTATION_SIZE_LIMIT, NameValidator, is_qualified_name, is_valid_label_value,
    name_is_dns_label, name_is_dns_subdomain,
)

Obj = dict[str, Any]

def validate_labels(labels: Mapping[str, Any] | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for k in sorted(labels or {}):
        v = (labels or {})[k]
        causes += invalid_each(path, k, is_qualified_name(k))
        causes += invalid_each(path, v, is_valid_label_value(v if isinstance(v, str) else str(v)))
    return causes


def validate_annotations(annotations: Mapping[str, Any] | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    total = 0
    for k in sorted(annotations or {}):
        causes += invalid_each(path, k, is_qualified_name(k.lower()))
        total += len(k) + len(str((annotations or {})[k]))
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def _validate_owner_references(refs: list[Obj] | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    first_controller = ""
    for ref in refs or []:
        api_version = ref.get("apiVersion", "") or ""
        version = api_version.rsplit("/", 1)[-1]
        if not version:
            causes.append(invalid(child(path, "apiVersion"), api_version, "version must not be empty"))
        if not ref.get("kind"):
            causes.append(invalid(child(path, "kind"), ref.get("kind", ""), "kind must not be empty"))
        if not ref.get("name"):
            causes.append(invalid(child(path, "name"), ref.get("name", ""), "name must not be empty"))
        if not ref.get("uid"):
            causes.append(invalid(child(path, "uid"), ref.get("uid", ""), "uid must not be empty"))
        if api_version == "v1" and ref.get("kind") == "Event":
            causes.append(invalid(path, ref, "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller"):
            this = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first_controller:
                causes.append(invalid(path, refs, "Only one reference can have Controller set to true. "
                                      f'Found "true" in references for {first_controller} and {this}'))
            else:
                first_controller = this
    return causes


def _validate_finalizers(finalizers: list[str] | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for f in finalizers or []:
        causes += invalid_each(path, f, is_qualified_name(f))
    if "orphan" in (finalizers or []) and "foregroundDeletion" in (finalizers or []):
        causes.append(invalid(path, finalizers,
                              "finalizer orphan and foregroundDeletion cannot be both set"))
    return causes


def validate_object_meta(meta: Mapping[str, Any] | None, namespaced: bool, path: str = "metadata",
                         name_fn: NameValidator = name_is_dns_subdomain) -> list[Cause]:
    """ObjectMeta checks on create (name, namespace, labels, annotations, owners, finalizers)."""
    m = meta or {}
    causes: list[Cause] = []
    generate_name = m.get("generateName") or ""
    if generate_name:
        causes += invalid_each(child(path, "generateName"), generate_name, name_fn(generate_name, True))
    name = m.get("name") or ""
    if not name:
        causes.append(required(child(path, "name"), "name or generateName is required"))
    else:
        causes += invalid_each(child(path, "name"), name, name_fn(name, False))
    namespace = m.get("namespace") or ""
    if namespaced:
        if not namespace:
            causes.append(required(child(path, "namespace")))
        else:
            causes += invalid_each(child(path, "namespace"), namespace, name_is_dns_label(namespace))
    elif namespace:
        causes.append(forbidden(child(path, "namespace"), "not allowed on this type"))
    causes += validate_nonnegative(m.get("generation"), child(path, "generation"))
    causes += validate_labels(m.get("labels"), child(path, "labels"))
    causes += validate_annotations(m.get("annotations"), child(path, "annotations"))
    causes += _validate_owner_references(m.get("ownerReferences"), child(path, "ownerReferences"))
    causes += _validate_finalizers(m.get("finalizers"), child(path, "finalizers"))
    return causes


def validate_object_meta_update(new: Mapping[str, Any] | None, old: Mapping[str, Any] | None,
                                path: str = "metadata") -> list[Cause]:
    """ObjectMeta checks on update: identity fields are immutable, labels stay valid."""
    n, o = new or {}, old or {}
    causes: list[Cause] = []
    if o.get("deletionTimestamp"):
        extra = sorted(set(n.get("finalizers") or []) - set(o.get("finalizers") or []))
        if extra:
            causes.append(forbidden(child(path, "finalizers"),
                                    "no new finalizers can be added if the object is being deleted, "
                                    "found new finalizers " + format_value(extra)))
    if (n.get("generation") or 0) < (o.get("generation") or 0):
        causes.append(invalid(child(path, "generation"), n.get("generation") or 0, "must not be decremented"))
    for name in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                 "deletionGracePeriodSeconds"):
        causes += validate_immutable(n.get(name) or None, o.get(name) or None, child(path, name))
    causes += validate_labels(n.get("labels"), child(path, "labels"))
    causes += validate_annotations(n.get("annotations"), child(path, "annotations"))
    causes += _validate_owner_references(n.get("ownerReferences"), child(path, "ownerReferences"))
    return causes


def ensure_meta(obj: Obj) -> Obj:
    """The object's ``metadata`` dict, created when missing."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def get_path(obj: Mapping[str, Any] | None, dotted: str, default: Any = None) -> Any:
    """``get_path(obj, "spec.replicas")``; ``default`` when any step is missing."""
    cur: Any = obj
    for part in dotted.split("."):
        # ``type(...) is dict`` first: decoded JSON is plain dicts, and the ABC check
        # behind isinstance(..., Mapping) costs several times more (hot in defaulting).
        if (type(cur) is not dict and not isinstance(cur, Mapping)) or part not in cur:
            return default
        cur = cur[part]
    return default if cur is None else cur
