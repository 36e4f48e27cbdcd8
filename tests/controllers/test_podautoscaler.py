"""The horizontal pod autoscaler against a real API server, with pod usage the test decides.

The API server serves metrics.k8s.io from :class:`SetUsage` (the way skiff up serves it
from its metrics server), so every figure below is exact: each test says how much CPU
the pods use and checks the replicas, status, conditions and events the HPA produces.
The end-to-end test with real containers burning CPU is tests/e2e/test_runc_autoscaling.py.
"""

from __future__ import annotations

import functools
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from controller_cluster import Cluster, Observed
from skiff.client.resources import DEPLOYMENTS, EVENTS, PODS, Resource
from skiff.controllers.podautoscaler import HorizontalPodAutoscalerController

Obj = dict[str, Any]

HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", kind="HorizontalPodAutoscaler")
HPAS_V1 = Resource("autoscaling", "v1", "horizontalpodautoscalers", kind="HorizontalPodAutoscaler")
DEADLINE = 20.0


class SetUsage:
    """A PodMetrics source: every live pod of the namespace uses what :attr:`cpu` says."""

    def __init__(self) -> None:
        self.pods: Observed | None = None
        self.cpu: dict[str, str] = {}          # app label -> CPU usage per pod, e.g. "200m"

    async def get(self, namespace: str, name: str) -> Obj | None:
        return next((m for m in await self.list(namespace) if m["metadata"]["name"] == name), None)

    async def list(self, namespace: str) -> list[Obj]:
        assert self.pods is not None
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        out = []
        for pod in self.pods.items():
            meta = pod["metadata"]
            usage = self.cpu.get((meta.get("labels") or {}).get("app", ""))
            if usage is None or (namespace and meta["namespace"] != namespace) \
                    or (pod.get("status") or {}).get("phase") != "Running":
                continue
            out.append({"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                        "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                                     "labels": meta.get("labels") or {}},
                        "timestamp": now, "window": "1s",
                        "containers": [{"name": c["name"], "usage": {"cpu": usage, "memory": "10Mi"}}
                                       for c in pod["spec"]["containers"]]})
        return out


def deployment(name: str, replicas: int, cpu_request: str = "100m") -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": "busybox",
                                                           "resources": {"requests": {"cpu": cpu_request}}}]}}}}


def hpa(name: str, *, minimum: int = 1, maximum: int = 5, utilization: int = 50,
        behavior: Obj | None = None, metrics: list[Obj] | None = None) -> Obj:
    spec: Obj = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "minReplicas": minimum, "maxReplicas": maximum,
                 "metrics": metrics or [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}}}]}
    if behavior is not None:
        spec["behavior"] = behavior
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def condition(obj: Obj, type_: str) -> Obj:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def replicas_are(name: str, count: int) -> Any:
    def check(items: list[Obj]) -> Obj | None:
        d = next((i for i in items if i["metadata"]["name"] == name), None)
        return d if d and d["spec"]["replicas"] == count and (d.get("status") or {}).get(
            "readyReplicas") == count else None
    return check


@pytest.fixture
def usage() -> SetUsage:
    return SetUsage()


@pytest.fixture
async def cluster(tmp_path: Path, usage: SetUsage) -> AsyncIterator[Cluster]:
    fast = functools.partial(HorizontalPodAutoscalerController, sync_period=0.2, downscale_stabilization=2.0)
    async with Cluster(tmp_path, nodes=2, controllers=["replicaset", "deployment", "hpa"],
                       extra=[("hpa", fast)], read_only={("metrics.k8s.io", "pods"): usage}) as c:
        usage.pods = await c.observe(PODS)
        yield c


