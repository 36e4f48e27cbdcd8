"""The checks kube-apiserver runs on a custom object after the schema pass (see :mod:`.structural`).

    embedded_resource_causes(schema, obj)  every ``x-kubernetes-embedded-resource`` object has
                                           a well-formed ``apiVersion`` and ``kind`` and valid
                                           ``metadata`` (malformed metadata fields are dropped
                                           first, as decoding does; a missing name is allowed)
    list_type_causes(schema, obj)          ``x-kubernetes-list-type`` ``set`` items and ``map``
                                           keys are unique (FieldValueDuplicate at the repeat)

Both walk ``properties``, ``additionalProperties`` and ``items`` only; map values are
named ``spec.labels[foo]`` here (the schema pass says ``spec.labels.foo``), as
Kubernetes does.  The root's own apiVersion/kind/metadata are the caller's.
"""

from __future__ import annotations

from typing import Any, Hashable, Mapping

from ...errors import Cause
from ...gofmt import field_value_text, go_json
from ..meta.names import is_dns1035_label, name_is_path_segment
from ..meta.objectmeta import validate_object_meta
from . import schemanodes as nodes
from .schemanodes import EMBEDDED_RESOURCE, Schema

__all__ = ["embedded_resource_causes", "list_type_causes"]


def embedded_resource_causes(schema: Schema, obj: Any) -> list[Cause]:
    """The errors of every embedded resource in ``obj`` (the root's own fields excluded)."""
    causes: list[Cause] = []
    _check_embedded("", obj, schema, causes)
    return causes


def list_type_causes(schema: Schema, obj: Any) -> list[Cause]:
    """The repeated items of ``set`` lists and repeated keys of ``map`` lists in ``obj``."""
    causes: list[Cause] = []
    _check_lists("", obj, schema, causes)
    return causes


# --- embedded resources -------------------------------------------------------------------

def _check_embedded(path: str, x: Any, s: Schema | None, causes: list[Cause]) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        if s.get(EMBEDDED_RESOURCE) is True:
            causes.extend(_check_embedded_resource(path, x))
        props, (has_extra, extra) = nodes.properties(s), nodes.additional(s)
        for k, v in x.items():
            if k in props:
                _check_embedded(nodes.child(path, k), v, props[k], causes)
            elif has_extra:
                _check_embedded(nodes.key(path, k), v, extra, causes)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            _check_embedded(nodes.index(path, i), v, nodes.items(s), causes)


_META_SHAPES: dict[str, type] = {"name": str, "generateName": str, "namespace": str, "labels": dict,
                                 "annotations": dict, "finalizers": list, "ownerReferences": list,
                                 "generation": int}


def _check_embedded_resource(path: str, x: Mapping[str, Any]) -> list[Cause]:
    causes = [Cause("FieldValueRequired", "Required value: must not be empty", nodes.child(path, k))
              for k in ("apiVersion", "kind") if k not in x]
    if "apiVersion" in x:
        at, api_version = nodes.child(path, "apiVersion"), x["apiVersion"]
        if not isinstance(api_version, str):
            causes.append(nodes.invalid(at, api_version, "must be a string"))
        elif not api_version:
            causes.append(nodes.invalid(at, api_version, "must not be empty"))
        elif api_version != "/" and api_version.count("/") > 1:
            causes.append(nodes.invalid(at, api_version, f"unexpected GroupVersion string: {api_version}"))
    if "kind" in x:
        at, kind = nodes.child(path, "kind"), x["kind"]
        if not isinstance(kind, str):
            causes.append(nodes.invalid(at, kind, "must be a string"))
        elif not kind:
            causes.append(nodes.invalid(at, kind, "must not be empty"))
        elif problems := is_dns1035_label(kind.lower()):
            causes.append(nodes.invalid(at, kind, "may have mixed case, but should otherwise match: "
                                        + ",".join(problems)))
    if "metadata" in x:
        raw = x["metadata"] if isinstance(x["metadata"], Mapping) else {}
        # Malformed fields are dropped before validation, as kube-apiserver's decoding does.
        meta: dict[str, Any] = {k: v for k, v in raw.items() if k in _META_SHAPES and isinstance(v, _META_SHAPES[k])
                and not (k == "generation" and isinstance(v, bool))}
        for k in ("labels", "annotations"):
            if k in meta:
                meta[k] = {key: val for key, val in meta[k].items() if isinstance(val, str)}
        if "finalizers" in meta:
            meta["finalizers"] = [f for f in meta["finalizers"] if isinstance(f, str)]
        if "ownerReferences" in meta:
            meta["ownerReferences"] = [r for r in meta["ownerReferences"] if isinstance(r, dict)
                                       and isinstance(r.get("apiVersion", ""), str)]
        meta["name"] = meta.get("name") or "fakename"
        causes += validate_object_meta(meta, bool(meta.get("namespace")), nodes.child(path, "metadata"),
                                       name_is_path_segment)
    return causes


# --- list types -----------------------------------------------------------------------------

_UNSPECIFIED = ("no key",)  # the key of a list-map entry that lacks the key field


def _repeats(values: list[Any]) -> list[int]:
    """Indices of each value's second occurrence (Go compares compound values as JSON)."""
    counts: dict[Hashable, int] = {}
    repeated = []
    for i, value in enumerate(values):
        if value is _UNSPECIFIED:
            identity: Hashable = value
        elif isinstance(value, (dict, list)):
            identity = ("json", go_json(value))
        else:
            identity = (type(value).__name__, value)
        seen = counts.get(identity, 0)
        if seen == 1:
            repeated.append(i)
        counts[identity] = seen + 1
    return repeated


def _check_lists(path: str, x: Any, s: Schema | None, causes: list[Cause]) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        props, extra = nodes.properties(s), nodes.additional(s)[1]
        if extra is not None:
            for k, v in x.items():
                _check_lists(nodes.key(path, k), v, extra, causes)
        for k, v in x.items():
            if k in props:
                _check_lists(nodes.child(path, k), v, props[k], causes)
    elif isinstance(x, list):
        list_type = s.get("x-kubernetes-list-type")
        if list_type == "set":
            causes += [Cause("FieldValueDuplicate", f"Duplicate value: {field_value_text(x[i])}",
                             nodes.index(path, i)) for i in _repeats(x)]
        elif list_type == "map":
            causes += _check_list_map(path, x, list(s.get("x-kubernetes-list-map-keys") or ()))
        items = nodes.items(s)
        for i, v in enumerate(x):
            _check_lists(nodes.index(path, i), v, items, causes)


def _check_list_map(path: str, entries: list[Any], key_fields: list[str]) -> list[Cause]:
    for i, entry in enumerate(entries):
        if entry is not None and not isinstance(entry, dict):
            return [nodes.invalid(nodes.index(path, i), entry, "must be an object for an array of list-type map")]
    if len(key_fields) == 1:
        only = key_fields[0]
        keys: list[Any] = [e[only] if e is not None and only in e else _UNSPECIFIED for e in entries]
        return [Cause("FieldValueDuplicate", "Duplicate value: "
                      + field_value_text({} if keys[i] is _UNSPECIFIED else {only: keys[i]}),
                      nodes.index(path, i)) for i in _repeats(keys)]
    keys = [{k: e[k] for k in key_fields if k in e} if e is not None else {} for e in entries]
    return [Cause("FieldValueDuplicate", f"Duplicate value: {field_value_text(keys[i])}", nodes.index(path, i))
            for i in _repeats(keys)]
