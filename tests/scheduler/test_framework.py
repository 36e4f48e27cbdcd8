"""Whole scheduling cycles with the default profile: placement, messages, sampling, preemption."""

import random

import pytest

from skiff.scheduler.framework import Framework, fit_error_message, num_feasible_nodes_to_find
from skiff.scheduler.interface import Code, Status
from skiff.scheduler.profile import bin_packing_profile, default_profile
from skiff.scheduler.snapshot import Snapshot

from .builders import node, pod

ZONE = "topology.kubernetes.io/zone"


def schedule_all(fw, snap, pods):
    placed = {}
    for p in pods:
        r = fw.schedule_one(snap, p)
        placed[p["metadata"]["name"]] = r
        if r.node_name:
            snap.assume(p, r.node_name)
    return placed


def per_node(snap):
    return sorted(len(i.pods) for i in snap.node_infos())


def test_six_pods_spread_two_per_node():
    snap = Snapshot([node(f"n{i}") for i in range(3)])
    schedule_all(Framework(rng=random.Random(7)), snap, [pod(f"p{i}", "500m", "512Mi") for i in range(6)])
    assert per_node(snap) == [2, 2, 2]


def test_bin_packing_fills_one_node_first():
    snap = Snapshot([node(f"n{i}") for i in range(3)])
    schedule_all(Framework(bin_packing_profile(), rng=random.Random(7)), snap,
                 [pod(f"p{i}", "500m", "512Mi") for i in range(6)])
    assert per_node(snap) == [0, 0, 6]


def test_node_selector_places_on_the_labelled_node():
    snap = Snapshot([node("a"), node("b", labels={"disk": "ssd"}), node("c")])
    r = Framework().schedule_one(snap, pod("p", nodeSelector={"disk": "ssd"}))
    assert r.node_name == "b"


def test_taint_keeps_pods_away_unless_tolerated():
    taint = [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    snap = Snapshot([node("gpu", taints=taint), node("plain")])
    fw = Framework()
    for i in range(4):
        assert fw.schedule_one(snap, pod(f"p{i}")).node_name == "plain"
    only_gpu = Snapshot([node("gpu", taints=taint)])
    r = fw.schedule_one(only_gpu, pod("p"))
    assert r.node_name is None
    assert r.message.startswith("0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}.")
    tolerant = pod("t", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}])
    assert fw.schedule_one(only_gpu, tolerant).node_name == "gpu"


def test_insufficient_cpu_message_counts_reasons():
    snap = Snapshot([node("a", "1"), node("b", "1"), node("c", "8", labels={"pool": "x"})])
    r = Framework().schedule_one(snap, pod("p", "2", nodeSelector={"pool": "y"}))
    assert r.node_name is None
    assert r.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE   # no node can ever match: preemption cannot help
    assert r.reasons == {"a": ["node(s) didn't match Pod's node affinity/selector"],
                         "b": ["node(s) didn't match Pod's node affinity/selector"],
                         "c": ["node(s) didn't match Pod's node affinity/selector"]}
    snap = Snapshot([node("a", "1"), node("b", "1"), node("c", "8", labels={"pool": "x"})])
    r = Framework().schedule_one(snap, pod("p", "2", affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "pool", "operator": "DoesNotExist"}]}]}}}))
    assert r.message == ("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                         "2 Insufficient cpu. preemption: 0/3 nodes are available: "
                         "1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.")
    assert r.code is Code.UNSCHEDULABLE


def test_fit_error_message_sorts_count_reason_strings():
    statuses = {"a": Status(Code.UNSCHEDULABLE, ("Insufficient cpu", "Insufficient memory")),
                "b": Status(Code.UNSCHEDULABLE, ("Insufficient cpu",)),
                "c": Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, ("node(s) were unschedulable",))}
    assert fit_error_message(3, statuses) == (
        "0/3 nodes are available: 1 Insufficient memory, 1 node(s) were unschedulable, 2 Insufficient cpu.")
    assert fit_error_message(3, statuses, pre_filter_msg="x") == "0/3 nodes are available: x."


def test_anti_affinity_one_per_node_and_surplus_unschedulable():
    snap = Snapshot([node(f"n{i}") for i in range(3)])
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    pods = [pod(f"w{i}", labels={"app": "web"}, affinity=anti) for i in range(4)]
    placed = schedule_all(Framework(), snap, pods)
    assert per_node(snap) == [1, 1, 1]
    last = placed["w3"]
    assert last.node_name is None
    assert last.message == ("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
                            "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod.")


def test_zone_spread_with_do_not_schedule():
    nodes = [node(f"{z}{i}", labels={ZONE: z}) for z in "abc" for i in range(2)]
    snap = Snapshot(nodes)
    c = {"maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app": "web"}}}
    schedule_all(Framework(bin_packing_profile(), rng=random.Random(3)), snap,
                 [pod(f"w{i}", "100m", labels={"app": "web"}, topologySpreadConstraints=[c]) for i in range(6)])
    per_zone = {z: sum(len(snap.get(f"{z}{i}").pods) for i in range(2)) for z in "abc"}
    assert per_zone == {"a": 2, "b": 2, "c": 2}


