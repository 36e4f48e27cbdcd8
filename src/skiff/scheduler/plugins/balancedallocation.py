"""NodeResourcesBalancedAllocation: prefer nodes whose resources stay evenly used.

Per scored resource (default cpu and memory) the fraction
``(node's requests + pod's request) / allocatable`` (capped at 1) is taken —
actual requests, no non-zero defaults.  The score is ``(1 - σ) * 100`` where σ
is the standard deviation of the fractions (for two resources ``|a - b| / 2``).
Best-effort pods (no requests for these resources) skip this plugin.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from ..framework import Handle
from ..interface import SKIP, SUCCESS, CycleState, Status
from ..podinfo import PodInfo
from ..snapshot import NodeInfo, Snapshot
from .noderesourcesfit import DEFAULT_RESOURCES, allocatable_and_requested, parse_resources, pod_request_for

NAME = "NodeResourcesBalancedAllocation"
_PRE_SCORE_KEY = "PreScore" + NAME


def balanced_score(fractions: list[float]) -> int:
    if len(fractions) == 2:
        std = abs(fractions[0] - fractions[1]) / 2
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    else:
        std = 0.0
    return int((1 - std) * 100)


class BalancedAllocation:
    name = NAME

    def __init__(self, args: Mapping[str, Any]) -> None:
        self.resources = parse_resources(args.get("resources"))

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> Status:
        requests = [pod_request_for(pod, r, False) for r, _ in self.resources]
        if not any(requests):
            return SKIP
        state.write(_PRE_SCORE_KEY, requests)
        return SUCCESS

    def score_cache_key(self, state: CycleState, pod: PodInfo) -> tuple[int, ...]:
        """All a node's score depends on besides the node (see scheduler/scorecache.py)."""
        requests: list[int] = state.read(_PRE_SCORE_KEY) or [pod_request_for(pod, r, False) for r, _ in self.resources]
        return (pod.requests.milli_cpu, pod.requests.memory, *requests)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        requests: list[int] = state.read(_PRE_SCORE_KEY) or [pod_request_for(pod, r, False) for r, _ in self.resources]
        fractions: list[float] = []
        for (resource, _), want in zip(self.resources, requests):
            alloc, req = allocatable_and_requested(node, resource, want, False)
            if alloc == 0:
                continue
            fractions.append(min(req / alloc, 1.0))
        return balanced_score(fractions)

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        if self.resources != DEFAULT_RESOURCES:
            return [self.score(state, pod, n) for n in nodes]
        cpu, mem = pod.requests.milli_cpu, pod.requests.memory
        out = []
        for n in nodes:   # the default (cpu and memory), inlined: this loop is hot
            alloc = n.allocatable
            a_cpu, a_mem = alloc.milli_cpu, alloc.memory
            if a_cpu and a_mem:
                used = n.requested
                f_cpu = (used.milli_cpu + cpu) / a_cpu
                f_mem = (used.memory + mem) / a_mem
                if f_cpu > 1.0:
                    f_cpu = 1.0
                if f_mem > 1.0:
                    f_mem = 1.0
                std = (f_cpu - f_mem if f_cpu > f_mem else f_mem - f_cpu) / 2
                out.append(int((1 - std) * 100))
            else:
                out.append(self.score(state, pod, n))
        return out


def new(args: Mapping[str, Any], handle: Handle) -> BalancedAllocation:
    return BalancedAllocation(args)
