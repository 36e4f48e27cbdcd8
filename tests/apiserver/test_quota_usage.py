"""The quota evaluators and resource-list arithmetic admission and the controller share."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from skiff.api.quantity import parse_quantity
from skiff.api.quotausage import (
    calculate_usage, evaluator_for, kind_for_name, kinds_to_list, pod_counts,
)
from skiff.api.resourcelist import (
    add, format_list, parse_list, pod_limits, pod_requests, pretty, subtract_floor,
)

NOW = datetime(2025, 1, 1, tzinfo=timezone.utc)


def container(cpu: str, **extra: Any) -> dict[str, Any]:
    return {"name": "c", "resources": {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}, **extra}


def test_sums_keep_the_suffix_style_of_a_non_zero_left_side() -> None:
    total = add(parse_list({"memory": "0", "cpu": "1"}), parse_list({"memory": "256Mi", "cpu": "500m"}))
    assert format_list(total) == {"cpu": "1500m", "memory": "256Mi"}
    left = subtract_floor(parse_list({"cpu": "1", "pods": "1"}), parse_list({"cpu": "2", "memory": "1Gi"}))
    assert format_list(left) == {"cpu": "0", "memory": "0", "pods": "1"}
    assert pretty(parse_list({"pods": "1", "cpu": "2"})) == "cpu=2,pods=1"


def test_pod_totals_count_sidecars_with_the_containers_and_init_containers_alone() -> None:
    spec = {"containers": [container("100m"), container("100m")],
            "initContainers": [container("50m", restartPolicy="Always"), container("400m")],
            "overhead": {"cpu": "10m", "memory": "1Mi"}}
    # containers 200m + sidecar 50m = 250m; the init container runs beside the sidecar: 450m
    assert format_list(pod_requests(spec, overhead=False)) == {"cpu": "450m"}
    assert format_list(pod_requests(spec)) == {"cpu": "460m", "memory": "1Mi"}
    assert format_list(pod_limits(spec)) == {"cpu": "460m"}  # overhead only raises limits set


def test_finished_and_stuck_terminating_pods_stop_counting() -> None:
    pod: dict[str, Any] = {"metadata": {}, "spec": {"containers": [container("1")]}}
    assert pod_counts(pod, NOW)
    assert not pod_counts({**pod, "status": {"phase": "Failed"}}, NOW)
    deleting = {"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30},
                "spec": pod["spec"]}
    assert pod_counts(deleting, NOW + timedelta(seconds=30))
    assert not pod_counts(deleting, NOW + timedelta(seconds=31))
    usage = evaluator_for("", "pods").usage({**pod, "status": {"phase": "Succeeded"}}, NOW)  # type: ignore[union-attr]
    assert format_list(usage) == {"count/pods": "1"}


def test_services_and_claims() -> None:
    services = evaluator_for("", "services")
    assert services is not None and services.handles_update
    lb = {"spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": False,
                   "ports": [{"port": 80, "nodePort": 30080}, {"port": 443}]}}
    assert format_list(services.usage(lb, NOW)) == {
        "count/services": "1", "services": "1", "services.loadbalancers": "1", "services.nodeports": "1"}
    claims = evaluator_for("", "persistentvolumeclaims")
    assert claims is not None
    claim = {"metadata": {"annotations": {"volume.beta.kubernetes.io/storage-class": "gold"}},
             "spec": {"storageClassName": "silver", "resources": {"requests": {"storage": "1500m"}}}}
    assert format_list(claims.usage(claim, NOW)) == {
        "count/persistentvolumeclaims": "1", "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "1",
        "gold.storageclass.storage.k8s.io/requests.storage": "2", "persistentvolumeclaims": "1",
        "requests.storage": "2"}


def test_names_map_to_the_kinds_that_count_them() -> None:
    assert kind_for_name("requests.cpu") == ("", "pods")
    assert kind_for_name("requests.example.com/gpu") == ("", "pods")
    assert kind_for_name("services.nodeports") == ("", "services")
    assert kind_for_name("bronze.storageclass.storage.k8s.io/requests.storage") == ("", "persistentvolumeclaims")
    assert kind_for_name("secrets") == ("", "secrets")
    assert kind_for_name("count/deployments.apps") == ("apps", "deployments")
    assert kind_for_name("count/events") is None and kind_for_name("foo") is None
    assert evaluator_for("", "events") is None


def test_calculated_usage_respects_scopes_and_zero_fills() -> None:
    quota = {"spec": {"hard": {"pods": "5", "requests.memory": "1Gi", "configmaps": "3"},
                      "scopes": ["NotBestEffort"]}}
    assert kinds_to_list(quota) == [("", "configmaps"), ("", "pods")]
    pods = [{"metadata": {}, "spec": {"containers": [{"name": "a", "resources": {
        "requests": {"memory": "100Mi"}}}]}},
            {"metadata": {}, "spec": {"containers": [{"name": "b"}]}}]  # BestEffort: out of scope
    listed = {("", "pods"): pods, ("", "configmaps"): [{"metadata": {}}]}
    used = calculate_usage(quota, lambda g, p: listed[(g, p)], NOW)
    # a scoped quota matches pods only: the ConfigMap does not count against it
    assert format_list(used) == {"configmaps": "0", "pods": "1", "requests.memory": "100Mi"}
    assert parse_quantity("100Mi") == used["requests.memory"]
