"""Reading a structural schema node by node, naming field paths, wording Invalid causes.

Shared by :mod:`.pruning`, :mod:`.schemavalidator` and :mod:`.resourcechecks` (the parts
of :mod:`.structural`).  A node is the plain-dict JSONSchemaProps of
``apiextensions.k8s.io/v1``; malformed entries read as absent::

    properties(s)          {name: schema} of ``properties`` ({} if none)
    additional(s)          (set?, schema) of ``additionalProperties`` (a bool is "set", no schema)
    items(s)               the ``items`` schema, or None
    field_schema(s, name)  the schema of one object field: a property, else additionalProperties
    child(p, "a")  index(p, 0)  key(p, "k")    "p.a"  "p[0]"  "p[k]"  ("a" when p is "")
    invalid(path, value, detail)               a FieldValueInvalid Cause worded as Kubernetes does
"""

from __future__ import annotations

from typing import Any, Mapping

from ...errors import Cause
from ...gofmt import field_value_text
from ..meta.field_errors import child as child, index as index, key as key  # the shared path builders

Schema = Mapping[str, Any]

PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
EMBEDDED_RESOURCE = "x-kubernetes-embedded-resource"
INT_OR_STRING = "x-kubernetes-int-or-string"
META_FIELDS = ("apiVersion", "kind", "metadata")


def properties(s: Schema | None) -> Mapping[str, Schema]:
    props = (s or {}).get("properties")
    return props if isinstance(props, Mapping) else {}


def additional(s: Schema) -> tuple[bool, Schema | None]:
    """Whether ``additionalProperties`` is set at all (a bool counts), and its schema."""
    extra = s.get("additionalProperties")
    if extra is None:
        return False, None
    return True, extra if isinstance(extra, Mapping) else None


def items(s: Schema | None) -> Schema | None:
    found = (s or {}).get("items")
    return found if isinstance(found, Mapping) else None


def field_schema(s: Schema | None, name: str) -> Schema | None:
    if s is None:
        return None
    props = properties(s)
    return props[name] if name in props else additional(s)[1]




def invalid(path: str, value: Any, detail: str, reason: str = "FieldValueInvalid") -> Cause:
    return Cause(reason, f"Invalid value: {field_value_text(value)}: {detail}", path)
