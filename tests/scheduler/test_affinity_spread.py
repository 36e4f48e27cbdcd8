"""InterPodAffinity and PodTopologySpread filters."""

import pytest

from skiff.scheduler.snapshot import Snapshot

from .builders import node, pod
from .support import filter_all

OK = ()
AFFINITY = ("node(s) didn't match pod affinity rules",)
ANTI = ("node(s) didn't match pod anti-affinity rules",)
EXISTING_ANTI = ("node(s) didn't satisfy existing pods anti-affinity rules",)
SPREAD = ("node(s) didn't match pod topology spread constraints",)
SPREAD_LABEL = ("node(s) didn't match pod topology spread constraints (missing required label)",)

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


def zoned(name, zone):
    return node(name, labels={ZONE: zone})


NODES = [zoned("a1", "a"), zoned("a2", "a"), zoned("b1", "b"), node("nozone")]


def term(labels, key, namespaces=None, ns_selector=None):
    t = {"labelSelector": {"matchLabels": labels}, "topologyKey": key}
    if namespaces is not None:
        t["namespaces"] = namespaces
    if ns_selector is not None:
        t["namespaceSelector"] = ns_selector
    return t


def affinity(kind, *terms):
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def test_required_affinity_follows_the_zone_of_matching_pods():
    existing = [pod("db", labels={"app": "db"}, node_name="a1")]
    p = pod("web", spec={"affinity": affinity("podAffinity", term({"app": "db"}, ZONE))})
    got = filter_all(["InterPodAffinity"], NODES, p, existing)
    assert got == {"a1": OK, "a2": OK, "b1": AFFINITY, "nozone": AFFINITY}


def test_first_pod_of_a_self_affine_group_is_allowed():
    p = pod("web", labels={"app": "web"}, spec={"affinity": affinity("podAffinity", term({"app": "web"}, ZONE))})
    got = filter_all(["InterPodAffinity"], NODES, p)
    assert got == {"a1": OK, "a2": OK, "b1": OK, "nozone": AFFINITY}
    # but not when the pod would not match its own terms
    other = pod("web", labels={"app": "x"}, spec={"affinity": affinity("podAffinity", term({"app": "web"}, ZONE))})
    assert set(filter_all(["InterPodAffinity"], NODES, other).values()) == {AFFINITY}


def test_required_anti_affinity_per_host_and_per_zone():
    existing = [pod("w1", labels={"app": "web"}, node_name="a1")]
    per_host = pod("w2", labels={"app": "web"}, spec={"affinity": affinity("podAntiAffinity", term({"app": "web"}, HOST))})
    assert filter_all(["InterPodAffinity"], NODES, per_host, existing) == {
        "a1": ANTI, "a2": OK, "b1": OK, "nozone": OK}
    per_zone = pod("w2", labels={"app": "web"}, spec={"affinity": affinity("podAntiAffinity", term({"app": "web"}, ZONE))})
    assert filter_all(["InterPodAffinity"], NODES, per_zone, existing) == {
        "a1": ANTI, "a2": ANTI, "b1": OK, "nozone": OK}


def test_existing_pods_anti_affinity_is_symmetric():
    existing = [pod("loner", labels={"app": "loner"}, node_name="b1",
                    spec={"affinity": affinity("podAntiAffinity", term({"app": "web"}, ZONE))})]
    got = filter_all(["InterPodAffinity"], NODES, pod("w", labels={"app": "web"}), existing)
    assert got == {"a1": OK, "a2": OK, "b1": EXISTING_ANTI, "nozone": OK}


def test_affinity_namespaces_and_namespace_selector():
    existing = [pod("db", labels={"app": "db"}, namespace="data", node_name="b1")]
    same_ns = pod("web", spec={"affinity": affinity("podAffinity", term({"app": "db"}, ZONE))})
    # the default namespace has no db pod; the pod does not match itself -> nowhere
    assert set(filter_all(["InterPodAffinity"], NODES, same_ns, existing).values()) == {AFFINITY}
    listed = pod("web", spec={"affinity": affinity("podAffinity", term({"app": "db"}, ZONE, namespaces=["data"]))})
    assert filter_all(["InterPodAffinity"], NODES, listed, existing)["b1"] == OK
    snap = Snapshot(NODES, existing)
    snap.namespace_labels["data"] = {"team": "storage"}
    by_label = pod("web", spec={"affinity": affinity(
        "podAffinity", term({"app": "db"}, ZONE, ns_selector={"matchLabels": {"team": "storage"}}))})
    got = filter_all(["InterPodAffinity"], NODES, by_label, snapshot=snap)
    assert got["b1"] == OK and got["a1"] == AFFINITY


