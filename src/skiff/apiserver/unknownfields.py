"""Unknown fields in request bodies: found, reported, and dropped.

kube-apiserver decodes a body into its Go type, so a key the type does not
declare never reaches storage.  ``fieldValidation`` only decides how loudly
that happens::

    Strict  400 BadRequest: strict decoding error: unknown field "spec.replicass"
    Warn    dropped, and a ``Warning: 299 - "unknown field \\"spec.replicass\\""`` header
    Ignore  dropped silently

:func:`drop_unknown_fields` walks an object along its schema type (inlined
structs flattened, lists and maps entered, special types such as
RawExtension left alone), removes the keys the type does not declare, and
returns their paths in the form Kubernetes prints (``spec.containers[0].x``).

Every write runs it over its whole body, so a server keeps an
:class:`UnknownFields` over its schema: it remembers, per type and JSON key,
what the walk does there (the inline-aware field lookup is the costly part),
and never looks a declared key up twice.  It first only looks for an unknown
key, building no paths; the walk that names and drops them runs when one is there.
"""

from __future__ import annotations

from typing import Any

from ..api.schema import Schema, TypeDef
from ..api.schema_load import json_field

# What the walk does with a declared member: skip it (a scalar, or a type with its
# own JSON form), enter it as an object, or enter each item of a list or map.
_SKIP, _OBJECT, _LIST, _MAP = range(4)
_Member = tuple[int, "TypeDef | None"]
_SKIPPED: _Member = (_SKIP, None)


def drop_unknown_fields(schema: Schema, type_name: str, obj: Any) -> list[str]:
    """Remove undeclared keys from ``obj`` (in place); their dotted paths, in document order."""
    return UnknownFields(schema).drop(type_name, obj)


class UnknownFields:
    """:func:`drop_unknown_fields` over one schema, remembering its member lookups."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        #: type name -> JSON key -> how to walk that member (declared keys only)
        self._members: dict[str, dict[str, _Member]] = {}

    def drop(self, type_name: str, obj: Any) -> list[str]:
        """Remove undeclared keys from ``obj`` (in place); their dotted paths, in document order."""
        found: list[str] = []
        typedef = self.schema.type(type_name)
        if typedef is not None and self._any_unknown(typedef, obj):  # rare: then name them
            self._walk(typedef, obj, "", found)
        return found

    def _any_unknown(self, typedef: TypeDef, obj: Any) -> bool:
        """Does ``obj`` have an undeclared key anywhere?  (:meth:`_walk` without the paths.)"""
        if typedef.special is not None or not isinstance(obj, dict):
            return False
        known = self._members.get(typedef.name) or {}
        for key, value in obj.items():
            how = known.get(key) or self._member(typedef, key)
            if how is None:
                return True
            walk, inner = how
            if walk == _SKIP or inner is None:
                continue
            if walk == _OBJECT:
                if self._any_unknown(inner, value):
                    return True
            elif walk == _LIST:
                if isinstance(value, list):
                    for item in value:
                        if self._any_unknown(inner, item):
                            return True
            elif isinstance(value, dict):
                for item in value.values():
                    if self._any_unknown(inner, item):
                        return True
        return False

    def _member(self, typedef: TypeDef, key: str) -> _Member | None:
        """How to walk member ``key`` of a ``typedef`` object; None when it is not declared."""
        f = json_field(self.schema, typedef, key)
        if f is None:
            return None  # not remembered: undeclared keys come from clients, without bound
        inner = self.schema.type(f.type)
        if inner is None or inner.special is not None:
            found = _SKIPPED
        elif f.repeated:
            found = (_LIST, inner)
        elif f.map_value is not None:
            found = (_MAP, inner)
        else:
            found = (_OBJECT, inner)
        self._members.setdefault(typedef.name, {})[key] = found
        return found

    def _walk(self, typedef: TypeDef, obj: Any, path: str, found: list[str]) -> None:
        if typedef.special is not None or not isinstance(obj, dict):
            return
        unknown: list[str] = []
        known = self._members.get(typedef.name) or {}
        for key, value in obj.items():
            how = known.get(key) or self._member(typedef, key)
            if how is None:
                unknown.append(key)
                found.append(f"{path}.{key}" if path else key)
                continue
            walk, inner = how
            if walk == _SKIP or inner is None:
                continue
            child = f"{path}.{key}" if path else key
            if walk == _OBJECT:
                self._walk(inner, value, child, found)
            elif walk == _LIST:
                if isinstance(value, list):
                    for i, item in enumerate(value):
                        self._walk(inner, item, f"{child}[{i}]", found)
            elif isinstance(value, dict):
                for map_key, item in value.items():
                    self._walk(inner, item, f"{child}.{map_key}", found)
        for key in unknown:
            del obj[key]
