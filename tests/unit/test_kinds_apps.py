"""apps/v1 kinds: defaults, validation messages and Table cells as Kubernetes v1.32 has them."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.errors import invalid
from skiff.api.kinds.apps import CONTROLLERREVISIONS, DAEMONSETS, DEPLOYMENTS, REPLICASETS, STATEFULSETS

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)
CREATED = "2024-01-01T00:55:00Z"  # five minutes before NOW


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def workload(kind: str, name: str = "web", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    labels = {"app": "web"} if labels is None else labels
    body: dict[str, Any] = {"selector": {"matchLabels": dict(labels)},
                            "template": {"metadata": {"labels": dict(labels)},
                                         "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]}}}
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": CREATED}, "spec": body}


def created(info: Any, obj: dict[str, Any]) -> dict[str, Any]:
    info.prepare_create(obj)
    info.default(obj)
    return obj


# --- Deployment -------------------------------------------------------------------------

def test_deployment_defaults() -> None:
    d = created(DEPLOYMENTS, workload("Deployment"))
    spec = d["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert d["metadata"]["generation"] == 1
    assert DEPLOYMENTS.validate(d, None) == []


def test_deployment_recreate_gets_no_rolling_update() -> None:
    d = created(DEPLOYMENTS, workload("Deployment", strategy={"type": "Recreate"}))
    assert d["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("mutate, expected", [
    (lambda s: s.pop("selector"), [
        "spec.selector: Required value",
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
        "`selector` does not match template `labels`"]),
    (lambda s: s.update(replicas=-1), ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    (lambda s: s["template"]["metadata"].update(labels={"app": "other"}), [
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
        "`selector` does not match template `labels`"]),
    (lambda s: s.update(selector={}), [
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"]),
    (lambda s: s["strategy"]["rollingUpdate"].update(maxUnavailable="120%"), [
        'spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, '
        'StrVal:"120%"}: must not be greater than 100%']),
    (lambda s: s["strategy"]["rollingUpdate"].update(maxUnavailable=0, maxSurge=0), [
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, "
        'StrVal:""}: may not be 0 when `maxSurge` is 0']),
    (lambda s: s.update(minReadySeconds=700), [
        "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"]),
    (lambda s: s["template"]["spec"].update(restartPolicy="Never"), [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']),
    (lambda s: s["template"]["spec"]["containers"][0].pop("image"), [
        "spec.template.spec.containers[0].image: Required value"]),
])
def test_deployment_validation(mutate: Any, expected: list[str]) -> None:
    d = created(DEPLOYMENTS, workload("Deployment"))
    mutate(d["spec"])
    assert messages(DEPLOYMENTS.validate(d, None)) == expected


def test_deployment_invalid_message_reads_like_kubectl() -> None:
    d = created(DEPLOYMENTS, workload("Deployment"))
    d["spec"]["replicas"] = -1
    err = invalid(DEPLOYMENTS.kind, DEPLOYMENTS.group, "web", DEPLOYMENTS.validate(d, None))
    assert err.message == ('Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: '
                           "must be greater than or equal to 0")


def test_deployment_selector_is_immutable() -> None:
    old = created(DEPLOYMENTS, workload("Deployment"))
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"matchLabels": {"app": "web2"}}
    new["spec"]["template"]["metadata"]["labels"] = {"app": "web2"}
    assert messages(DEPLOYMENTS.validate(new, old)) == [
        'spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web2"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"]


def test_deployment_generation_tracks_spec_and_annotations() -> None:
    old = created(DEPLOYMENTS, workload("Deployment"))
    old["status"] = {"replicas": 1}
    same = copy.deepcopy(old)
    same["spec"].pop("revisionHistoryLimit")  # omitted defaults are not a change
    same.pop("status")
    DEPLOYMENTS.prepare_update(same, old)
    assert same["metadata"]["generation"] == 1 and same["status"] == {"replicas": 1}
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 3
    DEPLOYMENTS.prepare_update(scaled, old)
    assert scaled["metadata"]["generation"] == 2
    annotated = copy.deepcopy(old)
    annotated["metadata"]["annotations"] = {"kubernetes.io/change-cause": "x"}
    DEPLOYMENTS.prepare_update(annotated, old)
    assert annotated["metadata"]["generation"] == 2


def test_deployment_row() -> None:
    d = created(DEPLOYMENTS, workload("Deployment", replicas=3))
    d["status"] = {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}
    assert [c.name for c in DEPLOYMENTS.columns] == [
        "Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]
    assert [c.priority for c in DEPLOYMENTS.columns][5:] == [1, 1, 1]
    assert DEPLOYMENTS.row(d, NOW) == ["web", "2/3", 3, 2, "5m", "nginx", "nginx:1.27", "app=web"]


def test_deployment_record() -> None:
    assert DEPLOYMENTS.short_names == ("deploy",) and DEPLOYMENTS.categories == ("all",)
    scale = [s for s in DEPLOYMENTS.subresources if s.name == "scale"][0]
    assert (scale.group, scale.version, scale.kind) == ("autoscaling", "v1", "Scale")
    assert DEPLOYMENTS.has_status and DEPLOYMENTS.scale is not None


# --- ReplicaSet ---------------------------------------------------------------------------

def test_replicaset_row_and_field_label() -> None:
    rs = created(REPLICASETS, workload("ReplicaSet", name="web-5d9c7b", replicas=3))
    rs["status"] = {"replicas": 3, "readyReplicas": 1}
    assert REPLICASETS.validate(rs, None) == []
    assert REPLICASETS.row(rs, NOW) == ["web-5d9c7b", 3, 3, 1, "5m", "nginx", "nginx:1.27", "app=web"]
    assert REPLICASETS.field_labels["status.replicas"](rs) == "3"
    assert REPLICASETS.short_names == ("rs",)


def test_replicaset_empty_selector_message_names_deployment() -> None:
    rs = created(REPLICASETS, workload("ReplicaSet", selector={"matchLabels": {}}))
    assert messages(REPLICASETS.validate(rs, None)) == [
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, "
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"]


# --- StatefulSet ----------------------------------------------------------------------------

def test_statefulset_defaults() -> None:
    claim = {"metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    sts = created(STATEFULSETS, workload("StatefulSet", name="db", volumeClaimTemplates=[claim]))
    spec = sts["spec"]
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10
    template = spec["volumeClaimTemplates"][0]
    assert template["apiVersion"] == "v1" and template["kind"] == "PersistentVolumeClaim"
    assert template["spec"]["volumeMode"] == "Filesystem" and template["status"] == {"phase": "Pending"}
    assert STATEFULSETS.validate(sts, None) == []


def test_statefulset_name_must_be_a_dns_label() -> None:
    sts = created(STATEFULSETS, workload("StatefulSet", name="db.prod"))
    assert messages(STATEFULSETS.validate(sts, None)) == ['metadata.name: Invalid value: "db.prod": must not contain dots']


def test_statefulset_update_forbids_other_fields() -> None:
    old = created(STATEFULSETS, workload("StatefulSet", name="db", serviceName="db"))
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 5
    assert STATEFULSETS.validate(scaled, old) == []
    renamed = copy.deepcopy(old)
    renamed["spec"]["serviceName"] = "other"
    assert messages(STATEFULSETS.validate(renamed, old)) == [
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
        "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"]


def test_statefulset_row() -> None:
    sts = created(STATEFULSETS, workload("StatefulSet", name="db", replicas=3))
    sts["status"] = {"readyReplicas": 2}
    assert [c.name for c in STATEFULSETS.columns] == ["Name", "Ready", "Age", "Containers", "Images"]
    assert STATEFULSETS.row(sts, NOW) == ["db", "2/3", "5m", "nginx", "nginx:1.27"]


# --- DaemonSet ---------------------------------------------------------------------------------

def test_daemonset_defaults_and_row() -> None:
    ds = created(DAEMONSETS, workload("DaemonSet", name="log"))
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["spec"]["revisionHistoryLimit"] == 10
    assert DAEMONSETS.validate(ds, None) == []
    ds["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd", "arch": "amd64"}
    ds["status"] = {"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                    "updatedNumberScheduled": 3, "numberAvailable": 2}
    assert DAEMONSETS.row(ds, NOW) == ["log", 3, 3, 2, 3, 2, "arch=amd64,disk=ssd", "5m",
                                       "nginx", "nginx:1.27", "app=web"]
    assert [c.name for c in DAEMONSETS.columns][:8] == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"]


def test_daemonset_rolling_update_moves_one_way() -> None:
    ds = created(DAEMONSETS, workload("DaemonSet", name="log"))
    ds["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 1, "maxSurge": 1}
    assert messages(DAEMONSETS.validate(ds, None)) == [
        "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, IntVal:1, "
        'StrVal:""}: may not be set when maxUnavailable is non-zero']
    ds["spec"]["updateStrategy"]["rollingUpdate"] = {"maxUnavailable": 0, "maxSurge": 0}
    assert messages(DAEMONSETS.validate(ds, None)) == [
        "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"]


# --- ControllerRevision ------------------------------------------------------------------------

def test_controllerrevision_row_and_validation() -> None:
    cr = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "revision": 2, "data": {},
          "metadata": {"name": "db-6d4b9c", "namespace": "default", "creationTimestamp": CREATED,
                       "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db",
                                            "uid": "u1", "controller": True}]}}
    assert CONTROLLERREVISIONS.row(cr, NOW) == ["db-6d4b9c", "statefulset.apps/db", 2, "5m"]
    assert CONTROLLERREVISIONS.validate(cr, None) == []
    del cr["data"]
    assert messages(CONTROLLERREVISIONS.validate(cr, None)) == ["data: Required value: data is mandatory"]
