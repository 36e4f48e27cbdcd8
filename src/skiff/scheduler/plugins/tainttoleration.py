"""TaintToleration: keep pods off nodes whose taints they do not tolerate.

Filter: the first ``NoSchedule`` or ``NoExecute`` taint the pod does not
tolerate rejects the node (unresolvable) with the reason
``node(s) had untolerated taint {key: value}``.  PreFilter (skiff's shortcut,
same outcome): when no node in the snapshot has such a taint, the Filter is
skipped for the cycle.

Score: the number of ``PreferNoSchedule`` taints the pod does not tolerate
(only its tolerations with an empty or ``PreferNoSchedule`` effect count),
normalized in reverse: the node with the fewest gets 100.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..framework import Handle
from ..interface import SKIP, SUCCESS, CycleState, PreFilterResult, Status, default_normalize, unresolvable
from ..podinfo import PodInfo
from ..snapshot import NodeInfo, Snapshot
from ..tolerations import PREFER_NO_SCHEDULE, first_untolerated, tolerates

NAME = "TaintToleration"
_STATE_KEY = "PreScore" + NAME


def untolerated_reason(taint: Mapping[str, Any]) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value') or ''}}}"


class TaintToleration:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]:
        """No NoSchedule/NoExecute taint anywhere: nothing to check on any node this cycle."""
        return None, (SUCCESS if snapshot.tainted else SKIP)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        if not node.taints:
            return SUCCESS
        taint = first_untolerated(node.taints, pod.tolerations)
        if taint is None:
            return SUCCESS
        return unresolvable(untolerated_reason(taint))

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> Status:
        prefer = [t for t in pod.tolerations if (t.get("effect") or "") in ("", PREFER_NO_SCHEDULE)]
        state.write(_STATE_KEY, prefer)
        return SUCCESS

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        if not node.taints:
            return 0
        prefer = state.read(_STATE_KEY) or []
        return sum(1 for t in node.taints
                   if t.get("effect") == PREFER_NO_SCHEDULE and not tolerates(prefer, t))

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        return [self.score(state, pod, n) if n.taints else 0 for n in nodes]

    def normalize_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], scores: list[int]) -> None:
        default_normalize(scores, reverse=True)


def new(args: Mapping[str, Any], handle: Handle) -> TaintToleration:
    return TaintToleration()
