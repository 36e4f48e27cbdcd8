"""The scheduler's shortcuts give the same answers as the long way round.

Sampling (percentageOfNodesToScore), the cluster-wide PreFilter skips of
NodeUnschedulable and TaintToleration, digests reused across pod versions,
node heartbeats that change nothing, and tie-breaking.
"""

import copy
import random

from skiff.scheduler.framework import Framework
from skiff.scheduler.podinfo import PodInfo
from skiff.scheduler.profile import DEFAULT_PLUGINS, PluginRef, Profile, default_profile, load_config_text
from skiff.scheduler.snapshot import Snapshot

from .builders import node, pod

NO_SCHEDULE = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}


def nodes(count: int, **kw):
    return [node(f"n{i:04d}", **kw) for i in range(count)]


# -- percentageOfNodesToScore ------------------------------------------------------------------

def test_profile_percentage_limits_the_nodes_evaluated_and_the_start_rotates():
    profiles = load_config_text("percentageOfNodesToScore: 20\nprofiles:\n- schedulerName: a\n"
                                "- schedulerName: b\n  percentageOfNodesToScore: 50\n")
    snap = Snapshot(nodes(500))
    a, b = (Framework(p, rng=random.Random(1)) for p in profiles)
    r = a.schedule_one(snap, pod("p", "100m"))
    assert (r.evaluated_nodes, r.feasible_nodes) == (100, 100)   # 20 % of 500
    assert a.next_start_node_index == 100
    r = a.schedule_one(snap, pod("q", "100m"))
    assert a.next_start_node_index == 200
    assert b.schedule_one(snap, pod("p", "100m")).feasible_nodes == 250   # the profile's own 50 %


def test_rejected_nodes_count_as_processed_and_the_search_wraps_round():
    # 150 nodes; the first 100 are full: all 150 are visited to find the 50 that fit ...
    snap = Snapshot(nodes(100, cpu="1") + [node(f"m{i:03d}") for i in range(50)])
    fw = Framework(rng=random.Random(1))
    r = fw.schedule_one(snap, pod("big", "2"))
    assert (r.feasible_nodes, len(r.statuses)) == (50, 100)
    assert fw.next_start_node_index == 0    # (0 + 150) % 150
    # ... and a search starting near the end wraps round to the front.
    fw.next_start_node_index = 140
    r = fw.schedule_one(snap, pod("big2", "2"))
    assert r.feasible_nodes == 50 and r.evaluated_nodes == 150
    assert fw.next_start_node_index == 140


def test_without_score_plugins_the_first_feasible_node_is_taken_round_robin():
    plugins = tuple(p for p in DEFAULT_PLUGINS if p.name not in (
        "TaintToleration", "NodeAffinity", "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity",
        "NodeResourcesBalancedAllocation", "ImageLocality")) + (PluginRef("NodeResourcesFit", 1, frozenset(["filter"])),)
    fw = Framework(Profile(plugins=plugins), rng=random.Random(1))
    assert not fw.score_plugins
    snap = Snapshot(nodes(300))
    chosen = [fw.schedule_one(snap, pod(f"p{i}", "100m")).node_name for i in range(3)]
    assert chosen == ["n0000", "n0001", "n0002"]


def test_no_filter_plugins_still_rotate_the_start():
    fw = Framework(Profile(plugins=(PluginRef("ImageLocality", 1),)), rng=random.Random(1))
    snap = Snapshot(nodes(200))
    r = fw.schedule_one(snap, pod("p"))
    assert r.feasible_nodes == 100 and fw.next_start_node_index == 100
    fw.schedule_one(snap, pod("q"))
    assert fw.next_start_node_index == 0


# -- cluster-wide PreFilter skips ----------------------------------------------------------------

def test_taints_and_cordons_are_honoured_once_any_node_has_them():
    snap = Snapshot(nodes(3))
    fw = Framework(rng=random.Random(3))
    assert fw.schedule_one(snap, pod("p")).node_name is not None
    assert not snap.tainted and not snap.cordoned

    snap.update_node(node("n0000", taints=[NO_SCHEDULE]))
    snap.update_node(node("n0001", unschedulable=True))
    assert snap.tainted == {"n0000"} and snap.cordoned == {"n0001"}
    for i in range(5):
        assert fw.schedule_one(snap, pod(f"q{i}")).node_name == "n0002"
    r = fw.schedule_one(snap, pod("gpu", tolerations=[{"key": "dedicated", "operator": "Exists"}]))
    assert r.node_name in ("n0000", "n0002")

    snap.update_node(node("n0000"))           # taint removed, node uncordoned, node deleted
    snap.update_node(node("n0001"))
    snap.remove_node("n0002")
    assert not snap.tainted and not snap.cordoned
    placed = {fw.schedule_one(snap, pod(f"r{i}")).node_name for i in range(20)}
    assert placed == {"n0000", "n0001"}


