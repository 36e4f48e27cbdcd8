"""JSON patch (RFC 6902) with kube-apiserver's semantics and error texts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.api.patch import json_patch

DOC: dict[str, Any] = {
    "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a/b": "1"}},
    "spec": {"replicas": 2, "containers": [{"name": "a"}, {"name": "b"}]},
}

_GONE = object()

# (id, ops, changes to DOC as (path, new value or _GONE))
OK_CASES: list[tuple[str, list[dict[str, Any]], list[tuple[tuple[str, ...], Any]]]] = [
    ("add an object member", [{"op": "add", "path": "/metadata/labels/tier", "value": "fe"}],
     [(("metadata", "labels", "tier"), "fe")]),
    ("add inserts into an array", [{"op": "add", "path": "/spec/containers/1", "value": {"name": "x"}}],
     [(("spec", "containers"), [{"name": "a"}, {"name": "x"}, {"name": "b"}])]),
    ("add appends with -", [{"op": "add", "path": "/spec/containers/-", "value": {"name": "x"}}],
     [(("spec", "containers"), [{"name": "a"}, {"name": "b"}, {"name": "x"}])]),
    ("negative index counts from the end", [{"op": "add", "path": "/spec/containers/-1", "value": {"name": "x"}}],
     [(("spec", "containers"), [{"name": "a"}, {"name": "b"}, {"name": "x"}])]),
    ("remove", [{"op": "remove", "path": "/spec/containers/0"}], [(("spec", "containers"), [{"name": "b"}])]),
    ("replace", [{"op": "replace", "path": "/spec/replicas", "value": 5}], [(("spec", "replicas"), 5)]),
    ("replace of a missing member adds it", [{"op": "replace", "path": "/spec/paused", "value": True}],
     [(("spec", "paused"), True)]),
    ("move", [{"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/name"}],
     [(("metadata", "labels", "app"), _GONE), (("metadata", "labels", "name"), "web")]),
    ("copy", [{"op": "copy", "from": "/spec/containers/0", "path": "/spec/containers/-"}],
     [(("spec", "containers"), [{"name": "a"}, {"name": "b"}, {"name": "a"}])]),
    ("test then replace", [{"op": "test", "path": "/spec/replicas", "value": 2},
                           {"op": "replace", "path": "/spec/replicas", "value": 3}], [(("spec", "replicas"), 3)]),
    ("test of a missing member against null passes", [{"op": "test", "path": "/spec/paused", "value": None}], []),
    ("~1 escapes a slash", [{"op": "remove", "path": "/metadata/annotations/a~1b"}],
     [(("metadata", "annotations", "a/b"), _GONE)]),
    ("rollout undo shape", [{"op": "replace", "path": "/spec/containers", "value": [{"name": "old"}]},
                            {"op": "replace", "path": "/metadata/annotations", "value": {"rev": "1"}}],
     [(("spec", "containers"), [{"name": "old"}]), (("metadata", "annotations"), {"rev": "1"})]),
]


def _changed(changes: list[tuple[tuple[str, ...], Any]]) -> dict[str, Any]:
    out = copy.deepcopy(DOC)
    for path, value in changes:
        parent = out
        for key in path[:-1]:
            parent = parent[key]
        if value is _GONE:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    return out


@pytest.mark.parametrize("ops,changes", [c[1:] for c in OK_CASES], ids=[c[0] for c in OK_CASES])
def test_json_patch_operations(ops: list[dict[str, Any]], changes: list[tuple[tuple[str, ...], Any]]) -> None:
    before = copy.deepcopy((DOC, ops))
    assert json_patch(DOC, ops) == _changed(changes)
    assert (DOC, ops) == before


def test_copy_is_deep() -> None:
    result = json_patch(DOC, [{"op": "copy", "from": "/spec/containers/0", "path": "/spec/containers/-"}])
    result["spec"]["containers"][0]["name"] = "changed"
    assert result["spec"]["containers"][2] == {"name": "a"}


# (id, ops, message of the single UnexpectedServerResponse cause)
REJECTED: list[tuple[str, list[dict[str, Any]], str]] = [
    ("failed test", [{"op": "test", "path": "/spec/replicas", "value": 3}],
     "testing value /spec/replicas failed: test failed"),
    ("test of a missing member", [{"op": "test", "path": "/spec/paused", "value": False}],
     "testing value /spec/paused failed: test failed"),
    ("remove a missing member", [{"op": "remove", "path": "/metadata/labels/x"}],
     "error in remove for path: '/metadata/labels/x': Unable to remove nonexistent key: x: missing value"),
    ("add below a missing parent", [{"op": "add", "path": "/spec/foo/bar", "value": 1}],
     'add operation does not apply: doc is missing path: "/spec/foo/bar": missing value'),
    ("add past the end", [{"op": "add", "path": "/spec/containers/9", "value": {}}],
     "error in add for path: '/spec/containers/9': Unable to access invalid index: 9: invalid index referenced"),
    ("replace a missing index", [{"op": "replace", "path": "/spec/containers/7", "value": {}}],
     "replace operation does not apply: doc is missing key: /spec/containers/7: missing value"),
    ("remove with a non-numeric index", [{"op": "remove", "path": "/spec/containers/x"}],
     "error in remove for path: '/spec/containers/x': strconv.Atoi: parsing \"x\": invalid syntax"),
    ("move from a missing parent", [{"op": "move", "from": "/nope/a", "path": "/spec/a"}],
     "move operation does not apply: doc is missing from path: /nope/a: missing value"),
    ("copy to a missing parent", [{"op": "copy", "from": "/spec/replicas", "path": "/nope/a"}],
     "copy operation does not apply: doc is missing destination path: /nope/a: missing value"),
    ("unknown op", [{"op": "frob", "path": "/spec"}], "Unexpected kind: frob"),
    ("missing op", [{"path": "/spec"}], "Unexpected kind: unknown"),
    ("add without a path", [{"op": "add", "value": 1}], "add operation failed to decode path: missing value"),
    ("root is not a target", [{"op": "add", "path": "", "value": {}}],
     'add operation does not apply: doc is missing path: "": missing value'),
]


@pytest.mark.parametrize("ops,cause", [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED])
def test_json_patch_failures_are_422(ops: list[dict[str, Any]], cause: str) -> None:
    with pytest.raises(StatusError) as info:
        json_patch(DOC, ops)
    assert info.value.to_status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid", "code": 422,
        "details": {"causes": [{"reason": "UnexpectedServerResponse", "message": cause}]},
    }


def test_failure_after_successful_ops_changes_nothing() -> None:
    before = copy.deepcopy(DOC)
    with pytest.raises(StatusError):
        json_patch(DOC, [{"op": "replace", "path": "/spec/replicas", "value": 9},
                         {"op": "test", "path": "/spec/replicas", "value": 2}])
    assert DOC == before


@pytest.mark.parametrize("body,message", [
    ({"op": "add"}, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
    ("x", "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
    (["x"], "json: cannot unmarshal string into Go value of type jsonpatch.Operation"),
])
def test_malformed_patch_is_400(body: Any, message: str) -> None:
    with pytest.raises(StatusError) as info:
        json_patch(DOC, body)
    assert (info.value.code, info.value.reason, info.value.message) == (400, "BadRequest", message)


def test_too_many_operations_is_413() -> None:
    ops = [{"op": "test", "path": "/spec/replicas", "value": 2}] * 10001
    with pytest.raises(StatusError) as info:
        json_patch(DOC, ops)
    assert info.value.code == 413 and info.value.reason == "RequestEntityTooLarge"
    assert info.value.message.endswith("The allowed maximum operations in a JSON patch is 10000, got 10001")


def test_null_body_is_a_no_op() -> None:
    assert json_patch(DOC, None) == DOC
