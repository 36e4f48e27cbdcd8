"""The scheduling framework: plugins from a profile, and one scheduling cycle as a pure function.

::

    Framework(profile, registry)              plugins built by name, weights from the profile
    fw.schedule_one(snapshot, pod) -> ScheduleResult

    schedule_one:
      PreFilter (all plugins) ──rejected──────────────────────────────┐
      Filter over nodes, round-robin start, stop after enough fit ──┐ │
         (percentageOfNodesToScore: 50 - nodes/125 %, ≥ 5 %, ≥ 100)  │ │
      none fit ◀────────────────────────────────────────────────────┘ │
         └▶ PostFilter (preemption: victims + nominated node) ◀───────┘
      one fits  ─▶ that node
      many fit  ─▶ PreScore, Score, NormalizeScore, × weight, sum ─▶ highest (ties: rng)

The snapshot is read, never written.  Reasons per node and the aggregated
FailedScheduling message (``0/3 nodes are available: 1 node(s) didn't match
Pod's node affinity/selector, 2 Insufficient cpu.``) come back in the
:class:`ScheduleResult`.  The binding cycle (Reserve, Permit, PreBind, Bind)
is run by the component through :meth:`Framework.run_reserve` and friends.
"""

from __future__ import annotations

import functools
import operator
import random
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

from .interface import (SUCCESS, BindPlugin, Code, CycleState, FilterPlugin, PermitPlugin, PostFilterPlugin,
                        PostFilterResult, PreBindPlugin, PreFilterPlugin, PreFilterResult, PreScorePlugin,
                        ReservePlugin, ScorePlugin, Status, error, unresolvable)
from .podinfo import PodInfo
from .profile import Profile, default_profile
from .scorecache import NodeScoreCache
from .snapshot import NodeInfo, Snapshot

__all__ = ["Framework", "Registry", "Handle", "ScheduleResult", "fit_error_message",
           "num_feasible_nodes_to_find", "NO_NODES_AVAILABLE"]

Obj = dict[str, Any]
Binder = Callable[[Obj, str], Awaitable[None]]

NO_NODES_AVAILABLE = "no nodes available to schedule pods"
MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENTAGE = 5
DEFAULT_PERCENTAGE_BASE = 50


@dataclass
class Handle:
    """What plugins may reach besides the snapshot: the framework, randomness, a binder.

    A running scheduler also hands over its API ``client``, its shared ``informers``
    (an InformerFactory) and ``cluster_event(name)``, which tells the scheduling queue
    about a change that may help parked pods; all are ``None`` for a bare Framework.
    """

    framework: Framework | None = None
    rng: random.Random = field(default_factory=random.Random)
    binder: Binder | None = None
    client: Any = None
    informers: Any = None
    cluster_event: Callable[[str], object] | None = None


PluginFactory = Callable[[Mapping[str, Any], Handle], Any]


class Registry:
    """Plugin factories by name.  Build one per scheduler; nothing global."""

    def __init__(self, factories: Mapping[str, PluginFactory] | None = None) -> None:
        self._factories: dict[str, PluginFactory] = dict(factories or {})

    def register(self, name: str, factory: PluginFactory) -> None:
        if name in self._factories:
            raise ValueError(f"a plugin named {name!r} already exists")
        self._factories[name] = factory

    def get(self, name: str) -> PluginFactory:
        try:
            return self._factories[name]
        except KeyError:
            raise ValueError(f"plugin {name!r} does not exist") from None

    def names(self) -> list[str]:
        return sorted(self._factories)


def num_feasible_nodes_to_find(num_all_nodes: int, percentage: int | None) -> int:
    """How many feasible nodes are enough before scoring (Kubernetes' adaptive sampling)."""
    if num_all_nodes < MIN_FEASIBLE_NODES:
        return num_all_nodes
    pct = percentage or 0
    if pct >= 100:
        return num_all_nodes
    if pct <= 0:
        pct = DEFAULT_PERCENTAGE_BASE - num_all_nodes // 125
        if pct < MIN_FEASIBLE_PERCENTAGE:
            pct = MIN_FEASIBLE_PERCENTAGE
    n = num_all_nodes * pct // 100
    return max(n, MIN_FEASIBLE_NODES)


def _histogram(counts: dict[str, int]) -> str:
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))