async def test_scales_up_to_meet_the_cpu_target_and_reports_why(cluster: Cluster, usage: SetUsage) -> None:
    deploys = await cluster.observe(DEPLOYMENTS)
    hpas = await cluster.observe(HPAS)
    events = await cluster.observe(EVENTS)
    await cluster.client.create(DEPLOYMENTS, deployment("web", 1))
    await deploys.wait_for(replicas_are("web", 1), DEADLINE)
    usage.cpu["web"] = "200m"          # 200 % of the 100m request, the target is 50 %
    await cluster.client.create(HPAS, hpa("web", maximum=10))

    # ceil(1 * 200 / 50) = 4, and 4 is also the most one step may add from 1 (max(2 * 1, 4))
    await deploys.wait_for(replicas_are("web", 4), DEADLINE)
    scaled = await events.wait_for(lambda items: [e for e in items if e["reason"] == "SuccessfulRescale"],
                                   DEADLINE, "a SuccessfulRescale event")
    assert scaled[0]["message"] == \
        "New size: 4; reason: cpu resource utilization (percentage of request) above target"
    assert scaled[0]["involvedObject"]["kind"] == "HorizontalPodAutoscaler"

    # 4 pods at 200 % want 16; the HPA's maximum is 10
    await deploys.wait_for(replicas_are("web", 10), DEADLINE)
    status = (await hpas.wait_for(
        lambda items: [h for h in items if condition(h, "ScalingLimited").get("reason") == "TooManyReplicas"],
        DEADLINE, "ScalingLimited TooManyReplicas"))[0]["status"]
    assert status["desiredReplicas"] == 10
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 200, "averageValue": "200m"}}}]
    assert condition({"status": status}, "ScalingActive")["reason"] == "ValidMetricFound"
    assert condition({"status": status}, "AbleToScale")["status"] == "True"
    assert status["lastScaleTime"]

    # autoscaling/v1 shows the same object the way `kubectl get hpa` of old did
    v1 = await cluster.client.get(HPAS_V1, "web", namespace="default")
    assert v1["status"]["currentCPUUtilizationPercentage"] == 200
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 50


async def test_scales_down_after_the_stabilization_window_and_not_within_tolerance(
        cluster: Cluster, usage: SetUsage) -> None:
    deploys = await cluster.observe(DEPLOYMENTS)
    hpas = await cluster.observe(HPAS)
    await cluster.client.create(DEPLOYMENTS, deployment("web", 4))
    await deploys.wait_for(replicas_are("web", 4), DEADLINE)
    usage.cpu["web"] = "54m"           # 54 % against 50 %: inside the 10 % tolerance
    await cluster.client.create(HPAS, hpa("web"))
    await hpas.wait_for(lambda items: [h for h in items if ((h.get("status") or {}).get("currentMetrics") or [{}])[0]
                                       .get("resource", {}).get("current", {}).get("averageUtilization") == 54],
                        DEADLINE, "the HPA to measure 54 %")
    assert (await cluster.client.get(DEPLOYMENTS, "web", namespace="default"))["spec"]["replicas"] == 4

    usage.cpu["web"] = "10m"           # 4 pods at 10 % want 1 (ceil(4 * 10 / 50))
    lowered = time.monotonic()
    await deploys.wait_for(replicas_are("web", 1), DEADLINE)
    # the 2 s stabilization window kept the highest recommendation (4) until it passed
    assert time.monotonic() - lowered >= 2.0
    status = (await cluster.client.get(HPAS, "web", namespace="default"))["status"]
    assert status["desiredReplicas"] == 1


