"""The scheduling framework's vocabulary: statuses, cycle state, extension points.

One scheduling cycle for one pod walks these extension points in order::

    QueueSort ─ (pod popped) ─▶ PreFilter ─▶ Filter (per node) ─┬─▶ PreScore ─▶ Score (+Normalize, ×weight)
                                                               │        ─▶ pick the best node
                                                               └─ no node fits ─▶ PostFilter (preemption)
    binding cycle:  Reserve ─▶ Permit ─▶ PreBind ─▶ Bind   (Unreserve on any failure)

Each extension point is a small Protocol; a plugin implements the methods of
the points it takes part in and the framework discovers them.  Expected
outcomes — a node that does not fit, a plugin with nothing to do — are
:class:`Status` values, never exceptions.

Status codes (Kubernetes' ``framework.Code``):

- ``SUCCESS``
- ``ERROR``: something broke; the pod is retried with back-off.
- ``UNSCHEDULABLE``: does not fit now; preemption may help.
- ``UNSCHEDULABLE_AND_UNRESOLVABLE``: does not fit and preemption cannot help.
- ``WAIT``: Permit wants the pod held.
- ``SKIP``: PreFilter/PreScore: this plugin has nothing to check for this pod,
  so its Filter/Score is skipped for the cycle; Bind: not my pod.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .podinfo import PodInfo
    from .snapshot import NodeInfo, Snapshot


class Code(enum.IntEnum):
    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5


@dataclass(frozen=True, slots=True)
class Status:
    """The outcome of one plugin call: a code, human-readable reasons, the plugin's name."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    @property
    def is_success(self) -> bool:
        return self.code is Code.SUCCESS

    @property
    def is_rejected(self) -> bool:
        return self.code is Code.UNSCHEDULABLE or self.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE

    @property
    def is_skip(self) -> bool:
        return self.code is Code.SKIP

    def with_plugin(self, plugin: str) -> Status:
        return self if self.plugin == plugin else Status(self.code, self.reasons, plugin)


SUCCESS = Status()
SKIP = Status(Code.SKIP)


def unschedulable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, reasons)


def error(message: str) -> Status:
    return Status(Code.ERROR, (message,))


class StateData(Protocol):
    def clone(self) -> StateData: ...


class CycleState:
    """Per-cycle scratchpad: plugins write what PreFilter/PreScore computed, Filter/Score read it."""

    __slots__ = ("_data", "skip_filter", "skip_score")

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self.skip_filter: set[str] = set()
        self.skip_score: set[str] = set()

    def read(self, key: str) -> Any:
        return self._data.get(key)

    def write(self, key: str, value: Any) -> None:
        self._data[key] = value

    def clone(self) -> CycleState:
        """A copy whose values can be changed independently (values with ``clone()`` are cloned)."""
        c = CycleState()
        c._data = {k: (v.clone() if hasattr(v, "clone") else v) for k, v in self._data.items()}
        c.skip_filter = set(self.skip_filter)
        c.skip_score = set(self.skip_score)
        return c


@dataclass(slots=True)
class PreFilterResult:
    """PreFilter may narrow the candidate nodes (``None`` = all nodes)."""

    node_names: set[str] | None = None


@dataclass(slots=True)
class PostFilterResult:
    """What PostFilter (preemption) found: a node to nominate and the pods to evict there."""

    nominated_node_name: str = ""
    victims: list[dict[str, Any]] = field(default_factory=list)


# -- extension points --------------------------------------------------------------------


class Plugin(Protocol):
    name: str


class QueueSortPlugin(Plugin, Protocol):
    def less(self, a: Any, b: Any) -> bool: ...


class PreFilterPlugin(Plugin, Protocol):
    def pre_filter(self, state: CycleState, pod: PodInfo,
                   snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]: ...


class PreFilterExtensions(Plugin, Protocol):
    """Keep PreFilter's state right when preemption adds or removes pods in simulation."""

    def add_pod(self, state: CycleState, pod: PodInfo, pod_to_add: PodInfo, node: NodeInfo) -> None: ...

    def remove_pod(self, state: CycleState, pod: PodInfo, pod_to_remove: PodInfo, node: NodeInfo) -> None: ...


class FilterPlugin(Plugin, Protocol):
    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status: ...


class PostFilterPlugin(Plugin, Protocol):
    def post_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot,
                    statuses: dict[str, Status]) -> tuple[PostFilterResult | None, Status]: ...


class PreScorePlugin(Plugin, Protocol):
    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                  snapshot: Snapshot) -> Status: ...


class ScorePlugin(Plugin, Protocol):
    """``score`` returns 0..100 (before normalization); it must not fail."""

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int: ...


class BatchScorePlugin(Plugin, Protocol):
    """Optional fast path: score many nodes in one call (same results as ``score`` per node)."""

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]: ...


class ScoreExtensions(Plugin, Protocol):
    """Rescale one plugin's raw scores (parallel to ``nodes``) into 0..100, in place."""

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo],
                        scores: list[int]) -> None: ...


class ReservePlugin(Plugin, Protocol):
    def reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status: ...

    def unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None: ...


class PermitPlugin(Plugin, Protocol):
    """Return (SUCCESS, 0), a rejection, or (WAIT, timeout seconds)."""

    def permit(self, state: CycleState, pod: PodInfo, node_name: str) -> tuple[Status, float]: ...


class PreBindPlugin(Plugin, Protocol):
    async def pre_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status: ...


class BindPlugin(Plugin, Protocol):
    """Return SKIP to let the next Bind plugin handle the pod."""

    async def bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status: ...


MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0


def default_normalize(scores: list[int], reverse: bool = False) -> None:
    """Scale so the highest raw score becomes 100 (``reverse``: lowest becomes 100).

    All-zero scores become 0, or 100 each when reversed (Kubernetes' DefaultNormalizeScore).
    """
    top = max(scores, default=0)
    if top == 0:
        if reverse:
            scores[:] = [MAX_NODE_SCORE] * len(scores)
        return
    if reverse:
        scores[:] = [MAX_NODE_SCORE - MAX_NODE_SCORE * s // top for s in scores]
    else:
        scores[:] = [MAX_NODE_SCORE * s // top for s in scores]
