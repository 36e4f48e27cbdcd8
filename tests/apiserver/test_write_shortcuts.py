"""The write path's shortcuts answer exactly what the long way answers.

* a status write keeps the request's object as its base when it is the stored
  object apart from ``status`` (instead of decoding the stored value once more);
* patches are applied in place to the freshly decoded object (no deep copy);
* the unknown-field walk remembers its member lookups between writes.

Each is compared with the long way on a table of writes, down to the bytes.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from skiff.api.patch import json_merge_patch, json_patch, strategic_merge_patch
from skiff.api.schema import builtin_schema
from skiff.apiserver import writes
from skiff.api.schema import Schema, TypeDef
from skiff.api.schema_load import json_field
from skiff.apiserver.unknownfields import UnknownFields

PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}
POD = "io.k8s.api.core.v1.Pod"


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "web"}, "annotations": {"a": "1"}},
            "spec": {"containers": [{"name": "app", "image": "nginx"}], "terminationGracePeriodSeconds": 30}}


async def status_writes(client: TestClient) -> list[bytes]:
    """A table of status writes; each answer with the random uid taken out."""
    out: list[bytes] = []

    async def keep(response: Any) -> dict[str, Any]:
        assert response.status in (200, 201), await response.text()
        raw = await response.read()
        obj = orjson.loads(raw)
        out.append(raw.replace(obj["metadata"]["uid"].encode(), b"UID"))
        return obj

    await keep(await client.post(PODS, json=pod("p")))
    # the first status of an object without one: appended last
    await keep(await client.patch(f"{PODS}/p/status", data=orjson.dumps({"status": {"phase": "Running"}}),
                                  headers=MERGE))
    # a label and a status change together; the spec part of the patch is ignored
    current = await keep(await client.patch(f"{PODS}/p/status", headers=MERGE, data=orjson.dumps(
        {"metadata": {"labels": {"app": "web", "tier": "x"}}, "spec": {"nodeName": "n"},
         "status": {"phase": "Succeeded"}})))
    # PUT the answer back (the stored object, key for key) with status moved first,
    # then with a stale spec; a GET's answer, with resourceVersion first, too
    reordered = {"status": {"phase": "Failed"}, **{k: v for k, v in current.items() if k != "status"}}
    current = await keep(await client.put(f"{PODS}/p/status", json=reordered))
    stale = copy.deepcopy(current)
    stale["spec"]["containers"][0]["image"] = "other"
    stale["status"]["phase"] = "Running"
    await keep(await client.put(f"{PODS}/p/status", json=stale))
    current = await keep(await client.get(f"{PODS}/p"))
    current["status"] = {"phase": "Pending"}
    current = await keep(await client.put(f"{PODS}/p/status", json=current))
    # 1.0 for 1 in the spec: not the stored object, whatever == says
    current["spec"]["terminationGracePeriodSeconds"] = 30.0
    current["status"] = {"phase": "Unknown"}
    await keep(await client.put(f"{PODS}/p/status", json=current))
    # status removed
    await keep(await client.patch(f"{PODS}/p/status", data=orjson.dumps({"status": None}), headers=MERGE))
    return out


async def test_status_writes_keep_the_body_as_base_exactly(make_client: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def clock() -> float:
        return 1_700_000_000.0

    fast = await status_writes(await make_client(clock=clock))
    monkeypatch.setattr(writes, "same_but_status", lambda body, stored: False)  # always the long way
    slow = await status_writes(await make_client(clock=clock))
    assert fast == slow
    assert b'"phase":"Running"}}' in fast[1]  # status last, where the long way puts it too


@pytest.mark.parametrize("body,stored,same", [
    ({"metadata": {"a": 1}, "spec": {"x": 1}, "status": {"s": 1}},
     {"metadata": {"a": 1}, "spec": {"x": 1}, "status": {"s": 0}}, True),
    ({"metadata": {"a": 1}, "spec": {"x": 1}, "status": {"s": 1}},
     {"metadata": {"a": 1}, "spec": {"x": 1}}, True),                   # status appended last
    ({"metadata": {"a": 1}, "status": {"s": 1}, "spec": {"x": 1}},
     {"metadata": {"a": 1}, "spec": {"x": 1}}, False),                  # ... not in the middle
    ({"status": {"s": 1}, "metadata": {"a": 1}, "spec": {"x": 1}},
     {"metadata": {"a": 1}, "spec": {"x": 1}, "status": {}}, False),    # another place than stored
    ({"metadata": {"a": 1}, "spec": {"x": True}},
     {"metadata": {"a": 1}, "spec": {"x": 1}}, False),                  # true is not 1
    ({"spec": {"x": 1}, "metadata": {"a": 1}},
     {"metadata": {"a": 1}, "spec": {"x": 1}}, False),                  # key order
    ({"metadata": {"a": 1}, "spec": {"x": 1}, "status": None},
     {"metadata": {"a": 1}, "spec": {"x": 1}, "status": {"s": 1}}, True),  # status removed
])
def test_same_but_status(body: dict[str, Any], stored: dict[str, Any], same: bool) -> None:
    assert writes.same_but_status(body, stored) is same


# -- patches in place --------------------------------------------------------------------

STORED = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}},
          "spec": {"containers": [{"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}]},
          "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]}}
MERGE_PATCHES = [
    {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True", "x": None}],
                "podIP": "10.0.0.1"}},
    {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": None},
    {"status": {"new": {"deep": {"k": None, "v": [1, {"n": None}]}}}},
]
STRATEGIC_PATCHES = [
    {"spec": {"containers": [{"name": "app", "image": "nginx:2"}, {"name": "side", "image": "busybox"}]}},
    {"status": {"conditions": [{"type": "Ready", "status": "True"}]}, "metadata": {"labels": {"b": None}}},
    {"spec": {"containers": [{"name": "app", "$patch": "delete"}]}},
]
JSON_PATCHES = [
    [{"op": "replace", "path": "/status/phase", "value": "Running"},
     {"op": "add", "path": "/metadata/labels/c", "value": "3"}],
    [{"op": "copy", "from": "/spec/containers/0", "path": "/spec/containers/-"},
     {"op": "remove", "path": "/spec/containers/0/ports"}],
]


def patchers() -> list[tuple[Any, Any]]:
    schema = builtin_schema()
    return ([(lambda o, p, **kw: json_merge_patch(o, p, **kw), p) for p in MERGE_PATCHES]
            + [(lambda o, p, **kw: strategic_merge_patch(o, p, schema, POD, **kw), p) for p in STRATEGIC_PATCHES]
            + [(lambda o, p, **kw: json_patch(o, p, **kw), p) for p in JSON_PATCHES])


@pytest.mark.parametrize("apply,patch", patchers())
def test_patching_in_place_gives_the_copying_result(apply: Any, patch: Any) -> None:
    copied = apply(STORED, patch)
    own = copy.deepcopy(STORED)
    patch_before = copy.deepcopy(patch)
    in_place = apply(own, patch, in_place=True)
    assert orjson.dumps(in_place) == orjson.dumps(copied)
    assert in_place is own and patch == patch_before
    # the result shares nothing with the patch: changing it leaves the patch as it was
    orjson_text = orjson.dumps(patch)
    _scribble(in_place)
    assert orjson.dumps(patch) == orjson_text


def _scribble(value: Any) -> None:
    if isinstance(value, dict):
        for v in value.values():
            _scribble(v)
        value["scribbled"] = True
    elif isinstance(value, list):
        for v in value:
            _scribble(v)
        value.append("scribbled")


# -- unknown fields --------------------------------------------------------------------------

BODIES = [
    {"apiVersion": "v1", "kind": "Pod", "bogus": 1,
     "metadata": {"name": "p", "labels": {"x": "y"}, "typo": True},
     "spec": {"containers": [{"name": "a", "image": "i", "imagePullPolicyy": "x",
                              "ports": [{"containerPort": 1, "nope": 2}]}],
              "volumes": [{"name": "v", "hostPath": {"path": "/", "extra": 1}, "configMap": {"name": "c"}}],
              "nodeSelector": {"a": "b"}, "overhead": {"cpu": "1"},
              "affinity": {"nodeAffinity": {"unknown": {}}}},
     "status": {"phase": "Running", "conditionz": []}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "clean"}, "spec": {"containers": []}},
]


def plain_drop(schema: Schema, type_name: str, obj: Any) -> list[str]:
    """The walk without memory: every member looked up in the schema as it comes."""
    found: list[str] = []

    def walk(typedef: TypeDef, value: Any, path: str) -> None:
        if typedef.special is not None or not isinstance(value, dict):
            return
        unknown = []
        for key, member in value.items():
            child = f"{path}.{key}" if path else key
            f = json_field(schema, typedef, key)
            if f is None:
                unknown.append(key)
                found.append(child)
                continue
            inner = schema.type(f.type)
            if inner is None or inner.special is not None:
                continue
            if f.repeated:
                for i, item in enumerate(member if isinstance(member, list) else []):
                    walk(inner, item, f"{child}[{i}]")
            elif f.map_value is not None:
                for k, item in (member if isinstance(member, dict) else {}).items():
                    walk(inner, item, f"{child}.{k}")
            else:
                walk(inner, member, child)
        for key in unknown:
            del value[key]

    typedef = schema.type(type_name)
    if typedef is not None:
        walk(typedef, obj, "")
    return found


@pytest.mark.parametrize("body", BODIES)
def test_remembering_walker_finds_what_a_plain_one_finds(body: dict[str, Any]) -> None:
    schema = builtin_schema()
    walker = UnknownFields(schema)
    for _ in range(3):  # the second and third walks answer from memory
        plain, remembered = copy.deepcopy(body), copy.deepcopy(body)
        assert walker.drop(POD, remembered) == plain_drop(schema, POD, plain)
        assert orjson.dumps(remembered) == orjson.dumps(plain)
    if body["metadata"]["name"] == "p":
        assert walker.drop(POD, copy.deepcopy(body)) == [
            "bogus", "metadata.typo", "spec.containers[0].imagePullPolicyy", "spec.containers[0].ports[0].nope",
            "spec.volumes[0].hostPath.extra", "spec.affinity.nodeAffinity.unknown", "status.conditionz"]
