"""FieldManager's shortcuts give exactly what the plain functions give.

A server keeps one :class:`FieldManager` (remembered schema walks and FieldsV1
trees); these tests hold it to the stateless functions, write after write, and
check the pieces it is built from: canonical key texts, the exactness flag of
:func:`read_fields_v1`, and the codec's memory.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from skiff.api.patch import FieldManager, update_managed_fields
from skiff.api.patch.fieldpath import FieldsCodec, canonical, from_fields_v1, read_fields_v1, to_fields_v1
from skiff.api.schema import builtin_schema

POD = "io.k8s.api.core.v1.Pod"
SCHEMA = builtin_schema()


def pod(name: str = "web", image: str = "nginx:1.26") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                              "uid": "u-1", "controller": True}]},
            "spec": {"containers": [{"name": "c", "image": image,
                                     "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
                     "tolerations": [{"key": "k", "operator": "Exists"}]}}


def with_status(obj: dict[str, Any], phase: str, ready: str, ip: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["status"] = {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}],
                     "conditions": [{"type": "Ready", "status": ready},
                                    {"type": "Initialized", "status": "True"}]}
    return out


@pytest.mark.parametrize("value", [
    "web", "é\u2028\x7f\x00\"\\", 80, -2**63, 2**64, True, None, 1.0, 1e16, "\ud800",
    {"name": "web"}, {"containerPort": 80, "protocol": "TCP"}, {"b": 1.5, "a": "x"}, {"a": [1, 2]},
])
def test_canonical_is_compact_sorted_json(value: Any) -> None:
    assert canonical(value) == json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def test_read_fields_v1_knows_a_canonical_tree() -> None:
    tree = to_fields_v1(frozenset(from_fields_v1({
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:containers": {'k:{"name":"c"}': {".": {}, "f:image": {}}}}})))
    paths, exact = read_fields_v1(tree)
    assert exact and paths == from_fields_v1(tree)


@pytest.mark.parametrize("tree", [
    {"f:b": {}, "f:a": {}},                                   # members out of order
    {"f:a": {"f:x": {}, ".": {}}},                            # "." not first
    {"f:a": {".": {}}},                                       # "." on a leaf (encoded as {})
    {".": {}, "f:a": {}},                                     # "." at the root
    {"f:a": {".": {"x": {}}, "f:b": {}}},                     # "." with content
    {"f:a": {'k:{"port":80, "name":"x"}': {}}},               # key text not canonical
    {"f:a": {'k:{"b":1}': {}, 'k:{"a":1}': {}}},              # keys out of order
    {"k:{\"a\":1}": {}, "f:z": {}},                           # kinds out of order (f before k)
])
def test_read_fields_v1_flags_trees_it_would_not_write(tree: dict[str, Any]) -> None:
    paths, exact = read_fields_v1(tree)
    assert paths == from_fields_v1(tree)
    assert not exact
    assert json.dumps(to_fields_v1(paths)) != json.dumps(tree)  # order counts: compare the text


def test_read_fields_v1_rejects_what_from_fields_v1_rejects() -> None:
    for bad in ({"x": {}}, {"f:a": 1}, {"f:a": {"k:{": {}}}, []):
        with pytest.raises(ValueError):
            from_fields_v1(bad)
        with pytest.raises(ValueError):
            read_fields_v1(bad)


def test_codec_round_trips_and_hands_out_fresh_trees() -> None:
    codec = FieldsCodec(size=4)
    fields = frozenset(from_fields_v1({"f:spec": {"f:replicas": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}))
    first = codec.encode(fields)
    assert first == to_fields_v1(fields)
    first["f:spec"]["f:replicas"]["mutated"] = {}  # a caller writing into its tree ...
    second = codec.encode(fields)
    assert second == to_fields_v1(fields)           # ... changes nothing the codec hands out later
    assert codec.decode(second) == fields
    for n in range(10):                             # memory stays bounded
        codec.encode(frozenset({(("f", f"x{n}"),)}))
    assert codec.encode(fields) == to_fields_v1(fields)


def test_codec_keeps_the_canonical_encoding_of_a_non_canonical_tree() -> None:
    codec = FieldsCodec()
    sloppy = {"f:spec": {"f:b": {}, "f:a": {}}}
    fields = codec.decode(sloppy)
    assert json.dumps(codec.encode(fields)) == json.dumps({"f:spec": {"f:a": {}, "f:b": {}}})


def test_field_manager_matches_the_plain_function_write_after_write() -> None:
    manager = FieldManager(SCHEMA)
    steps: list[tuple[str, str, dict[str, Any]]] = []
    base = pod()
    steps.append(("kube-controller-manager", "", base))
    steps.append(("kubelet", "status", with_status(base, "Pending", "False", "10.0.0.1")))
    steps.append(("kubelet", "status", with_status(base, "Running", "True", "10.0.0.1")))
    steps.append(("kubelet", "status", with_status(base, "Running", "True", "10.0.0.2")))
    edited = with_status(pod(image="nginx:1.27"), "Running", "True", "10.0.0.2")
    edited["metadata"]["labels"]["tier"] = "front"
    steps.append(("kubectl-edit", "", edited))
    steps.append(("kubelet", "status", with_status(pod(image="nginx:1.27"), "Running", "False", "10.0.0.2")))

    plain_old: dict[str, Any] | None = None
    kept_old: dict[str, Any] | None = None
    for n, (who, sub, obj) in enumerate(steps):
        now = f"2024-01-01T00:00:{n:02d}Z"
        plain = update_managed_fields(plain_old, copy.deepcopy(obj), who, schema=SCHEMA, type_name=POD,
                                      now=now, subresource=sub)
        kept = manager.update(kept_old, copy.deepcopy(obj), who, type_name=POD, now=now, subresource=sub)
        assert json.dumps(kept) == json.dumps(plain), f"step {n}"
        # the next write starts from the stored form, as the API server's does
        plain_old, kept_old = json.loads(json.dumps(plain)), json.loads(json.dumps(kept))
    managers = {(e["manager"], e.get("subresource", "")) for e in kept_old["metadata"]["managedFields"]}
    assert managers == {("kube-controller-manager", ""), ("kubelet", "status"), ("kubectl-edit", "")}


def test_update_result_shares_values_with_its_input_but_never_writes_them() -> None:
    new = with_status(pod(), "Running", "True", "10.0.0.1")
    snapshot = copy.deepcopy(new)
    result = update_managed_fields(None, new, "kubelet", schema=SCHEMA, type_name=POD, now="2024-01-01T00:00:00Z")
    assert new == snapshot
    assert "managedFields" in result["metadata"] and "managedFields" not in new["metadata"]
