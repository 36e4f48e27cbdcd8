"""Label and field selector parsing and matching (skiff.api.selectors)."""

from __future__ import annotations

import pytest

from skiff.api.selectors import (
    SelectorError,
    check_field_labels,
    field_getters,
    label_selector_from_object,
    parse_field_selector,
    parse_label_selector,
)

LABELS = {"app": "web", "tier": "front", "n": "5"}


@pytest.mark.parametrize("text,expected", [
    ("", True),
    ("app=web", True),
    ("app==web", True),
    ("app!=web", False),
    ("app!=db", True),
    ("missing!=x", True),
    ("app in (web,db)", True),
    ("app in (db)", False),
    ("app notin (db)", True),
    ("app notin (web)", False),
    ("missing notin (web)", True),
    ("app", True),
    ("missing", False),
    ("!missing", True),
    ("!app", False),
    ("app=web,tier=front", True),
    ("app=web,tier=back", False),
    ("  app = web , tier in ( front , back ) ", True),
    ("n>3", True),
    ("n<3", False),
    ("app>3", False),
    ("x in (in)", False),
    ("app in (,web)", True),
])
def test_label_selector_matching(text: str, expected: bool) -> None:
    assert parse_label_selector(text).matches(LABELS) is expected


def test_label_selector_string_is_canonical_and_sorted() -> None:
    sel = parse_label_selector("tier in (b,a),app=web,!gone,x")
    assert str(sel) == "app=web,!gone,tier in (a,b),x"


@pytest.mark.parametrize("text,message", [
    ("app=web,", "found '', expected: identifier after ','"),
    ("app in web", "unable to parse requirement: found 'web' expected: '('"),
    ("app in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
    ("=web", "found '=', expected: !, identifier, or 'end of string'"),
    ("app=web tier=x", "found 'tier', expected: ',' or 'end of string'"),
    ("app=a b", "found 'b', expected: ',' or 'end of string'"),
    ("n>x", "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, "
            "the value must be an integer"),
])
def test_label_selector_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as exc:
        parse_label_selector(text)
    assert str(exc.value) == message


def test_invalid_label_value_and_key() -> None:
    with pytest.raises(SelectorError, match=r"values\[0\]\[app\]: Invalid value: \"-bad\""):
        parse_label_selector("app=-bad")
    with pytest.raises(SelectorError, match="name part must consist of alphanumeric"):
        parse_label_selector("bad_key_!x")
    with pytest.raises(SelectorError, match="prefix part"):
        parse_label_selector("Bad.Prefix/key=v")


def test_label_selector_object() -> None:
    sel = label_selector_from_object({
        "matchLabels": {"app": "web"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]},
                             {"key": "gone", "operator": "DoesNotExist"}],
    })
    assert sel.matches(LABELS)
    assert not sel.matches({"app": "web", "tier": "x"})
    assert str(sel) == "app=web,!gone,tier in (back,front)"
    assert label_selector_from_object({}).matches({})  # empty: everything
    assert not label_selector_from_object(None).matches(LABELS)  # nil: nothing
    with pytest.raises(SelectorError, match='"Near" is not a valid label selector operator'):
        label_selector_from_object({"matchExpressions": [{"key": "a", "operator": "Near"}]})


def test_field_selectors() -> None:
    getters = field_getters(True, {"spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", "")})
    pod = {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1"}}
    unscheduled = {"metadata": {"name": "q", "namespace": "ns"}, "spec": {}}
    sel = parse_field_selector("metadata.name=p,spec.nodeName==n1")
    assert sel.matches_object(pod, getters)
    assert not sel.matches_object(unscheduled, getters)
    assert parse_field_selector("spec.nodeName=").matches_object(unscheduled, getters)
    assert parse_field_selector("spec.nodeName!=").matches_object(pod, getters)
    assert parse_field_selector("metadata.namespace!=ns").matches_object(pod, getters) is False
    assert parse_field_selector("metadata.name=p").exact("metadata.name") == "p"
    escaped = parse_field_selector(r"metadata.name=a\,b")
    assert escaped.terms[0].value == "a,b"
    with pytest.raises(SelectorError, match="invalid selector: 'nonsense'; can't understand 'nonsense'"):
        parse_field_selector("nonsense")
    with pytest.raises(SelectorError, match="field label not supported: spec.x"):
        check_field_labels(parse_field_selector("spec.x=1"), getters)
