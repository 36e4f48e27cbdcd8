"""Node scores remembered between scheduling cycles, for plugins whose score is node-local.

Most Score plugins look at the whole cluster (ImageLocality counts the nodes holding an
image, PodTopologySpread and InterPodAffinity count pods everywhere).  A few score a
node from that node alone and a handful of numbers from the pod: NodeResourcesFit
(LeastAllocated / MostAllocated) and BalancedAllocation look at the node's allocatable
and requested resources and the pod's requests.  For those, a node's score stays the
same until the node changes, and a burst of pods from one template asks the same
question of the same nodes again and again: on 1,000 nodes each cycle scores about 420
of them, while a cycle changes one node (the one the pod lands on).

A plugin opts in by implementing ``score_cache_key(state, pod) -> Hashable | None``:
everything about the pod its score depends on (None: do not cache this pod).  The
cache keeps, per plugin and key, each node's raw score with the :class:`NodeInfo` it
was computed for and that NodeInfo's ``generation``; the snapshot bumps the generation
on every change to the node or its pods, and a node deleted and added again is a new
NodeInfo, so a stale score is never used.  Normalization (if any) runs afterwards on
the full list, as without the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from .snapshot import NodeInfo

#: Distinct pod shapes remembered per plugin (a burst rarely has more; the oldest goes).
MAX_KEYS = 16

BatchScorer = Callable[[Any, Any, list[NodeInfo]], list[int]]
_Entry = tuple[NodeInfo, int, int]  # (node info, its generation, score)


class NodeScoreCache:
    """Raw scores of node-local Score plugins, valid while the node's generation holds."""

    def __init__(self) -> None:
        self._by_plugin: dict[str, dict[Hashable, dict[str, _Entry]]] = {}

    def scores(self, plugin: str, key: Hashable, nodes: list[NodeInfo],
               compute: Callable[[list[NodeInfo]], list[int]]) -> list[int]:
        """Each node's score, computing (with ``compute``) only those not remembered."""
        shapes = self._by_plugin.setdefault(plugin, {})
        entries = shapes.get(key)
        if entries is None:
            if len(shapes) >= MAX_KEYS:
                del shapes[next(iter(shapes))]
            entries = shapes[key] = {}
        get = entries.get
        # One pass, no call per node: this runs for every node of every cycle.
        scores = [e[2] if (e := get(n.name)) is not None and e[0] is n and e[1] == n.generation
                  else _STALE for n in nodes]
        stale = [i for i, score in enumerate(scores) if score is _STALE]
        if stale:
            fresh = compute([nodes[i] for i in stale])
            for i, score in zip(stale, fresh):
                node = nodes[i]
                entries[node.name] = (node, node.generation, score)
                scores[i] = score
        return scores  # type: ignore[return-value]

    def clear(self) -> None:
        self._by_plugin.clear()


_STALE: Any = object()