def test_no_nodes():
    r = Framework().schedule_one(Snapshot(), pod("p"))
    assert r.node_name is None and r.message == "no nodes available to schedule pods"


def test_ties_are_broken_by_the_rng():
    snap = Snapshot([node(f"n{i}") for i in range(4)])
    chosen = {Framework(rng=random.Random(seed)).schedule_one(snap, pod("p")).node_name for seed in range(20)}
    assert len(chosen) > 1


@pytest.mark.parametrize("nodes,percentage,want", [
    (50, None, 50), (100, None, 100), (1000, None, 420), (5000, None, 500), (6000, None, 300),
    (200, None, 100), (400, None, 188), (1000, 10, 100), (1000, 30, 300), (1000, 100, 1000), (300, 5, 100),
])
def test_adaptive_sampling(nodes, percentage, want):
    assert num_feasible_nodes_to_find(nodes, percentage) == want


def test_sampling_stops_early_and_rotates_the_start():
    snap = Snapshot([node(f"n{i:03d}") for i in range(1000)])
    fw = Framework()
    r = fw.schedule_one(snap, pod("p", "100m"))
    assert r.feasible_nodes == 420 and r.evaluated_nodes == 420
    assert fw.next_start_node_index == 420


# -- preemption ------------------------------------------------------------------------------

def test_preemption_picks_the_node_with_the_lowest_priority_victims():
    snap = Snapshot([node("a", "2"), node("b", "2")], [
        pod("a-low", "1500m", node_name="a", priority=10), pod("a-mid", "500m", node_name="a", priority=50),
        pod("b-mid", "1500m", node_name="b", priority=50), pod("b-low", "500m", node_name="b", priority=5),
    ])
    r = Framework(rng=random.Random(1)).schedule_one(snap, pod("vip", "1", priority=100))
    assert r.node_name is None
    assert r.nominated_node_name == "a"
    assert [v["metadata"]["name"] for v in r.victims] == ["a-low"]
    # the FitError message has no preemption suffix when preemption found room
    assert r.message == "0/2 nodes are available: 2 Insufficient cpu."


def test_preemption_evicts_as_few_pods_as_possible():
    snap = Snapshot([node("a", "3")], [pod(f"small{i}", "1", node_name="a", priority=1, start_time=f"2024-01-0{i + 1}T00:00:00Z")
                                       for i in range(3)])
    r = Framework().schedule_one(snap, pod("vip", "2", priority=100))
    assert r.nominated_node_name == "a"
    assert len(r.victims) == 2
    # the most important (earliest started) equal-priority pod is kept
    assert {v["metadata"]["name"] for v in r.victims} == {"small1", "small2"}


def test_preemption_policy_never_and_equal_priority():
    snap = Snapshot([node("a", "1")], [pod("e", "1", node_name="a", priority=0)])
    never = pod("p", "1", priority=100, preemptionPolicy="Never")
    r = Framework().schedule_one(snap, never)
    assert r.message == ("0/1 nodes are available: 1 Insufficient cpu. "
                         "preemption: not eligible due to preemptionPolicy=Never.")
    assert not r.victims
    same = Framework().schedule_one(snap, pod("p", "1", priority=0))
    assert same.message.endswith("preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.")


def test_preemption_reports_what_still_blocks():
    snap = Snapshot([node("a", "1", "1Gi")], [pod("e", "500m", node_name="a", priority=0)])
    r = Framework().schedule_one(snap, pod("p", "800m", "2Gi", priority=100))
    assert r.message == ("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. "
                         "preemption: 0/1 nodes are available: 1 Insufficient memory.")


def test_preemption_respects_pod_disruption_budgets():
    snap = Snapshot([node("a", "1"), node("b", "1")], [
        pod("guarded", "1", node_name="a", priority=0, labels={"app": "db"}),
        pod("free", "1", node_name="b", priority=0, labels={"app": "web"}),
    ])
    snap.pdbs = [{"metadata": {"name": "db", "namespace": "default"},
                  "spec": {"selector": {"matchLabels": {"app": "db"}}}, "status": {"disruptionsAllowed": 0}}]
    r = Framework().schedule_one(snap, pod("vip", "1", priority=100))
    assert r.nominated_node_name == "b"
    assert [v["metadata"]["name"] for v in r.victims] == ["free"]


def test_preemption_frees_anti_affinity():
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}
    snap = Snapshot([node("a")], [pod("old", labels={"app": "web"}, node_name="a", priority=0)])
    r = Framework().schedule_one(snap, pod("new", labels={"app": "web"}, affinity=anti, priority=10))
    assert r.nominated_node_name == "a"
    assert [v["metadata"]["name"] for v in r.victims] == ["old"]


def test_nominated_pods_hold_their_room():
    snap = Snapshot([node("a", "1"), node("b", "1")])
    fw = Framework()
    from skiff.scheduler.podinfo import PodInfo
    waiting = PodInfo(pod("vip", "1", priority=100))
    r = fw.schedule_one(snap, pod("low", "1", priority=0), nominated={"a": [waiting]})
    assert r.node_name == "b"
