"""How many replicas one Resource (or ContainerResource) metric asks for.

A pure function: the controller lists the pods the target's ``scale.status.selector``
matches, fetches their usage from ``metrics.k8s.io``, and asks
:func:`resource_replicas` for a proposal.  Nothing here reads a clock or the API.

Sorting the pods (first match wins)::

    deletionTimestamp set, or phase Failed ........... ignored  - left out altogether
    phase Pending ..................................... unready
    no sample in ``metrics`` .......................... missing
    resource is cpu and the sample can't be trusted ... unready
    otherwise ......................................... ready

For cpu only, a sample is not trusted when the pod has no Ready condition or no
``status.startTime``, or

- while the pod is young (``startTime + cpu_initialization_period > now``): when the
  pod is not Ready, or when the sample's window began before the pod last changed
  readiness (``timestamp < lastTransitionTime + window``) - start-up bursts are not load;
- once it is older: when it is not Ready *and has never been* (its Ready condition last
  changed within ``initial_readiness_delay`` of ``startTime``).  A pod that was Ready and
  then failed its probe keeps counting: that is usually the load talking.

Computing the proposal (a Utilization target; an AverageValue target is the same on
raw usage, the average per sample against the target value)::

    samples of the ready pods
      utilization = sum(usage) * 100 // sum(requests)         integer percent
      ratio       = utilization / target
    no missing pods, and not (unready pods and ratio > 1):
      |1 - ratio| <= tolerance ......................... current_replicas
      otherwise ........................................ ceil(ratio * ready pods)
    otherwise a second, dampened pass with stand-in samples:
      ratio < 1: each missing pod uses max(100, target) % of its request
                 (AverageValue: exactly the target value)
      ratio > 1: each missing pod uses 0, each unready pod uses 0
      the new ratio within tolerance, or on the other side of 1 ... current_replicas
      n = ceil(new ratio * samples); n moves against the ratio .... current_replicas
      otherwise .................................................. n

So missing pods slow a scale-down, and missing or unready pods slow a scale-up;
neither can turn the direction round.  The utilization and average value reported in
:class:`Proposal` are the first pass's, before any stand-ins, as Kubernetes reports them
in ``status.currentMetrics``.

Requests are summed per pod over its containers and its restartable
(``restartPolicy: Always``) init containers, or over ``container`` alone; a container
without a request for the resource is an error, even in an ignored pod.

Failures are :class:`MetricError` with the reason the HPA controller gives them
(``FailedGetResourceMetric``, or ``FailedGetContainerResourceMetric`` when ``container`` is
set) and the replica calculator's own message::

    no pods returned by selector while calculating replica count
    did not receive metrics for targeted pods (pods might be unready)
    missing request for cpu in container app of Pod web-7d4b9-x2x5q
    no metrics returned matched known pods
    invalid resource metric source: neither an average utilization target nor an
        average value (usage) target was set

The controller wraps the message the way Kubernetes does: the Warning event (and the
error it logs) say ``failed to get cpu utilization: <message>`` (``... cpu usage: ...`` for
an AverageValue target), and the ``ScalingActive=False`` condition says
``the HPA was unable to compute the replica count: failed to get cpu utilization: <message>``.

Not modelled: per-HPA tolerances (``behavior.*.tolerance``, alpha after v1.32) and
pod-level ``spec.resources`` requests (alpha after v1.32).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ...api.kinds.meta.cells import parse_time
from ...api.quantity import milli_value

__all__ = ["MetricError", "PodMetric", "Proposal", "resource_replicas"]

Obj = dict[str, Any]

NO_PODS = "no pods returned by selector while calculating replica count"
NO_METRICS = "did not receive metrics for targeted pods (pods might be unready)"
NO_MATCHING_METRICS = "no metrics returned matched known pods"
NO_TARGET = ("invalid resource metric source: neither an average utilization target "
             "nor an average value (usage) target was set")


@dataclass(frozen=True)
class PodMetric:
    """One pod's usage sample, as metrics.k8s.io reports it."""

    value: int        # milli-units: millicores for cpu, milli-bytes (bytes * 1000) for memory
    timestamp: float  # epoch seconds when the sample was taken
    window: float     # seconds the sample covers


