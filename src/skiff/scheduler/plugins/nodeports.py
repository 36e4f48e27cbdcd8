"""NodePorts: a pod's ``hostPort``s must be free on the node.

A port is identified by (hostIP, protocol, port); ``0.0.0.0`` (the default
hostIP) conflicts with every address.  Reason:
``node(s) didn't have free ports for the requested pod ports``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..framework import Handle
from ..interface import SKIP, SUCCESS, CycleState, PreFilterResult, Status, unschedulable
from ..podinfo import PodInfo
from ..snapshot import NodeInfo, Snapshot

NAME = "NodePorts"
ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
_REJECT = unschedulable(ERR_REASON)


class NodePorts:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]:
        return None, (SUCCESS if pod.host_ports else SKIP)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        if not node.used_ports:
            return SUCCESS
        for ip, proto, port in pod.host_ports:
            if node.port_in_use(ip, proto, port):
                return _REJECT
        return SUCCESS


def new(args: Mapping[str, Any], handle: Handle) -> NodePorts:
    return NodePorts()
