"""The zero values Kubernetes never shows: Go's ``omitempty``, applied to what is stored.

kube-apiserver holds objects as Go structs, so a field tagged ``json:",omitempty"``
that is zero (``0``, ``""``, ``false``, an empty list or map, a nil pointer) is simply
absent from every answer: a Deployment scaled to zero has no ``status.replicas``, a
healthy one no ``unavailableReplicas``.  skiff keeps objects as JSON, and controllers
written in Python write such zeros; :meth:`EmptyFields.drop` removes them, by the type
table (:mod:`.schema`), before an object is stored.

Left alone, as Go leaves them: non-pointer structs (``resources: {}``), pointers to a
zero scalar (a present ``replicas: 0`` in a spec is a value), and the special types with
their own JSON forms (times, quantities, int-or-string).
"""

from __future__ import annotations

from typing import Any

from .schema import SCALARS, FieldDef, Schema, TypeDef
from .schema_load import json_fields

Obj = dict[str, Any]
NUMBERS = frozenset({"int32", "int64", "double", "float"})


class EmptyFields:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._fields: dict[str, dict[str, FieldDef]] = {}

    def drop_in_status(self, kind_type: str, obj: Obj) -> None:
        """Drop the omitempty zeros of ``obj["status"]`` (``kind_type``: the kind's type name)."""
        status = obj.get("status")
        if not isinstance(status, dict):
            return
        field = self._json_fields(kind_type).get("status")
        if field is not None:
            self.drop(field.type, status)

    def drop(self, type_name: str, obj: Obj) -> None:
        """Drop, in place and all the way down, the omitempty zeros of ``obj`` (of ``type_name``)."""
        fields = self._json_fields(type_name)
        for name in list(obj):
            field = fields.get(name)
            if field is None:
                continue
            value = obj[name]
            if field.omitempty and _is_empty(field, value):
                del obj[name]
            elif field.type not in SCALARS:
                self._descend(field, value)

    def _descend(self, field: FieldDef, value: Any) -> None:
        typedef = self.schema.type(field.type)
        if typedef is None or typedef.special is not None:
            return
        values: list[Any]
        if field.map_value is not None:
            values = list(value.values()) if isinstance(value, dict) else []
        elif field.repeated:
            values = value if isinstance(value, list) else []
        else:
            values = [value]
        for item in values:
            if isinstance(item, dict):
                self.drop(field.type, item)

    def _json_fields(self, type_name: str) -> dict[str, FieldDef]:
        fields = self._fields.get(type_name)
        if fields is None:
            typedef: TypeDef | None = self.schema.type(type_name)
            fields = self._fields[type_name] = json_fields(self.schema, typedef) if typedef else {}
        return fields


def _is_empty(field: FieldDef, value: Any) -> bool:
    if value is None:
        return True
    if field.repeated or field.map_value is not None:
        return isinstance(value, (list, dict)) and not value
    if field.pointer:
        return False                       # a pointer to a zero is a value
    if field.type == "string":
        return isinstance(value, str) and not value
    if field.type == "bool":
        return value is False
    if field.type in NUMBERS:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0
    return False                           # structs and special types are never empty to Go