def test_prefer_no_schedule_taints_do_not_turn_the_filter_on():
    soft = {"key": "spot", "effect": "PreferNoSchedule"}
    snap = Snapshot([node("soft", taints=[soft]), node("plain")])
    assert not snap.tainted
    r = Framework(rng=random.Random(1)).schedule_one(snap, pod("p"), with_scores=True)
    assert r.node_name == "plain" and r.scores["plain"] > r.scores["soft"]


def test_affinity_pod_counters_follow_adds_updates_and_removals():
    snap = Snapshot(nodes(2))
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    p = pod("a", node_name="n0000", labels={"app": "x"}, affinity=anti)
    snap.add_pod(p)
    assert (snap.affinity_pods, snap.anti_affinity_pods) == (1, 1)
    assert [i.name for i in snap.nodes_with_required_anti_affinity_pods()] == ["n0000"]
    snap.update_pod(copy.deepcopy(p))
    assert (snap.affinity_pods, snap.anti_affinity_pods) == (1, 1)
    fw = Framework(rng=random.Random(1))
    assert fw.schedule_one(snap, pod("b", labels={"app": "x"})).node_name == "n0001"
    snap.remove_pod("default/a")
    assert (snap.affinity_pods, snap.anti_affinity_pods) == (0, 0)
    assert snap.nodes_with_affinity_pods() == [] and snap.nodes_with_required_anti_affinity_pods() == []


# -- digests reused ---------------------------------------------------------------------------------

def _digest(pi: PodInfo) -> dict:
    return {slot: getattr(pi, slot) for slot in PodInfo.__slots__ if slot != "pod"}


def test_a_status_update_reuses_the_digest_and_reads_the_new_status():
    snap = Snapshot(nodes(1))
    p = pod("a", "250m", "64Mi", node_name="n0000")
    first = snap.add_pod(p)
    newer = copy.deepcopy(p)
    newer["status"] = {"phase": "Running", "startTime": "2024-05-01T00:00:00Z"}
    newer["metadata"]["resourceVersion"] = "7"
    second = snap.update_pod(newer)
    assert second.requests is first.requests          # not parsed again
    assert second.pod is newer and second.start_time == "2024-05-01T00:00:00Z"
    assert _digest(second) == {**_digest(PodInfo(newer))}
    info = snap.get("n0000")
    assert info.requested.milli_cpu == 250 and len(info.pods) == 1


def test_a_changed_spec_or_label_is_digested_again():
    snap = Snapshot(nodes(1))
    p = pod("a", "250m", node_name="n0000")
    snap.add_pod(p)
    bigger = copy.deepcopy(p)
    bigger["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "1"
    assert snap.update_pod(bigger).requests.milli_cpu == 1000
    relabelled = copy.deepcopy(bigger)
    relabelled["metadata"]["labels"] = {"tier": "db"}
    assert snap.update_pod(relabelled).labels == {"tier": "db"}
    assert snap.get("n0000").requested.milli_cpu == 1000


def test_assume_then_confirm_keeps_one_copy_of_the_pod():
    snap = Snapshot(nodes(2))
    queued = PodInfo(pod("a", "500m"))
    assumed = snap.assume(queued, "n0001")
    assert assumed.node_name == "n0001" and assumed.pod["spec"]["nodeName"] == "n0001"
    assert queued.pod["spec"].get("nodeName") is None       # the queued pod is not touched
    assert _digest(assumed) == _digest(PodInfo(assumed.pod))
    confirmed = copy.deepcopy(assumed.pod)
    confirmed["metadata"]["resourceVersion"] = "9"
    snap.update_pod(confirmed)
    assert "default/a" not in snap.assumed
    assert snap.get("n0001").requested.milli_cpu == 500 and snap.num_pods == 1


def test_a_heartbeat_keeps_the_node_info_and_a_real_change_is_seen():
    snap = Snapshot([node("n", cpu="2")])
    info = snap.get("n")
    generation = info.generation
    beat = node("n", cpu="2")
    beat["status"]["conditions"] = [{"type": "Ready", "status": "True", "lastHeartbeatTime": "now"}]
    assert snap.update_node(beat) is info
    assert info.node is beat and info.generation == generation
    snap.update_node(node("n", cpu="8", labels={"zone": "b"}))
    assert info.allocatable.milli_cpu == 8000 and info.labels["zone"] == "b"
    assert info.generation > generation


# -- tie-breaking ------------------------------------------------------------------------------------

def test_ties_are_broken_uniformly():
    snap = Snapshot(nodes(4))
    fw = Framework(default_profile(), rng=random.Random(5))
    counts: dict[str, int] = {}
    for _ in range(400):
        name = fw.schedule_one(snap, pod("p", "100m")).node_name
        counts[name] = counts.get(name, 0) + 1
    assert set(counts) == {"n0000", "n0001", "n0002", "n0003"}
    assert min(counts.values()) > 60
