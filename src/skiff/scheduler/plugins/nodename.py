"""NodeName: a pod that names a node (``spec.nodeName``) fits only that node.

Reason: ``node(s) didn't match the requested node name`` (unresolvable).
"""

from __future__ import annotations

from typing import Any, Mapping

from ..framework import Handle
from ..interface import SKIP, SUCCESS, CycleState, PreFilterResult, Status, unresolvable
from ..podinfo import PodInfo
from ..snapshot import NodeInfo, Snapshot

NAME = "NodeName"
ERR_REASON = "node(s) didn't match the requested node name"
_REJECT = unresolvable(ERR_REASON)


class NodeName:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]:
        """Nothing to check for pods that name no node (keeps Filter off the hot path)."""
        return None, (SUCCESS if pod.node_name else SKIP)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        if pod.node_name and pod.node_name != node.name:
            return _REJECT
        return SUCCESS


def new(args: Mapping[str, Any], handle: Handle) -> NodeName:
    return NodeName()
