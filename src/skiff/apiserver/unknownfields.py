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

The same walk checks each value's JSON type against the field's Go type, as Go's
decoder does before anything else sees the object: a string where an int32 belongs
is 400 BadRequest, never a validator's crash (:meth:`UnknownFields.inspect`)::

    json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32

(the path is the JSON path without list indices, as Go prints it; ``null`` is
always accepted, as Go decodes it to the zero value).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..api.schema import Schema, TypeDef
from ..api.schema_load import json_field

# What the walk does with a declared member: skip it (a scalar, or a type with its
# own JSON form), enter it as an object, or go through each item of a list or map.
_SKIP, _OBJECT, _LIST, _MAP = range(4)

#: Go scalar -> (the Python types its JSON value may have, the Go type's name)
_SCALARS: dict[str, tuple[tuple[type, ...], str]] = {
    "string": ((str,), "string"), "bytes": ((str,), "[]uint8"), "bool": ((bool,), "bool"),
    "int32": ((int,), "int32"), "int64": ((int,), "int64"),
    "double": ((int, float), "float64"), "float": ((int, float), "float32"),
}
#: special types (their own JSON form) -> the same; None: anything goes (RawExtension ...)
_SPECIALS: dict[str, tuple[tuple[type, ...], str]] = {
    "quantity": ((str, int, float), "resource.Quantity"), "intorstring": ((str, int), "intstr.IntOrString"),
    "time": ((str,), "v1.Time"), "microtime": ((str,), "v1.MicroTime"), "duration": ((str,), "v1.Duration"),
}


class _Member(NamedTuple):
    walk: int
    inner: "TypeDef | None"                  # the object type entered (None: a scalar or special)
    allowed: "tuple[type, ...] | None"       # the value's Python types (None: any)
    element: "tuple[type, ...] | None"       # a list's or map's items' Python types (None: any)
    go: str                                  # the Go type, for the message
    go_element: str


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return f"number {value:g}"
    if isinstance(value, int):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _fits(value: Any, allowed: tuple[type, ...] | None) -> bool:
    if value is None or allowed is None:     # null decodes to the zero value
        return True
    if isinstance(value, bool):              # a JSON true is no number
        return bool in allowed
    if isinstance(value, float) and float not in allowed:
        return value.is_integer() and int in allowed      # 2.0 passes for an int32
    return isinstance(value, allowed)


class Findings:
    """What one body's walk found: undeclared keys (dropped) and the first type mismatch."""

    def __init__(self) -> None:
        self.unknown: list[str] = []
        self.type_error: str | None = None

    def mistyped(self, value: Any, struct: TypeDef, go_path: str, go: str) -> None:
        if self.type_error is None:
            self.type_error = (f"json: cannot unmarshal {_json_kind(value)} into Go struct field "
                               f"{struct.name.rpartition('.')[2]}.{go_path} of type {go}")


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
        return self.inspect(type_name, obj).unknown

    def inspect(self, type_name: str, obj: Any) -> Findings:
        """:meth:`drop`, and the first value whose JSON type the field's Go type refuses."""
        findings = Findings()
        typedef = self.schema.type(type_name)
        if typedef is not None and self._any_unknown(typedef, obj):  # rare: then name them
            self._walk(typedef, obj, "", "", findings)
        return findings

    def _any_unknown(self, typedef: TypeDef, obj: Any) -> bool:
        """Does ``obj`` have an undeclared key or a mistyped value anywhere?  (:meth:`_walk`
        without the paths.)"""
        if typedef.special is not None or not isinstance(obj, dict):
            return False
        known = self._members.get(typedef.name) or {}
        for key, value in obj.items():
            how = known.get(key) or self._member(typedef, key)
            if how is None or not _fits(value, how.allowed):
                return True
            if how.walk == _SKIP or value is None:
                continue
            if how.walk == _OBJECT:
                if how.inner is not None and self._any_unknown(how.inner, value):
                    return True
                continue
            items = value if how.walk == _LIST else value.values()
            for item in items:
                if not _fits(item, how.element):
                    return True
                if how.inner is not None and self._any_unknown(how.inner, item):
                    return True
        return False

    def _member(self, typedef: TypeDef, key: str) -> _Member | None:
        """How to walk member ``key`` of a ``typedef`` object; None when it is not declared."""
        f = json_field(self.schema, typedef, key)
        if f is None:
            return None  # not remembered: undeclared keys come from clients, without bound
        inner = self.schema.type(f.type)
        element: tuple[type, ...] | None
        if inner is None:
            element, go = _SCALARS.get(f.type, ((object,), f.type))
        elif inner.special is not None:
            special = _SPECIALS.get(inner.special)
            element, go = (special if special else (None, inner.name.rpartition(".")[2]))
            inner = None
        else:
            element, go = (dict,), "v1." + inner.name.rpartition(".")[2]
        if f.repeated:
            found = _Member(_LIST, inner, (list,), element, "[]" + go, go)
        elif f.map_value is not None:
            found = _Member(_MAP, inner, (dict,), element, "map[string]" + go, go)
        else:
            found = _Member(_OBJECT if inner is not None else _SKIP, inner, element, None, go, go)
        self._members.setdefault(typedef.name, {})[key] = found
        return found

    def _walk(self, typedef: TypeDef, obj: Any, path: str, go_path: str, found: Findings) -> None:
        if typedef.special is not None or not isinstance(obj, dict):
            return
        unknown: list[str] = []
        known = self._members.get(typedef.name) or {}
        for key, value in obj.items():
            how = known.get(key) or self._member(typedef, key)
            if how is None:
                unknown.append(key)
                found.unknown.append(f"{path}.{key}" if path else key)
                continue
            child = f"{path}.{key}" if path else key
            go_child = f"{go_path}.{key}" if go_path else key
            if not _fits(value, how.allowed):
                found.mistyped(value, typedef, go_child, how.go)
                continue
            if how.walk == _SKIP or value is None:
                continue
            if how.walk == _OBJECT:
                if how.inner is not None:
                    self._walk(how.inner, value, child, go_child, found)
                continue
            pairs = (((f"{child}[{i}]", item) for i, item in enumerate(value)) if how.walk == _LIST
                     else ((f"{child}.{k}", item) for k, item in value.items()))
            for item_path, item in pairs:
                if not _fits(item, how.element):
                    found.mistyped(item, typedef, go_child, how.go_element)
                elif how.inner is not None:
                    self._walk(how.inner, item, item_path, go_child, found)
        for key in unknown:
            del obj[key]
