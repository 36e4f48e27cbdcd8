"""Which pods a ReplicaSet deletes first when it has too many.

The order is Kubernetes' (``ActivePodsWithRanks``, with LogarithmicScaleDown,
which is GA in 1.32).  Comparing two pods, the first rule that tells them
apart decides; the pod that sorts first is deleted first::

    1. not yet scheduled (no spec.nodeName)      before scheduled
    2. phase Pending  before  Unknown  before  Running
    3. not ready      before  ready
    4. lower controller.kubernetes.io/pod-deletion-cost  before higher
    5. more related pods on the same node ("doubled up")  before fewer
    6. both ready: ready more recently before ready longer (in log2 buckets of the
       time since; equal buckets are ordered by UID, a stable pseudo-random order)
    7. more container restarts  before fewer
    8. created more recently    before older (log2 buckets, then UID)

"Related pods" for rule 5 are the active pods of the ReplicaSet itself, or for a
ReplicaSet owned by a Deployment, of every ReplicaSet of that Deployment.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from . import podstate

Obj = dict[str, Any]

POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}


def deletion_cost(pod: Obj) -> int:
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(POD_DELETION_COST)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _log_bucket(when: datetime, now: float) -> int:
    """floor(log2(nanoseconds since ``when``)), or -1 for "not in the past"."""
    nanos = (now - when.timestamp()) * 1e9
    return int(math.log2(nanos)) if nanos > 0 else -1


def _compare_times(a: datetime | None, b: datetime | None, uid_a: str, uid_b: str,
                   now: float) -> int:
    """Newer first; a missing time first of all; same log2 bucket: by UID."""
    if a == b:
        return 0
    if a is None or b is None:
        return -1 if a is None else 1
    diff = _log_bucket(a, now) - _log_bucket(b, now)
    if diff == 0:
        return -1 if uid_a < uid_b else (1 if uid_a > uid_b else 0)
    return -1 if diff < 0 else 1


def _uid(pod: Obj) -> str:
    return str((pod.get("metadata") or {}).get("uid", ""))


def _node(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _compare(a: tuple[Obj, int], b: tuple[Obj, int], now: float) -> int:
    pa, rank_a = a
    pb, rank_b = b
    na, nb = _node(pa), _node(pb)
    if na != nb and (not na or not nb):
        return -1 if not na else 1
    phase_a = _PHASE_ORDER.get((pa.get("status") or {}).get("phase", ""), 0)
    phase_b = _PHASE_ORDER.get((pb.get("status") or {}).get("phase", ""), 0)
    if phase_a != phase_b:
        return -1 if phase_a < phase_b else 1
    ready_a, ready_b = podstate.is_ready(pa), podstate.is_ready(pb)
    if ready_a != ready_b:
        return -1 if not ready_a else 1
    cost_a, cost_b = deletion_cost(pa), deletion_cost(pb)
    if cost_a != cost_b:
        return -1 if cost_a < cost_b else 1
    if rank_a != rank_b:
        return -1 if rank_a > rank_b else 1
    if ready_a and ready_b:
        by_ready = _compare_times(podstate.ready_since(pa), podstate.ready_since(pb),
                                  _uid(pa), _uid(pb), now)
        if by_ready:
            return by_ready
    restarts_a, restarts_b = podstate.max_restarts(pa), podstate.max_restarts(pb)
    if restarts_a != restarts_b:
        return -1 if restarts_a > restarts_b else 1
    return _compare_times(podstate.creation_time(pa), podstate.creation_time(pb),
                          _uid(pa), _uid(pb), now)


def pods_to_delete(pods: Sequence[Obj], count: int, *, related: Iterable[Obj] | None = None,
                   now: float) -> list[Obj]:
    """The ``count`` pods of ``pods`` to delete first (see module docstring)."""
    if count >= len(pods):
        return list(pods)
    on_node = Counter(_node(p) for p in (related if related is not None else pods)
                      if podstate.is_active(p))
    ranked = [(p, on_node[_node(p)]) for p in pods]
    def compare(x: tuple[Obj, int], y: tuple[Obj, int]) -> int:
        return _compare(x, y, now)

    ranked.sort(key=functools.cmp_to_key(compare))
    return [p for p, _ in ranked[:count]]
