"""NodeAffinity: ``spec.nodeSelector`` and node affinity, required and preferred.

Filter: the node must carry every ``nodeSelector`` label and match at least one
``requiredDuringSchedulingIgnoredDuringExecution`` term (operators ``In NotIn
Exists DoesNotExist Gt Lt``; ``matchFields`` on ``metadata.name``).  Reason:
``node(s) didn't match Pod's node affinity/selector`` (unresolvable).

PreFilter narrows the candidates when every required term pins
``metadata.name In [...]``.

Score: the sum of the weights of the matching
``preferredDuringSchedulingIgnoredDuringExecution`` terms, normalized so the
best node gets 100.  Pods without preferred terms skip scoring.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..framework import Handle
from ..interface import SKIP, SUCCESS, CycleState, PreFilterResult, Status, default_normalize, unresolvable
from ..podinfo import PodInfo
from ..selectors import NodeSelectorTerm, RequiredNodeAffinity, node_selector_terms
from ..snapshot import NodeInfo, Snapshot

NAME = "NodeAffinity"
ERR_REASON = "node(s) didn't match Pod's node affinity/selector"
_REJECT = unresolvable(ERR_REASON)
_PRE_FILTER_KEY = "PreFilter" + NAME
_PRE_SCORE_KEY = "PreScore" + NAME


def _pinned_names(terms: tuple[NodeSelectorTerm, ...]) -> set[str] | None:
    """Node names every term is limited to via ``metadata.name In``, or None."""
    names: set[str] = set()
    for term in terms:
        pinned = None
        for key, op, values in term.fields:
            if key == "metadata.name" and op == "In":
                pinned = set(values) if pinned is None else pinned & values
        if pinned is None:
            return None
        names |= pinned
    return names


class NodeAffinity:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]:
        required = RequiredNodeAffinity(pod.pod)
        if required.empty:
            return None, SKIP
        state.write(_PRE_FILTER_KEY, required)
        if required.terms:
            names = _pinned_names(required.terms)
            if names is not None:
                if not names:
                    return None, _REJECT
                return PreFilterResult(names), SUCCESS
        return None, SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        required: RequiredNodeAffinity | None = state.read(_PRE_FILTER_KEY)
        if required is None:
            required = RequiredNodeAffinity(pod.pod)
        if required.matches(node.labels, node.name):
            return SUCCESS
        return _REJECT

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> Status:
        node_affinity = (((pod.pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
        preferred = node_affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        if not preferred:
            return SKIP
        weighted = [(int(p.get("weight") or 0), node_selector_terms([p.get("preference") or {}])[0])
                    for p in preferred]
        state.write(_PRE_SCORE_KEY, weighted)
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        weighted: list[tuple[int, NodeSelectorTerm]] = state.read(_PRE_SCORE_KEY) or []
        return sum(w for w, term in weighted if w and term.matches(node.labels, node.name))

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], scores: list[int]) -> None:
        default_normalize(scores)


def new(args: Mapping[str, Any], handle: Handle) -> NodeAffinity:
    return NodeAffinity()
