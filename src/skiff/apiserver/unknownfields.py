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
"""

from __future__ import annotations

from typing import Any

from ..api.schema import Schema, TypeDef
from ..api.schema_load import json_field


def drop_unknown_fields(schema: Schema, type_name: str, obj: Any) -> list[str]:
    """Remove undeclared keys from ``obj`` (in place); their dotted paths, in document order."""
    found: list[str] = []
    typedef = schema.type(type_name)
    if typedef is not None:
        _walk(schema, typedef, obj, "", found)
    return found


def _walk(schema: Schema, typedef: TypeDef, obj: Any, path: str, found: list[str]) -> None:
    if typedef.special is not None or not isinstance(obj, dict):
        return
    unknown: list[str] = []
    for key, value in obj.items():
        child = f"{path}.{key}" if path else key
        f = json_field(schema, typedef, key)
        if f is None:
            unknown.append(key)
            found.append(child)
            continue
        inner = schema.type(f.type)
        if inner is None or inner.special is not None:
            continue  # a scalar, or a type with its own JSON form
        if f.repeated:
            if isinstance(value, list):
                for i, item in enumerate(value):
                    _walk(schema, inner, item, f"{child}[{i}]", found)
        elif f.map_value is not None:
            if isinstance(value, dict):
                for map_key, item in value.items():
                    _walk(schema, inner, item, f"{child}.{map_key}", found)
        else:
            _walk(schema, inner, value, child, found)
    for key in unknown:
        del obj[key]