def fit_error_message(num_all_nodes: int, statuses: Mapping[str, Status], *,
                      pre_filter_msg: str = "", post_filter_msg: str = "") -> str:
    """Kubernetes' FitError text: ``0/N nodes are available: <counts of reasons>.``

    Reasons are counted over nodes, rendered ``"<count> <reason>"`` and sorted as
    strings.  A PreFilter rejection replaces the per-node histogram with its own
    message; PostFilter's message (``preemption: ...``) is appended after a space.
    """
    msg = f"0/{num_all_nodes} nodes are available:"
    if pre_filter_msg:
        msg += f" {pre_filter_msg}."
    else:
        counts: dict[str, int] = {}
        for status in statuses.values():
            for reason in status.reasons:
                counts[reason] = counts.get(reason, 0) + 1
        if counts:
            msg += f" {_histogram(counts)}."
    if post_filter_msg:
        msg += f" {post_filter_msg}"
    return msg


@dataclass
class ScheduleResult:
    """The decision for one pod.  ``node_name is None`` means it was not placed."""

    node_name: str | None
    reasons: dict[str, list[str]] = field(default_factory=dict)
    message: str = ""
    code: Code = Code.SUCCESS
    statuses: dict[str, Status] = field(default_factory=dict)
    evaluated_nodes: int = 0
    feasible_nodes: int = 0
    nominated_node_name: str = ""
    victims: list[Obj] = field(default_factory=list)
    unschedulable_plugins: set[str] = field(default_factory=set)
    scores: dict[str, int] = field(default_factory=dict)
    state: CycleState | None = None

    @property
    def scheduled(self) -> bool:
        return self.node_name is not None


