"""InterPodAffinity: place pods near (affinity) or away from (anti-affinity) other pods.

Terms select pods by labels and namespaces; a *topology key* (a node label such
as ``kubernetes.io/hostname`` or ``topology.kubernetes.io/zone``) defines what
"near" means: nodes sharing that label's value form one domain.

Filter, in this order:

1. every required affinity term of the pod must have a matching pod in the
   node's domain — unless no pod in the cluster matches the terms and the pod
   matches them itself (the first of a group) — and the node must carry every
   term's topology key; else ``node(s) didn't match pod affinity rules``
   (unresolvable);
2. no pod matching a required anti-affinity term of the pod may be in the
   node's domain: ``node(s) didn't match pod anti-affinity rules``;
3. no existing pod whose required anti-affinity matches this pod may be in the
   node's domain: ``node(s) didn't satisfy existing pods anti-affinity rules``.

PreFilter counts matching pods per (topology key, value) once; Filter only
looks up the node's labels.

Score: for each (key, value) domain the weights of preferred terms (the pod's
terms over existing pods, and existing pods' preferred terms — and required
affinity terms with weight ``hardPodAffinityWeight``, default 1 — over this
pod), anti-affinity counting negative; a node sums the domains it is in; then
scores are min-max scaled onto 0..100.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..framework import Handle
from ..interface import SKIP, SUCCESS, CycleState, PreFilterResult, Status, unresolvable, unschedulable
from ..podinfo import AffinityTerm, NamespaceLabels, PodInfo, WeightedAffinityTerm
from ..snapshot import NodeInfo, Snapshot

NAME = "InterPodAffinity"
ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
_PRE_FILTER_KEY = "PreFilter" + NAME
_PRE_SCORE_KEY = "PreScore" + NAME

Pair = tuple[str, str]


def _bump(counts: dict[Pair, int], pair: Pair, n: int) -> None:
    v = counts.get(pair, 0) + n
    if v:
        counts[pair] = v
    else:
        counts.pop(pair, None)


def _matches_all(terms: tuple[AffinityTerm, ...], pod: PodInfo, ns: NamespaceLabels) -> bool:
    return all(t.matches(pod, ns) for t in terms)


@dataclass
class _FilterState:
    ns: NamespaceLabels
    existing_anti: dict[Pair, int] = field(default_factory=dict)
    affinity: dict[Pair, int] = field(default_factory=dict)
    anti: dict[Pair, int] = field(default_factory=dict)

    def clone(self) -> _FilterState:
        return _FilterState(self.ns, dict(self.existing_anti), dict(self.affinity), dict(self.anti))

    def update(self, pod: PodInfo, other: PodInfo, node: NodeInfo, sign: int) -> None:
        labels = node.labels
        for t in other.required_anti_affinity:
            if t.topology_key in labels and t.matches(pod, self.ns):
                _bump(self.existing_anti, (t.topology_key, labels[t.topology_key]), sign)
        if pod.required_affinity and _matches_all(pod.required_affinity, other, self.ns):
            for t in pod.required_affinity:
                if t.topology_key in labels:
                    _bump(self.affinity, (t.topology_key, labels[t.topology_key]), sign)
        for t in pod.required_anti_affinity:
            if t.topology_key in labels and t.matches(other, self.ns):
                _bump(self.anti, (t.topology_key, labels[t.topology_key]), sign)


class InterPodAffinity:
    name = NAME

    def __init__(self, args: Mapping[str, Any]) -> None:
        weight = args.get("hardPodAffinityWeight")
        self.hard_weight = 1 if weight is None else int(weight)
        self.ignore_existing_preferred = bool(args.get("ignorePreferredTermsOfExistingPods"))

    # -- filtering ----------------------------------------------------------------------------

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]:
        s = _FilterState(snapshot.ns_labels)
        anti_nodes = snapshot.nodes_with_required_anti_affinity_pods()
        if not anti_nodes and not pod.required_affinity and not pod.required_anti_affinity:
            return None, SKIP
        for node in anti_nodes:
            for other in node.pods_with_required_anti_affinity.values():
                for t in other.required_anti_affinity:
                    if t.topology_key in node.labels and t.matches(pod, s.ns):
                        _bump(s.existing_anti, (t.topology_key, node.labels[t.topology_key]), 1)
        if pod.required_affinity or pod.required_anti_affinity:
            for node in snapshot.node_infos():
                labels = node.labels
                for other in node.pods.values():
                    if pod.required_affinity and _matches_all(pod.required_affinity, other, s.ns):
                        for t in pod.required_affinity:
                            if t.topology_key in labels:
                                _bump(s.affinity, (t.topology_key, labels[t.topology_key]), 1)
                    for t in pod.required_anti_affinity:
                        if t.topology_key in labels and t.matches(other, s.ns):
                            _bump(s.anti, (t.topology_key, labels[t.topology_key]), 1)
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
        labels = node.labels
        if pod.required_affinity:
            exist = True
            for t in pod.required_affinity:
                value = labels.get(t.topology_key)
                if value is None:
                    return unresolvable(ERR_AFFINITY)
                if s.affinity.get((t.topology_key, value), 0) <= 0:
                    exist = False
            if not exist and not (not s.affinity and _matches_all(pod.required_affinity, pod, s.ns)):
                return unresolvable(ERR_AFFINITY)
        for t in pod.required_anti_affinity:
            value = labels.get(t.topology_key)
            if value is not None and s.anti.get((t.topology_key, value), 0) > 0:
                return unschedulable(ERR_ANTI_AFFINITY)
        for (key, value), n in s.existing_anti.items():
            if n > 0 and labels.get(key) == value:
                return unschedulable(ERR_EXISTING_ANTI_AFFINITY)
        return SUCCESS

    # -- scoring ------------------------------------------------------------------------------

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> Status:
        has_preferred = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        if self.ignore_existing_preferred and not has_preferred:
            return SKIP
        ns = snapshot.ns_labels
        scores: dict[str, dict[str, int]] = {}

        def process(terms: tuple[WeightedAffinityTerm, ...], target: PodInfo, node: NodeInfo, sign: int) -> None:
            for wt in terms:
                key = wt.term.topology_key
                if key in node.labels and wt.term.matches(target, ns):
                    per_key = scores.setdefault(key, {})
                    value = node.labels[key]
                    per_key[value] = per_key.get(value, 0) + sign * wt.weight

        candidates = snapshot.node_infos() if has_preferred else snapshot.nodes_with_affinity_pods()
        for node in candidates:
            if not node.labels:
                continue
            existing = node.pods if has_preferred else node.pods_with_affinity
            for other in existing.values():
                process(pod.preferred_affinity, other, node, 1)
                process(pod.preferred_anti_affinity, other, node, -1)
                if self.hard_weight > 0:
                    process(tuple(WeightedAffinityTerm(t, self.hard_weight) for t in other.required_affinity),
                            pod, node, 1)
                if not self.ignore_existing_preferred:
                    process(other.preferred_affinity, pod, node, 1)
                    process(other.preferred_anti_affinity, pod, node, -1)
        if not scores:
            return SKIP
        state.write(_PRE_SCORE_KEY, scores)
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        scores: dict[str, dict[str, int]] = state.read(_PRE_SCORE_KEY) or {}
        total = 0
        for key, per_value in scores.items():
            value = node.labels.get(key)
            if value is not None:
                total += per_value.get(value, 0)
        return total

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], scores: list[int]) -> None:
        if not scores:
            return
        lo, hi = min(scores), max(scores)
        diff = hi - lo
        for i, s in enumerate(scores):
            scores[i] = int(100 * ((s - lo) / diff)) if diff > 0 else 0


def new(args: Mapping[str, Any], handle: Handle) -> InterPodAffinity:
    return InterPodAffinity(args)
