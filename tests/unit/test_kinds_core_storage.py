"""ReplicationControllers, PersistentVolumes/Claims, LimitRanges and ResourceQuotas."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from skiff.api.kinds.core.limits import LIMIT_RANGES, RESOURCE_QUOTAS
from skiff.api.kinds.core.replicationcontrollers import REPLICATION_CONTROLLERS as RCS
from skiff.api.kinds.core.volumes import PERSISTENT_VOLUME_CLAIMS as PVCS
from skiff.api.kinds.core.volumes import PERSISTENT_VOLUMES as PVS

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
CREATED = "2024-05-01T11:00:00Z"
Obj = dict[str, Any]


def errors(info: Any, obj: Obj, old: Obj | None = None) -> list[str]:
    return [f"{c.field}: {c.message}" for c in info.validate(obj, old)]


def meta(namespaced: bool = True) -> Obj:
    out: Obj = {"name": "x", "creationTimestamp": CREATED}
    if namespaced:
        out["namespace"] = "d"
    return out


# --- ReplicationController ------------------------------------------------------


def rc(**spec: Any) -> Obj:
    return {"metadata": meta(), "spec": {"template": {"metadata": {"labels": {"app": "web"}},
                                                      "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                                         **spec}}


def test_rc_defaults_and_row() -> None:
    obj = rc()
    RCS.prepare_create(obj)
    RCS.default(obj)
    assert obj["spec"]["replicas"] == 1 and obj["spec"]["selector"] == {"app": "web"}
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert "enableServiceLinks" not in obj["spec"]["template"]["spec"]
    assert obj["status"] == {"replicas": 0}
    assert errors(RCS, obj) == []
    obj["status"] = {"replicas": 1, "readyReplicas": 1}
    assert RCS.row(obj, NOW) == ["x", 1, 1, 1, "60m", "c", "nginx", "app=web"]  # type: ignore[call-arg]
    assert RCS.field_labels["status.replicas"](obj) == "1"
    assert RCS.scale is not None and RCS.scale.spec_replicas == "spec.replicas"
    scale = {s.name: s for s in RCS.subresources}["scale"]
    assert (scale.kind, scale.group, scale.version) == ("Scale", "autoscaling", "v1")


def test_rc_validation() -> None:
    mismatch = rc(selector={"app": "db"}, replicas=-1)
    RCS.default(mismatch)
    assert errors(RCS, mismatch) == [
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not '
        "match template `labels`"]
    never = rc()
    never["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    RCS.default(never)
    assert errors(RCS, never) == [
        'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']
    assert errors(RCS, {"metadata": meta(), "spec": {"replicas": 1}}) == [
        "spec.selector: Required value", "spec.template: Required value"]


# --- PersistentVolume / PersistentVolumeClaim -------------------------------------


def pv(**spec: Any) -> Obj:
    return {"metadata": meta(False), "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                                              "hostPath": {"path": "/data"}, **spec}}


def test_pv_defaults_row_and_validation() -> None:
    obj = pv(storageClassName="local-path")
    PVS.prepare_create(obj)
    PVS.default(obj)
    assert obj["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert obj["spec"]["volumeMode"] == "Filesystem"
    assert obj["status"]["phase"] == "Pending" and obj["status"]["lastPhaseTransitionTime"]
    assert errors(PVS, obj) == []
    obj["spec"]["claimRef"] = {"namespace": "d", "name": "data"}
    obj["status"]["phase"] = "Bound"
    assert PVS.row(obj, NOW) == ["x", "10Gi", "RWO", "Retain", "Bound", "d/data",  # type: ignore[call-arg]
                                 "local-path", "<unset>", "", "60m", "Filesystem"]
    bad = pv(accessModes=["ReadWriteOncePod", "ReadWriteOnce"], persistentVolumeReclaimPolicy="Keep")
    bad["spec"].pop("hostPath")
    assert errors(PVS, bad) == [
        "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
        'spec.persistentVolumeReclaimPolicy: Unsupported value: "Keep": supported values: "Delete", "Recycle", '
        '"Retain"',
        "spec: Required value: must specify a volume type"]


def pvc(**spec: Any) -> Obj:
    return {"metadata": meta(), "spec": {"accessModes": ["ReadWriteOnce"],
                                         "resources": {"requests": {"storage": "1Gi"}}, **spec}}


def test_pvc_defaults_row_and_validation() -> None:
    obj = pvc()
    PVCS.prepare_create(obj)
    PVCS.default(obj)
    assert obj["status"] == {"phase": "Pending"} and obj["spec"]["volumeMode"] == "Filesystem"
    assert errors(PVCS, obj) == []
    assert PVCS.row(obj, NOW) == ["x", "Pending", "", "", "", "", "<unset>", "60m",  # type: ignore[call-arg]
                                  "Filesystem"]
    bound = copy.deepcopy(obj)
    bound["spec"]["volumeName"] = "pv-1"
    bound["spec"]["storageClassName"] = "local-path"
    bound["status"] = {"phase": "Bound", "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                       "capacity": {"storage": "1Gi"}}
    assert PVCS.row(bound, NOW)[:6] == ["x", "Bound", "pv-1", "1Gi", "RWO,ROX", "local-path"]  # type: ignore[call-arg]
    assert errors(PVCS, pvc(accessModes=[], resources={"requests": {"storage": "0"}})) == [
        "spec.accessModes: Required value: at least 1 access mode is required",
        'spec.resources[storage]: Invalid value: "0": must be greater than zero']
    assert errors(PVCS, pvc(resources={})) == ["spec.resources[storage]: Required value"]


def test_pvc_update_rules() -> None:
    old = pvc()
    PVCS.default(old)
    binding = copy.deepcopy(old)
    binding["spec"]["volumeName"] = "pv-1"
    assert errors(PVCS, binding, old) == []
    changed = copy.deepcopy(old)
    changed["spec"]["accessModes"] = ["ReadWriteMany"]
    (msg,) = errors(PVCS, changed, old)
    assert msg.startswith("spec: Forbidden: spec is immutable after creation except resources.requests and "
                          "volumeAttributesClassName for bound claims\n")
    bound_old = copy.deepcopy(binding)
    bound_old["status"] = {"phase": "Bound"}
    grown = copy.deepcopy(bound_old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert errors(PVCS, grown, bound_old) == []
    shrunk = copy.deepcopy(bound_old)
    shrunk["spec"]["resources"]["requests"]["storage"] = "500Mi"
    assert errors(PVCS, shrunk, bound_old) == [
        "spec.resources.requests.storage: Forbidden: field can not be less than previous value"]


# --- LimitRange / ResourceQuota ------------------------------------------------------


def test_limit_range_defaults_and_validation() -> None:
    obj = {"metadata": meta(), "spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}},
                                                   {"type": "Pod", "max": {"cpu": "4"}}]}}
    LIMIT_RANGES.default(obj)
    container, pod = obj["spec"]["limits"]
    assert container["default"] == {"cpu": "2"}
    assert container["defaultRequest"] == {"cpu": "2", "memory": "64Mi"}
    assert "default" not in pod
    assert errors(LIMIT_RANGES, obj) == []
    assert LIMIT_RANGES.row(obj, NOW) == ["x", "2024-05-01T11:00:00Z"]  # type: ignore[call-arg]
    assert [c.name for c in LIMIT_RANGES.columns] == ["Name", "Created At"]
    bad = {"metadata": meta(), "spec": {"limits": [{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}]}}
    assert errors(LIMIT_RANGES, bad) == [
        "spec.limits[0].min[cpu]: Invalid value: 2: min value 2 is greater than max value 1"]


def test_resource_quota() -> None:
    obj = {"metadata": meta(), "spec": {"hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "4Gi"}},
           "status": {"used": {"pods": "99"}}}
    RESOURCE_QUOTAS.prepare_create(obj)
    assert "status" not in obj
    assert errors(RESOURCE_QUOTAS, obj) == []
    obj["status"] = {"hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "4Gi"},
                     "used": {"pods": "3", "requests.cpu": "500m"}}
    assert RESOURCE_QUOTAS.row(obj, NOW) == [  # type: ignore[call-arg]
        "x", "60m", "pods: 3/10, requests.cpu: 500m/2", "limits.memory: 0/4Gi"]
    bad = {"metadata": meta(), "spec": {"hard": {"pods": "-1"}, "scopes": ["Sometimes"]}}
    assert errors(RESOURCE_QUOTAS, bad) == [
        'spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0',
        'spec.scopes[0]: Unsupported value: "Sometimes": supported values: "BestEffort", '
        '"CrossNamespacePodAffinity", "NotBestEffort", "NotTerminating", "PriorityClass", "Terminating"']


def test_an_unbound_claim_can_be_relabelled_and_its_owners_changed() -> None:
    from skiff.api.kinds.core.volumes import validate_pvc

    old = {"metadata": {"name": "data-web-0", "namespace": "default", "resourceVersion": "5"},
           "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}
    new = {**old, "metadata": {**old["metadata"], "labels": {"app": "web"}}}
    assert validate_pvc(new, old) == []
    changed = {**old, "spec": {**old["spec"], "accessModes": ["ReadWriteMany"]}}
    assert validate_pvc(changed, old) != []
