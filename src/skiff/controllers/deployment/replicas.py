"""Rollout arithmetic: surge and unavailability budgets, and how to share replicas.

``maxSurge`` and ``maxUnavailable`` are ints or percentages of ``spec.replicas``.
Percentages of surge round *up* and of unavailability round *down*; if both come
out 0, one pod may be unavailable (otherwise the rollout could never move)::

    replicas 10, maxSurge 25%, maxUnavailable 25%  ->  surge 3, unavailable 2
    replicas 1,  maxSurge 0,   maxUnavailable 10%  ->  surge 0, unavailable 1

During a rolling update the Deployment may run at most ``replicas + surge``
pods and must keep at least ``replicas - unavailable`` available.

Proportional scaling: when a Deployment is resized in the middle of a rollout,
the new size (plus surge) is shared among its active ReplicaSets in proportion
to their sizes; what rounding leaves over goes to the largest one.
"""

from __future__ import annotations

import math
from typing import Any

from .history import MAX_REPLICAS_ANNOTATION, annotation_int

Obj = dict[str, Any]


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """An int, or a percentage of ``total`` (rounded up or down)."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)  # validation only admits ints and percentages
    exact = int(text[:-1]) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def desired_replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def is_rolling(d: Obj) -> bool:
    strategy = ((d.get("spec") or {}).get("strategy") or {}).get("type") or "RollingUpdate"
    return bool(strategy == "RollingUpdate")


def fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a RollingUpdate Deployment, resolved."""
    rolling = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    replicas = desired_replicas(d)
    surge = scaled_value(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    replicas = desired_replicas(d)
    if not is_rolling(d) or replicas == 0:
        return 0
    return min(fenceposts(d)[1], replicas)


def spec_replicas(rs: Obj | None) -> int:
    if rs is None:
        return 0
    return int((rs.get("spec") or {}).get("replicas") or 0)


def status_count(rs: Obj | None, field: str) -> int:
    if rs is None:
        return 0
    return int((rs.get("status") or {}).get(field) or 0)


def surviving_available(rs: Obj) -> int:
    """Available pods ``rs`` keeps once it reaches its size.

    Its status lags behind a scale-down (pods are still being deleted); the
    ReplicaSet deletes unavailable pods first, so at most ``spec.replicas`` of the
    available ones survive.  Counting those, not the stale status, keeps a
    rollout from taking more than maxUnavailable pods down while statuses catch
    up (Kubernetes sums the raw status here and may briefly dip below).
    """
    return min(status_count(rs, "availableReplicas"), spec_replicas(rs))


def total_spec(rss: list[Obj]) -> int:
    return sum(spec_replicas(rs) for rs in rss)


def total_status(rss: list[Obj], field: str) -> int:
    return sum(status_count(rs, field) for rs in rss)


def new_rs_replicas(d: Obj, all_rss: list[Obj], new_rs: Obj) -> int:
    """How big the new ReplicaSet may be now (RollingUpdate: within the surge budget)."""
    replicas = desired_replicas(d)
    if not is_rolling(d):
        return replicas
    current = total_spec(all_rss)
    most = replicas + max_surge(d)
    if current >= most:
        return spec_replicas(new_rs)  # no room to grow
    grow = min(most - current, replicas - spec_replicas(new_rs))
    return spec_replicas(new_rs) + grow


def _round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    """How many of ``to_add`` replicas (``added`` already handed out) ``rs`` gets."""
    size = spec_replicas(rs)
    if size == 0 or to_add == 0 or to_add == added:
        return 0
    replicas = desired_replicas(d)
    if replicas == 0:
        fraction = -size
    else:
        allowed_total = replicas + max_surge(d)
        annotated = annotation_int(rs, MAX_REPLICAS_ANNOTATION)
        if annotated is None:
            annotated = int((d.get("status") or {}).get("replicas") or 0)
        fraction = (_round_half_away(size * allowed_total / annotated) - size) if annotated else 0
    left = to_add - added
    return min(fraction, left) if to_add > 0 else max(fraction, left)