async def test_a_scale_down_policy_removes_one_pod_per_period(cluster: Cluster, usage: SetUsage) -> None:
    deploys = await cluster.observe(DEPLOYMENTS)
    hpas = await cluster.observe(HPAS)
    await cluster.client.create(DEPLOYMENTS, deployment("web", 4))
    await deploys.wait_for(replicas_are("web", 4), DEADLINE)
    usage.cpu["web"] = "10m"
    await cluster.client.create(HPAS, hpa("web", behavior={"scaleDown": {
        "stabilizationWindowSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 600}]}}))
    await deploys.wait_for(replicas_are("web", 3), DEADLINE)
    limited = await hpas.wait_for(
        lambda items: [h for h in items if condition(h, "ScalingLimited").get("reason") == "ScaleDownLimit"],
        DEADLINE, "ScalingLimited ScaleDownLimit")
    assert limited[0]["status"]["desiredReplicas"] == 3
    assert (await cluster.client.get(DEPLOYMENTS, "web", namespace="default"))["spec"]["replicas"] == 3


async def test_without_metrics_it_says_so_and_leaves_the_replicas_alone(cluster: Cluster) -> None:
    deploys = await cluster.observe(DEPLOYMENTS)
    hpas = await cluster.observe(HPAS)
    events = await cluster.observe(EVENTS)
    await cluster.client.create(DEPLOYMENTS, deployment("quiet", 2))
    await deploys.wait_for(replicas_are("quiet", 2), DEADLINE)
    await cluster.client.create(HPAS, hpa("quiet"))     # no usage set: no PodMetrics
    found = await hpas.wait_for(
        lambda items: [h for h in items if condition(h, "ScalingActive").get("status") == "False"],
        DEADLINE, "ScalingActive=False")
    active = condition(found[0], "ScalingActive")
    assert active["reason"] == "FailedGetResourceMetric"
    assert active["message"] == ("the HPA was unable to compute the replica count: failed to get cpu utilization: "
                                 "unable to get metrics for resource cpu: no metrics returned from resource "
                                 "metrics API")
    await events.wait_for(lambda items: [e for e in items if e["reason"] == "FailedComputeMetricsReplicas"],
                          DEADLINE, "a FailedComputeMetricsReplicas event")
    assert (await cluster.client.get(DEPLOYMENTS, "quiet", namespace="default"))["spec"]["replicas"] == 2


async def test_custom_metrics_have_no_source_and_a_missing_target_is_reported(cluster: Cluster) -> None:
    hpas = await cluster.observe(HPAS)
    await cluster.client.create(DEPLOYMENTS, deployment("custom", 1))
    await cluster.client.create(HPAS, hpa("custom", metrics=[{"type": "Pods", "pods": {
        "metric": {"name": "requests_per_second"}, "target": {"type": "AverageValue", "averageValue": "10"}}}]))
    found = await hpas.wait_for(
        lambda items: [h for h in items if condition(h, "ScalingActive").get("reason") == "FailedGetPodsMetric"],
        DEADLINE, "FailedGetPodsMetric")
    assert "pods metric requests_per_second" in condition(found[0], "ScalingActive")["message"]

    await cluster.client.create(HPAS, hpa("nothing"))   # no Deployment of that name
    found = await hpas.wait_for(
        lambda items: [h for h in items if h["metadata"]["name"] == "nothing"
                       and condition(h, "AbleToScale").get("reason") == "FailedGetScale"],
        DEADLINE, "FailedGetScale")
    assert condition(found[0], "AbleToScale")["status"] == "False"
    assert "not found" in condition(found[0], "AbleToScale")["message"]


async def test_a_target_scaled_to_zero_turns_autoscaling_off(cluster: Cluster, usage: SetUsage) -> None:
    hpas = await cluster.observe(HPAS)
    await cluster.client.create(DEPLOYMENTS, deployment("idle", 0))
    usage.cpu["idle"] = "500m"
    await cluster.client.create(HPAS, hpa("idle"))
    found = await hpas.wait_for(
        lambda items: [h for h in items if condition(h, "ScalingActive").get("reason") == "ScalingDisabled"],
        DEADLINE, "ScalingDisabled")
    assert found[0]["status"]["desiredReplicas"] == 0
    assert (await cluster.client.get(DEPLOYMENTS, "idle", namespace="default"))["spec"]["replicas"] == 0


async def test_a_replicaset_scales_on_average_memory(cluster: Cluster, usage: SetUsage) -> None:
    """Any kind with a scale subresource is a target; AverageValue targets need no requests."""
    from skiff.client.resources import REPLICASETS

    replicasets = await cluster.observe(REPLICASETS)
    rs = deployment("cache", 1)
    rs["kind"] = "ReplicaSet"
    rs["spec"]["template"]["spec"]["containers"][0].pop("resources")
    await cluster.client.create(REPLICASETS, rs)
    usage.cpu["cache"] = "1m"        # and 10Mi of memory per pod, against a 4Mi average target
    body = hpa("cache", maximum=4, metrics=[{"type": "Resource", "resource": {
        "name": "memory", "target": {"type": "AverageValue", "averageValue": "4Mi"}}}])
    body["spec"]["scaleTargetRef"]["kind"] = "ReplicaSet"
    await cluster.client.create(HPAS, body)
    # ceil(1 * 10Mi / 4Mi) = 3
    await replicasets.wait_for(lambda items: [r for r in items if r["spec"]["replicas"] == 3],
                               DEADLINE, "the ReplicaSet scaled to 3")
    status = (await cluster.client.get(HPAS, "cache", namespace="default"))["status"]
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "memory", "current": {"averageValue": "10485760"}}}]
