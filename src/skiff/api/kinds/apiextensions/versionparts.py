"""The per-version parts of a CRD besides its schema: deprecation warning, subresources,
printer columns and selectable fields.

    validate_version(version, path, status_enabled, opts) -> [Cause]   one ``spec.versions[i]``
    validate_subresources(subresources, path) -> [Cause]               the ``scale`` paths
    validate_column(column, path) -> [Cause]                            one printer column
    validate_selectable_fields(fields, validation, path) -> [Cause]     paths into the schema

The last three also serve the copies lifted to the top of the spec (``spec.subresources``,
``spec.additionalPrinterColumns[i]``, ``spec.selectableFields``) when all versions agree.
Pure functions over plain JSON objects.
"""

from __future__ import annotations

from typing import Any

from ...errors import Cause
from .. import meta as m
from .common import Obj, ValidationOptions, as_dict, as_list, as_schema, as_str
from .fieldpath import resolve_field_path
from .schemarules import validate_schema
from .structuralrules import structural_init_error

PRINTER_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
PRINTER_COLUMN_FORMATS = ("byte", "date", "date-time", "double", "float", "int32", "int64", "password")
MAX_SELECTABLE_FIELDS = 8


def validate_version(version: Obj, path: str, status_enabled: bool, opts: ValidationOptions) -> list[Cause]:
    causes: list[Cause] = []
    warning = version.get("deprecationWarning")
    for problem in _deprecation_warning_problems(version.get("deprecated") is True, warning):
        causes.append(m.invalid(f"{path}.deprecationWarning", warning, problem))
    causes += validate_schema(as_schema(version.get("schema")), status_enabled, opts, f"{path}.schema")
    causes += validate_subresources(as_schema(version.get("subresources")), f"{path}.subresources")
    for i, column in enumerate(as_list(version.get("additionalPrinterColumns"))):
        causes += validate_column(as_dict(column), f"{path}.additionalPrinterColumns[{i}]")
    fields = as_list(version.get("selectableFields"))
    if fields:
        validation = as_schema(version.get("schema"))
        if as_dict(validation).get("openAPIV3Schema") is None:
            causes.append(m.invalid(f"{path}.selectableFields", "", "selectableFields may only be set when "
                                    "version.schema.openAPIV3Schema is not included"))
        else:
            causes += validate_selectable_fields(fields, as_dict(validation), path)
    return causes


def _deprecation_warning_problems(deprecated: bool, warning: Any) -> list[str]:
    if not deprecated and warning is not None:
        return ["can only be set for deprecated versions"]
    if not isinstance(warning, str):
        return []
    problems: list[str] = []
    if len(warning.encode()) > 256:
        problems.append("must be <= 256 characters long")
    if not warning:
        problems.append("must not be an empty string")
    for i, char in enumerate(warning):
        if not char.isprintable():
            offset = len(warning[:i].encode())
            problems.append("must only contain printable UTF-8 characters; non-printable character found "
                            f"at index {offset}")
            break
    return problems


def validate_column(column: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not as_str(column.get("name")):
        causes.append(m.required(f"{path}.name"))
    col_type = as_str(column.get("type"))
    types = "must be one of " + ",".join(PRINTER_COLUMN_TYPES)
    if not col_type:
        causes.append(m.required(f"{path}.type", types))
    elif col_type not in PRINTER_COLUMN_TYPES:
        causes.append(m.invalid(f"{path}.type", col_type, types))
    fmt = as_str(column.get("format"))
    if fmt and fmt not in PRINTER_COLUMN_FORMATS:
        causes.append(m.invalid(f"{path}.format", fmt, "must be one of " + ",".join(PRINTER_COLUMN_FORMATS)))
    json_path = as_str(column.get("jsonPath"))
    if not json_path:
        causes.append(m.required(f"{path}.JSONPath"))
    else:
        causes += _validate_simple_json_path(json_path, f"{path}.JSONPath")
    return causes


def _validate_simple_json_path(value: str, path: str) -> list[Cause]:
    if not value:
        return [m.invalid(path, value, "must not be empty")]
    if not value.startswith("."):
        return [m.invalid(path, value, "must be a simple json path starting with .")]
    return []


def validate_subresources(subresources: Obj | None, path: str) -> list[Cause]:
    scale = as_dict(subresources).get("scale")
    if not isinstance(scale, dict):
        return []
    causes: list[Cause] = []
    for field, prefix, where in (("specReplicasPath", ".spec.", ".spec"),
                                 ("statusReplicasPath", ".status.", ".status")):
        value = as_str(scale.get(field))
        if not value:
            causes.append(m.required(f"{path}.scale.{field}"))
        elif errs := _validate_simple_json_path(value, f"{path}.scale.{field}"):
            causes += errs
        elif not value.startswith(prefix):
            causes.append(m.invalid(f"{path}.scale.{field}", value, f"should be a json path under {where}"))
    selector = as_str(scale.get("labelSelectorPath"))
    if selector:
        if errs := _validate_simple_json_path(selector, f"{path}.scale.labelSelectorPath"):
            causes += errs
        elif not selector.startswith((".spec.", ".status.")):
            causes.append(m.invalid(f"{path}.scale.labelSelectorPath", selector,
                                    "should be a json path under either .spec or .status"))
    return causes


def validate_selectable_fields(fields: list[Any], validation: Obj, path: str) -> list[Cause]:
    schema = as_schema(validation.get("openAPIV3Schema"))
    causes: list[Cause] = []
    if schema is not None and (error := structural_init_error(schema)) is not None:
        return [m.invalid(f"{path}.schema.openAPIV3Schema", "", error)]
    unique: set[str] = set()
    for i, field in enumerate(fields):
        field_path = f"{path}.selectableFields[{i}].jsonPath"
        json_path = as_str(as_dict(field).get("jsonPath"))
        if not json_path:
            causes.append(m.required(field_path))
            continue
        try:
            steps, found = resolve_field_path(json_path, schema, allow_array=False)
        except ValueError as err:
            causes.append(m.invalid(field_path, json_path, f"is an invalid path: {err}"))
            continue
        if steps and steps[0] == "metadata":
            causes.append(m.invalid(field_path, json_path, "must not point to fields in metadata"))
        if found is None or found.get("type") not in ("string", "boolean", "integer"):
            causes.append(m.invalid(field_path, json_path, "must point to a field of type string, boolean or "
                                    "integer. Enum string fields and strings with formats are allowed."))
        key = ".".join(steps)
        if key in unique:
            causes.append(m.duplicate(field_path, json_path))
        unique.add(key)
    if len(unique) > MAX_SELECTABLE_FIELDS:
        causes.append(m.too_many(f"{path}.selectableFields", len(unique), MAX_SELECTABLE_FIELDS))
    return causes
