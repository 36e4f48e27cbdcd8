"""Filter plugins, one table per plugin: which nodes fit, and the exact reason for the others."""

import pytest

from skiff.scheduler.interface import Code
from skiff.scheduler.snapshot import Snapshot

from .builders import node, pod
from .support import filter_all, framework

OK = ()

# -- NodeResourcesFit --------------------------------------------------------------------

FIT_CASES = [
    ("fits", node("n", "2", "4Gi"), [], pod("p", "1", "1Gi"), OK),
    ("no requests always fit", node("n", "1", "1Gi"), [pod("e", "1", "1Gi", node_name="n")], pod("p"), OK),
    ("cpu short", node("n", "2", "4Gi"), [pod("e", "1500m", node_name="n")], pod("p", "1"), ("Insufficient cpu",)),
    ("memory short", node("n", "2", "1Gi"), [], pod("p", "1", "2Gi"), ("Insufficient memory",)),
    ("both short", node("n", "1", "1Gi"), [], pod("p", "2", "2Gi"), ("Insufficient cpu", "Insufficient memory")),
    ("exactly full fits", node("n", "1", "1Gi"), [pod("e", "500m", "512Mi", node_name="n")],
     pod("p", "500m", "512Mi"), OK),
    ("pod count", node("n", "8", "8Gi", pods=1), [pod("e", node_name="n")], pod("p", "1"), ("Too many pods",)),
    ("gpu missing", node("n"), [], pod("p", extra={"nvidia.com/gpu": "1"}), ("Insufficient nvidia.com/gpu",)),
    ("gpu present", node("n", extra={"nvidia.com/gpu": "2"}), [pod("e", extra={"nvidia.com/gpu": "1"}, node_name="n")],
     pod("p", extra={"nvidia.com/gpu": "1"}), OK),
    ("gpu used up", node("n", extra={"nvidia.com/gpu": "1"}), [pod("e", extra={"nvidia.com/gpu": "1"}, node_name="n")],
     pod("p", extra={"nvidia.com/gpu": "1"}), ("Insufficient nvidia.com/gpu",)),
    ("ephemeral storage", node("n", ephemeral="1Gi"), [], pod("p", extra={"ephemeral-storage": "2Gi"}),
     ("Insufficient ephemeral-storage",)),
    ("init container counted", node("n", "1"), [],
     pod("p", "100m", spec={"initContainers": [{"name": "i", "image": "x", "resources": {"requests": {"cpu": "2"}}}]}),
     ("Insufficient cpu",)),
    ("overhead counted", node("n", "1"), [], pod("p", "900m", overhead={"cpu": "200m"}), ("Insufficient cpu",)),
]


