"""The structural-schema rules of a CRD's ``openAPIV3Schema`` (apiextensions-apiserver
``pkg/apiserver/schema``: NewStructural, ValidateStructural).

    structural_init_error(schema) -> str | None   a field no structural schema may use at all
                                                  ("OpenAPIV3Schema 'id' is not supported")
    structural_errors(schema, path) -> [Cause]    the invariants (types everywhere, shape only at
                                                  the top, value validations only under junctors,
                                                  metadata rules) and completeness, sorted by text
    is_non_structural(schema) -> bool             either of the above finds something
    go_regexp_error(pattern) -> str | None        why Go's regexp would refuse a ``pattern``

Pure functions over plain JSON objects; the schema is never modified.
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import Cause
from .. import meta as m
from .common import Obj, as_dict, as_list, as_schema, as_str, is_set, type_must_be
from .goregexp import pattern_error

_ROOT, _ITEMS, _FIELD = "root", "items", "field"
_UNSUPPORTED = (("id", "id", "str"), ("$schema", "schema", "str"), ("$ref", "$ref", "str"),
                ("patternProperties", "patternProperties", "map"), ("dependencies", "dependencies", "map"),
                ("additionalItems", "additionalItems", "ptr"), ("definitions", "definitions", "map"))


def structural_init_error(schema: Obj) -> str | None:
    """Why the schema cannot even be read as a structural one (fields it may not use)."""
    for key, name, kind in _UNSUPPORTED:
        value = schema.get(key)
        if (value is not None) if kind == "ptr" else bool(value):
            return f"OpenAPIV3Schema '{name}' is not supported"
    for key in ("not", "allOf", "anyOf", "oneOf"):
        for sub in ([schema.get(key)] if key == "not" else as_list(schema.get(key))):
            if isinstance(sub, dict) and (error := structural_init_error(sub)) is not None:
                return error
    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        return "internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined"
    items = schema.get("items")
    if isinstance(items, list) and items:
        return "OpenAPIV3Schema 'items' must be a schema, but is an array"
    nested = [items] + list(as_dict(schema.get("properties")).values()) + [schema.get("additionalProperties")]
    for sub in nested:
        if isinstance(sub, dict) and (error := structural_init_error(sub)) is not None:
            return error
    return None


def structural_errors(schema: Obj, path: str) -> list[Cause]:
    """Structural-schema rules; sorted by their text, as kube-apiserver reports them."""
    causes = _invariant_errors(schema, _ROOT, path) + _completeness_errors(schema, schema, path, path)
    return sorted(causes, key=lambda c: f"{c.field}: {c.message}")


def is_non_structural(schema: Obj) -> bool:
    return structural_init_error(schema) is not None or bool(structural_errors(schema, ""))


def _is_bare_type(schema: Any, wanted: str) -> bool:
    if not isinstance(schema, dict) or schema.get("type") != wanted:
        return False
    ignored = ("type", "externalDocs", "example")
    return all(k in ignored or v in (None, "", False) or (k in ("enum", "allOf", "anyOf", "oneOf") and v == [])
               for k, v in schema.items())


def _is_int_or_string_any_of(any_of: Any) -> bool:
    any_of = as_list(any_of)
    return len(any_of) == 2 and _is_bare_type(any_of[0], "integer") and _is_bare_type(any_of[1], "string")


def _invariant_errors(s: Obj, level: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    items, additional = s.get("items"), s.get("additionalProperties")
    properties = as_dict(s.get("properties"))
    embedded = s.get("x-kubernetes-embedded-resource") is True
    preserve = s.get("x-kubernetes-preserve-unknown-fields") is True
    int_or_string = s.get("x-kubernetes-int-or-string") is True
    schema_type = as_str(s.get("type"))
    if schema_type == "array" and items is None:
        causes.append(m.required(f"{path}.items", "must be specified"))
    if isinstance(items, dict):
        causes += _invariant_errors(items, _ITEMS, f"{path}.items")
    for name, prop in properties.items():
        causes += _invariant_errors(as_dict(prop), _FIELD, f"{path}.properties[{name}]")
    if additional is not None:
        if level == _ROOT:
            causes.append(m.forbidden(f"{path}.additionalProperties", "must not be used at the root"))
        if isinstance(additional, dict):
            causes += _invariant_errors(additional, _FIELD, f"{path}.additionalProperties")
    if int_or_string and preserve:
        causes.append(m.invalid(f"{path}.x-kubernetes-preserve-unknown-fields", True,
                                "must be false if x-kubernetes-int-or-string is true"))
    if int_or_string and embedded:
        causes.append(m.invalid(f"{path}.x-kubernetes-embedded-resource", True,
                                "must be false if x-kubernetes-int-or-string is true"))
    all_of = as_list(s.get("allOf"))
    causes += _value_validation_errors(s, _is_int_or_string_any_of(s.get("anyOf")),
                                       bool(all_of) and _is_int_or_string_any_of(as_dict(all_of[0]).get("anyOf")),
                                       level, path)
    if embedded and schema_type != "object":
        causes += type_must_be(s, path, "object", "must be object if x-kubernetes-embedded-resource is true")
    elif not schema_type and not int_or_string and not preserve:
        where = {_ROOT: "at the root", _ITEMS: "for specified array items", _FIELD: "for specified object fields"}
        causes.append(m.required(f"{path}.type", f"must not be empty {where[level]}"))
    if embedded and additional is not None:
        causes.append(m.forbidden(f"{path}.additionalProperties", "must not be used if x-kubernetes-embedded-resource is set"))
    if level == _ROOT and schema_type and schema_type != "object":
        causes.append(m.invalid(f"{path}.type", schema_type, "must be object at the root"))
    check_metadata = level == _ROOT or embedded
    for name in ("kind", "apiVersion"):
        if name in properties and check_metadata and as_dict(properties[name]).get("type") != "string":
            causes.append(m.invalid(f"{path}.properties[{name}].type", as_str(as_dict(properties[name]).get("type")),
                                    "must be string"))
    if "metadata" in properties:
        causes += _metadata_errors(as_dict(properties["metadata"]), check_metadata, level,
                                   f"{path}.properties[metadata]")
    if embedded and not preserve and not properties:
        causes.append(m.required(f"{path}.properties", "must not be empty if x-kubernetes-embedded-resource is true "
                                 "without x-kubernetes-preserve-unknown-fields"))
    return causes


def _metadata_errors(s: Obj, check_metadata: bool, level: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if check_metadata and s.get("type") != "object":
        causes.append(m.invalid(f"{path}.type", as_str(s.get("type")), "must be object"))
    if level != _ROOT:
        return causes
    keys = set(as_dict(s.get("properties")))
    only_names = keys == {"name", "generateName"} or (len(keys) == 1 and keys <= {"name", "generateName"})
    extra = (bool(keys) and not only_names) or any(s.get(k) is not None for k in (
        "items", "additionalProperties", "x-kubernetes-list-map-keys", "x-kubernetes-list-type",
        "x-kubernetes-map-type", "x-kubernetes-validations", "maximum", "minimum", "maxLength", "minLength",
        "maxItems", "minItems", "multipleOf", "maxProperties", "minProperties", "required", "not"))
    extra = extra or any(is_set(s, k, "str") for k in ("description", "title", "format", "pattern"))
    extra = extra or any(s.get(k) is True for k in (
        "nullable", "exclusiveMaximum", "exclusiveMinimum", "uniqueItems", "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource", "x-kubernetes-int-or-string"))
    extra = extra or any(bool(as_list(s.get(k))) for k in ("enum", "allOf", "anyOf", "oneOf"))
    if extra:
        causes.append(m.forbidden(path, "must not specify anything other than name and generateName, "
                                  "but metadata is implicitly specified"))
    return causes


def _value_validation_errors(v: Obj, skip_any_of: bool, skip_first_all_of_any_of: bool, level: str,
                             path: str) -> list[Cause]:
    causes: list[Cause] = []
    if not skip_any_of:
        for i, sub in enumerate(as_list(v.get("anyOf"))):
            causes += _nested_errors(as_dict(sub), False, False, level, f"{path}.anyOf[{i}]")
    for i, sub in enumerate(as_list(v.get("allOf"))):
        causes += _nested_errors(as_dict(sub), skip_first_all_of_any_of and i == 0, False, level, f"{path}.allOf[{i}]")
    for i, sub in enumerate(as_list(v.get("oneOf"))):
        causes += _nested_errors(as_dict(sub), False, False, level, f"{path}.oneOf[{i}]")
    if isinstance(v.get("not"), dict):
        causes += _nested_errors(v["not"], False, False, level, f"{path}.not")
    pattern = as_str(v.get("pattern"))
    if pattern and (error := go_regexp_error(pattern)) is not None:
        causes.append(m.invalid(f"{path}.pattern", pattern, f"must be a valid regular expression, but isn't: {error}"))
    return causes


def _nested_errors(v: Obj, skip_any_of: bool, skip_all_of_any_of: bool, level: str, path: str) -> list[Cause]:
    """Rules for a schema under allOf/anyOf/oneOf/not: only value validations are allowed."""
    causes = _value_validation_errors(v, skip_any_of, skip_all_of_any_of, level, path)
    if isinstance(v.get("items"), dict):
        causes += _nested_errors(v["items"], False, False, level, f"{path}.items")
    for name, prop in as_dict(v.get("properties")).items():
        causes += _nested_errors(as_dict(prop), False, False, _FIELD, f"{path}.properties[{name}]")
    checks = (
        ("type", is_set(v, "type", "str"), "must be empty to be structural"),
        ("additionalProperties", isinstance(v.get("additionalProperties"), dict)
         or v.get("additionalProperties") is True, "must be undefined to be structural"),
        ("default", v.get("default") is not None, "must be undefined to be structural"),
        ("title", is_set(v, "title", "str"), "must be empty to be structural"),
        ("description", is_set(v, "description", "str"), "must be empty to be structural"),
        ("nullable", v.get("nullable") is True, "must be false to be structural"),
        ("x-kubernetes-preserve-unknown-fields", v.get("x-kubernetes-preserve-unknown-fields") is True,
         "must be false to be structural"),
        ("x-kubernetes-embedded-resource", v.get("x-kubernetes-embedded-resource") is True,
         "must be false to be structural"),
        ("x-kubernetes-int-or-string", v.get("x-kubernetes-int-or-string") is True, "must be false to be structural"),
        ("x-kubernetes-list-map-keys", bool(as_list(v.get("x-kubernetes-list-map-keys"))),
         "must be empty to be structural"),
        ("x-kubernetes-list-type", v.get("x-kubernetes-list-type") is not None, "must be undefined to be structural"),
        ("x-kubernetes-map-type", v.get("x-kubernetes-map-type") is not None, "must be undefined to be structural"),
        ("x-kubernetes-validations", bool(as_list(v.get("x-kubernetes-validations"))),
         "must be empty to be structural"),
    )
    causes += [m.forbidden(f"{path}.{key}", detail) for key, bad, detail in checks if bad]
    if "metadata" in as_dict(v.get("properties")):
        causes.append(m.forbidden(f"{path}.properties[metadata]", "must not be specified in a nested context"))
    return causes


def _completeness_errors(v: Obj, s: Obj | None, s_path: str, v_path: str) -> list[Cause]:
    """Each property or items named under a junctor must also be specified structurally."""
    causes: list[Cause] = []
    for key in ("not", "allOf", "anyOf", "oneOf"):
        subs = [v.get(key)] if key == "not" else as_list(v.get(key))
        for i, sub in enumerate(subs):
            if isinstance(sub, dict):
                where = f"{v_path}.not" if key == "not" else f"{v_path}.{key}[{i}]"
                causes += _nested_completeness_errors(sub, s, s_path, where)
    return causes


def _nested_completeness_errors(v: Obj, s: Obj | None, s_path: str, v_path: str) -> list[Cause]:
    if s is None:
        return [m.required(s_path, f"because it is defined in {v_path}")]
    causes = _completeness_errors(v, s, s_path, v_path)
    if isinstance(v.get("items"), dict):
        causes += _nested_completeness_errors(v["items"], as_schema(s.get("items")), f"{s_path}.items",
                                              f"{v_path}.items")
    s_props = as_dict(s.get("properties"))
    for name, prop in as_dict(v.get("properties")).items():
        if name not in s_props:
            causes.append(m.required(f"{s_path}.properties[{name}]",
                                     f"because it is defined in {v_path}.properties[{name}]"))
        else:
            causes += _nested_completeness_errors(as_dict(prop), as_dict(s_props[name]), f"{s_path}.properties[{name}]",
                                                  f"{v_path}.properties[{name}]")
    return causes


def go_regexp_error(pattern: str) -> str | None:
    """Why Go's regexp package would refuse ``pattern`` (None when it accepts it): RE2 decides
    (:mod:`.goregexp`); the common mistakes are worded as Go words them."""
    reason = pattern_error(pattern)
    if reason is None:
        return None
    for construct in ("(?=", "(?!", "(?<=", "(?<!"):
        if construct in pattern:
            return f"error parsing regexp: invalid or unsupported Perl syntax: `{construct}`"
    if (backref := re.search(r"(?<!\\)(?:\\\\)*(\\[1-9])", pattern)) is not None:
        return f"error parsing regexp: invalid escape sequence: `{backref.group(1)}`"
    try:
        re.compile(pattern)
    except re.error as err:
        pos = err.pos or 0
        text = str(err.msg)
        if text.startswith("missing )"):
            return f"error parsing regexp: missing closing ): `{pattern}`"
        if text.startswith("unbalanced parenthesis"):
            return f"error parsing regexp: unexpected ): `{pattern}`"
        if text.startswith("unterminated character set"):
            return f"error parsing regexp: missing closing ]: `{pattern[pos:]}`"
        if text.startswith("nothing to repeat"):
            return f"error parsing regexp: missing argument to repetition operator: `{pattern[pos:pos + 1]}`"
        if text.startswith("multiple repeat"):
            return f"error parsing regexp: invalid nested repetition operator: `{pattern[max(pos - 1, 0):pos + 1]}`"
    return f"error parsing regexp: {reason}"