def spread(max_skew, key, labels, when="DoNotSchedule", **extra):
    c = {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when,
         "labelSelector": {"matchLabels": labels}}
    c.update(extra)
    return c


def web(name, node_name):
    return pod(name, labels={"app": "web"}, node_name=node_name)


def test_topology_spread_max_skew_by_zone():
    existing = [web("w1", "a1"), web("w2", "a2")]
    p = pod("w3", labels={"app": "web"}, topologySpreadConstraints=[spread(1, ZONE, {"app": "web"})])
    got = filter_all(["PodTopologySpread"], NODES, p, existing)
    # zone a has 2, zone b has 0: a would make skew 3 - 0 = 3 > 1
    assert got == {"a1": SPREAD, "a2": SPREAD, "b1": OK, "nozone": SPREAD_LABEL}


def test_topology_spread_counts_only_matching_non_terminating_pods_in_namespace():
    existing = [web("w1", "a1"), pod("x", labels={"app": "db"}, node_name="b1"),
                pod("gone", labels={"app": "web"}, node_name="b1", deleting=True),
                pod("other", labels={"app": "web"}, node_name="b1", namespace="elsewhere")]
    p = pod("w2", labels={"app": "web"}, topologySpreadConstraints=[spread(1, ZONE, {"app": "web"})])
    got = filter_all(["PodTopologySpread"], NODES[:3], p, existing)
    assert got == {"a1": SPREAD, "a2": SPREAD, "b1": OK}


def test_topology_spread_min_domains_forces_a_zero_minimum():
    existing = [web("w1", "a1"), web("w2", "b1")]
    c = spread(1, ZONE, {"app": "web"}, minDomains=3)
    got = filter_all(["PodTopologySpread"], NODES[:3], pod("w3", labels={"app": "web"}, topologySpreadConstraints=[c]),
                     existing)
    # only 2 zones exist < minDomains 3: global minimum is 0, every zone already has 1 -> skew 2
    assert got == {"a1": SPREAD, "a2": SPREAD, "b1": SPREAD}


def test_topology_spread_honours_node_affinity_by_default():
    existing = [web("w1", "a1")]
    c = spread(1, ZONE, {"app": "web"})
    # restricted to zone a: zone b is not counted, so the minimum is zone a's own count
    p = pod("w2", labels={"app": "web"}, topologySpreadConstraints=[c], nodeSelector={ZONE: "a"})
    assert filter_all(["PodTopologySpread"], NODES[:3], p, existing)["a2"] == OK
    ignore = pod("w2", labels={"app": "web"}, nodeSelector={ZONE: "a"},
                 topologySpreadConstraints=[dict(c, nodeAffinityPolicy="Ignore")])
    assert filter_all(["PodTopologySpread"], NODES[:3], ignore, existing)["a2"] == SPREAD


def test_topology_spread_match_label_keys():
    existing = [pod("old", labels={"app": "web", "rev": "1"}, node_name="a1"),
                pod("old2", labels={"app": "web", "rev": "1"}, node_name="a2")]
    c = spread(1, ZONE, {"app": "web"}, matchLabelKeys=["rev"])
    p = pod("new", labels={"app": "web", "rev": "2"}, topologySpreadConstraints=[c])
    got = filter_all(["PodTopologySpread"], NODES[:3], p, existing)
    assert got == {"a1": OK, "a2": OK, "b1": OK}   # revision 1 pods do not count for revision 2


def test_schedule_anyway_never_filters():
    existing = [web("w1", "a1"), web("w2", "a2")]
    p = pod("w3", labels={"app": "web"}, topologySpreadConstraints=[spread(1, ZONE, {"app": "web"}, "ScheduleAnyway")])
    assert set(filter_all(["PodTopologySpread"], NODES, p, existing).values()) == {OK}


@pytest.mark.parametrize("policy,want_a", [("Ignore", SPREAD), ("Honor", OK)])
def test_topology_spread_node_taints_policy(policy, want_a):
    nodes = [zoned("a1", "a"), node("t1", labels={ZONE: "t"}, taints=[{"key": "k", "effect": "NoSchedule"}])]
    existing = [web("w1", "a1")]
    c = spread(1, ZONE, {"app": "web"}, nodeTaintsPolicy=policy)
    got = filter_all(["PodTopologySpread"], nodes, pod("w2", labels={"app": "web"}, topologySpreadConstraints=[c]),
                     existing)
    assert got["a1"] == want_a
