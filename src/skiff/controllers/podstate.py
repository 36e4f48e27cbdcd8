"""What controllers need to know about a pod: active, ready, available, restarts.

These are the definitions every workload controller shares (Kubernetes'
``IsPodActive``, ``IsPodReady``, ``IsPodAvailable``)::

    active     phase not Succeeded/Failed and no deletionTimestamp
    ready      condition Ready=True
    available  ready, and ready for at least minReadySeconds (strictly longer, as
               Kubernetes compares "ready since + minReadySeconds < now")
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from ..api.kinds.meta.cells import parse_time

Obj = Mapping[str, Any]


def is_active(pod: Obj) -> bool:
    """Counts towards replicas: not finished and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not (pod.get("metadata") or {}).get(
        "deletionTimestamp")


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def ready_condition(pod: Obj) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond  # type: ignore[no-any-return]
    return None


def is_ready(pod: Obj) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: Obj) -> datetime | None:
    """When the pod last became ready (``None`` when it is not ready or it is unknown)."""
    cond = ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime"))


def readiness(pod: Obj, min_ready_seconds: int, now: float) -> tuple[bool, bool]:
    """(ready, available) in one look at the pod's conditions."""
    cond = ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return False, False
    if min_ready_seconds <= 0:
        return True, True
    since = parse_time(cond.get("lastTransitionTime"))
    return True, since is not None and since.timestamp() + min_ready_seconds < now


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready for more than ``min_ready_seconds`` as of ``now`` (epoch seconds)."""
    return readiness(pod, min_ready_seconds, now)[1]


def seconds_until_available(pod: Obj, min_ready_seconds: int, now: float) -> float | None:
    """How long until a ready pod counts as available (``None``: not ready, or already)."""
    if min_ready_seconds <= 0 or not is_ready(pod):
        return None
    since = ready_since(pod)
    if since is None:
        return None
    left = since.timestamp() + min_ready_seconds - now
    return left if left >= 0 else None


def max_restarts(pod: Obj) -> int:
    return max((int(c.get("restartCount") or 0)
                for c in (pod.get("status") or {}).get("containerStatuses") or []), default=0)


def creation_time(obj: Obj) -> datetime | None:
    return parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
