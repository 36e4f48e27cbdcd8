"""Score plugins: Kubernetes' formulas, checked on hand-computed numbers."""

from .builders import node, pod
from .support import decide

MI = 2**20


def two_nodes():
    return [node("a", "4", "8Gi"), node("b", "4", "8Gi")]


def test_least_allocated():
    existing = [pod("e", "1", "2Gi", node_name="a")]
    r = decide(["NodeResourcesFit"], two_nodes(), pod("p", "1", "2Gi"), existing)
    # a: cpu (4000-2000)*100/4000 = 50, memory (8-4)/8 = 50 -> 50; b: 75 and 75 -> 75
    assert r.scores == {"a": 50, "b": 75}
    assert r.node_name == "b"


def test_most_allocated_packs():
    existing = [pod("e", "1", "2Gi", node_name="a")]
    args = {"NodeResourcesFit": {"scoringStrategy": {"type": "MostAllocated"}}}
    r = decide(["NodeResourcesFit"], two_nodes(), pod("p", "1", "2Gi"), existing, args=args)
    assert r.scores == {"a": 50, "b": 25}
    assert r.node_name == "a"


def test_resource_weights():
    existing = [pod("e", "3", node_name="a")]
    args = {"NodeResourcesFit": {"scoringStrategy": {
        "type": "LeastAllocated", "resources": [{"name": "cpu", "weight": 3}, {"name": "memory", "weight": 1}]}}}
    r = decide(["NodeResourcesFit"], two_nodes(), pod("p", "1", "1Gi"), existing, args=args)
    # a: cpu 0, memory (8Gi - 200Mi - 1Gi) -> 84 ; (0*3 + 84) / 4 = 21
    mem_a = (8 * 1024 * MI - 200 * MI - 1024 * MI) * 100 // (8 * 1024 * MI)
    assert r.scores["a"] == (0 * 3 + mem_a) // 4


def test_best_effort_pods_count_with_non_zero_defaults():
    existing = [pod("e", node_name="a")]       # no requests: 100m and 200Mi for scoring
    r = decide(["NodeResourcesFit"], two_nodes(), pod("p"), existing)
    assert r.scores["a"] < r.scores["b"]


def test_balanced_allocation():
    r = decide(["NodeResourcesBalancedAllocation"], two_nodes(), pod("p", "2", "2Gi"),
               [pod("e", "0", "0", node_name="b")])
    # cpu 2/4 = .5, memory 2/8 = .25 -> std .125 -> 87 on both
    assert r.scores == {"a": 87, "b": 87}
    r = decide(["NodeResourcesBalancedAllocation"], two_nodes(), pod("p", "2", "2Gi"),
               [pod("e", "0", "2Gi", node_name="b")])
    assert r.scores == {"a": 87, "b": 100}   # b: .5 and .5


def test_taint_toleration_prefers_fewer_untolerated_soft_taints():
    soft = {"effect": "PreferNoSchedule"}
    nodes = [node("a", taints=[dict(soft, key="x"), dict(soft, key="y")]), node("b", taints=[dict(soft, key="x")]),
             node("c")]
    r = decide(["TaintToleration"], nodes, pod("p"))
    assert r.scores == {"a": 0, "b": 50, "c": 100}
    r = decide(["TaintToleration"], nodes, pod("p", tolerations=[{"key": "y", "operator": "Exists"}]))
    assert r.scores == {"a": 0, "b": 0, "c": 100}


def test_node_affinity_preferred_weights():
    nodes = [node("a", labels={"disk": "ssd"}), node("b", labels={"disk": "ssd", "zone": "z"}), node("c")]
    preferred = [{"weight": 20, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
                 {"weight": 60, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]
    r = decide(["NodeAffinity"], nodes,
               pod("p", spec={"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}}}))
    assert r.scores == {"a": 25, "b": 100, "c": 0}
    assert r.node_name == "b"


def test_image_locality():
    big = 500 * MI
    nodes = [node("a", images=[(["registry/app:1"], big)]), node("b"), node("c", images=[(["busybox:latest"], big)])]
    r = decide(["ImageLocality"], nodes, pod("p", image="registry/app:1"))
    # present on 1 of 3 nodes: 500Mi * 1/3 = 166.67Mi; (166.67 - 23) / (1000 - 23) * 100 = 14
    assert r.scores == {"a": 14, "b": 0, "c": 0}
    r = decide(["ImageLocality"], nodes, pod("p", image="busybox"))   # untagged means :latest
    assert r.scores["c"] == 14


def test_inter_pod_affinity_preferred():
    zone = "topology.kubernetes.io/zone"
    nodes = [node("a1", labels={zone: "a"}), node("a2", labels={zone: "a"}), node("b1", labels={zone: "b"})]
    existing = [pod("db", labels={"app": "db"}, node_name="a1")]
    term = {"labelSelector": {"matchLabels": {"app": "db"}}, "topologyKey": zone}
    near = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": term}]}}
    r = decide(["InterPodAffinity"], nodes, pod("p", spec={"affinity": near}), existing)
    assert r.scores == {"a1": 100, "a2": 100, "b1": 0}
    away = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 10, "podAffinityTerm": term}]}}
    r = decide(["InterPodAffinity"], nodes, pod("p", spec={"affinity": away}), existing)
    assert r.scores == {"a1": 0, "a2": 0, "b1": 100}


def test_existing_pods_required_affinity_attracts_with_hard_weight():
    zone = "topology.kubernetes.io/zone"
    nodes = [node("a1", labels={zone: "a"}), node("b1", labels={zone: "b"})]
    term = {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": zone}
    existing = [pod("cache", node_name="b1",
                    spec={"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}})]
    r = decide(["InterPodAffinity"], nodes, pod("p", labels={"app": "web"}), existing)
    assert r.scores == {"a1": 0, "b1": 100}


def test_topology_spread_schedule_anyway_score():
    zone = "topology.kubernetes.io/zone"
    nodes = [node("a1", labels={zone: "a"}), node("a2", labels={zone: "a"}), node("b1", labels={zone: "b"})]
    existing = [pod("w1", labels={"app": "web"}, node_name="a1"), pod("w2", labels={"app": "web"}, node_name="a2")]
    c = {"maxSkew": 1, "topologyKey": zone, "whenUnsatisfiable": "ScheduleAnyway",
         "labelSelector": {"matchLabels": {"app": "web"}}}
    r = decide(["PodTopologySpread"], nodes, pod("w3", labels={"app": "web"}, topologySpreadConstraints=[c]), existing)
    # raw: zone a 2*log(4) = 2.77 -> 3, zone b 0 -> 0; normalized 100*(3+0-s)/3
    assert r.scores == {"a1": 0, "a2": 0, "b1": 100}