@dataclass(frozen=True)
class Proposal:
    """What one metric proposes, and what the HPA reports as its current value."""

    replicas: int
    utilization: int | None  # percent of requests (Utilization targets), else None
    average_value: int       # average usage per sampled pod in milli-units, before stand-ins


class MetricError(Exception):
    """A metric that cannot give a proposal: ``reason`` and ``message`` as the HPA reports them."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class _Groups:
    ready: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def resource_replicas(current_replicas: int, pods: list[Obj], metrics: Mapping[str, PodMetric],
                      resource: str, *, target_utilization: int | None = None,
                      target_average_value: int | None = None, container: str | None = None,
                      now: float, tolerance: float = 0.1, cpu_initialization_period: float = 300.0,
                      initial_readiness_delay: float = 30.0) -> Proposal:
    """Propose a replica count for one Resource/ContainerResource metric (see the module doc).

    ``target_utilization`` (percent of requests) or ``target_average_value`` (milli-units
    per pod) is the target; like Kubernetes, an average value wins when both are given.
    ``metrics`` maps pod name to its sample (its containers' usage summed, or only
    ``container``'s).  Raises :class:`MetricError`.
    """
    reason = "FailedGetContainerResourceMetric" if container else "FailedGetResourceMetric"
    if target_average_value is None and target_utilization is None:
        raise MetricError(reason, NO_TARGET)
    if not pods:
        raise MetricError(reason, NO_PODS)

    groups = _group_pods(pods, metrics, resource, now, cpu_initialization_period,
                         initial_readiness_delay)
    usable = {name: sample.value for name, sample in metrics.items()
              if name not in groups.ignored and name not in groups.unready}
    if not usable:
        raise MetricError(reason, NO_METRICS)

    if target_average_value is not None:
        return _average_value_replicas(current_replicas, usable, groups, target_average_value,
                                       tolerance)
    assert target_utilization is not None
    requests = _pod_requests(pods, container, resource, reason)
    return _utilization_replicas(current_replicas, usable, requests, groups, target_utilization,
                                 tolerance, reason)


# --- the two calculations ------------------------------------------------------------------

def _utilization_replicas(current: int, usage: dict[str, int], requests: dict[str, int],
                          groups: _Groups, target: int, tolerance: float, reason: str) -> Proposal:
    ratio, utilization, average = _utilization_ratio(usage, requests, target, reason)
    rebalance_unready = bool(groups.unready) and ratio > 1.0
    if not rebalance_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return Proposal(current, utilization, average)
        return Proposal(math.ceil(ratio * groups.ready), utilization, average)

    adjusted = dict(usage)
    if ratio < 1.0:
        fallback = max(100, target)  # a missing pod is assumed busy: all its request, or the target
        adjusted.update((name, requests.get(name, 0) * fallback // 100) for name in groups.missing)
    elif ratio > 1.0:
        adjusted.update((name, 0) for name in groups.missing)
    if rebalance_unready:
        adjusted.update((name, 0) for name in groups.unready)

    new_ratio, _, _ = _utilization_ratio(adjusted, requests, target, reason)
    return Proposal(_second_pass(current, ratio, new_ratio, len(adjusted), tolerance),
                    utilization, average)


def _average_value_replicas(current: int, usage: dict[str, int], groups: _Groups, target: int,
                            tolerance: float) -> Proposal:
    ratio, average = _usage_ratio(usage, target)
    rebalance_unready = bool(groups.unready) and ratio > 1.0
    if not rebalance_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return Proposal(current, None, average)
        return Proposal(math.ceil(ratio * groups.ready), None, average)

    adjusted = dict(usage)
    if ratio < 1.0:
        adjusted.update((name, target) for name in groups.missing)
    elif ratio > 1.0:
        adjusted.update((name, 0) for name in groups.missing)
    if rebalance_unready:
        adjusted.update((name, 0) for name in groups.unready)

    new_ratio, _ = _usage_ratio(adjusted, target)
    return Proposal(_second_pass(current, ratio, new_ratio, len(adjusted), tolerance), None, average)


def _second_pass(current: int, ratio: float, new_ratio: float, samples: int,
                 tolerance: float) -> int:
    """The dampened answer: never inside the tolerance, never against the first ratio."""
    if (abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio)
            or (ratio > 1.0 > new_ratio)):
        return current
    proposed = math.ceil(new_ratio * samples)
    if (new_ratio < 1.0 and proposed > current) or (new_ratio > 1.0 and proposed < current):
        return current
    return proposed


def _utilization_ratio(usage: dict[str, int], requests: dict[str, int], target: int,
                       reason: str) -> tuple[float, int, int]:
    """(ratio to target, utilization %, average usage) over the samples of pods with requests."""
    used = requested = entries = 0
    for name, value in usage.items():
        if name not in requests:  # a sample for a pod we don't know: not counted here
            continue
        used += value
        requested += requests[name]
        entries += 1
    if requested == 0:
        raise MetricError(reason, NO_MATCHING_METRICS)
    utilization = used * 100 // requested
    return utilization / target, utilization, used // entries


def _usage_ratio(usage: dict[str, int], target: int) -> tuple[float, int]:
    """(ratio to target, average usage) over every sample."""
    average = sum(usage.values()) // len(usage)
    return average / target, average


# --- pods -----------------------------------------------------------------------------------

def _group_pods(pods: Iterable[Obj], metrics: Mapping[str, PodMetric], resource: str, now: float,
                cpu_initialization_period: float, initial_readiness_delay: float) -> _Groups:
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        meta = pod.get("metadata") or {}
        status = pod.get("status") or {}
        name = meta.get("name", "")
        phase = status.get("phase")
        if meta.get("deletionTimestamp") is not None or phase == "Failed":
            ignored.add(name)
            continue
        if phase == "Pending":
            unready.add(name)
            continue
        sample = metrics.get(name)
        if sample is None:
            missing.add(name)
            continue
        if resource == "cpu" and _cpu_sample_untrusted(status, sample, now, cpu_initialization_period,
                                                       initial_readiness_delay):
            unready.add(name)
            continue
        ready += 1
    return _Groups(ready, frozenset(unready), frozenset(missing), frozenset(ignored))


def _cpu_sample_untrusted(status: Obj, sample: PodMetric, now: float, init_period: float,
                          readiness_delay: float) -> bool:
    condition = next((c for c in status.get("conditions") or []
                      if isinstance(c, dict) and c.get("type") == "Ready"), None)
    start = _epoch(status.get("startTime"))
    if condition is None or start is None:
        return True
    not_ready = condition.get("status") == "False"
    # an absent transition time is "the beginning of time", as Go's zero time is
    transition = _epoch(condition.get("lastTransitionTime"))
    transition = -math.inf if transition is None else transition
    if start + init_period > now:
        return not_ready or sample.timestamp < transition + sample.window
    return not_ready and start + readiness_delay > transition


def _pod_requests(pods: Iterable[Obj], container: str | None, resource: str,
                  reason: str) -> dict[str, int]:
    """Each pod's request for ``resource`` in milli-units (``container``'s only, if given)."""
    requests: dict[str, int] = {}
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name", "")
        spec = pod.get("spec") or {}
        containers = list(spec.get("containers") or [])
        containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        total = 0
        for c in containers:
            if container and c.get("name") != container:
                continue
            request = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if request is None:
                raise MetricError(reason, f"missing request for {resource} in container "
                                          f"{c.get('name', '')} of Pod {name}")
            total += milli_value(request)
        requests[name] = total
    return requests


def _epoch(value: Any) -> float | None:
    when = parse_time(value) if isinstance(value, str) else None
    return None if when is None else when.timestamp()