@pytest.mark.parametrize("name,n,existing,p,want", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_node_resources_fit(name, n, existing, p, want):
    assert filter_all(["NodeResourcesFit"], [n], p, existing)["n"] == want


def test_insufficient_is_resolvable_by_preemption():
    snap = Snapshot([node("n", "1")])
    status = framework("NodeResourcesFit").filter_all(snap, pod("p", "2"))["n"]
    assert status.code is Code.UNSCHEDULABLE


# -- NodeName / NodeUnschedulable / NodePorts ----------------------------------------------

def test_node_name():
    nodes = [node("a"), node("b")]
    got = filter_all(["NodeName"], nodes, pod("p", spec={"nodeName": "b"}))
    assert got == {"a": ("node(s) didn't match the requested node name",), "b": OK}


@pytest.mark.parametrize("tolerations,want", [
    ([], ("node(s) were unschedulable",)),
    ([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}], OK),
    ([{"operator": "Exists"}], OK),
    ([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoExecute"}],
     ("node(s) were unschedulable",)),
])
def test_node_unschedulable(tolerations, want):
    got = filter_all(["NodeUnschedulable"], [node("n", unschedulable=True), node("m")],
                     pod("p", tolerations=tolerations))
    assert got == {"n": want, "m": OK}


def _port_pod(name, port, ip=None, proto=None, node_name=""):
    spec_port = {"containerPort": 80, "hostPort": port}
    if ip:
        spec_port["hostIP"] = ip
    if proto:
        spec_port["protocol"] = proto
    p = pod(name, node_name=node_name)
    p["spec"]["containers"][0]["ports"] = [spec_port]
    return p


PORT_REASON = ("node(s) didn't have free ports for the requested pod ports",)


@pytest.mark.parametrize("existing,incoming,want", [
    (_port_pod("e", 8080, node_name="n"), _port_pod("p", 8080), PORT_REASON),
    (_port_pod("e", 8080, node_name="n"), _port_pod("p", 8081), OK),
    (_port_pod("e", 8080, proto="UDP", node_name="n"), _port_pod("p", 8080), OK),
    (_port_pod("e", 8080, ip="10.0.0.1", node_name="n"), _port_pod("p", 8080, ip="10.0.0.2"), OK),
    (_port_pod("e", 8080, ip="10.0.0.1", node_name="n"), _port_pod("p", 8080), PORT_REASON),
    (_port_pod("e", 8080, node_name="n"), _port_pod("p", 8080, ip="10.0.0.2"), PORT_REASON),
])
def test_node_ports(existing, incoming, want):
    assert filter_all(["NodePorts"], [node("n")], incoming, [existing])["n"] == want


# -- TaintToleration ------------------------------------------------------------------------

def taint(key, value="", effect="NoSchedule"):
    t = {"key": key, "effect": effect}
    if value:
        t["value"] = value
    return t


@pytest.mark.parametrize("taints,tolerations,want", [
    ([taint("dedicated", "gpu")], [], ("node(s) had untolerated taint {dedicated: gpu}",)),
    ([taint("dedicated", "gpu")], [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}], OK),
    ([taint("dedicated", "gpu")], [{"key": "dedicated", "value": "cpu"}], ("node(s) had untolerated taint {dedicated: gpu}",)),
    ([taint("dedicated", "gpu")], [{"key": "dedicated", "operator": "Exists"}], OK),
    ([taint("dedicated", "gpu")], [{"operator": "Exists"}], OK),
    ([taint("node.kubernetes.io/not-ready", effect="NoExecute")], [],
     ("node(s) had untolerated taint {node.kubernetes.io/not-ready: }",)),
    ([taint("soft", effect="PreferNoSchedule")], [], OK),
    ([taint("a", "1"), taint("b", "2")], [{"key": "a", "operator": "Exists"}], ("node(s) had untolerated taint {b: 2}",)),
    ([taint("a", "1", "NoExecute")], [{"key": "a", "operator": "Exists", "effect": "NoSchedule"}],
     ("node(s) had untolerated taint {a: 1}",)),
])
def test_taint_toleration(taints, tolerations, want):
    assert filter_all(["TaintToleration"], [node("n", taints=taints)], pod("p", tolerations=tolerations))["n"] == want


# -- NodeAffinity / nodeSelector --------------------------------------------------------------

AFF = ("node(s) didn't match Pod's node affinity/selector",)


def req_affinity(*terms):
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def expr(key, op, *values):
    e = {"key": key, "operator": op}
    if values:
        e["values"] = list(values)
    return e


LABELLED = node("n", labels={"zone": "a", "disk": "ssd", "cores": "8"})


