"""Small pieces every part of CRD validation shares (see :mod:`.definition`).

    as_dict(v), as_list(v), as_str(v)   v if it has that JSON type, else {} / [] / ""
    as_schema(v)                        v if it is an object (a schema), else None
    is_set(schema, key, kind)           whether a schema field is set, Go-style ("str": non-empty,
                                        "bool": true, "ptr": present)
    validate_enum(path, value, ok)      Required / Unsupported value for a string enum
    type_must_be(schema, path, ...)     Required / Invalid value for a schema of the wrong type
    ValidationOptions                   which rules apply; relaxed on update ("ratcheting")

Nothing here reads a whole definition; all functions are pure and never raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...errors import Cause
from .. import meta as m

Obj = dict[str, Any]


def as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_schema(value: Any) -> Obj | None:
    return value if isinstance(value, dict) else None


def is_set(schema: Obj, key: str, kind: str = "ptr") -> bool:
    value = schema.get(key)
    if kind == "str":
        return value not in (None, "")
    if kind == "bool":
        return value is True
    return value is not None


def validate_enum(path: str, value: str, accepted: tuple[str, ...]) -> list[Cause]:
    if not value:
        return [m.required(path)]
    return [] if value in accepted else [m.not_supported(path, value, accepted)]


def type_must_be(schema: Obj, path: str, wanted: str, detail: str) -> list[Cause]:
    """``<path>.type`` is missing or not ``wanted``: Required or Invalid value with ``detail``."""
    if not is_set(schema, "type", "str"):
        return [m.required(f"{path}.type", detail)]
    return [m.invalid(f"{path}.type", schema.get("type"), detail)]


@dataclass(frozen=True)
class ValidationOptions:
    """Which rules apply.  All are on for a create; an update switches off those the stored
    definition already breaks (see :func:`.definition.validate_crd`)."""

    require_recognized_review_version: bool = True
    require_immutable_names: bool = False
    require_openapi_schema: bool = True
    require_valid_property_type: bool = True
    require_structural: bool = True
    require_atomic_set_type: bool = True
    require_map_list_keys_validation: bool = True
