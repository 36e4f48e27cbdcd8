"""Pruning, defaulting and validation of custom objects by a CRD version's schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.errors import Cause
from skiff.api.kinds.apiextensions.structural import apply_defaults, prune, validate


def obj_schema(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def spec_schema(**props: Any) -> dict[str, Any]:
    """A root schema whose ``spec`` has the given properties."""
    return obj_schema(spec=obj_schema(**props))


def check_spec(prop: dict[str, Any], value: Any) -> list[Cause]:
    """Validate ``{"spec": {"x": value}}`` against ``spec.x: prop``."""
    return validate(spec_schema(x=prop), {"spec": {"x": value}})


def one(causes: list[Cause]) -> Cause:
    assert len(causes) == 1, causes
    return causes[0]


# --- type and nullable -----------------------------------------------------------------

@pytest.mark.parametrize("type_, value, got", [
    ("integer", "3", "string"),
    ("integer", True, "boolean"),
    ("integer", 1.5, "number"),
    ("integer", {}, "object"),
    ("integer", [], "array"),
    ("string", 3, "integer"),
    ("string", 3.5, "number"),
    ("boolean", "true", "string"),
    ("number", "1", "string"),
    ("object", "x", "string"),
    ("array", {"a": 1}, "object"),
])
def test_type_mismatch(type_: str, value: Any, got: str) -> None:
    assert one(check_spec({"type": type_}, value)) == Cause(
        "FieldValueTypeInvalid",
        f'Invalid value: "{got}": spec.x in body must be of type {type_}: "{got}"', "spec.x")


@pytest.mark.parametrize("type_, value", [
    ("integer", 3), ("integer", 3.0), ("number", 3), ("number", 2.5), ("string", ""),
    ("boolean", False), ("object", {}), ("array", [1, "a"]),
])
def test_type_match(type_: str, value: Any) -> None:
    assert check_spec({"type": type_}, value) == []


def test_null_needs_nullable() -> None:
    assert one(check_spec({"type": "string"}, None)) == Cause(
        "FieldValueTypeInvalid", 'Invalid value: "null": spec.x in body must be of type string: "null"',
        "spec.x")
    assert check_spec({"type": "string", "nullable": True}, None) == []
    assert check_spec({}, None) == []  # no type: anything goes


def test_int_or_string() -> None:
    prop = {"x-kubernetes-int-or-string": True}
    assert check_spec(prop, 80) == []
    assert check_spec(prop, "http") == []
    assert one(check_spec(prop, True)).message == (
        'Invalid value: "boolean": spec.x in body must be of type integer,string: "boolean"')


def test_preserve_unknown_fields_without_type_accepts_anything() -> None:
    assert check_spec({"x-kubernetes-preserve-unknown-fields": True}, {"any": [1, {"b": None}]}) == []


# --- formats ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, good, bad", [
    ("date", "2024-02-29", "2023-02-29"),
    ("date-time", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05"),
    ("date-time", "2024-01-02t03:04:05.123+01:00", "2024-01-02T24:00:00Z"),
    ("byte", "aGVsbG8=", "hello!"),
    ("uuid", "0F8FAD5B-D9CB-469F-A165-70867728950E", "not-a-uuid"),
    ("uuid4", "0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b-d9cb-369f-a165-70867728950e"),
    ("ipv4", "10.0.0.1", "10.0.0.256"),
    ("ipv4", "010.000.000.001", "::1"),
    ("ipv6", "fe80::1", "10.0.0.1"),
    ("cidr", "10.0.0.0/8", "10.0.0.0/33"),
    ("mac", "01:23:45:67:89:ab", "01:23:45:67:89"),
    ("hostname", "example.com", "-bad-.com"),
    ("duration", "1h30m", "forever"),
    ("duration", "3 days", "1.5"),
    ("hexcolor", "#ffF", "#ff"),
    ("rgbcolor", "rgb(255, 0, 10)", "rgb(256,0,0)"),
])
def test_formats(fmt: str, good: str, bad: str) -> None:
    prop = {"type": "string", "format": fmt}
    assert check_spec(prop, good) == []
    assert one(check_spec(prop, bad)) == Cause(
        "FieldValueTypeInvalid", f'Invalid value: "{bad}": spec.x in body must be of type {fmt}: "{bad}"',
        "spec.x")


def test_formats_kubernetes_strips_are_ignored() -> None:
    assert check_spec({"type": "integer", "format": "int32"}, 2 ** 40) == []
    assert check_spec({"type": "string", "format": "no-such-format"}, "anything") == []
    assert check_spec({"type": "number", "format": "float"}, 1e300) == []


def test_format_with_a_non_string_value_names_the_format() -> None:
    assert one(check_spec({"type": "string", "format": "date"}, 5)).message == (
        'Invalid value: "int64": spec.x in body must be of type date: "int64"')


# --- enum ------------------------------------------------------------------------------

def test_enum() -> None:
    prop = {"type": "string", "enum": ["red", "green"]}
    assert check_spec(prop, "red") == []
    assert one(check_spec(prop, "pink")) == Cause(
        "FieldValueNotSupported", 'Unsupported value: "pink": supported values: "red", "green"', "spec.x")


def test_enum_of_numbers_and_objects() -> None:
    assert check_spec({"type": "integer", "enum": [1, 2]}, 2) == []
    assert check_spec({"type": "number", "enum": [1.0, 2.5]}, 1) == []
    assert one(check_spec({"type": "integer", "enum": [1, 2]}, 3)).message == (
        'Unsupported value: 3: supported values: "1", "2"')
    assert one(check_spec({"enum": [True]}, 1)).message == 'Unsupported value: 1: supported values: "true"'
    assert one(check_spec({"type": "object", "enum": [{"a": 1}]}, {"a": 2})).message == (
        'Unsupported value: map[string]interface {}{"a":2}: supported values: "{\\"a\\":1}"')


def test_enum_null_is_reported_as_null() -> None:
    prop = {"type": "string", "nullable": True, "enum": ["a"]}
    assert one(check_spec(prop, None)).message == 'Unsupported value: "null": supported values: "a"'


# --- numbers ---------------------------------------------------------------------------

def test_minimum_and_maximum() -> None:
    prop = {"type": "integer", "minimum": 1, "maximum": 10}
    assert check_spec(prop, 1) == [] and check_spec(prop, 10) == []
    assert one(check_spec(prop, 0)) == Cause(
        "FieldValueInvalid", "Invalid value: 0: spec.x in body should be greater than or equal to 1", "spec.x")
    assert one(check_spec(prop, 11)).message == (
        "Invalid value: 11: spec.x in body should be less than or equal to 10")


def test_exclusive_bounds() -> None:
    prop = {"type": "number", "minimum": 0, "exclusiveMinimum": True,
            "maximum": 1.5, "exclusiveMaximum": True}
    assert check_spec(prop, 0.5) == []
    assert one(check_spec(prop, 0)).message == "Invalid value: 0: spec.x in body should be greater than 0"
    assert one(check_spec(prop, 1.5)).message == "Invalid value: 1.5: spec.x in body should be less than 1.5"


def test_float_values_and_bounds_print_like_go() -> None:
    prop = {"type": "number", "maximum": 1000000}
    assert one(check_spec(prop, 2500000.5)).message == (
        "Invalid value: 2.5000005e+06: spec.x in body should be less than or equal to 1e+06")


def test_integer_values_meet_truncated_bounds() -> None:
    # kube-openapi compares an integer value with int64(bound): 1 passes minimum 1.5.
    assert check_spec({"type": "integer", "minimum": 1.5}, 1) == []
    assert one(check_spec({"type": "number", "minimum": 1.5}, 1.0)).message == (
        "Invalid value: 1: spec.x in body should be greater than or equal to 1.5")


def test_multiple_of() -> None:
    assert check_spec({"type": "integer", "multipleOf": 3}, 9) == []
    assert one(check_spec({"type": "integer", "multipleOf": 3}, 7)).message == (
        "Invalid value: 7: spec.x in body should be a multiple of 3")
    assert check_spec({"type": "number", "multipleOf": 0.1}, 0.3) == []
    assert one(check_spec({"type": "number", "multipleOf": 0.25}, 0.3)).message == (
        "Invalid value: 0.3: spec.x in body should be a multiple of 0.25")


def test_number_errors_in_kubernetes_order() -> None:
    prop = {"type": "integer", "multipleOf": 2, "maximum": 4}
    assert [c.message for c in check_spec(prop, 7)] == [
        "Invalid value: 7: spec.x in body should be a multiple of 2",
        "Invalid value: 7: spec.x in body should be less than or equal to 4",
    ]


# --- strings ---------------------------------------------------------------------------

def test_max_length() -> None:
    prop = {"type": "string", "maxLength": 5}
    assert check_spec(prop, "ééééé") == []  # characters, not bytes
    assert one(check_spec(prop, "toolong")) == Cause(
        "FieldValueTooLong", "Too long: may not be more than 5 bytes", "spec.x")


def test_min_length() -> None:
    assert one(check_spec({"type": "string", "minLength": 3}, "ab")) == Cause(
        "FieldValueInvalid", 'Invalid value: "ab": spec.x in body should be at least 3 chars long', "spec.x")


def test_pattern_is_an_unanchored_search() -> None:
    assert check_spec({"type": "string", "pattern": "[0-9]"}, "abc1def") == []
    assert one(check_spec({"type": "string", "pattern": "^[0-9]+$"}, "abc")) == Cause(
        "FieldValueInvalid", "Invalid value: \"abc\": spec.x in body should match '^[0-9]+$'", "spec.x")


def test_pattern_dollar_is_end_of_text_and_classes_are_ascii() -> None:
    prop = {"type": "string", "pattern": "^[a-z]+$"}
    assert one(check_spec(prop, "abc\n")).message == (
        "Invalid value: \"abc\\n\": spec.x in body should match '^[a-z]+$'")
    assert len(check_spec({"type": "string", "pattern": r"^\d+$"}, "١٢")) == 1


def test_invalid_pattern_is_reported() -> None:
    cause = one(check_spec({"type": "string", "pattern": "("}, "x"))
    assert cause.message.startswith("Invalid value: \"x\": spec.x in body should match '(, but pattern is invalid: ")


def test_string_checks_stop_at_the_first_failure() -> None:
    prop = {"type": "string", "maxLength": 2, "pattern": "^[0-9]+$"}
    assert one(check_spec(prop, "abc")).reason == "FieldValueTooLong"


# --- arrays ----------------------------------------------------------------------------

def test_max_and_min_items() -> None:
    prop = {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}
    assert one(check_spec(prop, [1, 2, 3, 4])) == Cause(
        "FieldValueTooMany", "Too many: 4: must have at most 3 items", "spec.x")
    assert one(check_spec(prop, [])) == Cause(
        "FieldValueInvalid", "Invalid value: 0: spec.x in body should have at least 1 items", "spec.x")


def test_items_paths() -> None:
    prop = {"type": "array", "items": obj_schema(name={"type": "string"})}
    assert one(check_spec(prop, [{"name": "a"}, {"name": 1}])) == Cause(
        "FieldValueTypeInvalid",
        'Invalid value: "integer": spec.x[1].name in body must be of type string: "integer"', "spec.x[1].name")


def test_unique_items() -> None:
    prop = {"type": "array", "uniqueItems": True}
    assert check_spec(prop, [1, 1.5, "1", True]) == []
    assert one(check_spec(prop, [{"a": 1}, {"a": 1}])) == Cause(
        "FieldValueInvalid", 'Invalid value: "": spec.x in body shouldn\'t contain duplicates', "spec.x")


# --- objects ---------------------------------------------------------------------------

def test_required() -> None:
    schema = obj_schema(spec={"type": "object", "required": ["size", "name"],
                              "properties": {"size": {"type": "integer"}}})
    assert validate(schema, {"spec": {"name": "a"}}) == [
        Cause("FieldValueRequired", "Required value", "spec.size")]
    assert validate({"type": "object", "required": ["spec"]}, {}) == [
        Cause("FieldValueRequired", "Required value", "spec")]


def test_max_and_min_properties() -> None:
    prop = {"type": "object", "maxProperties": 1, "minProperties": 1}
    assert one(check_spec(prop, {"a": 1, "b": 2})) == Cause(
        "FieldValueTooMany", "Too many: 2: must have at most 1 items", "spec.x")
    assert one(check_spec(prop, {})) == Cause(
        "FieldValueInvalid", "Invalid value: 0: spec.x in body should have at least 1 properties", "spec.x")


def test_additional_properties_schema_paths_use_dots() -> None:
    prop = {"type": "object", "additionalProperties": {"type": "string", "maxLength": 2}}
    assert check_spec(prop, {"a": "ok"}) == []
    assert one(check_spec(prop, {"long": "abc"})) == Cause(
        "FieldValueTooLong", "Too long: may not be more than 2 bytes", "spec.x.long")


def test_additional_properties_false_forbids_unknown_keys() -> None:
    prop = {"type": "object", "properties": {"a": {}}, "additionalProperties": False}
    assert one(check_spec(prop, {"a": 1, "b": 2})) == Cause(
        "FieldValueInvalid", 'Invalid value: "b": spec.x.b in body is a forbidden property', "spec.x")


def test_unspecified_fields_are_not_validated() -> None:
    assert validate(spec_schema(a={"type": "string"}), {"spec": {"b": 1}, "status": "x"}) == []


def test_root_metadata_is_only_checked_for_what_the_schema_declares() -> None:
    schema = obj_schema(metadata=obj_schema(name={"type": "string", "maxLength": 3}))
    obj = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "long-name", "uid": "u"}}
    assert validate(schema, obj) == [Cause("FieldValueTooLong", "Too long: may not be more than 3 bytes",
                                           "metadata.name")]
    assert validate(obj_schema(), obj) == []


# --- combinators ----------------------------------------------------------------------

def test_any_of() -> None:
    prop = {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+%$"}]}
    assert check_spec(prop, 5) == [] and check_spec(prop, "50%") == []
    assert check_spec(prop, "x") == [
        Cause("FieldValueInvalid", 'Invalid value: "": "spec.x" must validate at least one schema (anyOf)',
              "<nil>"),
        Cause("FieldValueInvalid", "Invalid value: \"x\": spec.x in body should match '^[0-9]+%$'", "spec.x"),
    ]


def test_one_of() -> None:
    prop = {"oneOf": [{"required": ["a"]}, {"required": ["b"]}]}
    assert check_spec(prop, {"a": 1}) == []
    assert check_spec(prop, {"a": 1, "b": 2}) == [Cause(
        "FieldValueInvalid",
        'Invalid value: "": "spec.x" must validate one and only one schema (oneOf). Found 2 valid alternatives',
        "<nil>")]
    assert check_spec(prop, {}) == [
        Cause("FieldValueInvalid",
              'Invalid value: "": "spec.x" must validate one and only one schema (oneOf). Found none valid',
              "<nil>"),
        Cause("FieldValueRequired", "Required value", "spec.x.a"),
    ]


def test_all_of_and_not() -> None:
    prop = {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]}
    assert check_spec(prop, 3) == []
    assert check_spec(prop, 9) == [
        Cause("FieldValueInvalid", "Invalid value: 9: spec.x in body should be less than or equal to 5", "spec.x"),
        Cause("FieldValueInvalid", 'Invalid value: "": "spec.x" must validate all the schemas (allOf)', "<nil>"),
    ]
    assert one(check_spec({"not": {"type": "string"}}, "s")) == Cause(
        "FieldValueInvalid", 'Invalid value: "": "spec.x" must not validate the schema (not)', "<nil>")


def test_identical_errors_are_reported_once() -> None:
    prop = {"allOf": [{"type": "integer"}, {"type": "integer"}]}
    assert [c.message for c in check_spec(prop, "s")] == [
        'Invalid value: "string": spec.x in body must be of type integer: "string"',
        'Invalid value: "": "spec.x" must validate all the schemas (allOf). None validated',
    ]


def test_x_kubernetes_validations_are_ignored() -> None:
    prop = {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 100"}]}
    assert check_spec(prop, 1) == []


# --- embedded resources and list types -------------------------------------------------

EMBEDDED = {"type": "object", "x-kubernetes-embedded-resource": True,
            "x-kubernetes-preserve-unknown-fields": True}


def test_embedded_resource_needs_api_version_and_kind() -> None:
    assert check_spec(EMBEDDED, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}) == []
    assert check_spec(EMBEDDED, {}) == [
        Cause("FieldValueRequired", "Required value: must not be empty", "spec.x.apiVersion"),
        Cause("FieldValueRequired", "Required value: must not be empty", "spec.x.kind"),
    ]


def test_embedded_resource_fields_are_checked() -> None:
    causes = check_spec(EMBEDDED, {"apiVersion": "a/b/c", "kind": "Bad_Kind", "metadata": {"name": "a/b"}})
    assert causes == [
        Cause("FieldValueInvalid", 'Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c',
              "spec.x.apiVersion"),
        Cause("FieldValueInvalid",
              'Invalid value: "Bad_Kind": may have mixed case, but should otherwise match: a DNS-1035 label '
              "must consist of lower case alphanumeric characters or '-', start with an alphabetic character, "
              "and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
              "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')", "spec.x.kind"),
        Cause("FieldValueInvalid", "Invalid value: \"a/b\": may not contain '/'", "spec.x.metadata.name"),
    ]
    assert one(check_spec(EMBEDDED, {"apiVersion": 1, "kind": "K"})) == Cause(
        "FieldValueInvalid", "Invalid value: 1: must be a string", "spec.x.apiVersion")


def test_list_type_set_duplicates() -> None:
    prop = {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
    assert check_spec(prop, ["a", "b"]) == []
    assert check_spec(prop, ["a", "b", "a", "a", "b"]) == [
        Cause("FieldValueDuplicate", 'Duplicate value: "a"', "spec.x[2]"),
        Cause("FieldValueDuplicate", 'Duplicate value: "b"', "spec.x[4]"),
    ]
    assert check_spec({"type": "array", "x-kubernetes-list-type": "set"}, [1, 1.0, True]) == []


def test_list_type_map_duplicate_keys() -> None:
    prop = {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": obj_schema(name={"type": "string"}, port={"type": "integer"})}
    assert check_spec(prop, [{"name": "a", "port": 1}, {"name": "b"}]) == []
    assert one(check_spec(prop, [{"name": "a", "port": 1}, {"name": "a", "port": 2}])) == Cause(
        "FieldValueDuplicate", 'Duplicate value: map[string]interface {}{"name":"a"}', "spec.x[1]")
    assert one(check_spec(prop, [{"port": 1}, {"port": 2}])).message == (
        "Duplicate value: map[string]interface {}{}")


def test_list_type_map_with_two_keys() -> None:
    prop = {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["port", "protocol"],
            "items": obj_schema(port={"type": "integer"}, protocol={"type": "string"})}
    entries = [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"},
               {"port": 80, "protocol": "TCP"}]
    assert one(check_spec(prop, entries)) == Cause(
        "FieldValueDuplicate", 'Duplicate value: map[string]interface {}{"port":80, "protocol":"TCP"}',
        "spec.x[2]")


def test_list_type_map_entries_must_be_objects() -> None:
    prop = {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
    assert one(check_spec(prop, [{"name": "a"}, "b"])) == Cause(
        "FieldValueInvalid", 'Invalid value: "b": must be an object for an array of list-type map', "spec.x[1]")


def test_list_checks_follow_map_values_with_bracket_paths() -> None:
    prop = {"type": "object", "additionalProperties": {
        "type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}}}
    assert one(check_spec(prop, {"k": [1, 1]})) == Cause("FieldValueDuplicate", "Duplicate value: 1",
                                                          "spec.x[k][1]")


# --- pruning ---------------------------------------------------------------------------

def test_prune_nested_unknown_fields() -> None:
    schema = spec_schema(image={"type": "string"}, template=obj_schema(name={"type": "string"}))
    obj = {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "whatever": 1},
           "spec": {"image": "i", "colour": "red", "template": {"name": "t", "x": 1}}, "status": {}}
    assert prune(schema, obj) == [".spec.colour", ".spec.template.x", ".status"]
    assert obj == {"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n", "whatever": 1},
                   "spec": {"image": "i", "template": {"name": "t"}}}


def test_prune_nothing_to_do() -> None:
    schema = spec_schema(a={"type": "string"})
    obj = {"apiVersion": "x/v1", "kind": "K", "metadata": {}, "spec": {"a": "b"}}
    before = copy.deepcopy(obj)
    assert prune(schema, obj) == [] and obj == before


def test_prune_arrays_of_objects() -> None:
    schema = spec_schema(ports={"type": "array", "items": obj_schema(port={"type": "integer"})})
    obj = {"spec": {"ports": [{"port": 1, "name": "a"}, {"port": 2, "extra": {"deep": 1}}]}}
    assert prune(schema, obj) == [".spec.ports[0].name", ".spec.ports[1].extra"]
    assert obj == {"spec": {"ports": [{"port": 1}, {"port": 2}]}}


def test_prune_preserve_unknown_fields() -> None:
    schema = spec_schema(config={"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                                 "properties": {"known": obj_schema(a={"type": "string"})}})
    obj = {"spec": {"config": {"anything": {"x": 1}, "known": {"a": "b", "stray": 1}}}}
    assert prune(schema, obj) == [".spec.config.known.stray"]
    assert obj == {"spec": {"config": {"anything": {"x": 1}, "known": {"a": "b"}}}}


def test_prune_preserve_unknown_fields_at_the_root() -> None:
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
              "properties": {"spec": obj_schema(a={"type": "string"})}}
    obj = {"spec": {"a": "b", "z": 1}, "other": {"kept": True}}
    assert prune(schema, obj) == [".spec.z"]
    assert obj == {"spec": {"a": "b"}, "other": {"kept": True}}


def test_prune_additional_properties() -> None:
    schema = spec_schema(
        labels={"type": "object", "additionalProperties": {"type": "string"}},
        selectors={"type": "object", "additionalProperties": obj_schema(key={"type": "string"})},
        free={"type": "object", "additionalProperties": True})
    obj = {"spec": {"labels": {"a": "b"}, "selectors": {"s": {"key": "k", "junk": 1}},
                    "free": {"n": 1, "o": {"inner": 1}}}}
    assert prune(schema, obj) == [".spec.free.o.inner", ".spec.selectors.s.junk"]
    assert obj == {"spec": {"labels": {"a": "b"}, "selectors": {"s": {"key": "k"}},
                            "free": {"n": 1, "o": {}}}}


def test_prune_keeps_embedded_resource_type_and_metadata() -> None:
    schema = spec_schema(template={"type": "object", "x-kubernetes-embedded-resource": True,
                                   "properties": {"spec": obj_schema(a={"type": "string"})}})
    obj = {"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                 "spec": {"a": "b", "c": 1}, "status": {}}}}
    assert prune(schema, obj) == [".spec.template.spec.c", ".spec.template.status"]
    assert obj["spec"]["template"] == {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                       "spec": {"a": "b"}}


def test_prune_meta_field_names_below_the_root_are_ordinary() -> None:
    obj = {"spec": {"kind": "x", "metadata": {}}}
    assert prune(spec_schema(), obj) == [".spec.kind", ".spec.metadata"]


def test_prune_drops_nulls_of_non_nullable_fields_without_default() -> None:
    schema = spec_schema(a={"type": "string"}, b={"type": "string", "nullable": True},
                         c={"type": "string", "default": "d"})
    obj = {"spec": {"a": None, "b": None, "c": None}}
    assert prune(schema, obj) == []
    assert obj == {"spec": {"b": None, "c": None}}


# --- defaulting ------------------------------------------------------------------------

def test_defaults_fill_absent_fields_recursively() -> None:
    schema = spec_schema(replicas={"type": "integer", "default": 1},
                         strategy={"type": "object", "default": {},
                                   "properties": {"kind": {"type": "string", "default": "Rolling"}}})
    obj: dict[str, Any] = {"spec": {}}
    apply_defaults(schema, obj)
    assert obj == {"spec": {"replicas": 1, "strategy": {"kind": "Rolling"}}}


def test_defaults_do_not_replace_values() -> None:
    schema = spec_schema(replicas={"type": "integer", "default": 1})
    obj = {"spec": {"replicas": 5}}
    apply_defaults(schema, obj)
    assert obj == {"spec": {"replicas": 5}}


def test_defaults_are_not_applied_to_absent_parents() -> None:
    schema = spec_schema(replicas={"type": "integer", "default": 1})
    obj: dict[str, Any] = {}
    apply_defaults(schema, obj)
    assert obj == {}


def test_defaults_replace_null_only_when_not_nullable() -> None:
    schema = spec_schema(a={"type": "string", "default": "x"},
                         b={"type": "string", "nullable": True, "default": "y"})
    obj: dict[str, Any] = {"spec": {"a": None, "b": None}}
    apply_defaults(schema, obj)
    assert obj == {"spec": {"a": "x", "b": None}}


def test_defaults_in_array_items_and_map_values() -> None:
    item = obj_schema(name={"type": "string"}, protocol={"type": "string", "default": "TCP"})
    schema = spec_schema(ports={"type": "array", "items": item},
                         limits={"type": "object", "additionalProperties": {"type": "integer", "default": 7}},
                         groups={"type": "object", "additionalProperties": item})
    obj: dict[str, Any] = {"spec": {"ports": [{"name": "a"}, {"name": "b", "protocol": "UDP"}],
                                    "limits": {"cpu": None, "mem": 3}, "groups": {"g": {}}}}
    apply_defaults(schema, obj)
    assert obj == {"spec": {"ports": [{"name": "a", "protocol": "TCP"}, {"name": "b", "protocol": "UDP"}],
                            "limits": {"cpu": 7, "mem": 3}, "groups": {"g": {"protocol": "TCP"}}}}


def test_null_array_items_take_the_items_default() -> None:
    schema = spec_schema(xs={"type": "array", "items": {"type": "integer", "default": 0}})
    obj: dict[str, Any] = {"spec": {"xs": [1, None]}}
    apply_defaults(schema, obj)
    assert obj == {"spec": {"xs": [1, 0]}}


def test_defaults_are_copied() -> None:
    schema = spec_schema(tags={"type": "array", "items": {"type": "string"}, "default": ["a"]})
    first: dict[str, Any] = {"spec": {}}
    second: dict[str, Any] = {"spec": {}}
    apply_defaults(schema, first)
    apply_defaults(schema, second)
    first["spec"]["tags"].append("b")
    assert second == {"spec": {"tags": ["a"]}}
    assert schema["properties"]["spec"]["properties"]["tags"]["default"] == ["a"]


# --- a realistic CRD end to end --------------------------------------------------------

CRONTAB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["cronSpec", "image"],
            "properties": {
                "cronSpec": {"type": "string",
                             "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                "image": {"type": "string"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                "suspend": {"type": "boolean", "default": False},
                "env": {"type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "required": ["name"],
                                  "properties": {"name": {"type": "string"},
                                                 "value": {"type": "string", "default": ""}}}},
            },
        },
        "status": {"type": "object", "properties": {"lastRun": {"type": "string", "format": "date-time"}}},
    },
}


def run_pipeline(obj: dict[str, Any]) -> tuple[list[str], list[Cause]]:
    unknown = prune(CRONTAB_SCHEMA, obj)
    apply_defaults(CRONTAB_SCHEMA, obj)
    return unknown, validate(CRONTAB_SCHEMA, obj)


def test_crontab_valid_object() -> None:
    obj = {"apiVersion": "stable.example.com/v1", "kind": "CronTab",
           "metadata": {"name": "my-new-cron-object", "namespace": "default"},
           "spec": {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image", "colour": "blue",
                    "env": [{"name": "A"}]},
           "status": {"lastRun": "2024-05-01T10:00:00Z"}}
    unknown, causes = run_pipeline(obj)
    assert unknown == [".spec.colour"]
    assert causes == []
    assert obj["spec"] == {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image", "replicas": 1,
                           "suspend": False, "env": [{"name": "A", "value": ""}]}
    assert obj["metadata"] == {"name": "my-new-cron-object", "namespace": "default"}


def test_crontab_invalid_object() -> None:
    obj = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "c"},
           "spec": {"cronSpec": "every minute", "replicas": 20, "suspend": "no",
                    "env": [{"name": "A"}, {"name": "A", "value": "x"}, {"value": "y"}]},
           "status": {"lastRun": "yesterday"}}
    unknown, causes = run_pipeline(obj)
    assert unknown == []
    assert [f"{c.field}: {c.message}" for c in causes] == [
        "spec.cronSpec: Invalid value: \"every minute\": spec.cronSpec in body should match "
        r"'^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'",
        "spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10",
        'spec.suspend: Invalid value: "string": spec.suspend in body must be of type boolean: "string"',
        "spec.env[2].name: Required value",
        "spec.image: Required value",
        'status.lastRun: Invalid value: "yesterday": status.lastRun in body must be of type date-time: '
        '"yesterday"',
        'spec.env[1]: Duplicate value: map[string]interface {}{"name":"A"}',
    ]
    assert [c.reason for c in causes] == [
        "FieldValueInvalid", "FieldValueInvalid", "FieldValueTypeInvalid", "FieldValueRequired",
        "FieldValueRequired", "FieldValueTypeInvalid", "FieldValueDuplicate"]


def test_a_long_invalid_hostname_is_refused_at_once() -> None:
    # go-openapi's whole-name pattern backtracks exponentially here (minutes at 24
    # characters); checked a label at a time it is linear
    schema = {"type": "object", "properties": {"host": {"type": "string", "format": "hostname"}}}
    causes = validate(schema, {"host": "a" * 60 + ".com!"})
    assert [c.field for c in causes] == ["host"]
    assert validate(schema, {"host": "a" * 60 + ".example.com"}) == []


def test_patterns_are_go_regular_expressions_run_in_linear_time() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}}
    # Python's re backtracks exponentially on this (0.5 s at 24 characters, doubling with each)
    causes = validate(schema, {"code": "a" * 64 + "b"})
    assert [c.message for c in causes] == ['Invalid value: "' + "a" * 64 + 'b": code in body should match \'^(a+)+$\'']
    letters = {"type": "object", "properties": {"word": {"type": "string", "pattern": r"^\pL+$"}}}
    assert validate(letters, {"word": "Grüße"}) == []  # RE2's Unicode classes
    assert validate(letters, {"word": "ab\n"}) != []  # $ is the end of the text, as in Go
