"""Field errors worded like Kubernetes' (k8s.io/apimachinery ``validation/field``).

Each helper builds a :class:`~skiff.api.errors.Cause` whose ``message`` is the error
body Kubernetes prints after the field path::

    spec.containers[0].image: Required value
    metadata.name: Invalid value: "Web": a lowercase RFC 1123 subdomain must ...
    spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", ...

Paths are plain strings built with :func:`child`, :func:`index` and :func:`key`
(``spec.containers[0]``, ``data[key]``).
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

from ...errors import Cause

FIELD_IMMUTABLE = "field is immutable"
IS_NEGATIVE = "must be greater than or equal to 0"


class Verbatim(str):
    """A value printed as-is in an error (Kubernetes prints Quantities unquoted: ``Invalid value: 2``)."""


def format_value(value: Any) -> str:
    """Render a bad value the way Kubernetes' field errors do (strings quoted)."""
    if isinstance(value, Verbatim):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[]string{" + ", ".join(format_value(v) for v in value) + "}"
    if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
        return "map[string]string{" + ", ".join(
            f"{format_value(k)}:{format_value(value[k])}" for k in sorted(value)) + "}"
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _body(kind: str, value: Any = None, detail: str = "", *, show_value: bool = True) -> str:
    text = f"{kind}: {format_value(value)}" if show_value else kind
    return f"{text}: {detail}" if detail else text


def required(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", _body("Required value", detail=detail, show_value=False), path)


def invalid(path: str, value: Any, detail: str = "") -> Cause:
    return Cause("FieldValueInvalid", _body("Invalid value", value, detail), path)


def not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    values = list(supported)
    detail = ("supported values: " + ", ".join(json.dumps(v) for v in values)) if values else ""
    return Cause("FieldValueNotSupported", _body("Unsupported value", value, detail), path)


def forbidden(path: str, detail: str = "") -> Cause:
    return Cause("FieldValueForbidden", _body("Forbidden", detail=detail, show_value=False), path)


def duplicate(path: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", _body("Duplicate value", value), path)


def not_found(path: str, value: Any) -> Cause:
    return Cause("FieldValueNotFound", _body("Not found", value), path)


def too_long(path: str, max_length: int) -> Cause:
    detail = f"may not be more than {max_length} bytes" if max_length >= 0 else "value is too long"
    return Cause("FieldValueTooLong", _body("Too long", detail=detail, show_value=False), path)


def too_many(path: str, actual: int, maximum: int) -> Cause:
    detail = f"must have at most {maximum} items" if maximum >= 0 else "has too many items"
    if actual >= 0:
        return Cause("FieldValueTooMany", _body("Too many", actual, detail), path)
    return Cause("FieldValueTooMany", _body("Too many", detail=detail, show_value=False), path)


def invalid_each(path: str, value: Any, problems: Iterable[str]) -> list[Cause]:
    """One ``Invalid value`` cause per problem string (the ``is_*`` helpers' output)."""
    return [invalid(path, value, p) for p in problems]


def validate_nonnegative(value: int | None, path: str) -> list[Cause]:
    if value is not None and value < 0:
        return [invalid(path, value, IS_NEGATIVE)]
    return []


def validate_immutable(new: Any, old: Any, path: str) -> list[Cause]:
    """``field is immutable`` when the value changed (``None`` and absent are equal)."""
    if new != old:
        return [invalid(path, new, FIELD_IMMUTABLE)]
    return []


def spec_diff(old: Mapping[str, Any], new: Mapping[str, Any], type_name: str) -> str:
    """A short ``- old / + new`` listing of the top-level fields that differ, appended to
    "immutable" messages (Kubernetes appends a full go-cmp diff of the Go structs)."""
    lines = [f"  {type_name}{{"]
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            lines.append(f"- \t{k}: {json.dumps(old.get(k), sort_keys=True, default=str)},")
            lines.append(f"+ \t{k}: {json.dumps(new.get(k), sort_keys=True, default=str)},")
    lines.append("  }")
    return "\n".join(lines) + "\n"


def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"
