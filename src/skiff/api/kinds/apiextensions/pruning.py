"""Pruning and defaulting of custom objects by a CRD version's schema (see :mod:`.structural`).

    prune(schema, obj)            remove, in place, the fields ``schema`` does not specify
                                  and nulls of non-nullable fields without a default;
                                  -> the removed fields' paths, ``[".spec.colour", ...]``
    apply_defaults(schema, obj)   set, in place, ``default`` for absent fields (and nulls
                                  of non-nullable ones)

Only ``properties``, ``additionalProperties`` and ``items`` decide what is known
(``allOf``/``anyOf``/``oneOf``/``not`` never do).  The root's ``apiVersion``/``kind``/
``metadata`` are never pruned, nor are those of ``x-kubernetes-embedded-resource``
objects.  ``additionalProperties: true`` keeps the keys but prunes inside their values;
``x-kubernetes-preserve-unknown-fields`` keeps unknown keys and prunes known ones by
their schemas.  Defaults are trusted to be valid and already pruned.
"""

from __future__ import annotations

import copy
from typing import Any

from . import schemanodes as nodes
from .schemanodes import EMBEDDED_RESOURCE, META_FIELDS, PRESERVE_UNKNOWN, Schema

__all__ = ["apply_defaults", "prune"]


# --- pruning -------------------------------------------------------------------------

def prune(schema: Schema, obj: dict[str, Any]) -> list[str]:
    """Remove, in place, every field ``schema`` does not specify; return their paths
    (``".spec.colour"``), sorted.  Also drops nulls of non-nullable fields without a
    default, which kube-apiserver does in the same step (those are not reported)."""
    unknown: list[str] = []
    _prune(obj, {**schema, EMBEDDED_RESOURCE: True}, "", unknown)
    _drop_nulls(obj, schema)
    return sorted("." + p for p in unknown)


def _prune(x: Any, s: Schema | None, path: str, unknown: list[str]) -> None:
    if s is not None and s.get(PRESERVE_UNKNOWN) is True:
        _prune_preserving(x, s, path, unknown)
    elif isinstance(x, dict):
        if s is None:
            unknown.extend(nodes.child(path, k) for k in x)
            x.clear()
            return
        props, (has_extra, extra) = nodes.properties(s), nodes.additional(s)
        embedded = s.get(EMBEDDED_RESOURCE) is True
        for k in list(x):
            if embedded and k in META_FIELDS:
                continue
            if k in props:
                _prune(x[k], props[k], nodes.child(path, k), unknown)
            elif has_extra:
                _prune(x[k], extra, nodes.child(path, k), unknown)
            else:
                unknown.append(nodes.child(path, k))
                del x[k]
    elif isinstance(x, list):
        for i, v in enumerate(x):
            _prune(v, nodes.items(s), nodes.index(path, i), unknown)


def _prune_preserving(x: Any, s: Schema | None, path: str, unknown: list[str]) -> None:
    """x-kubernetes-preserve-unknown-fields: unknown keys stay, known ones are pruned
    by their schemas; array items inherit the preservation."""
    if s is None:
        return
    if isinstance(x, dict):
        props, (has_extra, extra) = nodes.properties(s), nodes.additional(s)
        embedded = s.get(EMBEDDED_RESOURCE) is True
        for k, v in x.items():
            if embedded and k in META_FIELDS:
                continue
            if k in props:
                _prune(v, props[k], nodes.child(path, k), unknown)
            elif has_extra:
                _prune(v, extra, nodes.child(path, k), unknown)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            _prune_preserving(v, nodes.items(s), nodes.index(path, i), unknown)


def _non_nullable_null(value: Any, s: Schema | None) -> bool:
    return value is None and s is not None and not s.get("nullable")


def _drop_nulls(x: Any, s: Schema | None) -> None:
    if isinstance(x, dict):
        for k in list(x):
            sub = nodes.field_schema(s, k)
            if _non_nullable_null(x[k], sub) and (sub or {}).get("default") is None:
                del x[k]
            else:
                _drop_nulls(x[k], sub)
    elif isinstance(x, list):
        for v in x:
            _drop_nulls(v, nodes.items(s))


# --- defaulting ----------------------------------------------------------------------

def apply_defaults(schema: Schema, obj: dict[str, Any]) -> None:
    """Set, in place, a deep copy of ``default`` for every absent property (and every
    null of a non-nullable one), recursing into objects, map values and array items
    (defaults of newly set values apply too).  Call after :func:`prune`, before
    validation."""
    _default(obj, schema)


def _default(x: Any, s: Schema | None) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        props = nodes.properties(s)
        for k, prop in props.items():
            if prop.get("default") is not None and (k not in x or _non_nullable_null(x[k], prop)):
                x[k] = copy.deepcopy(prop["default"])
        has_extra, extra = nodes.additional(s)
        for k in list(x):
            if k in props:
                _default(x[k], props[k])
            elif has_extra:
                if _non_nullable_null(x[k], extra):
                    x[k] = copy.deepcopy((extra or {}).get("default"))
                _default(x[k], extra)
    elif isinstance(x, list):
        item_schema = nodes.items(s)
        for i in range(len(x)):
            if _non_nullable_null(x[i], item_schema):
                x[i] = copy.deepcopy((item_schema or {}).get("default"))
            _default(x[i], item_schema)
