"""skiff.api.kinds.meta: Kubernetes' field-error wording, name rules, ages and selectors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest

from skiff.api.errors import invalid as invalid_status
from skiff.api.kinds import meta as m

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(**kw: float) -> str:
    return m.format_time(NOW - timedelta(**kw))


@pytest.mark.parametrize("seconds, text", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (59, "59s"), (119, "119s"), (120, "2m"),
    (182, "3m2s"), (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"),
    (4 * 3600 + 30 * 60, "4h30m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (48 * 3600, "2d"),
    (51 * 3600, "2d3h"), (8 * 86400, "8d"), (400 * 86400, "400d"), (2 * 365 * 86400, "2y"),
    (3 * 365 * 86400 + 5 * 86400, "3y5d"), (9 * 365 * 86400, "9y"),
])
def test_human_duration(seconds: int, text: str) -> None:
    assert m.human_duration(seconds) == text


def test_format_age_from_timestamps() -> None:
    assert m.format_age(ago(seconds=5), NOW) == "5s"
    assert m.format_age(ago(minutes=3, seconds=2), NOW) == "3m2s"
    assert m.format_age(ago(hours=4), NOW) == "4h"
    assert m.format_age(ago(days=2, hours=3), NOW) == "2d3h"
    assert m.format_age(None, NOW) == "<unknown>"
    assert m.format_age("", NOW) == "<unknown>"
    assert m.format_age("2024-05-01T11:59:59.123456789Z", NOW) == "0s"


def test_parse_and_format_time_round_trip() -> None:
    when = m.parse_time("2024-01-02T03:04:05Z")
    assert when == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert m.format_time(when) == "2024-01-02T03:04:05Z"
    assert m.parse_time("2024-01-02T05:04:05+02:00") == when
    assert m.parse_time("garbage") is None


def test_field_error_wording() -> None:
    assert m.required("spec.containers[0].image").message == "Required value"
    assert m.required("metadata.name", "name or generateName is required").message == \
        "Required value: name or generateName is required"
    assert m.invalid("spec.replicas", -1, m.IS_NEGATIVE).message == \
        "Invalid value: -1: must be greater than or equal to 0"
    assert m.invalid("metadata.name", "Web", "bad").message == 'Invalid value: "Web": bad'
    assert m.invalid("x", None, "bad").message == "Invalid value: null: bad"
    assert m.invalid("x", m.Verbatim("2"), "bad").message == "Invalid value: 2: bad"
    c = m.not_supported("spec.restartPolicy", "Sometimes", ["Always", "OnFailure", "Never"])
    assert (c.reason, c.message) == ("FieldValueNotSupported",
                                     'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"')
    assert m.forbidden("spec", "nope").message == "Forbidden: nope"
    assert m.duplicate("spec.containers[1].name", "a").message == 'Duplicate value: "a"'
    assert m.not_found("spec.containers[0].volumeMounts[0].name", "data").message == 'Not found: "data"'
    assert m.too_long("metadata.annotations", 262144).message == "Too long: may not be more than 262144 bytes"
    assert m.too_many("spec.x", 5, 4).message == "Too many: 5: must have at most 4 items"
    assert m.invalid("x", {"b": "2", "a": "1"}, "d").message == \
        'Invalid value: map[string]string{"a":"1", "b":"2"}: d'


def test_causes_make_kubernetes_status_message() -> None:
    err = invalid_status("Pod", "", "x", [m.required("spec.containers[0].image")])
    assert err.message == 'Pod "x" is invalid: spec.containers[0].image: Required value'


DNS_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                 "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
                 "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                 "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
                 "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
               "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


@pytest.mark.parametrize("check, value, problems", [
    (m.is_dns1123_label, "web-1", []),
    (m.is_dns1123_label, "Web", [DNS_LABEL_MSG]),
    (m.is_dns1123_label, "a.b", ["must not contain dots"]),
    (m.is_dns1123_label, "a" * 64, ["must be no more than 63 characters"]),
    (m.is_dns1123_label, "web\n", [DNS_LABEL_MSG]),
    (m.is_dns1123_subdomain, "a.example.com", []),
    (m.is_dns1123_subdomain, "-a", [SUBDOMAIN_MSG]),
    (m.is_dns1123_subdomain, "a" * 254, ["must be no more than 253 characters"]),
    (m.is_dns1035_label, "web", []),
    (m.is_dns1035_label, "1web", [DNS1035_MSG]),
    (m.is_valid_port_name, "http", []),
    (m.is_valid_port_name, "80", ["must contain at least one letter (a-z)"]),
    (m.is_valid_port_name, "a--b", ["must not contain consecutive hyphens"]),
    (m.is_valid_port_name, "-ab", ["must not begin or end with a hyphen"]),
    (m.is_config_map_key, "key.name", []),
    (m.is_config_map_key, "..", ["must not be '..'"]),
    (m.is_config_map_key, "a b", ["a valid config key must consist of alphanumeric characters, '-', '_' or "
                                  "'.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
                                  "validation is '[-._a-zA-Z0-9]+')"]),
])
def test_name_rules(check, value: str, problems: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert check(value) == problems


def test_qualified_names() -> None:
    assert m.is_qualified_name("app.kubernetes.io/name") == []
    assert m.is_qualified_name("/name") == ["prefix part must be non-empty"]
    assert m.is_qualified_name("a/") == [
        "name part must be non-empty",
        "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
        "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"]
    assert m.is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")
    assert m.is_qualified_name("Bad_Prefix/x")[0].startswith("prefix part a lowercase RFC 1123 subdomain")
    assert m.is_valid_label_value("") == []
    assert m.is_valid_label_value("-x")[0].startswith("a valid label must be an empty string")


def test_object_meta_create() -> None:
    assert m.validate_object_meta({"name": "web", "namespace": "default"}, True) == []
    causes = m.validate_object_meta({}, True)
    assert [(c.field, c.message) for c in causes] == [
        ("metadata.name", "Required value: name or generateName is required"),
        ("metadata.namespace", "Required value")]
    causes = m.validate_object_meta({"name": "n", "namespace": "x"}, False)
    assert [(c.field, c.message) for c in causes] == [("metadata.namespace", "Forbidden: not allowed on this type")]
    causes = m.validate_object_meta({"name": "Web", "namespace": "d"}, True)
    assert causes[0].field == "metadata.name" and causes[0].message == f'Invalid value: "Web": {SUBDOMAIN_MSG}'
    # generateName may end in '-'
    assert m.validate_object_meta({"name": "web-abcde", "generateName": "web-", "namespace": "d"}, True) == []
    causes = m.validate_object_meta({"name": "a", "labels": {"bad key!": "v", "k": "-v"}}, False)
    assert [c.field for c in causes] == ["metadata.labels", "metadata.labels"]
    assert causes[0].message.startswith('Invalid value: "bad key!": name part must consist')
    assert causes[1].message.startswith('Invalid value: "-v": a valid label must be an empty string')
    big = {"a": "x" * (256 * 1024)}
    causes = m.validate_object_meta({"name": "a", "annotations": big}, False)
    assert [(c.field, c.message) for c in causes] == [
        ("metadata.annotations", "Too long: may not be more than 262144 bytes")]


def test_object_meta_owner_references_and_finalizers() -> None:
    refs = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": True},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": True}]
    causes = m.validate_object_meta({"name": "p", "namespace": "d", "ownerReferences": refs}, True)
    assert len(causes) == 1 and causes[0].field == "metadata.ownerReferences"
    assert "Only one reference can have Controller set to true" in causes[0].message
    causes = m.validate_object_meta({"name": "p", "namespace": "d", "finalizers": ["orphan", "foregroundDeletion"]},
                                    True)
    assert causes[0].message.endswith("finalizer orphan and foregroundDeletion cannot be both set")


def test_object_meta_update_immutable_fields() -> None:
    old = {"name": "a", "namespace": "d", "uid": "1", "generation": 3}
    assert m.validate_object_meta_update(dict(old), old) == []
    causes = m.validate_object_meta_update({**old, "uid": "2", "generation": 2}, old)
    assert [(c.field, c.message) for c in causes] == [
        ("metadata.generation", "Invalid value: 2: must not be decremented"),
        ("metadata.uid", 'Invalid value: "2": field is immutable')]
    deleting = {**old, "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a"]}
    causes = m.validate_object_meta_update({**deleting, "finalizers": ["a", "b"]}, deleting)
    assert causes[0].message == ('Forbidden: no new finalizers can be added if the object is being deleted, '
                                 'found new finalizers []string{"b"}')


@pytest.mark.parametrize("selector, text", [
    (None, "<none>"),
    ({}, "<none>"),
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]},
                           {"key": "env", "operator": "NotIn", "values": ["dev"]},
                           {"key": "z", "operator": "Exists"},
                           {"key": "legacy", "operator": "DoesNotExist"}]},
     "env notin (dev),!legacy,tier in (api,web),z"),
    ({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}, "<error>"),
])
def test_format_selector(selector, text: str) -> None:  # type: ignore[no-untyped-def]
    assert m.format_selector(selector) == text


def test_format_labels_and_cells() -> None:
    assert m.format_labels({}) == "<none>"
    assert m.format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert m.container_cells([{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]) == ("a,b", "x,y")
    obj = {"metadata": {"name": "n", "creationTimestamp": "2024-05-01T11:00:00Z"}}
    assert m.name_age_row(obj, NOW) == ["n", "60m"]
    assert m.name_created_row(obj, NOW) == ["n", "2024-05-01T11:00:00Z"]


@pytest.mark.parametrize("text, value, canonical", [
    ("100m", Fraction(1, 10), "100m"),
    ("1000m", Fraction(1), "1"),
    ("0.5", Fraction(1, 2), "500m"),
    ("1Gi", Fraction(1024 ** 3), "1Gi"),
    ("1.5Gi", Fraction(3 * 1024 ** 3, 2), "1536Mi"),
    ("129e6", Fraction(129_000_000), "129e6"),
    ("2k", Fraction(2000), "2k"),
    (3, Fraction(3), "3"),
])
def test_quantities(text, value: Fraction, canonical: str) -> None:  # type: ignore[no-untyped-def]
    assert m.parse_quantity(text) == value
    assert m.canonical_quantity(text) == canonical


def test_bad_quantities() -> None:
    for text in ("", "abc", "1.2.3", "5 Gi", True, None):
        assert m.parse_quantity(text) is None
