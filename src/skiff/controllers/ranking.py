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
from dataclasses import dataclass
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


def _log_bucket(when: float, now: float) -> int:
    """floor(log2(nanoseconds since ``when``)), or -1 for "not in the past"."""
    nanos = (now - when) * 1e9
    return int(math.log2(nanos)) if nanos > 0 else -1


@dataclass(frozen=True, slots=True)
class _Facts:
    """Everything the ordering looks at, read from the pod once."""

    node: str
    phase: int
    ready: bool
    cost: int
    rank: int
    ready_since: float | None
    restarts: int
    created: float | None
    uid: str

    @classmethod
    def of(cls, pod: Obj, rank: int) -> "_Facts":
        status = pod.get("status") or {}
        since = podstate.ready_since(pod)
        created = podstate.creation_time(pod)
        return cls(node=_node(pod), phase=_PHASE_ORDER.get(status.get("phase", ""), 0),
                   ready=podstate.is_ready(pod), cost=deletion_cost(pod),
                   rank=rank, ready_since=since.timestamp() if since else None,
                   restarts=podstate.max_restarts(pod),
                   created=created.timestamp() if created else None,
                   uid=str((pod.get("metadata") or {}).get("uid", "")))


def _compare_times(a: float | None, b: float | None, uid_a: str, uid_b: str, now: float) -> int:
    """Newer first; a missing time first of all; same log2 bucket: by UID."""
    if a == b:
        return 0
    if a is None or b is None:
        return -1 if a is None else 1
    diff = _log_bucket(a, now) - _log_bucket(b, now)
    if diff == 0:
        return -1 if uid_a < uid_b else (1 if uid_a > uid_b else 0)
    return -1 if diff < 0 else 1


def _node(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _compare(a: _Facts, b: _Facts, now: float) -> int:
    if a.node != b.node and (not a.node or not b.node):
        return -1 if not a.node else 1
    if a.phase != b.phase:
        return -1 if a.phase < b.phase else 1
    if a.ready != b.ready:
        return -1 if not a.ready else 1
    if a.cost != b.cost:
        return -1 if a.cost < b.cost else 1
    if a.rank != b.rank:
        return -1 if a.rank > b.rank else 1
    if a.ready and b.ready:
        by_ready = _compare_times(a.ready_since, b.ready_since, a.uid, b.uid, now)
        if by_ready:
            return by_ready
    if a.restarts != b.restarts:
        return -1 if a.restarts > b.restarts else 1
    return _compare_times(a.created, b.created, a.uid, b.uid, now)


def pods_to_delete(pods: Sequence[Obj], count: int, *, related: Iterable[Obj] | None = None,
                   now: float) -> list[Obj]:
    """The ``count`` pods of ``pods`` to delete first (see module docstring)."""
    if count >= len(pods):
        return list(pods)
    on_node = Counter(_node(p) for p in (related if related is not None else pods)
                      if podstate.is_active(p))
    ranked = [(_Facts.of(p, on_node[_node(p)]), p) for p in pods]

    def compare(x: tuple[_Facts, Obj], y: tuple[_Facts, Obj]) -> int:
        return _compare(x[0], y[0], now)

    ranked.sort(key=functools.cmp_to_key(compare))
    return [p for _, p in ranked[:count]]
