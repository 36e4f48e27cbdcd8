"""HorizontalPodAutoscaler in autoscaling/v2 and v1: conversion, defaults, validation, table."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.kinds.autoscaling import HPA_V1, HPA_V2, hpa_v1_to_v2, hpa_v2_to_v1
from skiff.api.kinds.autoscaling.conversion import (
    BEHAVIOR_ANNOTATION, CONDITIONS_ANNOTATION, CURRENT_METRICS_ANNOTATION, METRICS_ANNOTATION,
)

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)
META = {"name": "web", "namespace": "default", "creationTimestamp": "2024-01-01T00:55:00Z"}
REF = {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def cpu(utilization: int) -> dict[str, Any]:
    return {"type": "Resource", "resource": {"name": "cpu",
                                             "target": {"type": "Utilization", "averageUtilization": utilization}}}


def v1(**spec: Any) -> dict[str, Any]:
    body = {"scaleTargetRef": dict(REF), "maxReplicas": 5}
    body.update(spec)
    return {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": dict(META), "spec": body}


def v2(**spec: Any) -> dict[str, Any]:
    body = {"scaleTargetRef": dict(REF), "minReplicas": 1, "maxReplicas": 5}
    body.update(spec)
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": dict(META), "spec": body}


def test_v1_cpu_target_becomes_a_v2_metric_and_back() -> None:
    old = v1(minReplicas=2, targetCPUUtilizationPercentage=50)
    old["status"] = {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 30}
    new = hpa_v1_to_v2(old)
    assert new["apiVersion"] == "autoscaling/v2"
    assert new["spec"]["metrics"] == [cpu(50)]
    assert new["status"]["currentMetrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 30}}}]
    back = hpa_v2_to_v1(new)
    assert back["spec"] == old["spec"]
    assert back["status"] == old["status"]
    assert json.loads(back["metadata"]["annotations"][CURRENT_METRICS_ANNOTATION]) == [
        {"type": "Resource", "resource": {"name": "cpu", "currentAverageUtilization": 30, "currentAverageValue": "0"}}]


def test_v1_without_target_means_cpu_80() -> None:
    assert hpa_v1_to_v2(v1())["spec"]["metrics"] == [cpu(80)]


def test_v2_extras_round_trip_through_annotations() -> None:
    pods = {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "1k"}}}
    external = {"type": "External", "external": {"metric": {"name": "queue", "selector": {"matchLabels": {"q": "a"}}},
                                                 "target": {"type": "Value", "value": "30"}}}
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 60,
                              "policies": [{"type": "Pods", "value": 1, "periodSeconds": 30}]}}
    conditions = [{"type": "AbleToScale", "status": "True", "lastTransitionTime": "2024-01-01T00:56:00Z",
                   "reason": "ReadyForNewScale", "message": "ok"}]
    original = v2(metrics=[pods, cpu(70), external], behavior=behavior)
    original["metadata"]["annotations"] = {"team": "a"}
    original["status"] = {"currentReplicas": 2, "desiredReplicas": 2, "conditions": conditions}
    older = hpa_v2_to_v1(original)
    annotations = older["metadata"]["annotations"]
    assert older["spec"]["targetCPUUtilizationPercentage"] == 70
    assert json.loads(annotations[METRICS_ANNOTATION]) == [
        {"type": "Pods", "pods": {"metricName": "qps", "targetAverageValue": "1k"}},
        {"type": "External", "external": {"metricName": "queue", "metricSelector": {"matchLabels": {"q": "a"}},
                                          "targetValue": "30"}}]
    assert json.loads(annotations[BEHAVIOR_ANNOTATION])["ScaleDown"]["StabilizationWindowSeconds"] == 60
    assert json.loads(annotations[CONDITIONS_ANNOTATION]) == conditions
    again = hpa_v1_to_v2(older)
    # the CPU target comes back last, as in Kubernetes
    assert again["spec"]["metrics"] == [pods, external, cpu(70)]
    assert again["spec"]["behavior"] == behavior
    assert again["status"]["conditions"] == conditions
    assert again["metadata"]["annotations"] == {"team": "a"}


def test_conversion_does_not_touch_its_input() -> None:
    obj = v2(metrics=[cpu(60)], behavior={"scaleUp": {"selectPolicy": "Max"}})
    snapshot = json.dumps(obj, sort_keys=True)
    hpa_v1_to_v2(hpa_v2_to_v1(obj))
    assert json.dumps(obj, sort_keys=True) == snapshot


def test_defaults() -> None:
    obj = v2(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}})
    obj["spec"].pop("minReplicas")
    HPA_V2.default(obj)
    assert obj["spec"]["minReplicas"] == 1 and obj["spec"]["metrics"] == [cpu(80)]
    assert obj["spec"]["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 60, "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert obj["spec"]["behavior"]["scaleUp"]["policies"] == [
        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]
    # the scale-down window stays unset: the controller's downscale stabilization (5 min) applies
    only_up = v2(behavior={"scaleUp": {"selectPolicy": "Max"}})
    HPA_V2.default(only_up)
    assert only_up["spec"]["behavior"]["scaleDown"] == {
        "selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    old = v1()
    HPA_V1.default(old)
    assert old["spec"]["minReplicas"] == 1 and "targetCPUUtilizationPercentage" not in old["spec"]


@pytest.mark.parametrize("spec, expected", [
    ({"minReplicas": 0}, ["spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"]),
    ({"maxReplicas": 0}, ["spec.maxReplicas: Invalid value: 0: must be greater than 0",
                          "spec.maxReplicas: Invalid value: 0: must be greater than or equal to `minReplicas`"]),
    ({"scaleTargetRef": {"kind": "Deployment"}}, ["spec.scaleTargetRef.name: Required value"]),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]},
     ["spec.metrics[0].resource.target.averageUtilization: Required value: "
      "must set either a target raw value or a target utilization"]),
    ({"metrics": [{"type": "Pods"}]},
     ["spec.metrics[0].pods: Required value: must populate information for the given metric source"]),
])
def test_validation(spec: dict[str, Any], expected: list[str]) -> None:
    obj = v2(**spec)
    assert messages(HPA_V2.validate(obj, None)) == expected


def test_v1_validation_uses_v2_paths() -> None:
    assert messages(HPA_V1.validate(v1(minReplicas=0), None)) == [
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"]


def test_rows() -> None:
    obj = v2(metrics=[cpu(80), {"type": "Pods", "pods": {"metric": {"name": "qps"},
                                                          "target": {"type": "AverageValue", "averageValue": "1000m"}}},
                      cpu(90)])
    obj["status"] = {"currentReplicas": 3, "currentMetrics": [
        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 42}}}]}
    assert [c.name for c in HPA_V2.columns] == ["Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]
    assert HPA_V2.row(obj, NOW) == ["web", "Deployment/web", "cpu: 42%/80%, <unknown>/1 + 1 more...", "1", 5, 3, "5m"]
    assert HPA_V1.row(v1(), NOW) == ["web", "Deployment/web", "cpu: <unknown>/80%", "<unset>", 5, 0, "5m"]


def test_records() -> None:
    for info in (HPA_V1, HPA_V2):
        assert info.short_names == ("hpa",) and info.categories == ("all",) and info.has_status
        assert info.plural == "horizontalpodautoscalers"
    assert HPA_V1.schema_type == "io.k8s.api.autoscaling.v1.HorizontalPodAutoscaler"
