"""NodeUnschedulable: cordoned nodes (``spec.unschedulable``) take no new pods.

A pod that tolerates the ``node.kubernetes.io/unschedulable:NoSchedule`` taint
is let through (DaemonSet pods do).  Reason: ``node(s) were unschedulable``.

PreFilter (skiff's shortcut, same outcome): when no node in the snapshot is
cordoned, the Filter is skipped for the cycle.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..framework import Handle
from ..interface import SKIP, SUCCESS, CycleState, PreFilterResult, Status, unresolvable
from ..podinfo import PodInfo
from ..snapshot import NodeInfo, Snapshot
from ..tolerations import tolerates

NAME = "NodeUnschedulable"
ERR_REASON = "node(s) were unschedulable"
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
_REJECT = unresolvable(ERR_REASON)


class NodeUnschedulable:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]:
        """No cordoned node anywhere: nothing to check on any node this cycle."""
        return None, (SUCCESS if snapshot.cordoned else SKIP)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        if node.unschedulable and not tolerates(pod.tolerations, UNSCHEDULABLE_TAINT):
            return _REJECT
        return SUCCESS


def new(args: Mapping[str, Any], handle: Handle) -> NodeUnschedulable:
    return NodeUnschedulable()
