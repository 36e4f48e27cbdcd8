"""JSON merge patch (RFC 7386): the RFC's own examples plus kube-apiserver's details."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.api.patch import json_merge_patch

# RFC 7386 appendix A (those whose target and patch are objects).
RFC_EXAMPLES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]

KUBERNETES_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("kubectl scale", {"spec": {"replicas": 1, "paused": False}}, {"spec": {"replicas": 3}},
     {"spec": {"replicas": 3, "paused": False}}),
    ("kubectl label --overwrite and removal", {"metadata": {"labels": {"a": "1", "b": "2"}}},
     {"metadata": {"labels": {"a": "9", "b": None}}}, {"metadata": {"labels": {"a": "9"}}}),
    ("lists are replaced, never merged", {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}},
     {"spec": {"containers": [{"name": "b", "image": "x"}]}},
     {"spec": {"containers": [{"name": "b", "image": "x"}]}}),
    ("nulls inside objects of a new array are dropped, null items kept",
     {}, {"a": [{"x": None, "y": 1}, None]}, {"a": [{"y": 1}, None]}),
    ("object replacing a scalar loses its nulls", {"a": 1}, {"a": {"b": None, "c": 2}}, {"a": {"c": 2}}),
    ("empty patch", {"a": 1}, {}, {"a": 1}),
]


@pytest.mark.parametrize("original,patch,expected", RFC_EXAMPLES)
def test_rfc7386_examples(original: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    before = copy.deepcopy((original, patch))
    assert json_merge_patch(original, patch) == expected
    assert (original, patch) == before


@pytest.mark.parametrize("original,patch,expected", [c[1:] for c in KUBERNETES_CASES],
                         ids=[c[0] for c in KUBERNETES_CASES])
def test_kubernetes_cases(original: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert json_merge_patch(original, patch) == expected


def test_result_is_independent_of_the_patch() -> None:
    patch = {"a": {"b": [1]}}
    result = json_merge_patch({}, patch)
    result["a"]["b"].append(2)
    assert patch == {"a": {"b": [1]}}


@pytest.mark.parametrize("patch", [None, "bar", 3, True])
def test_scalar_or_null_patch_is_400(patch: Any) -> None:
    with pytest.raises(StatusError) as info:
        json_merge_patch({"a": "foo"}, patch)
    assert (info.value.code, info.value.reason, info.value.message) == (400, "BadRequest", "Invalid JSON Patch")


def test_array_patch_cannot_become_an_object() -> None:
    with pytest.raises(StatusError) as info:
        json_merge_patch({"a": "b"}, ["c"])
    status = info.value.to_status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"].startswith(' "" is invalid: patch: Invalid value: "[\\"c\\"]": ')
    assert status["details"]["causes"][0]["field"] == "patch"
