"""The HPA's replica calculator for Resource/ContainerResource metrics: pod grouping,
the tolerance, the dampened second pass, requests, and the errors the HPA reports."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.controllers.podautoscaler.replicas import MetricError, PodMetric, Proposal, resource_replicas

Obj = dict[str, Any]
NOW = 1_700_000_000.0
Mi = 1 << 20


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, cpu: str | None = "100m", *, phase: str = "Running", ready: str | None = "True",
        started: float | None = NOW - 3600, transition: float = NOW - 3500, deleting: bool = False,
        memory: str | None = None) -> Obj:
    """A pod with one container ``app``; by default long started and Ready for an hour."""
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    status: Obj = {"phase": phase, "conditions": []}
    if started is not None:
        status["startTime"] = rfc3339(started)
    if ready is not None:
        status["conditions"].append({"type": "Ready", "status": ready,
                                     "lastTransitionTime": rfc3339(transition)})
    meta: Obj = {"name": name, "namespace": "default"}
    if deleting:
        meta["deletionTimestamp"] = rfc3339(NOW - 1)
    return {"metadata": meta, "spec": {"containers": [{"name": "app", "resources": {"requests": requests}}]},
            "status": status}


def sample(value: int, *, taken: float = NOW - 5, window: float = 30.0) -> PodMetric:
    return PodMetric(value=value, timestamp=taken, window=window)


def cpu(current: int, pods: list[Obj], usage: dict[str, int], target: int, **kw: Any) -> Proposal:
    metrics = {name: sample(v) for name, v in usage.items()}
    return resource_replicas(current, pods, metrics, "cpu", target_utilization=target, now=NOW, **kw)


def names(n: int) -> list[str]:
    return [f"web-{i}" for i in range(n)]


# --- the plain calculation ----------------------------------------------------------------

def test_four_pods_at_twice_their_request_with_a_50_percent_target_want_sixteen() -> None:
    pods = [pod(n) for n in names(4)]
    assert cpu(4, pods, dict.fromkeys(names(4), 200), 50) == Proposal(16, 200, 200)


def test_scale_down_rounds_up() -> None:
    # 20% against 50%: ratio 0.4, 4 pods * 0.4 = 1.6 -> 2
    pods = [pod(n) for n in names(4)]
    assert cpu(4, pods, dict.fromkeys(names(4), 20), 50) == Proposal(2, 20, 20)


def test_within_tolerance_keeps_the_current_count() -> None:
    pods = [pod(n) for n in names(4)]
    assert cpu(4, pods, dict.fromkeys(names(4), 105), 100) == Proposal(4, 105, 105)
    # the current count is returned as given, even when it differs from the pods listed
    assert cpu(6, pods, dict.fromkeys(names(4), 95), 100) == Proposal(6, 95, 95)


def test_tolerance_edges_follow_float_arithmetic() -> None:
    pods = [pod(n) for n in names(4)]
    # |1 - 1.1| is 0.10000000000000009 > 0.1: scales (ceil(4.4) = 5), as Kubernetes does
    assert cpu(4, pods, dict.fromkeys(names(4), 110), 100).replicas == 5
    # |1 - 0.9| is 0.09999999999999998 <= 0.1: stays
    assert cpu(4, pods, dict.fromkeys(names(4), 90), 100).replicas == 4
    # a custom tolerance; its edge is inclusive
    assert cpu(4, pods, dict.fromkeys(names(4), 105), 100, tolerance=0.01).replicas == 5
    assert cpu(4, pods, dict.fromkeys(names(4), 150), 100, tolerance=0.5).replicas == 4


def test_utilization_is_an_integer_percent_of_the_summed_requests() -> None:
    pods = [pod(n) for n in names(3)]
    # 100m used of 300m requested = 33% (truncated); ratio 0.66 * 3 = 1.98 -> 2
    assert cpu(3, pods, {"web-0": 33, "web-1": 33, "web-2": 34}, 50) == Proposal(2, 33, 33)


def test_requests_may_differ_between_pods() -> None:
    pods = [pod("a", "100m"), pod("b", "300m")]
    # 400m used of 400m requested = 100%; target 50 -> ratio 2 -> 4; average usage 200m
    assert cpu(2, pods, {"a": 100, "b": 300}, 50) == Proposal(4, 100, 200)


# --- which pods count ---------------------------------------------------------------------

def test_a_sample_for_a_pod_not_listed_is_not_in_the_utilization() -> None:
    pods = [pod("a"), pod("b")]
    assert cpu(2, pods, {"a": 200, "b": 200, "gone": 0}, 50) == Proposal(8, 200, 200)


def test_deleting_and_failed_pods_are_ignored_entirely() -> None:
    pods = [pod("a"), pod("b"), pod("gone", deleting=True), pod("crashed", phase="Failed")]
    usage = {"a": 200, "b": 200, "gone": 0, "crashed": 0}
    # only a and b count (200%); ignored pods are not stand-ins either: 4 * 2 = 8
    assert cpu(4, pods, usage, 50) == Proposal(8, 200, 200)


def test_unready_pods_count_as_zero_when_scaling_up() -> None:
    pods = [pod(n) for n in names(3)] + [pod("starting", phase="Pending", ready="False")]
    # the ready three run at 200%; with the pending pod at 0: 600m / 400m = 150% -> 3 * 4 = 12
    assert cpu(4, pods, dict.fromkeys(names(3), 200), 50) == Proposal(12, 200, 200)


def test_unready_pods_at_zero_can_cancel_a_scale_up() -> None:
    # the scale says 3; a surge pod is still Pending.  The ready three alone (120%) would ask
    # for ceil(1.2 * 3) = 4, but with the pending pod at 0 the load is 180m / 400m = 45%: 0.9 < 1
    pods = [pod(n) for n in names(3)] + [pod("surge", phase="Pending", ready="False")]
    assert cpu(3, pods, dict.fromkeys(names(3), 60), 50) == Proposal(3, 60, 60)


def test_unready_pods_cannot_turn_a_scale_up_into_a_scale_down() -> None:
    pods = [pod("a"), pod("b"), pod("p1", phase="Pending"), pod("p2", phase="Pending")]
    # a and b at 140% of target would give ceil(1.4 * 2) = 3 < 4; rebalanced 140/400 = 35% -> keep 4
    assert cpu(4, pods, {"a": 70, "b": 70}, 50) == Proposal(4, 70, 70)


def test_unready_pods_do_not_matter_when_scaling_down() -> None:
    pods = [pod(n) for n in names(4)] + [pod("starting", phase="Pending")]
    # 20% vs 50%: 0.4 * 4 ready = 1.6 -> 2; pending pods are left out, not counted at 0
    assert cpu(5, pods, dict.fromkeys(names(4), 20), 50) == Proposal(2, 20, 20)


def test_missing_metrics_count_as_full_request_when_scaling_down() -> None:
    pods = [pod(n) for n in names(4)]
    # three at 10%, the fourth's sample missing: counted at 100m -> 130m / 400m = 32%
    # ratio 0.64 * 4 samples = 2.56 -> 3 (not ceil(0.2 * 3) = 1)
    assert cpu(4, pods, dict.fromkeys(names(3), 10), 50) == Proposal(3, 10, 10)


def test_missing_metrics_count_as_the_target_when_it_is_above_100_percent() -> None:
    pods = [pod(n) for n in names(4)]
    # target 150%: the missing pod counts at 150m -> 180m / 400m = 45%, 0.3 * 4 = 1.2 -> 2
    assert cpu(4, pods, dict.fromkeys(names(3), 10), 150) == Proposal(2, 10, 10)


def test_missing_metrics_count_as_zero_when_scaling_up() -> None:
    pods = [pod(n) for n in names(4)]
    # 600m / 400m = 150% against 50%: 3 * 4 = 12
    assert cpu(4, pods, dict.fromkeys(names(3), 200), 50) == Proposal(12, 200, 200)
    # two at 120% of target and two missing: 120m / 400m = 30% -> would scale down: keep 4
    assert cpu(4, pods, {"web-0": 60, "web-1": 60}, 50) == Proposal(4, 60, 60)


def test_second_pass_never_moves_against_the_ratio() -> None:
    # the scale was just lowered to 2 while 4 pods remain; the dampened proposal (3) is
    # still below target but above the current count: keep 2
    pods = [pod(n) for n in names(4)]
    assert cpu(2, pods, dict.fromkeys(names(3), 10), 50) == Proposal(2, 10, 10)


# --- cpu readiness ------------------------------------------------------------------------

def test_young_pod_sample_taken_before_a_full_window_of_readiness_is_unready() -> None:
    old = pod("old")
    # started 60 s ago (inside the 300 s initialization period), Ready 30 s ago; its sample
    # (taken 5 s ago, 30 s window) began before it was Ready: treated as unready -> 0
    young = pod("young", started=NOW - 60, transition=NOW - 30)
    # old at 150%: rebalanced 150m / 200m = 75% -> 1.5 * 2 = 3
    assert cpu(2, [old, young], {"old": 150, "young": 150}, 50).replicas == 3
    # Ready for 60 s: the window lies after the transition, the sample counts -> 3 * 2 = 6
    young = pod("young", started=NOW - 90, transition=NOW - 60)
    assert cpu(2, [old, young], {"old": 150, "young": 150}, 50).replicas == 6


def test_young_pod_not_ready_is_unready() -> None:
    # started 60 s ago, Ready until 10 s ago
    young = pod("young", ready="False", started=NOW - 60, transition=NOW - 10)
    assert cpu(2, [pod("old"), young], {"old": 150, "young": 150}, 50).replicas == 3
    # with a 30 s initialization period it is no longer young; it lost readiness 50 s
    # after starting (later than the 30 s readiness delay), so it was Ready once: it counts
    assert cpu(2, [pod("old"), young], {"old": 150, "young": 150}, 50,
               cpu_initialization_period=30.0).replicas == 6


def test_old_pod_that_never_became_ready_is_unready() -> None:
    never = pod("never", ready="False", started=NOW - 600, transition=NOW - 595)
    assert cpu(2, [pod("ok"), never], {"ok": 150, "never": 150}, 50).replicas == 3
    # Ready once, then failing its probe (transition well after start + 30 s): it counts
    lapsed = pod("lapsed", ready="False", started=NOW - 600, transition=NOW - 100)
    assert cpu(2, [pod("ok"), lapsed], {"ok": 150, "lapsed": 150}, 50).replicas == 6
    # the delay is a parameter: with 600 s, the lapsed pod "never became ready" too
    assert cpu(2, [pod("ok"), lapsed], {"ok": 150, "lapsed": 150}, 50,
               initial_readiness_delay=600.0).replicas == 3


def test_pod_without_ready_condition_or_start_time_is_unready_for_cpu() -> None:
    for odd in (pod("odd", ready=None), pod("odd", started=None)):
        assert cpu(2, [pod("ok"), odd], {"ok": 150, "odd": 150}, 50).replicas == 3


def test_readiness_rules_apply_to_cpu_only() -> None:
    pods = [pod("ok", cpu=None, memory="100Mi"),
            pod("young", cpu=None, memory="100Mi", ready="False", started=NOW - 60)]
    metrics = {"ok": sample(150 * Mi * 1000), "young": sample(150 * Mi * 1000)}
    got = resource_replicas(2, pods, metrics, "memory", target_utilization=50, now=NOW)
    assert got == Proposal(6, 150, 150 * Mi * 1000)


# --- requests -----------------------------------------------------------------------------

def test_container_resource_uses_that_containers_request_only() -> None:
    p = pod("web-0")
    p["spec"]["containers"].append({"name": "sidecar", "resources": {}})  # no request: fine here
    metrics = {"web-0": sample(200)}
    got = resource_replicas(1, [p], metrics, "cpu", target_utilization=50, container="app", now=NOW)
    assert got == Proposal(4, 200, 200)


def test_restartable_init_containers_add_their_requests() -> None:
    p = pod("web-0")
    p["spec"]["initContainers"] = [
        {"name": "proxy", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}},
        {"name": "setup", "resources": {}},  # a run-to-completion init container is not counted
    ]
    # 400m of 200m = 200% against 100%: 2
    assert cpu(1, [p], {"web-0": 400}, 100) == Proposal(2, 200, 400)


def test_missing_request_is_an_error() -> None:
    pods = [pod("web-0"), pod("web-1", cpu=None)]
    with pytest.raises(MetricError) as caught:
        cpu(2, pods, {"web-0": 50, "web-1": 50}, 50)
    assert (caught.value.reason, caught.value.message) == (
        "FailedGetResourceMetric", "missing request for cpu in container app of Pod web-1")
    with pytest.raises(MetricError) as caught:
        resource_replicas(2, pods, {"web-0": sample(50), "web-1": sample(50)}, "cpu",
                          target_utilization=50, container="app", now=NOW)
    assert caught.value.reason == "FailedGetContainerResourceMetric"
    assert str(caught.value) == "missing request for cpu in container app of Pod web-1"


def test_missing_request_in_an_ignored_pod_is_still_an_error() -> None:
    pods = [pod("web-0"), pod("old", cpu=None, phase="Failed")]
    with pytest.raises(MetricError, match="missing request for cpu in container app of Pod old"):
        cpu(2, pods, {"web-0": 50}, 50)


def test_zero_requests_match_no_metrics() -> None:
    with pytest.raises(MetricError) as caught:
        cpu(1, [pod("web-0", cpu="0")], {"web-0": 50}, 50)
    assert caught.value.message == "no metrics returned matched known pods"


def test_average_value_target_needs_no_requests() -> None:
    pods = [pod(n, cpu=None) for n in names(4)]
    metrics = {n: sample(300) for n in names(4)}
    got = resource_replicas(4, pods, metrics, "cpu", target_average_value=150, now=NOW)
    assert got == Proposal(8, None, 300)


def test_average_value_missing_pods_count_at_the_target_when_scaling_down() -> None:
    pods = [pod(n, cpu=None) for n in names(4)]
    metrics = {n: sample(50) for n in names(3)}
    # (150m + 100m) / 4 = 62m against 100m: 0.62 * 4 = 2.48 -> 3
    got = resource_replicas(4, pods, metrics, "cpu", target_average_value=100, now=NOW)
    assert got == Proposal(3, None, 50)


def test_average_value_memory_in_milli_bytes() -> None:
    pods = [pod(n, cpu=None) for n in names(2)]
    metrics = {n: sample(384 * Mi * 1000) for n in names(2)}
    got = resource_replicas(2, pods, metrics, "memory", target_average_value=256 * Mi * 1000, now=NOW)
    assert got == Proposal(3, None, 384 * Mi * 1000)


# --- errors -------------------------------------------------------------------------------

def test_no_pods() -> None:
    with pytest.raises(MetricError) as caught:
        cpu(1, [], {}, 50)
    assert (caught.value.reason, caught.value.message) == (
        "FailedGetResourceMetric", "no pods returned by selector while calculating replica count")


def test_no_usable_metrics() -> None:
    pods = [pod("a"), pod("b", phase="Pending")]
    with pytest.raises(MetricError) as caught:
        cpu(2, pods, {"b": 100}, 50)
    assert (caught.value.reason, caught.value.message) == (
        "FailedGetResourceMetric", "did not receive metrics for targeted pods (pods might be unready)")


def test_no_target() -> None:
    with pytest.raises(MetricError) as caught:
        resource_replicas(1, [pod("a")], {"a": sample(1)}, "cpu", now=NOW)
    assert caught.value.message == ("invalid resource metric source: neither an average utilization "
                                    "target nor an average value (usage) target was set")
