"""Server-side apply and managedFields bookkeeping on real kinds (Deployment, Service, ConfigMap)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.api.patch import (
    decode_managed_fields,
    server_side_apply,
    strategic_merge_patch,
    update_managed_fields,
)
from skiff.api.patch.fieldpath import from_fields_v1, path_string, to_fields_v1
from skiff.api.schema import builtin_schema

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
SERVICE = "io.k8s.api.core.v1.Service"
CONFIGMAP = "io.k8s.api.core.v1.ConfigMap"
K_A = 'k:{"name":"a"}'
K_B = 'k:{"name":"b"}'


def deployment(replicas: int | None = 2, containers: list[dict[str, Any]] | None = None,
               labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": containers or [{"name": "a", "image": "nginx:1.24"}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    metadata: dict[str, Any] = {"name": "web", "namespace": "default"}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec, **extra}


def apply(live: dict[str, Any] | None, config: dict[str, Any], manager: str = "kubectl", force: bool = False,
          now: str = "2024-05-01T10:00:00Z", type_name: str = DEPLOYMENT) -> dict[str, Any]:
    return server_side_apply(live, config, manager=manager, force=force, schema=builtin_schema(),
                             type_name=type_name, now=now)


def record(old: dict[str, Any] | None, new: dict[str, Any], manager: str, now: str = "2024-05-01T09:00:00Z",
           type_name: str = DEPLOYMENT) -> dict[str, Any]:
    return update_managed_fields(old, new, manager, schema=builtin_schema(), type_name=type_name, now=now)


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"]["managedFields"]}


def owned(obj: dict[str, Any], manager: str, operation: str = "Apply") -> set[str]:
    entry = entries(obj)[(manager, operation)]
    return {path_string(p) for p in from_fields_v1(entry["fieldsV1"])}


# -- create ------------------------------------------------------------------------------------


def test_apply_creates_with_one_apply_entry() -> None:
    config = deployment(labels={"app": "web"}, status={"replicas": 9})
    result = apply(None, config)
    assert "status" not in result  # reset by the main resource
    assert result["spec"] == config["spec"]
    assert result["metadata"]["managedFields"] == [{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2024-05-01T10:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {},
                       "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                                      "f:spec": {"f:containers": {K_A: {".": {}, "f:image": {}, "f:name": {}}}}}},
        },
    }]


def test_apply_does_not_modify_its_inputs() -> None:
    live = apply(None, deployment())
    config = deployment(replicas=5)
    snapshot = copy.deepcopy((live, config))
    apply(live, config)
    assert (live, config) == snapshot


def test_sets_and_keyed_ports_are_encoded_by_value_and_key() -> None:
    config = deployment(containers=[{"name": "a", "ports": [{"containerPort": 80}]}])
    config["metadata"]["finalizers"] = ["example.com/x"]
    fields = entries(apply(None, config))[("kubectl", "Apply")]["fieldsV1"]
    assert fields["f:metadata"] == {"f:finalizers": {'v:"example.com/x"': {}}}
    container = fields["f:spec"]["f:template"]["f:spec"]["f:containers"][K_A]
    assert container["f:ports"] == {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}


def test_atomic_map_is_owned_whole() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    fields = entries(apply(None, service, type_name=SERVICE))[("kubectl", "Apply")]["fieldsV1"]
    assert fields["f:spec"] == {"f:selector": {},
                                "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}}


# -- re-apply ------------------------------------------------------------------------------------


def test_reapply_removes_fields_the_manager_no_longer_applies() -> None:
    first = apply(None, deployment(labels={"app": "web", "tier": "fe"},
                                   containers=[{"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]},
                                               {"name": "b", "image": "y"}]))
    second = apply(first, deployment(replicas=None, labels={"app": "web"}, containers=[{"name": "a", "image": "x"}]),
                   now="2024-05-01T11:00:00Z")
    assert second["metadata"]["labels"] == {"app": "web"}
    assert "replicas" not in second["spec"]
    assert second["spec"]["template"]["spec"]["containers"] == [{"name": "a", "image": "x"}]
    assert entries(second)[("kubectl", "Apply")]["time"] == "2024-05-01T11:00:00Z"


def test_removed_field_owned_by_another_manager_stays() -> None:
    first = apply(None, deployment(containers=[{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]))
    # kubectl edit adds an annotation and an env var to container b
    edited = strategic_merge_patch(first, {
        "metadata": {"annotations": {"note": "keep"}},
        "spec": {"template": {"spec": {"containers": [{"name": "b", "env": [{"name": "DEBUG", "value": "1"}]}]}}},
    }, builtin_schema(), DEPLOYMENT)
    second = record(first, edited, "kubectl-edit")
    third = apply(second, deployment(containers=[{"name": "a", "image": "x"}]))
    assert third["metadata"]["annotations"] == {"note": "keep"}
    # b survives with its key and the env var someone else owns; its image (only kubectl's) goes
    assert third["spec"]["template"]["spec"]["containers"] == [
        {"name": "a", "image": "x"}, {"name": "b", "env": [{"name": "DEBUG", "value": "1"}]}]


def test_live_only_items_keep_their_place_in_merged_lists() -> None:
    live = apply(None, deployment(containers=[{"name": "a", "image": "x"}]))
    live["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "s"})
    result = apply(live, deployment(containers=[{"name": "b", "image": "y"}, {"name": "a", "image": "x2"}]))
    names = [c["name"] for c in result["spec"]["template"]["spec"]["containers"]]
    assert names == ["b", "a", "sidecar"]


# -- conflicts -----------------------------------------------------------------------------------


def client_side_applied() -> dict[str, Any]:
    """A Deployment as ``kubectl apply`` (client-side) leaves it."""
    return record(None, deployment(replicas=1), "kubectl-client-side-apply")


def test_conflict_with_an_update_manager_is_409() -> None:
    live = client_side_applied()
    with pytest.raises(StatusError) as info:
        apply(live, deployment(replicas=3))
    assert info.value.to_status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: '
                   ".spec.replicas",
        "reason": "Conflict", "code": 409,
        "details": {"causes": [{"reason": "FieldManagerConflict",
                                "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
                                "field": ".spec.replicas"}]},
    }


def test_several_conflicts_are_grouped_by_manager() -> None:
    live = client_side_applied()
    with pytest.raises(StatusError) as info:
        apply(live, deployment(replicas=3, containers=[{"name": "a", "image": "nginx:1.25"}]))
    assert info.value.message == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="a"].image')
    assert [c.field for c in info.value.causes] == [".spec.replicas", '.spec.template.spec.containers[name="a"].image']


def test_conflict_with_another_applier_names_it_without_version() -> None:
    live = apply(None, deployment(replicas=1), manager="argocd")
    with pytest.raises(StatusError) as info:
        apply(live, deployment(replicas=3))
    assert info.value.message == 'Apply failed with 1 conflict: conflict with "argocd": .spec.replicas'


def test_same_value_is_not_a_conflict_and_ownership_is_shared() -> None:
    live = client_side_applied()
    result = apply(live, deployment(replicas=1))
    assert ".spec.replicas" in owned(result, "kubectl")
    assert ".spec.replicas" in owned(result, "kubectl-client-side-apply", "Update")


def test_force_moves_ownership() -> None:
    live = client_side_applied()
    result = apply(live, deployment(replicas=3), force=True)
    assert result["spec"]["replicas"] == 3
    assert ".spec.replicas" in owned(result, "kubectl")
    assert ".spec.replicas" not in owned(result, "kubectl-client-side-apply", "Update")
    assert ".spec.selector" in owned(result, "kubectl-client-side-apply", "Update")


def test_scale_after_apply_makes_the_next_apply_conflict() -> None:
    live = apply(None, deployment(replicas=2))
    scaled = copy.deepcopy(live)
    scaled["spec"]["replicas"] = 5
    scaled = record(live, scaled, "kubectl-scale", now="2024-05-01T10:30:00Z")
    assert ".spec.replicas" not in owned(scaled, "kubectl")
    assert owned(scaled, "kubectl-scale", "Update") == {".spec.replicas"}
    with pytest.raises(StatusError) as info:
        apply(scaled, deployment(replicas=2))
    assert info.value.causes[0].message == 'conflict with "kubectl-scale" using apps/v1'


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("config,code,message", [
    (deployment(extra_field=1), 500,
     "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .extra_field: field not "
     "declared in schema"),
    (deployment(containers=[{"name": "a", "env": [{"name": "X"}, {"name": "X"}]}]), 500,
     "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
     '.spec.template.spec.containers[name="a"].env: duplicate entries for key [name="X"]'),
    ({**deployment(), "kind": "Pod"}, 400, "invalid object type: apps/v1, Kind=Pod"),
    ({**deployment(), "metadata": {"name": "web", "managedFields": []}}, 400, "metadata.managedFields must be nil"),
])
def test_apply_errors(config: dict[str, Any], code: int, message: str) -> None:
    with pytest.raises(StatusError) as info:
        apply(None, config)
    assert (info.value.code, info.value.message) == (code, message)


# -- update bookkeeping ----------------------------------------------------------------------------


def test_create_records_added_maps_and_items_with_dot() -> None:
    created = record(None, deployment(labels={"app": "web"}), "kubectl-create")
    fields = entries(created)[("kubectl-create", "Update")]["fieldsV1"]
    assert fields["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert fields["f:spec"]["f:template"]["f:spec"]["f:containers"] == {K_A: {".": {}, "f:image": {}, "f:name": {}}}


def test_update_takes_changed_fields_from_other_managers() -> None:
    live = apply(None, deployment())
    edited = strategic_merge_patch(live, {"spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "nginx:1.26"}]}}}}, builtin_schema(), DEPLOYMENT)
    result = record(live, edited, "kubectl-edit", now="2024-05-01T12:00:00Z")
    image = '.spec.template.spec.containers[name="a"].image'
    assert owned(result, "kubectl-edit", "Update") == {image}
    assert image not in owned(result, "kubectl")
    assert [e["manager"] for e in result["metadata"]["managedFields"]] == ["kubectl", "kubectl-edit"]


def test_update_that_changes_nothing_keeps_entries_and_times() -> None:
    live = record(None, deployment(), "kubectl-create")
    again = record(live, copy.deepcopy(live), "kubectl-edit", now="2030-01-01T00:00:00Z")
    assert again["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_removed_fields_are_dropped_from_every_manager() -> None:
    live = apply(None, deployment(labels={"app": "web", "tier": "fe"}))
    edited = copy.deepcopy(live)
    del edited["metadata"]["labels"]["tier"]
    result = record(live, edited, "kubectl-edit")
    assert ".metadata.labels.tier" not in owned(result, "kubectl")
    assert ("kubectl-edit", "Update") not in entries(result)  # removing gives no ownership


def test_metadata_bookkeeping_fields_are_never_owned() -> None:
    live = record(None, deployment(), "kubectl-create")
    bumped = copy.deepcopy(live)
    bumped["metadata"].update(resourceVersion="7", generation=2, uid="u")
    assert record(live, bumped, "someone")["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_empty_entry_clears_managed_fields() -> None:
    live = record(None, deployment(), "kubectl-create")
    cleared = copy.deepcopy(live)
    cleared["metadata"]["managedFields"] = [{}]
    assert "managedFields" not in record(live, cleared, "kubectl-edit")["metadata"]


def test_client_sent_managed_fields_are_believed() -> None:
    live = record(None, deployment(), "kubectl-create")
    rewritten = copy.deepcopy(live)
    rewritten["metadata"]["managedFields"][0]["manager"] = "renamed"
    result = record(live, rewritten, "kubectl-edit")
    assert [e["manager"] for e in result["metadata"]["managedFields"]] == ["renamed"]


def test_configmap_data_entries_are_fields() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    created = record(None, cm, "kubectl-create", type_name=CONFIGMAP)
    assert entries(created)[("kubectl-create", "Update")]["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}}
    applied = apply(created, {**cm, "data": {"a": "2"}}, type_name=CONFIGMAP, force=True)
    assert applied["data"] == {"a": "2"}
    assert owned(applied, "kubectl") == {".data.a"}


# -- FieldsV1 --------------------------------------------------------------------------------------


def test_fields_v1_round_trip() -> None:
    tree = {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}},
                       "f:finalizers": {'v:"a"': {}}}}
    paths = from_fields_v1(tree)
    assert {path_string(p) for p in paths} == {
        ".metadata.labels", ".metadata.labels.app", '.spec.ports[port=80,protocol="TCP"]',
        '.spec.ports[port=80,protocol="TCP"].port', '.spec.finalizers[="a"]'}
    assert to_fields_v1(paths) == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:finalizers": {'v:"a"': {}},
                   "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}}}


def test_malformed_entries_are_skipped_when_decoding() -> None:
    obj = {"metadata": {"managedFields": [
        {"manager": "ok", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {}}},
        {"manager": "bad-op", "operation": "Frob", "fieldsV1": {}},
        {"manager": "bad-tree", "operation": "Update", "fieldsV1": {"x:y": {}}},
    ]}}
    assert [e.manager for e in decode_managed_fields(obj).values()] == ["ok"]


def test_apply_without_a_schema_treats_objects_as_granular() -> None:
    cm = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
          "spec": {"size": 1, "parts": ["a"]}}
    created = server_side_apply({}, cm, manager="kubectl", force=False, schema=None, type_name=None, now="T1")
    fields = entries(created)[("kubectl", "Apply")]["fieldsV1"]
    assert fields == {"f:spec": {".": {}, "f:parts": {}, "f:size": {}}}
    again = server_side_apply(created, {**cm, "spec": {"parts": ["b"]}}, manager="kubectl", force=False,
                              schema=None, type_name=None, now="T2")
    assert again["spec"] == {"parts": ["b"]}