@pytest.mark.parametrize("spec,want", [
    ({"nodeSelector": {"zone": "a"}}, OK),
    ({"nodeSelector": {"zone": "b"}}, AFF),
    ({"nodeSelector": {"zone": "a", "disk": "hdd"}}, AFF),
    ({"affinity": req_affinity({"matchExpressions": [expr("zone", "In", "a", "b")]})}, OK),
    ({"affinity": req_affinity({"matchExpressions": [expr("zone", "NotIn", "a")]})}, AFF),
    ({"affinity": req_affinity({"matchExpressions": [expr("gpu", "NotIn", "x")]})}, OK),
    ({"affinity": req_affinity({"matchExpressions": [expr("disk", "Exists")]})}, OK),
    ({"affinity": req_affinity({"matchExpressions": [expr("disk", "DoesNotExist")]})}, AFF),
    ({"affinity": req_affinity({"matchExpressions": [expr("cores", "Gt", "4")]})}, OK),
    ({"affinity": req_affinity({"matchExpressions": [expr("cores", "Lt", "4")]})}, AFF),
    ({"affinity": req_affinity({"matchExpressions": [expr("zone", "Gt", "4")]})}, AFF),  # not an integer
    # terms are ORed, expressions ANDed
    ({"affinity": req_affinity({"matchExpressions": [expr("zone", "In", "b")]},
                               {"matchExpressions": [expr("disk", "In", "ssd"), expr("zone", "In", "a")]})}, OK),
    ({"affinity": req_affinity({"matchExpressions": [expr("disk", "In", "ssd"), expr("zone", "In", "b")]})}, AFF),
    ({"affinity": req_affinity({"matchFields": [expr("metadata.name", "In", "n")]})}, OK),
    ({"affinity": req_affinity({"matchFields": [expr("metadata.name", "NotIn", "n")]})}, AFF),
    ({"affinity": req_affinity()}, AFF),                 # no terms: nothing matches
    ({"affinity": req_affinity({})}, AFF),               # an empty term matches nothing
    ({"nodeSelector": {"zone": "a"}, "affinity": req_affinity({"matchExpressions": [expr("disk", "In", "hdd")]})}, AFF),
])
def test_node_affinity(spec, want):
    assert filter_all(["NodeAffinity"], [LABELLED], pod("p", spec=spec))["n"] == want


def test_node_affinity_match_fields_narrows_candidates_in_prefilter():
    nodes = [node("a"), node("b"), node("c")]
    got = filter_all(["NodeAffinity"], nodes,
                     pod("p", spec={"affinity": req_affinity({"matchFields": [expr("metadata.name", "In", "b")]})}))
    assert got["b"] == OK
    assert got["a"] == ("node(s) didn't satisfy plugin(s) [NodeAffinity]",)


# -- VolumeRestrictions ------------------------------------------------------------------------

def _pvc_pod(name, claim, node_name=""):
    return pod(name, node_name=node_name, volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": claim}}])


def _snap(nodes, pods, modes):
    snap = Snapshot(nodes, pods)
    for claim, mode in modes.items():
        snap.pvcs[f"default/{claim}"] = {"metadata": {"name": claim, "namespace": "default"},
                                         "spec": {"accessModes": [mode]}}
    return snap


def test_read_write_once_pod_conflict():
    nodes = [node("a"), node("b")]
    snap = _snap(nodes, [_pvc_pod("owner", "data", "a")], {"data": "ReadWriteOncePod"})
    got = filter_all(["VolumeRestrictions"], nodes, _pvc_pod("p", "data"), snapshot=snap)
    reason = ("node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode",)
    assert got == {"a": reason, "b": reason}


def test_read_write_once_shared_is_fine_and_missing_claim_is_reported():
    nodes = [node("a")]
    snap = _snap(nodes, [_pvc_pod("owner", "data", "a")], {"data": "ReadWriteOnce"})
    assert filter_all(["VolumeRestrictions"], nodes, _pvc_pod("p", "data"), snapshot=snap) == {"a": OK}
    got = framework("VolumeRestrictions").filter_all(snap, _pvc_pod("p", "nope"))["a"]
    assert got.reasons == ('persistentvolumeclaim "nope" not found',)
    assert got.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE


def test_disk_conflict():
    vol = {"name": "v", "awsElasticBlockStore": {"volumeID": "vol-1"}}
    nodes = [node("a"), node("b")]
    existing = [pod("e", node_name="a", volumes=[vol])]
    got = filter_all(["VolumeRestrictions"], nodes, pod("p", volumes=[vol]), existing)
    assert got == {"a": ("node(s) had no available disk",), "b": OK}
