"""NodeResourcesFit: the pod's requests must fit in what the node has left, and scoring by allocation.

Filter (the pod's effective request, see :mod:`skiff.scheduler.resources`):

- one more pod than ``allocatable.pods`` allows      -> ``Too many pods``
- CPU / memory / ephemeral storage / each extended resource requested beyond
  ``allocatable - requested``                          -> ``Insufficient <resource>``

Every shortfall is reported (one reason each), always as ``UNSCHEDULABLE``
(as in v1.32; later releases mark requests beyond the node's whole allocatable
as unresolvable).

Score (``scoringStrategy``, resources and weights from the plugin args; default
``LeastAllocated`` on cpu and memory, weight 1 each).  Per resource, with
``requested`` = what the node's pods request (CPU/memory with the non-zero
defaults) + this pod's request::

    LeastAllocated:  (allocatable - requested) * 100 / allocatable   (0 if over)
    MostAllocated:   min(requested, allocatable) * 100 / allocatable

node score = Σ score·weight / Σ weight over resources the node has (integer math).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ..framework import Handle
from ..interface import SUCCESS, Code, CycleState, PreFilterResult, Status
from ..podinfo import PodInfo
from ..resources import CPU, EPHEMERAL_STORAGE, MEMORY, Resources, is_scalar_resource
from ..snapshot import NodeInfo, Snapshot

NAME = "NodeResourcesFit"
LEAST_ALLOCATED = "LeastAllocated"
MOST_ALLOCATED = "MostAllocated"
TOO_MANY_PODS = "Too many pods"
_PRE_SCORE_KEY = "PreScore" + NAME

DEFAULT_RESOURCES: tuple[tuple[str, int], ...] = ((CPU, 1), (MEMORY, 1))


def insufficient(requests: Resources, node: NodeInfo,
                 ignored: frozenset[str] = frozenset(), ignored_groups: frozenset[str] = frozenset()
                 ) -> list[tuple[str, bool]]:
    """(reason, unresolvable) for every resource the node lacks for this request."""
    out: list[tuple[str, bool]] = []
    alloc, used = node.allocatable, node.requested
    if len(node.pods) + 1 > alloc.pods:
        out.append((TOO_MANY_PODS, False))
    if requests.is_zero():
        return out
    if requests.milli_cpu > 0 and requests.milli_cpu > alloc.milli_cpu - used.milli_cpu:
        out.append(("Insufficient cpu", requests.milli_cpu > alloc.milli_cpu))
    if requests.memory > 0 and requests.memory > alloc.memory - used.memory:
        out.append(("Insufficient memory", requests.memory > alloc.memory))
    if requests.ephemeral_storage > 0 and \
            requests.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage:
        out.append(("Insufficient ephemeral-storage", requests.ephemeral_storage > alloc.ephemeral_storage))
    for name, want in requests.scalars.items():
        if want == 0 or name in ignored:
            continue
        if "/" in name and name.split("/", 1)[0] in ignored_groups:
            continue
        have = alloc.scalars.get(name, 0)
        if want > have - used.scalars.get(name, 0):
            out.append((f"Insufficient {name}", want > have))
    return out


def least_allocated(requested: int, allocatable: int) -> int:
    if requested > allocatable:
        return 0
    return (allocatable - requested) * 100 // allocatable


def most_allocated(requested: int, allocatable: int) -> int:
    return min(requested, allocatable) * 100 // allocatable


def allocatable_and_requested(node: NodeInfo, resource: str, pod_request: int,
                              non_zero: bool) -> tuple[int, int]:
    """(allocatable, requested-with-this-pod) of one resource; (0, 0) means: do not score it."""
    if resource == CPU:
        used = node.non_zero_cpu if non_zero else node.requested.milli_cpu
        return node.allocatable.milli_cpu, used + pod_request
    if resource == MEMORY:
        used = node.non_zero_memory if non_zero else node.requested.memory
        return node.allocatable.memory, used + pod_request
    if resource == EPHEMERAL_STORAGE:
        return node.allocatable.ephemeral_storage, node.requested.ephemeral_storage + pod_request
    if is_scalar_resource(resource):
        if pod_request == 0:
            return 0, 0
        return node.allocatable.scalars.get(resource, 0), node.requested.scalars.get(resource, 0) + pod_request
    return 0, 0


def pod_request_for(pod: PodInfo, resource: str, non_zero: bool) -> int:
    if non_zero and resource == CPU:
        return pod.non_zero_cpu
    if non_zero and resource == MEMORY:
        return pod.non_zero_memory
    return pod.requests.get(resource)


def parse_resources(spec: Any, default: tuple[tuple[str, int], ...] = DEFAULT_RESOURCES) -> tuple[tuple[str, int], ...]:
    if not spec:
        return default
    return tuple((str(r["name"]), int(r.get("weight") or 1)) for r in spec)


class NodeResourcesFit:
    name = NAME

    def __init__(self, args: Mapping[str, Any]) -> None:
        strategy = args.get("scoringStrategy") or {}
        self.strategy = strategy.get("type") or LEAST_ALLOCATED
        if self.strategy not in (LEAST_ALLOCATED, MOST_ALLOCATED):
            raise ValueError(f"scoringStrategy.type {self.strategy!r} is not supported")
        self._scorer: Callable[[int, int], int] = (
            least_allocated if self.strategy == LEAST_ALLOCATED else most_allocated)
        self.resources = parse_resources(strategy.get("resources"))
        self.ignored = frozenset(args.get("ignoredResources") or ())
        self.ignored_groups = frozenset(args.get("ignoredResourceGroups") or ())

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]:
        return None, SUCCESS

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        req, alloc, used = pod.requests, node.allocatable, node.requested
        if (len(node.pods) < alloc.pods and not req.scalars
                and req.milli_cpu <= alloc.milli_cpu - used.milli_cpu
                and req.memory <= alloc.memory - used.memory
                and req.ephemeral_storage <= alloc.ephemeral_storage - used.ephemeral_storage):
            return SUCCESS     # the common case, without building a list
        short = insufficient(pod.requests, node, self.ignored, self.ignored_groups)
        if not short:
            return SUCCESS
        return Status(Code.UNSCHEDULABLE, tuple(r for r, _ in short))

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot) -> Status:
        state.write(_PRE_SCORE_KEY, [pod_request_for(pod, r, True) for r, _ in self.resources])
        return SUCCESS

    def score_cache_key(self, state: CycleState, pod: PodInfo) -> tuple[int, ...]:
        """All a node's score depends on besides the node (see scheduler/scorecache.py)."""
        requests: list[int] = state.read(_PRE_SCORE_KEY) or [pod_request_for(pod, r, True) for r, _ in self.resources]
        return (pod.non_zero_cpu, pod.non_zero_memory, *requests)

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        requests: list[int] = state.read(_PRE_SCORE_KEY) or [pod_request_for(pod, r, True) for r, _ in self.resources]
        total = weights = 0
        scorer = self._scorer
        for (resource, weight), want in zip(self.resources, requests):
            alloc, req = allocatable_and_requested(node, resource, want, True)
            if alloc == 0:
                continue
            total += scorer(req, alloc) * weight
            weights += weight
        return total // weights if weights else 0

    def score_nodes(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        if self.resources != DEFAULT_RESOURCES:
            return [self.score(state, pod, n) for n in nodes]
        # cpu and memory, weight 1 each: the default, inlined (this loop is hot).
        cpu, mem = pod.non_zero_cpu, pod.non_zero_memory
        out = []
        if self.strategy == LEAST_ALLOCATED:
            for n in nodes:
                alloc = n.allocatable
                a_cpu, a_mem = alloc.milli_cpu, alloc.memory
                if a_cpu and a_mem:
                    r_cpu, r_mem = n.non_zero_cpu + cpu, n.non_zero_memory + mem
                    out.append(((a_cpu - r_cpu) * 100 // a_cpu if r_cpu <= a_cpu else 0)
                               + ((a_mem - r_mem) * 100 // a_mem if r_mem <= a_mem else 0) >> 1)
                else:
                    out.append(self.score(state, pod, n))
        else:
            for n in nodes:
                alloc = n.allocatable
                a_cpu, a_mem = alloc.milli_cpu, alloc.memory
                if a_cpu and a_mem:
                    r_cpu, r_mem = n.non_zero_cpu + cpu, n.non_zero_memory + mem
                    out.append(((r_cpu if r_cpu < a_cpu else a_cpu) * 100 // a_cpu
                                + (r_mem if r_mem < a_mem else a_mem) * 100 // a_mem) >> 1)
                else:
                    out.append(self.score(state, pod, n))
        return out


def new(args: Mapping[str, Any], handle: Handle) -> NodeResourcesFit:
    return NodeResourcesFit(args)
