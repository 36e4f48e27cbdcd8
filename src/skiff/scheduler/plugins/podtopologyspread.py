"""PodTopologySpread: spread matching pods evenly over topology domains.

Each ``topologySpreadConstraints`` entry names a node label (``topologyKey``),
a ``labelSelector`` (plus ``matchLabelKeys``: the pod's own values of those
label keys, ANDed in) and a ``maxSkew``.  Only pods in the pod's namespace that
are not terminating count.  Nodes are counted when they carry every
constraint's key and pass the inclusion policies: ``nodeAffinityPolicy``
(default ``Honor``: the pod's nodeSelector/required affinity) and
``nodeTaintsPolicy`` (default ``Ignore``; ``Honor`` skips nodes with taints the
pod does not tolerate).

``whenUnsatisfiable: DoNotSchedule`` (Filter)::

    skew = matching pods in the node's domain + (1 if the pod matches itself) - global minimum
    skew > maxSkew  ->  node(s) didn't match pod topology spread constraints

The global minimum is over the eligible domains, and 0 while there are fewer
domains than ``minDomains``.  A node without the key is rejected with
``node(s) didn't match pod topology spread constraints (missing required label)``
(unresolvable).

``whenUnsatisfiable: ScheduleAnyway`` (Score): for each constraint
``count(domain) * log(domains + 2) + maxSkew - 1``, summed, rounded; then
inverted min-max normalization so the emptiest domain scores 100.  Pods with no
constraints get the system defaults (hostname maxSkew 3, zone maxSkew 5,
ScheduleAnyway) when ``snapshot.default_spread_selector`` yields a selector for
them (the Services/ReplicaSets/StatefulSets selecting the pod).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ..framework import Handle
from ..interface import SKIP, SUCCESS, CycleState, PreFilterResult, Status, unresolvable, unschedulable
from ..podinfo import PodInfo
from ..selectors import LabelMatcher, RequiredNodeAffinity, label_selector
from ..snapshot import NodeInfo, Snapshot
from ..tolerations import first_untolerated

NAME = "PodTopologySpread"
ERR_REASON = "node(s) didn't match pod topology spread constraints"
ERR_REASON_MISSING_LABEL = ERR_REASON + " (missing required label)"
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
_PRE_FILTER_KEY = "PreFilter" + NAME
_PRE_SCORE_KEY = "PreScore" + NAME
_BIG = 1 << 31


@dataclass(frozen=True, slots=True)
class Constraint:
    max_skew: int
    topology_key: str
    hard: bool
    selector: LabelMatcher
    min_domains: int
    honor_affinity: bool
    honor_taints: bool


def constraints_of(pod: PodInfo, hard: bool) -> list[Constraint]:
    out = []
    for c in (pod.pod.get("spec") or {}).get("topologySpreadConstraints") or ():
        is_hard = (c.get("whenUnsatisfiable") or "DoNotSchedule") == "DoNotSchedule"
        if is_hard != hard:
            continue
        extra = {k: pod.labels[k] for k in c.get("matchLabelKeys") or () if k in pod.labels}
        out.append(Constraint(
            max_skew=int(c.get("maxSkew") or 1),
            topology_key=str(c.get("topologyKey") or ""),
            hard=is_hard,
            selector=label_selector(c.get("labelSelector"), extra),
            min_domains=int(c.get("minDomains") or 1),
            honor_affinity=(c.get("nodeAffinityPolicy") or "Honor") == "Honor",
            honor_taints=(c.get("nodeTaintsPolicy") or "Ignore") == "Honor",
        ))
    return out


def _has_keys(node: NodeInfo, constraints: list[Constraint]) -> bool:
    return all(c.topology_key in node.labels for c in constraints)


def _included(c: Constraint, pod: PodInfo, node: NodeInfo, required: RequiredNodeAffinity) -> bool:
    if c.honor_affinity and not required.matches(node.labels, node.name):
        return False
    if c.honor_taints and first_untolerated(node.taints, pod.tolerations) is not None:
        return False
    return True


def _count(node: NodeInfo, selector: LabelMatcher, namespace: str) -> int:
    n = 0
    for p in node.pods.values():
        if p.namespace == namespace and not p.deleting and selector.matches(p.labels):
            n += 1
    return n


class _FilterState:
    __slots__ = ("constraints", "counts", "minimums", "required")

    def __init__(self, constraints: list[Constraint], required: RequiredNodeAffinity) -> None:
        self.constraints = constraints
        self.required = required
        self.counts: list[dict[str, int]] = [{} for _ in constraints]
        self.minimums: list[int] = [_BIG] * len(constraints)

    def recompute(self) -> None:
        for i, c in enumerate(self.constraints):
            counts = self.counts[i]
            low = min(counts.values(), default=_BIG)
            if len(counts) < c.min_domains:
                low = 0
            self.minimums[i] = low

    def clone(self) -> _FilterState:
        s = _FilterState(self.constraints, self.required)
        s.counts = [dict(c) for c in self.counts]
        s.minimums = list(self.minimums)
        return s

    def update(self, pod: PodInfo, other: PodInfo, node: NodeInfo, sign: int) -> None:
        if other.namespace != pod.namespace or not _has_keys(node, self.constraints):
            return
        for i, c in enumerate(self.constraints):
            if _included(c, pod, node, self.required) and c.selector.matches(other.labels):
                value = node.labels[c.topology_key]
                self.counts[i][value] = self.counts[i].get(value, 0) + sign
        self.recompute()


@dataclass
class _ScoreState:
    constraints: list[Constraint]
    counts: list[dict[str, int]]
    weights: list[float]
    ignored: set[str]


class PodTopologySpread:
    name = NAME

    def __init__(self, args: Mapping[str, Any]) -> None:
        self.defaulting = (args.get("defaultingType") or "System") == "System"

    def _soft_constraints(self, pod: PodInfo, snapshot: Snapshot) -> tuple[list[Constraint], bool]:
        spec_constraints = (pod.pod.get("spec") or {}).get("topologySpreadConstraints")
        if spec_constraints:
            return constraints_of(pod, hard=False), True
        hook = snapshot.default_spread_selector
        selector = hook(pod) if (self.defaulting and hook is not None) else None
        if selector is None or selector.nothing:
            return [], False
        return [Constraint(3, HOSTNAME, False, selector, 1, True, False),
                Constraint(5, ZONE, False, selector, 1, True, False)], False

    # -- filtering ------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]:
        constraints = constraints_of(pod, hard=True)
        if not constraints:
            return None, SKIP
        s = _FilterState(constraints, RequiredNodeAffinity(pod.pod))
        for node in snapshot.node_infos():
            if not _has_keys(node, constraints):
                continue
            for i, c in enumerate(constraints):
                if _included(c, pod, node, s.required):
                    value = node.labels[c.topology_key]
                    s.counts[i][value] = s.counts[i].get(value, 0) + _count(node, c.selector, pod.namespace)
        s.recompute()
        state.write(_PRE_FILTER_KEY, s)
        return None, SUCCESS

    def add_pod(self, state: CycleState, pod: PodInfo, pod_to_add: PodInfo, node: NodeInfo) -> None:
        s: _FilterState | None = state.read(_PRE_FILTER_KEY)
        if s is not None:
            s.update(pod, pod_to_add, node, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, pod_to_remove: PodInfo, node: NodeInfo) -> None:
        s: _FilterState | None = state.read(_PRE_FILTER_KEY)
        if s is not None:
            s.update(pod, pod_to_remove, node, -1)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        s: _FilterState | None = state.read(_PRE_FILTER_KEY)
        if s is None:
            return SUCCESS
        for i, c in enumerate(s.constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                return unresolvable(ERR_REASON_MISSING_LABEL)
            self_match = 1 if c.selector.matches(pod.labels) else 0
            skew = s.counts[i].get(value, 0) + self_match - s.minimums[i]
            if skew > c.max_skew:
                return unschedulable(ERR_REASON)
        return SUCCESS

    # -- scoring ----------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> Status:
        constraints, require_all = self._soft_constraints(pod, snapshot)
        if not constraints:
            return SKIP
        counts: list[dict[str, int]] = [{} for _ in constraints]
        ignored: set[str] = set()
        for node in nodes:
            if require_all and not _has_keys(node, constraints):
                ignored.add(node.name)
                continue
            for i, c in enumerate(constraints):
                if c.topology_key != HOSTNAME and c.topology_key in node.labels:
                    counts[i].setdefault(node.labels[c.topology_key], 0)
        weights = []
        for i, c in enumerate(constraints):
            size = len(nodes) - len(ignored) if c.topology_key == HOSTNAME else len(counts[i])
            weights.append(math.log(size + 2))
        required = RequiredNodeAffinity(pod.pod)
        if any(c.topology_key != HOSTNAME for c in constraints):
            for node in snapshot.node_infos():
                if require_all and not _has_keys(node, constraints):
                    continue
                for i, c in enumerate(constraints):
                    if c.topology_key == HOSTNAME:
                        continue
                    value = node.labels.get(c.topology_key)
                    if value is None or value not in counts[i] or not _included(c, pod, node, required):
                        continue
                    counts[i][value] += _count(node, c.selector, pod.namespace)
        state.write(_PRE_SCORE_KEY, _ScoreState(constraints, counts, weights, ignored))
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        s: _ScoreState = state.read(_PRE_SCORE_KEY)
        if node.name in s.ignored:
            return 0
        total = 0.0
        for i, c in enumerate(s.constraints):
            value = node.labels.get(c.topology_key)
            if value is None:
                continue
            if c.topology_key == HOSTNAME:
                n = _count(node, c.selector, pod.namespace)
            else:
                n = s.counts[i].get(value, 0)
            total += n * s.weights[i] + (c.max_skew - 1)
        return math.floor(total + 0.5)  # Go's math.Round: halves away from zero

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], scores: list[int]) -> None:
        s: _ScoreState = state.read(_PRE_SCORE_KEY)
        kept = [sc for n, sc in zip(nodes, scores) if n.name not in s.ignored]
        lo, hi = min(kept, default=0), max(kept, default=0)
        for i, node in enumerate(nodes):
            if node.name in s.ignored:
                scores[i] = 0
            elif hi == 0:
                scores[i] = 100
            else:
                scores[i] = 100 * (hi + lo - scores[i]) // hi


def new(args: Mapping[str, Any], handle: Handle) -> PodTopologySpread:
    return PodTopologySpread(args)
