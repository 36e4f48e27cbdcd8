"""Pods: the STATUS/READY/RESTARTS cells, create-time status and admission, validation."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.kinds.core import pods
from skiff.api.kinds.core.pods import PODS

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
CREATED = "2024-05-01T11:00:00Z"

Obj = dict[str, Any]


def running(ready: bool = True, restarts: int = 0, last_finished: str = "") -> Obj:
    cs: Obj = {"name": "c", "ready": ready, "restartCount": restarts, "state": {"running": {}}}
    if last_finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": last_finished}}
    return cs


def waiting(reason: str, restarts: int = 0) -> Obj:
    return {"name": "c", "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}}


def terminated(exit_code: int, reason: str = "", signal: int = 0, name: str = "c") -> Obj:
    term: Obj = {"exitCode": exit_code}
    if reason:
        term["reason"] = reason
    if signal:
        term["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": term}}


def pod(phase: str = "Running", statuses: list[Obj] | None = None, init: list[Obj] | None = None,
        init_statuses: list[Obj] | None = None, containers: int = 1, **extra: Any) -> Obj:
    obj: Obj = {
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": CREATED},
        "spec": {"containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)]},
        "status": {"phase": phase},
    }
    if statuses is not None:
        obj["status"]["containerStatuses"] = statuses
    if init is not None:
        obj["spec"]["initContainers"] = init
    if init_statuses is not None:
        obj["status"]["initContainerStatuses"] = init_statuses
    for k, v in extra.items():
        obj["status"][k] = v
    return obj


STATUS_CASES = [
    ("new pod", pod("Pending"), "0/1", "Pending"),
    ("creating", pod("Pending", [waiting("ContainerCreating")]), "0/1", "ContainerCreating"),
    ("image pull", pod("Pending", [waiting("ErrImagePull")]), "0/1", "ErrImagePull"),
    ("running", pod("Running", [running()]), "1/1", "Running"),
    ("running not ready", pod("Running", [running(ready=False)]), "0/1", "Running"),
    ("completed", pod("Succeeded", [terminated(0, "Completed")]), "0/1", "Completed"),
    ("error", pod("Failed", [terminated(1, "Error")]), "0/1", "Error"),
    ("exit code without reason", pod("Failed", [terminated(3)]), "0/1", "ExitCode:3"),
    ("signal without reason", pod("Failed", [terminated(137, signal=9)]), "0/1", "Signal:9"),
    ("crash loop", pod("Running", [waiting("CrashLoopBackOff", restarts=4)]), "0/1", "CrashLoopBackOff"),
    ("evicted", pod("Failed", reason="Evicted"), "0/1", "Evicted"),
    ("init 0/2", pod("Pending", [waiting("PodInitializing")], init=[{"name": "i1"}, {"name": "i2"}],
                     init_statuses=[{"name": "i1", "state": {"running": {}}},
                                    {"name": "i2", "state": {"waiting": {"reason": "PodInitializing"}}}]),
     "0/1", "Init:0/2"),
    ("init 1/2", pod("Pending", [waiting("PodInitializing")], init=[{"name": "i1"}, {"name": "i2"}],
                     init_statuses=[terminated(0, "Completed", name="i1"),
                                    {"name": "i2", "state": {"running": {}}}]),
     "0/1", "Init:1/2"),
    ("init crash loop", pod("Pending", [], init=[{"name": "i1"}],
                            init_statuses=[{"name": "i1", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]),
     "0/1", "Init:CrashLoopBackOff"),
    ("init error", pod("Failed", [], init=[{"name": "i1"}], init_statuses=[terminated(1, "Error", name="i1")]),
     "0/1", "Init:Error"),
    ("init exit code", pod("Pending", [], init=[{"name": "i1"}], init_statuses=[terminated(2, name="i1")]),
     "0/1", "Init:ExitCode:2"),
    ("gated", pod("Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                          "reason": "SchedulingGated"}]), "0/1", "SchedulingGated"),
    ("one done one running, ready", pod("Running", [running(), terminated(0, "Completed")], containers=2,
                                        conditions=[{"type": "Ready", "status": "True"}]), "1/2", "Running"),
    ("one done one running, not ready", pod("Running", [running(), terminated(0, "Completed")], containers=2),
     "1/2", "NotReady"),
    ("sidecar counts as a container", pod(
        "Running", [running()], init=[{"name": "side", "restartPolicy": "Always"}],
        init_statuses=[{"name": "side", "started": True, "ready": True, "state": {"running": {}}}],
        conditions=[{"type": "Initialized", "status": "True"}]), "2/2", "Running"),
]


@pytest.mark.parametrize("case, obj, ready, status", STATUS_CASES, ids=[c[0] for c in STATUS_CASES])
def test_pod_status_cells(case: str, obj: Obj, ready: str, status: str) -> None:
    row = pods.pod_row(obj, NOW)
    assert row[1:3] == [ready, status]


def test_terminating_and_unknown() -> None:
    obj = pod("Running", [running()])
    obj["metadata"]["deletionTimestamp"] = "2024-05-01T11:59:00Z"
    assert pods.pod_row(obj, NOW)[2] == "Terminating"
    done = pod("Succeeded", [terminated(0, "Completed")])
    done["metadata"]["deletionTimestamp"] = "2024-05-01T11:59:00Z"
    assert pods.pod_row(done, NOW)[2] == "Completed"
    lost = pod("Running", [running()], reason="NodeLost")
    lost["metadata"]["deletionTimestamp"] = "2024-05-01T11:59:00Z"
    assert pods.pod_row(lost, NOW)[2] == "Unknown"


def test_restarts_cell() -> None:
    assert pods.pod_row(pod("Running", [running()]), NOW)[3] == "0"
    crashed = pod("Running", [running(restarts=2, last_finished="2024-05-01T11:55:00Z")])
    assert pods.pod_row(crashed, NOW)[3] == "2 (5m ago)"
    # a count without a recorded termination shows just the number
    assert pods.pod_row(pod("Running", [running(restarts=3)]), NOW)[3] == "3"


def test_full_row_and_wide_cells() -> None:
    obj = pod("Running", [running()], podIPs=[{"ip": "10.1.0.5"}], nominatedNodeName="")
    obj["spec"]["nodeName"] = "node-1"
    obj["spec"]["readinessGates"] = [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/x"}]
    obj["status"]["conditions"] = [{"type": "example.com/lb", "status": "True"}]
    assert pods.pod_row(obj, NOW) == ["web", "1/1", "Running", "0", "60m", "10.1.0.5", "node-1", "<none>", "1/2"]
    assert [c.name for c in PODS.columns] == ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node",
                                              "Nominated Node", "Readiness Gates"]
    assert [c.priority for c in PODS.columns] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert PODS.columns[0].format == "name"
    assert pods.pod_row(pod("Pending"), NOW)[5:] == ["<none>", "<none>", "<none>", "<none>"]


def new_pod(**spec: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.25", **spec.pop("container", {})}], **spec}}


def created(obj: Obj) -> Obj:
    PODS.prepare_create(obj)
    PODS.default(obj)
    return obj


def test_create_status_and_admission_defaults() -> None:
    obj = created(new_pod())
    assert obj["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    spec = obj["spec"]
    assert spec["priority"] == 0 and spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert spec["tolerations"] == [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 5}]
    assert spec["enableServiceLinks"] is True
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("default", "default")
    assert PODS.validate(obj, None) == []


def test_create_keeps_own_tolerations_and_system_priority() -> None:
    own = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
           "tolerationSeconds": 10}
    obj = created(new_pod(tolerations=[own], priorityClassName="system-node-critical"))
    assert obj["spec"]["priority"] == 2000001000
    assert [t["key"] for t in obj["spec"]["tolerations"]] == ["node.kubernetes.io/not-ready",
                                                               "node.kubernetes.io/unreachable"]
    assert obj["spec"]["tolerations"][0]["tolerationSeconds"] == 10
    everything = created(new_pod(tolerations=[{"operator": "Exists"}]))
    assert everything["spec"]["tolerations"] == [{"operator": "Exists"}]


@pytest.mark.parametrize("resources, qos", [
    ({}, "BestEffort"),
    ({"requests": {"cpu": "100m"}}, "Burstable"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable"),
    ({"limits": {"cpu": "1"}}, "Burstable"),
])
def test_qos_class(resources: Obj, qos: str) -> None:
    obj = created(new_pod(container={"resources": resources}))
    assert obj["status"]["qosClass"] == qos


def test_scheduling_gates_condition() -> None:
    obj = created(new_pod(schedulingGates=[{"name": "example.com/wait"}]))
    cond = obj["status"]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("PodScheduled", "False", "SchedulingGated")
    assert pods.pod_row(obj, NOW)[2] == "SchedulingGated"


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def test_validation_messages() -> None:
    obj = created(new_pod(container={"image": ""}))
    assert messages(PODS.validate(obj, None)) == ["spec.containers[0].image: Required value"]
    no_containers = created({"metadata": {"name": "x", "namespace": "d"}, "spec": {}})
    assert messages(PODS.validate(no_containers, None)) == ["spec.containers: Required value"]
    bad = created(new_pod(restartPolicy="Sometimes", container={"ports": [{"containerPort": 70000}]}))
    assert messages(PODS.validate(bad, None)) == [
        "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"']


def test_update_rules() -> None:
    old = created(new_pod())
    ok = copy.deepcopy(old)
    ok["spec"]["containers"][0]["image"] = "nginx:1.26"
    ok["spec"]["activeDeadlineSeconds"] = 60
    ok["spec"]["tolerations"].append({"key": "x", "operator": "Exists"})
    PODS.prepare_update(ok, old)
    PODS.default(ok)
    assert PODS.validate(ok, old) == []

    changed = copy.deepcopy(old)
    changed["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    causes = PODS.validate(changed, old)
    assert len(causes) == 1 and causes[0].field == "spec"
    assert causes[0].message.startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
        "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
        "previously negative)\n  core.PodSpec{")

    more = copy.deepcopy(old)
    more["spec"]["containers"].append({"name": "b", "image": "x"})
    PODS.default(more)
    assert messages(PODS.validate(more, old)) == [
        "spec.containers: Forbidden: pod updates may not add or remove containers"]


def test_update_keeps_admission_fields() -> None:
    old = created(new_pod())
    replaced = new_pod(serviceAccountName="default")  # a PUT without the admission-added fields
    PODS.prepare_update(replaced, old)
    PODS.default(replaced)
    assert replaced["spec"]["priority"] == 0
    assert len(replaced["spec"]["tolerations"]) == 2
    assert PODS.validate(replaced, old) == []


def test_field_labels() -> None:
    obj = created(new_pod(nodeName="n1", hostNetwork=True))
    obj["status"].update({"podIPs": [{"ip": "10.0.0.9"}], "phase": "Running"})
    got = {k: f(obj) for k, f in PODS.field_labels.items()}
    assert got == {"spec.nodeName": "n1", "spec.restartPolicy": "Always", "spec.schedulerName": "default-scheduler",
                   "spec.serviceAccountName": "default", "spec.hostNetwork": "true", "status.phase": "Running",
                   "status.podIP": "10.0.0.9", "status.nominatedNodeName": ""}


def test_discovery_facts() -> None:
    assert (PODS.short_names, PODS.categories, PODS.has_status) == (("po",), ("all",), True)
    subs = {s.name: s for s in PODS.subresources}
    assert set(subs) == {"attach", "binding", "ephemeralcontainers", "eviction", "exec", "log", "portforward",
                         "proxy", "status"}
    assert (subs["eviction"].group, subs["eviction"].version, subs["eviction"].kind) == ("policy", "v1", "Eviction")
    assert subs["log"].verbs == ("get",)
