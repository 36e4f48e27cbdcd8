"""Remembered node scores (scheduler/scorecache.py) give exactly the scores of the long way.

Two frameworks schedule the same pods on the same snapshot, one with the score cache
and one without; every cycle's per-node scores and choice must be equal while pods
land, leave, nodes change capacity and a node is deleted and created again.
"""

from __future__ import annotations

import random
from pathlib import Path

from skiff.scheduler.framework import Framework
from skiff.scheduler.profile import default_profile, load_config
from skiff.scheduler.scorecache import MAX_KEYS, NodeScoreCache
from skiff.scheduler.snapshot import NodeInfo, Snapshot

from .builders import node, pod

SHAPES = [("100m", "128Mi"), ("250m", "512Mi"), (None, None), ("1", "64Mi")]
#: The bin-packing profile users get from the examples (MostAllocated, BalancedAllocation x5).
BINPACK = Path(__file__).resolve().parents[2] / "examples" / "scheduler-binpack.yaml"


def _pair(config: Path | None) -> tuple[Framework, Framework]:
    profile = load_config(config)[0] if config else default_profile()
    cached = Framework(profile, rng=random.Random(7))
    plain = Framework(profile, rng=random.Random(7))
    plain.score_cache = None
    return cached, plain


def _cluster() -> Snapshot:
    return Snapshot([node(f"n{i:03d}", cpu=str(2 + i % 5), memory=f"{4 + 2 * (i % 3)}Gi")
                     for i in range(150)])


def _same_cycle(cached: Framework, plain: Framework, snap: Snapshot, p: dict) -> str:
    a = cached.schedule_one(snap, p, with_scores=True)
    b = plain.schedule_one(snap, p, with_scores=True)
    assert a.scores == b.scores and a.scores
    assert a.node_name == b.node_name
    assert a.node_name is not None
    return a.node_name


def _run(config: Path | None) -> None:
    cached, plain = _pair(config)
    snap = _cluster()
    for i in range(300):
        cpu, memory = SHAPES[i % len(SHAPES)]
        p = pod(f"p{i}", cpu, memory)
        chosen = _same_cycle(cached, plain, snap, p)
        snap.assume(p, chosen)
        if i % 7 == 3:            # a pod goes away
            snap.remove_pod(f"default/p{i - 2}")
        if i % 50 == 10:          # a node's capacity changes (its NodeInfo stays)
            snap.update_node(node("n005", cpu="32", memory="64Gi"))
        if i % 50 == 30:          # a node deleted and created again: a new NodeInfo
            name = f"n{i % 150:03d}"
            for key in [k for k, pi in list(snap._pods.items()) if pi.node_name == name]:
                snap.remove_pod(key)
            snap.remove_node(name)
            snap.add_node(node(name, cpu="16", memory="2Gi"))


def test_least_allocated_and_balanced_allocation_scores_match_without_the_cache() -> None:
    _run(None)


def test_the_bin_packing_example_profile_matches_without_the_cache() -> None:
    _run(BINPACK)


def test_a_node_changed_since_is_scored_again_and_others_are_not() -> None:
    cache = NodeScoreCache()
    a, b = NodeInfo("a", node("a")), NodeInfo("b", node("b"))
    computed: list[list[str]] = []

    def compute(nodes: list[NodeInfo]) -> list[int]:
        computed.append([n.name for n in nodes])
        return [n.generation * 10 for n in nodes]

    assert cache.scores("P", (1,), [a, b], compute) == [10, 10]
    assert cache.scores("P", (1,), [a, b], compute) == [10, 10]
    b.set_node(node("b", cpu="8"))          # generation 2
    assert cache.scores("P", (1,), [a, b], compute) == [10, 20]
    assert cache.scores("P", (2,), [a], compute) == [10]     # another pod shape: its own scores
    assert computed == [["a", "b"], ["b"], ["a"]]
    again = NodeInfo("a", node("a"))         # same name and generation, another node
    assert cache.scores("P", (1,), [again], compute) == [10]
    assert computed[-1] == ["a"]


def test_the_cache_keeps_a_bounded_number_of_pod_shapes() -> None:
    cache = NodeScoreCache()
    n = NodeInfo("a", node("a"))
    for key in range(MAX_KEYS * 3):
        cache.scores("P", (key,), [n], lambda nodes: [0] * len(nodes))
    assert len(cache._by_plugin["P"]) == MAX_KEYS
