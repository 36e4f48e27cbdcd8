"""Strategic merge patch: tables of (original, patch, expected) on real built-in kinds.

Directive edge cases that need a schema shape no built-in type has (opaque
fields, unknown types) use a small hand-made schema.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.api.patch import strategic_merge_patch
from skiff.api.schema import FieldDef, Schema, TypeDef, builtin_schema

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"
SERVICE = "io.k8s.api.core.v1.Service"


def pod_spec(**spec: Any) -> dict[str, Any]:
    return {"spec": spec}


def deploy_template(**spec: Any) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


# (id, type, original, patch, expected)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("scalar replaced, siblings kept", DEPLOYMENT,
     {"spec": {"replicas": 1, "paused": False}},
     {"spec": {"replicas": 3}},
     {"spec": {"replicas": 3, "paused": False}}),
    ("containers merged by name, env untouched", POD,
     pod_spec(containers=[{"name": "a", "image": "nginx:1.24", "env": [{"name": "X", "value": "1"}]},
                          {"name": "b", "image": "busybox"}]),
     pod_spec(containers=[{"name": "a", "image": "nginx:1.25"}]),
     pod_spec(containers=[{"name": "a", "image": "nginx:1.25", "env": [{"name": "X", "value": "1"}]},
                          {"name": "b", "image": "busybox"}])),
    ("kubectl apply shape: $setElementOrder + last-applied annotation", DEPLOYMENT,
     {"metadata": {"name": "web", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "old"}},
      "spec": {"template": {"spec": {"containers": [
          {"name": "a", "image": "nginx:1.24", "env": [{"name": "X", "value": "1"}]},
          {"name": "b", "image": "busybox", "args": ["sleep", "1d"]}]}}}},
     {"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "new"}},
      "spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                                     "containers": [{"image": "nginx:1.25", "name": "a"}]}}}},
     {"metadata": {"name": "web", "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "new"}},
      "spec": {"template": {"spec": {"containers": [
          {"name": "a", "image": "nginx:1.25", "env": [{"name": "X", "value": "1"}]},
          {"name": "b", "image": "busybox", "args": ["sleep", "1d"]}]}}}}),
    ("$setElementOrder places a new container between existing ones", DEPLOYMENT,
     deploy_template(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]),
     deploy_template(**{"$setElementOrder/containers": [{"name": "a"}, {"name": "c"}, {"name": "b"}],
                        "containers": [{"name": "c", "image": "z"}]}),
     deploy_template(containers=[{"name": "a", "image": "x"}, {"name": "c", "image": "z"},
                                 {"name": "b", "image": "y"}])),
    ("kubectl apply dropping an env var: delete directive + $setElementOrder", POD,
     pod_spec(containers=[{"name": "a", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"},
                                                {"name": "INJECTED", "value": "3"}]}]),
     pod_spec(containers=[{"name": "a", "$setElementOrder/env": [{"name": "A"}],
                           "env": [{"$patch": "delete", "name": "B"}]}]),
     pod_spec(containers=[{"name": "a", "env": [{"name": "A", "value": "1"}, {"name": "INJECTED", "value": "3"}]}])),
    ("kubectl apply dropping a container", POD,
     pod_spec(containers=[{"name": "a"}, {"name": "b"}]),
     pod_spec(**{"$setElementOrder/containers": [{"name": "a"}], "containers": [{"$patch": "delete", "name": "b"}]}),
     pod_spec(containers=[{"name": "a"}])),
    ("$setElementOrder reorders; a server-only item stays ahead of what followed it", POD,
     pod_spec(containers=[{"name": "a"}, {"name": "sidecar"}, {"name": "b"}]),
     pod_spec(**{"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}),
     pod_spec(containers=[{"name": "sidecar"}, {"name": "b"}, {"name": "a"}])),
    ("patch order wins for items without $setElementOrder; new items first", POD,
     pod_spec(containers=[{"name": "a"}, {"name": "b"}]),
     pod_spec(containers=[{"name": "new"}]),
     pod_spec(containers=[{"name": "new"}, {"name": "a"}, {"name": "b"}])),
    ("ports merged by containerPort", POD,
     pod_spec(containers=[{"name": "a", "ports": [{"containerPort": 80, "name": "http"},
                                                  {"containerPort": 443}]}]),
     pod_spec(containers=[{"name": "a", "ports": [{"containerPort": 443, "name": "https"}]}]),
     pod_spec(containers=[{"name": "a", "ports": [{"containerPort": 80, "name": "http"},
                                                  {"containerPort": 443, "name": "https"}]}])),
    ("env merged by name; null removes a member of one item", POD,
     pod_spec(containers=[{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]),
     pod_spec(containers=[{"name": "a", "env": [{"name": "Y", "value": None,
                                                  "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}]),
     pod_spec(containers=[{"name": "a", "env": [{"name": "X", "value": "1"},
                                                {"name": "Y", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}])),
    ("volumeMounts merged by mountPath; $patch delete removes one", POD,
     pod_spec(containers=[{"name": "a", "volumeMounts": [{"mountPath": "/data", "name": "d"},
                                                         {"mountPath": "/cache", "name": "c"}]}]),
     pod_spec(containers=[{"name": "a", "volumeMounts": [{"$patch": "delete", "mountPath": "/cache"}]}]),
     pod_spec(containers=[{"name": "a", "volumeMounts": [{"mountPath": "/data", "name": "d"}]}])),
    ("volumes by name with $retainKeys switch the volume source (inline VolumeSource)", POD,
     pod_spec(volumes=[{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]),
     pod_spec(volumes=[{"$retainKeys": ["configMap", "name"], "name": "v", "configMap": {"name": "cm"}}]),
     pod_spec(volumes=[{"name": "v", "configMap": {"name": "cm"}}, {"name": "w", "emptyDir": {}}])),
    ("$retainKeys on strategy drops rollingUpdate", DEPLOYMENT,
     {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}}},
     {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
     {"spec": {"strategy": {"type": "Recreate"}}}),
    ("tolerations have no merge strategy: replaced whole", POD,
     pod_spec(tolerations=[{"key": "a", "operator": "Exists"}]),
     pod_spec(tolerations=[{"key": "b", "operator": "Exists"}]),
     pod_spec(tolerations=[{"key": "b", "operator": "Exists"}])),
    ("args (atomic primitive list) replaced", POD,
     pod_spec(containers=[{"name": "a", "args": ["x", "y"]}]),
     pod_spec(containers=[{"name": "a", "args": ["z"]}]),
     pod_spec(containers=[{"name": "a", "args": ["z"]}])),
    ("finalizers (merge, primitive) are unioned", POD,
     {"metadata": {"finalizers": ["a", "b"]}},
     {"metadata": {"finalizers": ["c", "a"]}},
     {"metadata": {"finalizers": ["c", "a", "b"]}}),
    ("$deleteFromPrimitiveList removes finalizers", POD,
     {"metadata": {"finalizers": ["a", "b", "c"]}},
     {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zz"]}},
     {"metadata": {"finalizers": ["a", "c"]}}),
    ("$setElementOrder on a primitive list", POD,
     {"metadata": {"finalizers": ["a", "b", "c"]}},
     {"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}},
     {"metadata": {"finalizers": ["c", "a", "b"]}}),
    ("labels merged; null deletes one; null for a missing key is ignored", POD,
     {"metadata": {"labels": {"app": "web", "tier": "fe"}}},
     {"metadata": {"labels": {"tier": None, "ghost": None, "env": "prod"}}},
     {"metadata": {"labels": {"app": "web", "env": "prod"}}}),
    ("$patch: replace on a map", POD,
     {"metadata": {"labels": {"app": "web", "tier": "fe"}}},
     {"metadata": {"labels": {"$patch": "replace", "only": "me"}}},
     {"metadata": {"labels": {"only": "me"}}}),
    ("$patch: delete on a map empties it", POD,
     pod_spec(nodeSelector={"disk": "ssd"}, restartPolicy="Always"),
     pod_spec(nodeSelector={"$patch": "delete"}),
     pod_spec(nodeSelector={}, restartPolicy="Always")),
    ("$patch: replace item makes the list exactly the patch's items", POD,
     pod_spec(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]),
     pod_spec(containers=[{"$patch": "replace"}, {"name": "c", "image": "z"}]),
     pod_spec(containers=[{"name": "c", "image": "z"}])),
    ("ownerReferences merged by uid", POD,
     {"metadata": {"ownerReferences": [{"uid": "1", "name": "rs-a"}]}},
     {"metadata": {"ownerReferences": [{"uid": "2", "name": "rs-b"}]}},
     {"metadata": {"ownerReferences": [{"uid": "2", "name": "rs-b"}, {"uid": "1", "name": "rs-a"}]}}),
    ("Service ports merged by port", SERVICE,
     {"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]}},
     {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}},
     {"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}}),
    ("new subtree: nulls and directives are dropped", DEPLOYMENT,
     {"spec": {}},
     {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None, "$retainKeys": ["type"]},
               "selector": {"$patch": "delete"}}},
     {"spec": {"strategy": {"type": "Recreate"}}}),
    ("type change replaces (list over map)", POD,
     {"metadata": {"labels": {"a": "b"}}},
     {"metadata": {"labels": ["x"]}},
     {"metadata": {"labels": ["x"]}}),
    ("rollout restart annotation on the template", DEPLOYMENT,
     {"spec": {"template": {"metadata": {"labels": {"app": "web"}}}}},
     {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}},
     {"spec": {"template": {"metadata": {"labels": {"app": "web"},
                                         "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}}),
    ("unknown fields: maps merge, lists replace (JSON merge behaviour)", POD,
     {"x-unknown": {"keep": 1, "list": [{"name": "a"}]}},
     {"x-unknown": {"list": [{"name": "b"}], "new": True}},
     {"x-unknown": {"keep": 1, "list": [{"name": "b"}], "new": True}}),
]


@pytest.mark.parametrize("type_name,original,patch,expected",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_strategic_merge_patch(type_name: str, original: dict[str, Any], patch: dict[str, Any],
                               expected: dict[str, Any]) -> None:
    before = (copy.deepcopy(original), copy.deepcopy(patch))
    assert strategic_merge_patch(original, patch, builtin_schema(), type_name) == expected
    assert (original, patch) == before  # inputs untouched


def test_result_shares_nothing_with_inputs() -> None:
    original = pod_spec(containers=[{"name": "a", "env": [{"name": "X"}]}])
    patch = {"metadata": {"labels": {"a": "b"}}}
    result = strategic_merge_patch(original, patch, builtin_schema(), POD)
    result["spec"]["containers"][0]["env"].append({"name": "Y"})
    result["metadata"]["labels"]["c"] = "d"
    assert original == pod_spec(containers=[{"name": "a", "env": [{"name": "X"}]}])
    assert patch == {"metadata": {"labels": {"a": "b"}}}


def test_null_patch_is_a_no_op() -> None:
    assert strategic_merge_patch({"a": 1}, None, builtin_schema(), POD) == {"a": 1}


# -- a hand-made schema for shapes no built-in type has -------------------------------


def _hand_schema() -> Schema:
    def f(name: str, number: int, type_: str, **kw: Any) -> FieldDef:
        return FieldDef(name=name, number=number, type=type_, **kw)
    item = TypeDef("t.Item", {x.name: x for x in [
        f("name", 1, "string"), f("value", 2, "string"),
        f("subs", 3, "t.Item", repeated=True, patch_strategy="merge", patch_merge_key="name")]})
    root = TypeDef("t.Root", {x.name: x for x in [
        f("items", 1, "t.Item", repeated=True, patch_strategy="merge", patch_merge_key="name"),
        f("raw", 2, "t.Raw", patch_strategy="replace"),
        f("opaque", 3, "t.Raw"),
        f("missing", 4, "t.NotInTable", repeated=True, patch_strategy="merge", patch_merge_key="name"),
        f("byItem", 5, "t.Item", map_value="t.Item")]})
    return Schema({"t.Item": item, "t.Root": root, "t.Raw": TypeDef("t.Raw", {}, special="raw")})


HAND_CASES = [
    ("replace strategy on a map field", {"raw": {"a": 1, "b": 2}}, {"raw": {"b": 3}}, {"raw": {"b": 3}}),
    ("opaque (RawExtension) maps merge like JSON", {"opaque": {"a": [1], "b": 2}}, {"opaque": {"a": [2]}},
     {"opaque": {"a": [2], "b": 2}}),
    ("merge key taken from the field even when the item type is unknown",
     {"missing": [{"name": "a", "v": 1}]}, {"missing": [{"name": "a", "w": 2}]},
     {"missing": [{"name": "a", "v": 1, "w": 2}]}),
    ("map values typed by the map: nested merge list", {"byItem": {"k": {"subs": [{"name": "a"}]}}},
     {"byItem": {"k": {"subs": [{"name": "b"}]}}}, {"byItem": {"k": {"subs": [{"name": "b"}, {"name": "a"}]}}}),
    ("nested merge lists", {"items": [{"name": "x", "subs": [{"name": "a", "value": "1"}]}]},
     {"items": [{"name": "x", "subs": [{"name": "a", "value": "2"}, {"name": "b"}]}]},
     {"items": [{"name": "x", "subs": [{"name": "a", "value": "2"}, {"name": "b"}]}]}),
    ("$patch delete of a map the original lacks leaves it absent", {}, {"raw": {"$patch": "delete"}}, {}),
    ("whole-object $patch: replace", {"items": [{"name": "a"}]}, {"$patch": "replace", "raw": {"x": 1}},
     {"raw": {"x": 1}}),
]


@pytest.mark.parametrize("original,patch,expected", [c[1:] for c in HAND_CASES],
                         ids=[c[0] for c in HAND_CASES])
def test_hand_schema_cases(original: dict[str, Any], patch: dict[str, Any], expected: dict[str, Any]) -> None:
    assert strategic_merge_patch(original, patch, _hand_schema(), "t.Root") == expected


def test_unknown_root_type_behaves_like_json_merge_patch() -> None:
    original = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    patch = {"a": {"c": [3], "b": None}, "d": None}
    assert strategic_merge_patch(original, patch, _hand_schema(), "t.Nope") == {"a": {"c": [3]}}


# -- errors -----------------------------------------------------------------------------

ERRORS: list[tuple[str, str, dict[str, Any], Any, int, str, str]] = [
    # (id, type, original, patch, code, reason, message-or-cause)
    ("patch is an array", POD, {}, [1], 400, "BadRequest",
     "json: cannot unmarshal array into Go value of type map[string]interface {}"),
    ("patch is a string", POD, {}, "x", 400, "BadRequest",
     "json: cannot unmarshal string into Go value of type map[string]interface {}"),
    ("list item without its merge key", POD, pod_spec(containers=[{"name": "a"}]),
     pod_spec(containers=[{"image": "nginx", "ports": [{"containerPort": 80}]}]), 500, "",
     "map: map[image:nginx ports:[map[containerPort:80]]] does not contain declared merge key: name"),
    ("$setElementOrder without a field", POD, {}, {"$setElementOrder": []}, 400, "BadRequest",
     "invalid patch format of setElementOrder list"),
    ("$deleteFromPrimitiveList without a slash", POD, {"metadata": {}}, {"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}},
     400, "BadRequest", "invalid patch format of primitive list"),
    ("$retainKeys not a list", DEPLOYMENT, {"spec": {"strategy": {}}}, {"spec": {"strategy": {"$retainKeys": "type"}}}, 400,
     "BadRequest", "invalid patch format of retainKeys"),
    ("patch key missing from $retainKeys", DEPLOYMENT, {"spec": {"strategy": {}}},
     {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}, 400, "BadRequest",
     "invalid patch format of retainKeys"),
    ("unknown $patch directive in a map", POD, {"metadata": {"labels": {}}},
     {"metadata": {"labels": {"$patch": "frob", "a": "b"}}}, 500, "",
     "unknown patch type: frob in map: map[$patch:frob a:b]"),
    ("$patch: merge in a list", POD, pod_spec(containers=[{"name": "a"}]),
     pod_spec(containers=[{"$patch": "merge"}]), 500, "", "merging lists cannot yet be specified in the patch"),
    ("$setElementOrder contradicting the patch order", POD, pod_spec(containers=[{"name": "a"}, {"name": "b"}]),
     pod_spec(**{"$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                 "containers": [{"name": "b"}, {"name": "a"}]}), 500, "",
     "The order in patch list:\n[map[name:b] map[name:a]]\n doesn't match $setElementOrder list:\n"
     "[map[name:a] map[name:b]]\n"),
    ("$setElementOrder not a list", POD, {"metadata": {}}, {"metadata": {"$setElementOrder/finalizers": "a"}}, 500, "",
     "expected a []interface {}, but received a string"),
    ("mixed element types in a merged list", POD, {"metadata": {"finalizers": ["a"]}},
     {"metadata": {"finalizers": [1]}}, 500, "",
     "list element types are not identical: [[a] [1]]"),
]


@pytest.mark.parametrize("type_name,original,patch,code,reason,message",
                         [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_strategic_merge_patch_errors(type_name: str, original: dict[str, Any], patch: Any, code: int,
                                      reason: str, message: str) -> None:
    with pytest.raises(StatusError) as info:
        strategic_merge_patch(original, patch, builtin_schema(), type_name)
    assert (info.value.code, info.value.reason, info.value.message) == (code, reason, message)


def test_list_of_lists_is_422_with_the_reason_as_cause() -> None:
    with pytest.raises(StatusError) as info:
        strategic_merge_patch({"metadata": {"finalizers": [["a"]]}}, {"metadata": {"finalizers": [["b"]]}},
                              builtin_schema(), POD)
    status = info.value.to_status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == "the server rejected our request due to an error in our request"
    assert status["details"]["causes"] == [{"reason": "UnexpectedServerResponse",
                                            "message": "lists of lists are not supported"}]


def test_error_leaves_inputs_untouched() -> None:
    original = pod_spec(containers=[{"name": "a", "image": "x"}])
    patch = pod_spec(containers=[{"name": "a", "image": "y"}, {"image": "no-name"}])
    snapshot = json.dumps([original, patch])
    with pytest.raises(StatusError):
        strategic_merge_patch(original, patch, builtin_schema(), POD)
    assert json.dumps([original, patch]) == snapshot
