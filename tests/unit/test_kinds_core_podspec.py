"""skiff.api.kinds.podspec: PodSpec defaults and validation shared by every pod template."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.api.kinds import podspec

Obj = dict[str, Any]


def spec_with(container: Obj | None = None, **extra: Any) -> Obj:
    return {"containers": [{"name": "app", "image": "nginx", **(container or {})}], **extra}


def test_pod_spec_defaults() -> None:
    spec = spec_with({"ports": [{"containerPort": 80}],
                      "livenessProbe": {"httpGet": {"port": 80}},
                      "readinessProbe": {"grpc": {"port": 9000}},
                      "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                              {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]},
                     volumes=[{"name": "a"}, {"name": "b", "configMap": {"name": "cm"}},
                              {"name": "c", "secret": {"secretName": "s"}}, {"name": "d", "hostPath": {"path": "/x"}},
                              {"name": "e", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}])
    podspec.default_pod_spec(spec)
    assert {k: spec[k] for k in ("dnsPolicy", "restartPolicy", "schedulerName", "terminationGracePeriodSeconds",
                                 "securityContext")} == {
        "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
        "terminationGracePeriodSeconds": 30, "securityContext": {}}
    assert "enableServiceLinks" not in spec  # only real Pods get it
    c = spec["containers"][0]
    assert (c["imagePullPolicy"], c["terminationMessagePath"], c["terminationMessagePolicy"], c["resources"]) == (
        "Always", "/dev/termination-log", "File", {})
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert c["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                  "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert c["readinessProbe"]["grpc"] == {"port": 9000, "service": ""}
    assert c["env"][0]["valueFrom"]["fieldRef"] == {"fieldPath": "spec.nodeName", "apiVersion": "v1"}
    assert c["env"][1]["valueFrom"]["resourceFieldRef"]["divisor"] == "0"
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["a"] == {"name": "a", "emptyDir": {}}
    assert vols["b"]["configMap"]["defaultMode"] == 420
    assert vols["c"]["secret"]["defaultMode"] == 420
    assert vols["d"]["hostPath"] == {"path": "/x", "type": ""}
    assert vols["e"]["projected"]["defaultMode"] == 420
    assert vols["e"]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600


@pytest.mark.parametrize("image, policy", [
    ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
    ("registry:5000/nginx", "Always"), ("registry:5000/nginx:1.2", "IfNotPresent"),
    ("nginx@sha256:" + "a" * 64, "IfNotPresent"), ("", "IfNotPresent"),
])
def test_image_pull_policy(image: str, policy: str) -> None:
    spec = spec_with({"image": image})
    podspec.default_pod_spec(spec)
    assert spec["containers"][0]["imagePullPolicy"] == policy


def test_explicit_values_are_kept() -> None:
    spec = spec_with({"imagePullPolicy": "Never"}, restartPolicy="Never", terminationGracePeriodSeconds=0)
    podspec.default_pod_spec(spec)
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"]) == ("Never", 0)
    assert spec["containers"][0]["imagePullPolicy"] == "Never"


def test_pod_only_defaults() -> None:
    pod = {"spec": spec_with({"resources": {"limits": {"cpu": "1"}}, "ports": [{"containerPort": 8080}]},
                             hostNetwork=True)}
    podspec.default_pod(pod)
    c = pod["spec"]["containers"][0]
    assert c["resources"]["requests"] == {"cpu": "1"}
    assert c["ports"][0]["hostPort"] == 8080
    assert pod["spec"]["enableServiceLinks"] is True


def test_service_account_alias() -> None:
    spec = spec_with(serviceAccount="builder")
    podspec.default_pod_spec(spec)
    assert (spec["serviceAccountName"], spec["serviceAccount"]) == ("builder", "builder")


def defaulted(spec: Obj) -> Obj:
    podspec.default_pod_spec(spec)
    return spec


def errors(spec: Obj, path: str = "spec") -> list[str]:
    return [f"{c.field}: {c.message}" for c in podspec.validate_pod_spec(spec, path)]


VALIDATION_CASES = [
    ("duplicate names", spec_with(initContainers=[{"name": "app", "image": "x"}]),
     ['spec.containers[0].name: Duplicate value: "app"']),
    ("bad pull policy", spec_with({"imagePullPolicy": "Sometimes"}),
     ['spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: "Always", '
      '"IfNotPresent", "Never"']),
    ("bad protocol", spec_with({"ports": [{"containerPort": 80, "protocol": "HTTP"}]}),
     ['spec.containers[0].ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    ("missing container port", spec_with({"ports": [{"name": "web"}]}),
     ["spec.containers[0].ports[0].containerPort: Required value"]),
    ("duplicate port name", spec_with({"ports": [{"name": "web", "containerPort": 80},
                                                 {"name": "web", "containerPort": 81}]}),
     ['spec.containers[0].ports[1].name: Duplicate value: "web"']),
    ("request over limit", spec_with({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}),
     ['spec.containers[0].resources.requests[cpu]: Invalid value: "2": must be less than or equal to cpu '
      'limit of 1']),
    ("negative request", spec_with({"resources": {"requests": {"memory": "-1"}}}),
     ['spec.containers[0].resources.requests[memory]: Invalid value: "-1": must be greater than or equal to 0']),
    ("unknown mount", spec_with({"volumeMounts": [{"name": "data", "mountPath": "/d"}]}),
     ['spec.containers[0].volumeMounts[0].name: Not found: "data"']),
    ("volume without source is defaulted", spec_with(volumes=[{"name": "v"}]), []),
    ("two volume sources", spec_with(volumes=[{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]),
     ["spec.volumes[0].emptyDir: Forbidden: may not specify more than 1 volume type"]),
    ("probe without handler", spec_with({"livenessProbe": {"periodSeconds": 5}}),
     ["spec.containers[0].livenessProbe: Required value: must specify a handler type"]),
    ("liveness success threshold", spec_with({"livenessProbe": {"exec": {"command": ["true"]},
                                                                "successThreshold": 2}}),
     ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
    ("bad dns policy", spec_with(dnsPolicy="Google"),
     ['spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", '
      '"ClusterFirst", "Default", "None"']),
    ("toleration exists with value", spec_with(tolerations=[{"key": "k", "operator": "Exists", "value": "v"}]),
     ["spec.tolerations[0].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'"]),
    ("toleration seconds need NoExecute", spec_with(tolerations=[{"key": "k", "operator": "Exists",
                                                                   "effect": "NoSchedule", "tolerationSeconds": 5}]),
     ["spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when "
      "`tolerationSeconds` is set"]),
    ("env both value and valueFrom", spec_with({"env": [{"name": "A", "value": "x",
                                                         "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}),
     ['spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when `value` is not empty']),
    ("bad node selector", spec_with(nodeSelector={"disk": "-ssd"}),
     ['spec.nodeSelector: Invalid value: "-ssd": a valid label must be an empty string or consist of '
      "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
      "'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?"
      "[A-Za-z0-9])?')"]),
]


@pytest.mark.parametrize("case, spec, expected", VALIDATION_CASES, ids=[c[0] for c in VALIDATION_CASES])
def test_validation(case: str, spec: Obj, expected: list[str]) -> None:
    assert errors(defaulted(spec)) == expected


def test_template_paths() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": spec_with({"image": ""})}
    podspec.default_pod_template(template)
    assert [f"{c.field}: {c.message}" for c in podspec.validate_pod_template(template, "spec.template")] == [
        "spec.template.spec.containers[0].image: Required value"]


@pytest.mark.parametrize("old_deadline, new_deadline, expected", [
    (None, 30, []),
    (30, 10, []),
    (30, 60, ["spec.activeDeadlineSeconds: Invalid value: 60: must be less than or equal to previous value"]),
    (30, None, ["spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to "
                "nil value"]),
])
def test_active_deadline_updates(old_deadline: int | None, new_deadline: int | None, expected: list[str]) -> None:
    old = defaulted(spec_with())
    new = defaulted(spec_with())
    if old_deadline is not None:
        old["activeDeadlineSeconds"] = old_deadline
    if new_deadline is not None:
        new["activeDeadlineSeconds"] = new_deadline
    got = [f"{c.field}: {c.message}" for c in podspec.validate_pod_spec_update(new, old)]
    assert got == expected


def test_scheduling_gates_may_only_be_removed() -> None:
    old = defaulted(spec_with(schedulingGates=[{"name": "a"}, {"name": "b"}]))
    removed = defaulted(spec_with(schedulingGates=[{"name": "a"}]))
    assert podspec.validate_pod_spec_update(removed, old) == []
    added = defaulted(spec_with(schedulingGates=[{"name": "a"}, {"name": "b"}, {"name": "c"}]))
    got = [c.message for c in podspec.validate_pod_spec_update(added, old)]
    assert got[0] == "Forbidden: only deletion is allowed, but found new scheduling gate 'c'"
