"""Exponential back-off before a Job replaces failed pods.

After ``n`` pod failures in a row (since the last success) the next pod is
created no sooner than ``base * 2**(n-1)`` after the last failure, capped::

    failures   1     2     3     4      5      6     ...
    delay      10s   20s   40s   80s    160s   320s  then 6 min (the cap)

The record per Job (failures since the last success, time of the last
failure) lives in memory only, like Kubernetes' back-off store: it is rebuilt
from the pods the controller counts in each sync, oldest first.  A pod's finish
time is the latest ``finishedAt`` of its containers, else when it stopped
being Ready, else its deletion time minus the grace period, else its creation.

``base`` and ``cap`` are constructor arguments of the controller, so tests can
shrink them (Kubernetes documents 10 s doubling, capped at six minutes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ...api.kinds.meta.cells import parse_time

Obj = dict[str, Any]

DEFAULT_BASE = 10.0
DEFAULT_CAP = 360.0


@dataclass(frozen=True)
class BackoffRecord:
    """Consecutive failures since the last success, and when the last one happened."""

    failures: int = 0
    last_failure: float | None = None


def _containers_finished(pod: Obj) -> float | None:
    """The latest container finish time, if every (app and sidecar) container finished."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    sidecars = {c.get("name") for c in spec.get("initContainers") or []
                if c.get("restartPolicy") == "Always"}
    statuses = list(status.get("containerStatuses") or [])
    statuses += [s for s in status.get("initContainerStatuses") or [] if s.get("name") in sidecars]
    latest: float | None = None
    for cs in statuses:
        finished = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is None:
            return None
        latest = max(latest or finished.timestamp(), finished.timestamp())
    return latest


def finish_time(pod: Obj) -> float:
    """When a finished pod finished (epoch seconds; see module docstring)."""
    done = _containers_finished(pod)
    if done is not None:
        return done
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "False":
            when = parse_time(cond.get("lastTransitionTime"))
            if when is not None:
                return when.timestamp()
    meta = pod.get("metadata") or {}
    deleted = parse_time(meta.get("deletionTimestamp"))
    if deleted is not None:
        return deleted.timestamp() - int(meta.get("deletionGracePeriodSeconds") or 0)
    created = parse_time(meta.get("creationTimestamp"))
    return created.timestamp() if created else 0.0


def next_record(old: BackoffRecord, succeeded: Iterable[Obj], failed: Iterable[Obj]) -> BackoffRecord:
    """The record after counting newly succeeded and newly failed pods."""
    success_times = sorted(finish_time(p) for p in succeeded)
    failure_times = sorted(finish_time(p) for p in failed)
    if not success_times:
        if not failure_times:
            return old
        return BackoffRecord(old.failures + len(failure_times), failure_times[-1])
    last_success = success_times[-1]
    later = [t for t in failure_times if t > last_success]
    return BackoffRecord(len(later), later[-1] if later else None)


def delay_for(failures: int, base: float, cap: float) -> float:
    """The back-off after ``failures`` consecutive failures (0 for none)."""
    if failures <= 0:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            return cap
    return min(delay, cap)


def remaining(failures: int, last_failure: float | None, now: float, *, base: float,
              cap: float) -> float:
    """Seconds still to wait before creating a pod (0: go ahead)."""
    if failures <= 0 or last_failure is None:
        return 0.0
    return max(0.0, delay_for(failures, base, cap) - (now - last_failure))


class BackoffStore:
    """The record of every Job, by key (in memory, as in Kubernetes)."""

    def __init__(self) -> None:
        self._records: dict[str, BackoffRecord] = {}

    def get(self, key: str) -> BackoffRecord:
        return self._records.get(key, BackoffRecord())

    def put(self, key: str, record: BackoffRecord) -> None:
        self._records[key] = replace(record)

    def remove(self, key: str) -> None:
        self._records.pop(key, None)
