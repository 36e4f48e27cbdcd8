"""The scheduling queue: which pending pod to try next, and when to retry the others.

::

                 add / update                  pop (highest priority, then oldest)
    pending pod ───────────────▶  activeQ  ─────────────────────────▶ scheduling cycle
                                   ▲    ▲                                 │
              back-off expired     │    │ cluster event that could help   │ unschedulable
                                   │    │ (or 5 min without one)          ▼
                               backoffQ ◀──────────────────────────  unschedulablePods
                                   ▲        event, back-off still running │
                                   └──── error / event during its cycle ◀─┘

- activeQ is ordered by the QueueSort plugin (PrioritySort: ``spec.priority``
  descending, then the time the pod entered the queue).
- Back-off per pod: 1 s doubled per failed attempt, at most 10 s.
- A pod that failed because of plugins P waits in unschedulablePods until an
  event that one of P cares about happens (a node added or changed, an assigned
  pod deleted, ...); then it moves to backoffQ (still backing off) or activeQ.
  After 5 minutes without such an event it moves anyway.
- An event that arrives while a pod is being scheduled sends the pod, if it
  then fails, to backoffQ instead of unschedulablePods (it may fit now).
- Pods with ``spec.schedulingGates`` wait aside until the gates are removed.

The clock is injected (``clock() -> seconds``), so tests never sleep.
:meth:`SchedulingQueue.pop` waits for work; everything else is synchronous.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .podinfo import PodInfo

Obj = dict[str, Any]
Clock = Callable[[], float]

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_UNSCHEDULABLE_DURATION = 300.0

# Cluster events, and the plugins whose rejections each one may lift.
NODE_ADD = "NodeAdd"
NODE_UPDATE = "NodeUpdate"
ASSIGNED_POD_ADD = "AssignedPodAdd"
ASSIGNED_POD_UPDATE = "AssignedPodUpdate"
ASSIGNED_POD_DELETE = "AssignedPodDelete"
PVC_ADD = "PersistentVolumeClaimAdd"
PV_ADD = "PersistentVolumeAdd"
PV_UPDATE = "PersistentVolumeUpdate"
STORAGE_CLASS_ADD = "StorageClassAdd"
NAMESPACE_CHANGE = "NamespaceChange"
UNSCHEDULABLE_TIMEOUT = "UnschedulableTimeout"
ANY = "*"

EVENT_PLUGINS: dict[str, frozenset[str]] = {
    NODE_ADD: frozenset([ANY]),
    NODE_UPDATE: frozenset(["NodeAffinity", "TaintToleration", "NodeUnschedulable", "NodeResourcesFit",
                            "PodTopologySpread", "InterPodAffinity", "NodeName", "VolumeBinding"]),
    ASSIGNED_POD_ADD: frozenset(["InterPodAffinity", "PodTopologySpread"]),
    ASSIGNED_POD_UPDATE: frozenset(["InterPodAffinity", "PodTopologySpread", "NodeResourcesFit"]),
    ASSIGNED_POD_DELETE: frozenset(["NodeResourcesFit", "NodePorts", "InterPodAffinity",
                                    "PodTopologySpread", "VolumeRestrictions"]),
    PVC_ADD: frozenset(["VolumeRestrictions", "VolumeBinding"]),
    PV_ADD: frozenset(["VolumeBinding"]),
    PV_UPDATE: frozenset(["VolumeBinding"]),
    STORAGE_CLASS_ADD: frozenset(["VolumeBinding"]),
    NAMESPACE_CHANGE: frozenset(["InterPodAffinity"]),
    UNSCHEDULABLE_TIMEOUT: frozenset([ANY]),
}


@dataclass(eq=False)
class QueuedPod:
    """A pod waiting in the queue, with its scheduling history."""

    pod: PodInfo
    timestamp: float                      # when it last entered the queue (ordering)
    initial_timestamp: float              # when it first entered
    attempts: int = 0
    unschedulable_plugins: set[str] = field(default_factory=set)
    backoff_until: float = 0.0
    cycle: int = 0                        # scheduling cycle in which it was last popped

    @property
    def key(self) -> str:
        return self.pod.key


def _gated(pod: PodInfo) -> bool:
    return bool((pod.pod.get("spec") or {}).get("schedulingGates"))


class _Ordered:
    """Heap entry ordered by the QueueSort ``less`` function."""

    __slots__ = ("qp", "less", "seq")

    def __init__(self, qp: QueuedPod, less: Callable[[QueuedPod, QueuedPod], bool], seq: int) -> None:
        self.qp, self.less, self.seq = qp, less, seq

    def __lt__(self, other: _Ordered) -> bool:
        if self.less(self.qp, other.qp):
            return True
        if self.less(other.qp, self.qp):
            return False
        return self.seq < other.seq


def priority_less(a: QueuedPod, b: QueuedPod) -> bool:
    pa, pb = a.pod.priority, b.pod.priority
    return pa > pb or (pa == pb and a.timestamp < b.timestamp)


class SchedulingQueue:
    def __init__(self, *, clock: Clock = time.monotonic,
                 less: Callable[[QueuedPod, QueuedPod], bool] = priority_less,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF,
                 max_unschedulable: float = MAX_UNSCHEDULABLE_DURATION) -> None:
        self.clock = clock
        self._less = less
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self._active: list[_Ordered] = []
        self._backoff: list[tuple[float, int, QueuedPod]] = []
        self._where: dict[str, str] = {}          # key -> "active" | "backoff" | "unschedulable" | "gated"
        self._entries: dict[str, QueuedPod] = {}  # every queued pod by key (not in-flight ones)
        self._unschedulable: dict[str, QueuedPod] = {}
        self._gated: dict[str, QueuedPod] = {}
        self._in_flight: dict[str, QueuedPod] = {}
        self._seq = itertools.count()
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self._wakeup = asyncio.Event()
        self._closed = False
        self.nominated: dict[str, dict[str, PodInfo]] = {}   # node -> key -> pod waiting for preemption

    # -- adding ---------------------------------------------------------------------------

    def add(self, pod: Obj | PodInfo) -> None:
        """A new pending pod (or one whose spec changed): straight to activeQ (or gated)."""
        pi = pod if isinstance(pod, PodInfo) else PodInfo(pod)
        now = self.clock()
        old = self._entries.get(pi.key) or self._in_flight.get(pi.key)
        if pi.key in self._in_flight:
            self._in_flight[pi.key].pod = pi     # picked up when its cycle ends
            return
        self._remove(pi.key)
        qp = QueuedPod(pi, now, old.initial_timestamp if old else now, attempts=old.attempts if old else 0)
        self._push_active_or_gated(qp)
        self._update_nomination(pi)

    def update(self, pod: Obj | PodInfo) -> None:
        """A pending pod changed: it gets a fresh chance (its spec may fit now)."""
        pi = pod if isinstance(pod, PodInfo) else PodInfo(pod)
        if pi.key in self._in_flight:
            self._in_flight[pi.key].pod = pi
            self._update_nomination(pi)
            return
        qp = self._entries.get(pi.key)
        if qp is None:
            self.add(pi)
            return
        where = self._where[pi.key]
        qp.pod = pi
        self._update_nomination(pi)
        if where in ("unschedulable", "gated"):
            self._remove(pi.key)
            self._move(qp)

    def delete(self, key: str) -> None:
        self._remove(key)
        self._in_flight.pop(key, None)
        self._drop_nomination(key)

    def _push_active_or_gated(self, qp: QueuedPod) -> None:
        self._entries[qp.key] = qp
        if _gated(qp.pod):
            self._where[qp.key] = "gated"
            self._gated[qp.key] = qp
            return
        self._where[qp.key] = "active"
        heapq.heappush(self._active, _Ordered(qp, self._less, next(self._seq)))
        self._wakeup.set()

    def _push_backoff(self, qp: QueuedPod) -> None:
        self._entries[qp.key] = qp
        self._where[qp.key] = "backoff"
        heapq.heappush(self._backoff, (qp.backoff_until, next(self._seq), qp))
        self._wakeup.set()

    def _remove(self, key: str) -> None:
        """Forget a queued pod (heap entries are dropped lazily when popped)."""
        where = self._where.pop(key, None)
        self._entries.pop(key, None)
        if where == "unschedulable":
            self._unschedulable.pop(key, None)
        elif where == "gated":
            self._gated.pop(key, None)

    def _move(self, qp: QueuedPod) -> None:
        """To backoffQ while backing off, else activeQ."""
        if qp.backoff_until > self.clock():
            self._push_backoff(qp)
        else:
            self._push_active_or_gated(qp)

    # -- popping ----------------------------------------------------------------------------

    def pop_nowait(self) -> QueuedPod | None:
        self.flush_backoff_completed()
        while self._active:
            entry = heapq.heappop(self._active)
            qp = entry.qp
            if self._where.get(qp.key) != "active" or self._entries.get(qp.key) is not qp:
                continue   # stale heap entry
            self._remove(qp.key)
            self.scheduling_cycle += 1
            qp.cycle = self.scheduling_cycle
            qp.attempts += 1
            self._in_flight[qp.key] = qp
            return qp
        return None

    async def pop(self) -> QueuedPod | None:
        """The next pod to schedule, waiting for one; None once closed."""
        while not self._closed:
            qp = self.pop_nowait()
            if qp is not None:
                return qp
            self._wakeup.clear()
            delay = self._next_backoff_delay()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
        return None

    def _next_backoff_delay(self) -> float | None:
        if not self._backoff:
            return None
        return max(0.0, self._backoff[0][0] - self.clock()) + 0.001

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    # -- after a cycle ----------------------------------------------------------------------

    def backoff_duration(self, attempts: int) -> float:
        d = self.initial_backoff
        for _ in range(max(0, attempts - 1)):
            d *= 2
            if d >= self.max_backoff:
                return self.max_backoff
        return min(d, self.max_backoff)

    def done(self, key: str) -> None:
        """The pod's cycle ended with it placed (or gone)."""
        self._in_flight.pop(key, None)

    def add_unschedulable(self, qp: QueuedPod, plugins: Iterable[str] = (), *, error: bool = False) -> None:
        """The pod did not fit (or the cycle failed): park it or back it off."""
        self._in_flight.pop(qp.key, None)
        if qp.key in self._entries:       # re-added meanwhile (an update): keep the newer entry
            return
        now = self.clock()
        qp.unschedulable_plugins = set(plugins)
        qp.timestamp = now
        qp.backoff_until = now + self.backoff_duration(qp.attempts)
        if error or self.move_request_cycle >= qp.cycle:
            self._push_backoff(qp)
        else:
            self._entries[qp.key] = qp
            self._where[qp.key] = "unschedulable"
            self._unschedulable[qp.key] = qp

    def flush_backoff_completed(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, qp = heapq.heappop(self._backoff)
            if self._where.get(qp.key) != "backoff" or self._entries.get(qp.key) is not qp:
                continue
            self._remove(qp.key)
            self._push_active_or_gated(qp)

    def flush_unschedulable_leftover(self) -> None:
        now = self.clock()
        stale = [qp for qp in self._unschedulable.values() if now - qp.timestamp >= self.max_unschedulable]
        for qp in stale:
            self._remove(qp.key)
            self._move(qp)

    def on_event(self, event: str) -> int:
        """A cluster event: move parked pods it may help.  Returns how many moved."""
        plugins = EVENT_PLUGINS.get(event, frozenset([ANY]))
        moved = 0
        for qp in list(self._unschedulable.values()):
            if ANY in plugins or not qp.unschedulable_plugins or qp.unschedulable_plugins & plugins:
                self._remove(qp.key)
                self._move(qp)
                moved += 1
        self.move_request_cycle = self.scheduling_cycle
        return moved

    # -- nominated pods (preemptors waiting for their victims to go) --------------------------

    def _update_nomination(self, pi: PodInfo) -> None:
        node = ((pi.pod.get("status") or {}).get("nominatedNodeName")) or ""
        self._drop_nomination(pi.key)
        if node:
            self.nominated.setdefault(node, {})[pi.key] = pi

    def nominate(self, pi: PodInfo, node: str) -> None:
        self._drop_nomination(pi.key)
        if node:
            self.nominated.setdefault(node, {})[pi.key] = pi

    def _drop_nomination(self, key: str) -> None:
        for node in [n for n, pods in self.nominated.items() if key in pods]:
            del self.nominated[node][key]
            if not self.nominated[node]:
                del self.nominated[node]

    def nominated_pods(self) -> dict[str, list[PodInfo]]:
        return {node: list(pods.values()) for node, pods in self.nominated.items()}

    # -- introspection -------------------------------------------------------------------------

    def where(self, key: str) -> str | None:
        """"active", "backoff", "unschedulable", "gated", "in-flight" or None."""
        if key in self._in_flight:
            return "in-flight"
        return self._where.get(key)

    def __len__(self) -> int:
        return len(self._entries)

    def pending_counts(self) -> dict[str, int]:
        counts = {"active": 0, "backoff": 0, "unschedulable": 0, "gated": 0}
        for where in self._where.values():
            counts[where] += 1
        return counts