def _raw_scores(pl: Any, batch: Any, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
    """A Score plugin's scores of ``nodes``, in one call when it scores in batches."""
    return batch(state, pod, nodes) if batch is not None else [pl.score(state, pod, n) for n in nodes]


def _implements(plugin: Any, *methods: str) -> bool:
    return all(callable(getattr(plugin, m, None)) for m in methods)


_POINT_METHODS = {
    "queueSort": ("less",), "preFilter": ("pre_filter",), "filter": ("filter",),
    "postFilter": ("post_filter",), "preScore": ("pre_score",), "score": ("score",),
    "reserve": ("reserve", "unreserve"), "permit": ("permit",), "preBind": ("pre_bind",),
    "bind": ("bind",),
}


class Framework:
    """The plugins of one profile, wired to the extension points, and the cycle that runs them."""

    def __init__(self, profile: Profile | None = None, registry: Registry | None = None, *,
                 rng: random.Random | None = None, binder: Binder | None = None,
                 client: Any = None, informers: Any = None,
                 cluster_event: Callable[[str], object] | None = None) -> None:
        if registry is None:
            from .plugins import default_registry
            registry = default_registry()
        self.profile = profile or default_profile()
        self.handle = Handle(framework=self, rng=rng or random.Random(), binder=binder, client=client,
                             informers=informers, cluster_event=cluster_event)
        self.rng = self.handle.rng
        self.plugins: dict[str, Any] = {}
        for ref in self.profile.plugins:
            self.plugins[ref.name] = registry.get(ref.name)(self.profile.args(ref.name), self.handle)
        points: dict[str, list[Any]] = {}
        for point, methods in _POINT_METHODS.items():
            points[point] = [self.plugins[r.name] for r in self.profile.enabled(point)
                             if _implements(self.plugins[r.name], *methods)]
        self.queue_sort = points["queueSort"][0] if points["queueSort"] else None
        self.pre_filter_plugins: list[PreFilterPlugin] = points["preFilter"]
        self.filter_plugins: list[FilterPlugin] = points["filter"]
        self.post_filter_plugins: list[PostFilterPlugin] = points["postFilter"]
        self.pre_score_plugins: list[PreScorePlugin] = points["preScore"]
        self.score_plugins: list[tuple[ScorePlugin, int]] = [
            (p, self.profile.weight(p.name)) for p in points["score"]]
        # Per score plugin: (plugin, weight, batch scorer or None, normalizer or None,
        # score cache key function or None: see scorecache.py).
        self._score_steps: list[tuple[ScorePlugin, int, Any, Any, Any]] = [
            (p, w, getattr(p, "score_nodes", None) if _implements(p, "score_nodes") else None,
             getattr(p, "normalize_score", None) if _implements(p, "normalize_score") else None,
             getattr(p, "score_cache_key", None) if _implements(p, "score_cache_key") else None)
            for p, w in self.score_plugins]
        self.score_cache: NodeScoreCache | None = NodeScoreCache()
        self.reserve_plugins: list[ReservePlugin] = points["reserve"]
        self.permit_plugins: list[PermitPlugin] = points["permit"]
        self.pre_bind_plugins: list[PreBindPlugin] = points["preBind"]
        self.bind_plugins: list[BindPlugin] = points["bind"]
        self.percentage_of_nodes_to_score = self.profile.percentage_of_nodes_to_score
        self.next_start_node_index = 0

    @property
    def scheduler_name(self) -> str:
        return self.profile.scheduler_name

    # -- PreFilter / Filter -------------------------------------------------------------

    def run_pre_filter(self, state: CycleState, pod: PodInfo,
                       snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]:
        merged: set[str] | None = None
        narrowed_by: list[str] = []
        for pl in self.pre_filter_plugins:
            result, status = pl.pre_filter(state, pod, snapshot)
            if status.is_skip:
                state.skip_filter.add(pl.name)
                continue
            if not status.is_success:
                return None, status.with_plugin(pl.name)
            if result is not None and result.node_names is not None:
                narrowed_by.append(pl.name)
                merged = set(result.node_names) if merged is None else merged & result.node_names
        if merged is None:
            return None, SUCCESS
        return PreFilterResult(merged), Status(Code.SUCCESS, tuple(narrowed_by))

    def run_filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        skip = state.skip_filter
        for pl in self.filter_plugins:
            if skip and pl.name in skip:
                continue
            status = pl.filter(state, pod, node)
            if not status.is_success:
                return status.with_plugin(pl.name)
        return SUCCESS

    def run_filter_with_nominated(self, state: CycleState, pod: PodInfo, node: NodeInfo,
                                  nominated: Mapping[str, list[PodInfo]] | None) -> Status:
        """Filters, first as if pods nominated to this node (priority ≥ ours) were already there."""
        others = [p for p in (nominated or {}).get(node.name, ()) if p.priority >= pod.priority and p.key != pod.key]
        if others:
            sim_state, sim_node = state.clone(), node.clone()
            for p in others:
                sim_node.add_pod(p)
                self.run_add_pod(sim_state, pod, p, sim_node)
            status = self.run_filter(sim_state, pod, sim_node)
            if not status.is_success:
                return status
        return self.run_filter(state, pod, node)

    def run_add_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        for pl in self.pre_filter_plugins:
            if pl.name not in state.skip_filter and _implements(pl, "add_pod"):
                pl.add_pod(state, pod, other, node)  # type: ignore[attr-defined]

    def run_remove_pod(self, state: CycleState, pod: PodInfo, other: PodInfo, node: NodeInfo) -> None:
        for pl in self.pre_filter_plugins:
            if pl.name not in state.skip_filter and _implements(pl, "remove_pod"):
                pl.remove_pod(state, pod, other, node)  # type: ignore[attr-defined]

    def _find_feasible(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], num_all: int,
                       statuses: dict[str, Status],
                       nominated: Mapping[str, list[PodInfo]] | None) -> list[NodeInfo]:
        """Filter nodes from ``next_start_node_index`` on (wrapping round) until enough fit.

        "Enough" is :func:`num_feasible_nodes_to_find` (one when no plugin scores); the
        next cycle starts where this one stopped, so every node gets its turn.  Rejected
        nodes' statuses go to ``statuses``.
        """
        n = len(nodes)
        want = num_feasible_nodes_to_find(n, self.percentage_of_nodes_to_score)
        if not self.score_plugins:
            want = min(want, 1)    # nothing to rank them by: the first that fits will do
        start = self.next_start_node_index % n if n else 0
        # The plugins that take part this cycle, as bound methods (the loop below is the hot path).
        active = [(pl.name, pl.filter) for pl in self.filter_plugins if pl.name not in state.skip_filter]
        if not active:
            taken = [nodes[(start + i) % n] for i in range(want)]
            if num_all:
                self.next_start_node_index = (start + len(taken)) % num_all
            return taken
        checks = [check for _, check in active]
        feasible: list[NodeInfo] = []
        rejected = 0
        ok = SUCCESS
        for node in nodes[start:] + nodes[:start]:
            if nominated and node.name in nominated:
                status = self.run_filter_with_nominated(state, pod, node, nominated)
            else:
                for check in checks:
                    status = check(state, pod, node)
                    if status is not ok:
                        break
                else:      # every plugin said SUCCESS (the usual case)
                    feasible.append(node)
                    if len(feasible) >= want:
                        break
                    continue
                status = self._first_failure(active, state, pod, node)
            if status.code is Code.SUCCESS:
                feasible.append(node)
                if len(feasible) >= want:
                    break
            elif status.code is Code.ERROR:
                raise _CycleError(status)
            else:
                statuses[node.name] = status
                rejected += 1
        if num_all:
            self.next_start_node_index = (start + len(feasible) + rejected) % num_all
        return feasible

    @staticmethod
    def _first_failure(active: Sequence[tuple[str, Callable[[CycleState, PodInfo, NodeInfo], Status]]],
                       state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        """The filters again, slowly: the first non-success status, named after its plugin."""
        for name, check in active:
            status = check(state, pod, node)
            if status.code is not Code.SUCCESS:
                return status.with_plugin(name)
        return SUCCESS

    # -- Score ----------------------------------------------------------------------------

    def run_pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> Status:
        for pl in self.pre_score_plugins:
            status = pl.pre_score(state, pod, nodes, snapshot)
            if status.is_skip:
                state.skip_score.add(pl.name)
            elif not status.is_success:
                return status.with_plugin(pl.name)
        return SUCCESS

    def run_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        totals = [0] * len(nodes)
        cache = self.score_cache
        for pl, weight, batch, normalize, cache_key in self._score_steps:
            if pl.name in state.skip_score:
                continue
            compute = functools.partial(_raw_scores, pl, batch, state, pod)
            key = cache_key(state, pod) if cache is not None and cache_key is not None else None
            scores = compute(nodes) if cache is None or key is None else cache.scores(pl.name, key, nodes, compute)
            if normalize is not None:
                normalize(state, pod, nodes, scores)
            if weight != 1:
                scores = [s * weight for s in scores]
            totals = list(map(operator.add, totals, scores))
        return totals

    def select_host(self, nodes: list[NodeInfo], totals: list[int]) -> str:
        """The node with the highest total; ties are broken uniformly at random."""
        best = max(totals)
        ties = totals.count(best)
        i = totals.index(best)
        if ties > 1:
            for _ in range(self.rng.randrange(ties)):   # the k-th of the tied nodes
                i = totals.index(best, i + 1)
        return nodes[i].name

    # -- the cycle --------------------------------------------------------------------------

    def schedule_one(self, snapshot: Snapshot, pod: Obj | PodInfo, *,
                     nominated: Mapping[str, list[PodInfo]] | None = None,
                     state: CycleState | None = None, with_scores: bool = False) -> ScheduleResult:
        """Decide where ``pod`` goes.  ``nominated``: node name -> pods waiting for preemption there."""
        pi = pod if isinstance(pod, PodInfo) else PodInfo(pod)
        state = state or CycleState()
        all_nodes = snapshot.node_infos()
        num_all = len(all_nodes)
        if num_all == 0:
            return ScheduleResult(None, message=NO_NODES_AVAILABLE,
                                  code=Code.UNSCHEDULABLE_AND_UNRESOLVABLE, state=state)
        statuses: dict[str, Status] = {}
        try:
            result, pre_status = self.run_pre_filter(state, pi, snapshot)
            if pre_status.code is Code.ERROR:
                return self._error(pre_status, state)
            if pre_status.is_rejected:
                for node in all_nodes:
                    statuses[node.name] = pre_status
                return self._unschedulable(state, pi, snapshot, statuses, num_all, pre_status.message,
                                           {pre_status.plugin})
            nodes = all_nodes
            if result is not None and result.node_names is not None:
                reason = f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(pre_status.reasons))}]"
                rejected = unresolvable(reason)
                nodes = [n for n in all_nodes if n.name in result.node_names]
                for n in all_nodes:
                    if n.name not in result.node_names:
                        statuses[n.name] = rejected
            feasible = self._nominated_node_first(state, pi, snapshot, nominated, statuses)
            if feasible is None:
                feasible = self._find_feasible(state, pi, nodes, num_all, statuses, nominated)
        except _CycleError as e:
            return self._error(e.status, state)
        evaluated = len(feasible) + len(statuses)
        if not feasible:
            plugins = {s.plugin for s in statuses.values() if s.plugin}
            return self._unschedulable(state, pi, snapshot, statuses, num_all, "", plugins)
        reasons = {n: list(st.reasons) for n, st in statuses.items()}
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, reasons=reasons, statuses=statuses,
                                  evaluated_nodes=evaluated, feasible_nodes=1, state=state)
        status = self.run_pre_score(state, pi, feasible, snapshot)
        if not status.is_success:
            return self._error(status, state)
        totals = self.run_score(state, pi, feasible)
        chosen = self.select_host(feasible, totals)
        scores = {n.name: s for n, s in zip(feasible, totals)} if with_scores else {}
        return ScheduleResult(chosen, reasons=reasons, statuses=statuses, evaluated_nodes=evaluated,
                              feasible_nodes=len(feasible), scores=scores, state=state)

    def filter_all(self, snapshot: Snapshot, pod: Obj | PodInfo) -> dict[str, Status]:
        """PreFilter, then Filter on every node (no sampling): each node's status.  For tools and tests."""
        pi = pod if isinstance(pod, PodInfo) else PodInfo(pod)
        state = CycleState()
        result, pre = self.run_pre_filter(state, pi, snapshot)
        out: dict[str, Status] = {}
        for node in snapshot.node_infos():
            if not pre.is_success:
                out[node.name] = pre
            elif result is not None and result.node_names is not None and node.name not in result.node_names:
                out[node.name] = unresolvable(f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(pre.reasons))}]")
            else:
                out[node.name] = self.run_filter(state, pi, node)
        return out

    def _nominated_node_first(self, state: CycleState, pod: PodInfo, snapshot: Snapshot,
                              nominated: Mapping[str, list[PodInfo]] | None,
                              statuses: dict[str, Status]) -> list[NodeInfo] | None:
        name = ((pod.pod.get("status") or {}).get("nominatedNodeName")) or ""
        node = snapshot.get(name) if name else None
        if node is None:
            return None
        status = self.run_filter_with_nominated(state, pod, node, nominated)
        if status.is_success:
            return [node]
        if status.code is Code.ERROR:
            raise _CycleError(status)
        return None

    def _unschedulable(self, state: CycleState, pod: PodInfo, snapshot: Snapshot,
                       statuses: dict[str, Status], num_all: int, pre_filter_msg: str,
                       plugins: set[str]) -> ScheduleResult:
        post: PostFilterResult | None = None
        post_msg = ""
        for pl in self.post_filter_plugins:
            result, status = pl.post_filter(state, pod, snapshot, statuses)
            if status.is_success:
                post = result
                post_msg = ""
                break
            if status.code is Code.ERROR:
                return self._error(status.with_plugin(pl.name), state)
            post_msg = status.message
        message = fit_error_message(num_all, statuses, pre_filter_msg=pre_filter_msg, post_filter_msg=post_msg)
        codes = {s.code for s in statuses.values()}
        code = Code.UNSCHEDULABLE if Code.UNSCHEDULABLE in codes else Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        return ScheduleResult(
            None,
            reasons={n: list(s.reasons) for n, s in statuses.items()},
            message=message,
            code=code,
            statuses=statuses,
            evaluated_nodes=len(statuses),
            nominated_node_name=post.nominated_node_name if post else "",
            victims=list(post.victims) if post else [],
            unschedulable_plugins=plugins,
            state=state,
        )

    @staticmethod
    def _error(status: Status, state: CycleState) -> ScheduleResult:
        where = f'running "{status.plugin}" plugin: ' if status.plugin else ""
        return ScheduleResult(None, message=where + status.message, code=Code.ERROR, state=state)

    # -- binding cycle ----------------------------------------------------------------------

    def run_reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        for pl in self.reserve_plugins:
            status = pl.reserve(state, pod, node_name)
            if not status.is_success:
                self.run_unreserve(state, pod, node_name)
                return status.with_plugin(pl.name)
        return SUCCESS

    def run_unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        for pl in reversed(self.reserve_plugins):
            pl.unreserve(state, pod, node_name)

    def run_permit(self, state: CycleState, pod: PodInfo, node_name: str) -> tuple[Status, float]:
        wait = 0.0
        for pl in self.permit_plugins:
            status, timeout = pl.permit(state, pod, node_name)
            if status.code is Code.WAIT:
                wait = max(wait, timeout)
            elif not status.is_success:
                return status.with_plugin(pl.name), 0.0
        return (Status(Code.WAIT) if wait else SUCCESS), wait

    async def run_pre_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        for pl in self.pre_bind_plugins:
            status = await pl.pre_bind(state, pod, node_name)
            if not status.is_success:
                return status.with_plugin(pl.name)
        return SUCCESS

    async def run_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        for pl in self.bind_plugins:
            status = await pl.bind(state, pod, node_name)
            if status.is_skip:
                continue
            return status.with_plugin(pl.name)
        return error("no bind plugin bound the pod")


class _CycleError(Exception):
    """Internal: a plugin returned ERROR in the middle of a loop."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.message)
        self.status = status
