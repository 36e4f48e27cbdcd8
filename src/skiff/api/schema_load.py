"""Loading the built-in type table, and finding fields a type does not declare.

The table (``api/data/types.json``, written by ``tools/gen_schema.py``) has one
entry per type::

    "io.k8s.api.apps.v1.DeploymentSpec": {"fields": [
        {"name": "replicas", "number": 1, "type": "int32", "omitempty": true, "pointer": true},
        {"name": "selector", "number": 2, "type": "io.k8s...LabelSelector", "required": true},
        ...]}

Each field lists only its non-default :class:`~skiff.api.schema.FieldDef`
attributes.  :func:`load_builtin` reads it once (about 10 ms).

Strict field validation
-----------------------
With ``fieldValidation=Strict`` (kubectl's default for ``apply``/``create -f``)
kube-apiserver rejects a body that has fields its Go type does not declare.
:func:`find_unknown_fields` returns the offending paths in the order they appear,
spelled the way Kubernetes' JSON decoder spells them: struct fields and map keys
joined by ``.``, list items as ``[i]``, no leading dot::

    spec.replicasx
    spec.template.spec.containers[0].imagex
    metadata.labelsx

Fields of inlined structs (``Volume`` + ``VolumeSource``, ``Probe`` +
``ProbeHandler``) are known at the parent's level; the contents of special types
(RawExtension, FieldsV1, Quantity ...) are never inspected.

kube-apiserver reports them on create/update as a ``400 BadRequest`` Status whose
message is (see :func:`strict_decoding_message`)::

    Deployment in version "v1" cannot be handled as a Deployment: strict decoding error:
    unknown field "spec.replicasx", unknown field "spec.foo"

(one line; ``<kind of the body> in version "<version of the body>" cannot be handled
as a <kind served>``).  With ``fieldValidation=Warn`` each path becomes one
warning, ``unknown field "spec.replicasx"`` (see :func:`unknown_field_warning`), and
the request succeeds with the unknown fields dropped.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import orjson

from .schema import FieldDef, Schema, TypeDef

DATA_PACKAGE = "skiff.api"
DATA_FILE = "data/types.json"


@lru_cache(maxsize=1)
def load_builtin() -> Schema:
    """The schema of every built-in type (cached: one shared, read-only instance)."""
    raw = resources.files(DATA_PACKAGE).joinpath(DATA_FILE).read_bytes()
    return Schema(parse_types(raw))


def parse_types(raw: bytes) -> dict[str, TypeDef]:
    """Turn the JSON table into :class:`TypeDef` objects keyed by full type name."""
    table = orjson.loads(raw)["types"]
    types: dict[str, TypeDef] = {}
    for name, entry in table.items():
        fields: dict[str, FieldDef] = {}
        for f in entry["fields"]:
            keys = f.get("list_map_keys")
            if keys is not None:
                f = {**f, "list_map_keys": tuple(keys)}
            fields[f["name"]] = FieldDef(**f)
        gvk = entry.get("gvk")
        types[name] = TypeDef(name=name, fields=fields, special=entry.get("special"),
                              gvk=(gvk[0], gvk[1], gvk[2]) if gvk else None)
    return types


def json_field(schema: Schema, typedef: TypeDef, key: str) -> FieldDef | None:
    """The field that JSON key ``key`` of an object of ``typedef`` sets (inline-aware).

    An inlined struct's own field name (``volumeSource``) is not a JSON key; its
    members are.
    """
    found = typedef.fields.get(key)
    if found is not None and not found.inline:
        return found
    for f in typedef.fields.values():
        if f.inline:
            inner = schema.type(f.type)
            if inner is not None:
                hit = json_field(schema, inner, key)
                if hit is not None:
                    return hit
    return None


def json_fields(schema: Schema, typedef: TypeDef) -> dict[str, FieldDef]:
    """Every JSON key of ``typedef`` with inlined structs flattened, in declaration order."""
    out: dict[str, FieldDef] = {}
    for f in typedef.fields.values():
        if f.inline:
            inner = schema.type(f.type)
            if inner is not None:
                out.update(json_fields(schema, inner))
        else:
            out[f.name] = f
    return out


def find_unknown_fields(schema: Schema, type_name: str, obj: Any, path: str = "") -> list[str]:
    """Paths of the keys in ``obj`` that type ``type_name`` does not declare.

    ``path`` prefixes every result (``""`` for a whole object).  Values of the
    wrong JSON type are not this function's concern and are skipped.
    """
    found: list[str] = []
    typedef = schema.type(type_name)
    if typedef is not None:
        _walk_object(schema, typedef, obj, path, found)
    return found


def _walk_object(schema: Schema, typedef: TypeDef, obj: Any, path: str, found: list[str]) -> None:
    if typedef.special is not None or not isinstance(obj, dict):
        return
    for key, value in obj.items():
        child = f"{path}.{key}" if path else key
        f = json_field(schema, typedef, key)
        if f is None:
            found.append(child)
            continue
        inner = schema.type(f.type)
        if inner is None or inner.special is not None:
            continue  # a scalar, or a type with its own JSON form
        if f.repeated:
            if isinstance(value, list):
                for i, item in enumerate(value):
                    _walk_object(schema, inner, item, f"{child}[{i}]", found)
        elif f.map_value is not None:
            if isinstance(value, dict):
                for map_key, item in value.items():
                    _walk_object(schema, inner, item, f"{child}.{map_key}", found)
        else:
            _walk_object(schema, inner, value, child, found)


def unknown_field_warning(path: str) -> str:
    """One ``fieldValidation=Warn`` warning: ``unknown field "spec.replicasx"``."""
    return f"unknown field {_go_quote(path)}"


def strict_decoding_message(body_kind: str, body_version: str, served_kind: str,
                            paths: list[str]) -> str:
    """The BadRequest message kube-apiserver gives for unknown fields under Strict.

    ``body_kind``/``body_version`` are the body's own ``kind`` and the version part
    of its ``apiVersion`` (``apps/v1`` -> ``v1``); ``served_kind`` is the kind the
    endpoint decodes into (the same for a well-formed request).
    """
    errors = ", ".join(unknown_field_warning(p) for p in paths)
    return (f"{body_kind} in version {_go_quote(body_version)} cannot be handled as a "
            f"{served_kind}: strict decoding error: {errors}")


def _go_quote(text: str) -> str:
    """Go's ``%q`` for the printable text of field paths: backslash-escape ``\\`` and ``"``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    for raw, esc in (("\n", "\\n"), ("\t", "\\t"), ("\r", "\\r")):
        escaped = escaped.replace(raw, esc)
    return f'"{escaped}"'
