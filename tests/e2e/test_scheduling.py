"""Scheduling on simulated nodes, shown through the real kubectl (issue 3).

Each test starts a small private ``skiff up --runtime fake`` (three 4-CPU nodes unless it
says otherwise; ``--node-config`` shapes them, ``--scheduler-config`` picks the profile)
and checks what a user would see: where ``kubectl get pods -o wide`` puts the pods, and
what ``kubectl describe pod`` says about the ones that stay Pending.  Waiting is done
with ``kubectl wait`` / ``kubectl rollout status`` / a watching ``kubectl get events -w``,
never with sleeps.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest

from e2e_support import LineReader, SkiffProcess, new_base

WAIT = "--timeout=30s"
ZONE = "topology.kubernetes.io/zone"

GPU_ZONES_CONFIG = """
nodeGroups:
- count: 4                 # skiff-node-0..3 in zone-a, zone-b, zone-c, zone-a
- namePrefix: gpu          # gpu-0 (zone-b)
  capacity: {cpu: "8", memory: 32Gi, nvidia.com/gpu: 2}
  labels: {gpu: nvidia}
  taints: ["nvidia.com/gpu=present:NoSchedule"]
"""

BIN_PACKING = """
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]
"""


def deployment(name: str, replicas: int, *, cpu: str = "100m", extra_spec: str = "") -> str:
    """A Deployment of ``replicas`` nginx pods requesting ``cpu``; ``extra_spec`` is
    YAML appended to the pod spec (indented 6 spaces)."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: app
        image: nginx
        resources: {{requests: {{cpu: "{cpu}", memory: 256Mi}}}}
{extra_spec}"""


def pods(cluster: SkiffProcess, selector: str) -> list[dict[str, Any]]:
    return list(cluster.get_json("pods", "-l", selector)["items"])


def per_node(cluster: SkiffProcess, selector: str) -> Counter[str]:
    return Counter(p["spec"].get("nodeName", "") for p in pods(cluster, selector))


def rollout(cluster: SkiffProcess, name: str) -> None:
    cluster.kubectl("rollout", "status", f"deployment/{name}", WAIT)


def wait_unschedulable(cluster: SkiffProcess, pod: str) -> None:
    cluster.kubectl("wait", f"pod/{pod}", WAIT, "--for=jsonpath={.status.conditions[?(@.type=="
                    "\"PodScheduled\")].reason}=Unschedulable")


def pending_pods(cluster: SkiffProcess, selector: str) -> list[str]:
    return [p["metadata"]["name"] for p in pods(cluster, selector) if not p["spec"].get("nodeName")]


def await_event(cluster: SkiffProcess, reason: str, name: str = "") -> str:
    """The first Event line with ``reason`` (about ``name`` if given), from a watching kubectl."""
    selector = f"reason={reason}" + (f",involvedObject.name={name}" if name else "")
    reader = LineReader(cluster.kubectl_popen("get", "events", "-w", "--field-selector", selector))
    try:
        return reader.wait_for(lambda line: reason in line, timeout=30)
    finally:
        reader.stop()


def describe_events(cluster: SkiffProcess, pod: str) -> str:
    return cluster.kubectl("describe", "pod", pod).stdout.split("Events:", 1)[1]


# -- three default nodes -------------------------------------------------------------------


def test_three_nodes_and_a_deployment_of_six_spreads_2_2_2(start_cluster: Any) -> None:
    cluster = start_cluster(nodes=3)
    nodes = cluster.get_json("nodes")["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == ["skiff-node-0", "skiff-node-1", "skiff-node-2"]
    assert sorted(n["metadata"]["labels"][ZONE] for n in nodes) == ["zone-a", "zone-b", "zone-c"]
    cluster.kubectl("wait", "node", "--all", "--for=condition=Ready", WAIT)
    cluster.kubectl("apply", "-f", "-", input=deployment("web", 6, cpu="1"))
    rollout(cluster, "web")
    assert sorted(per_node(cluster, "app=web").values()) == [2, 2, 2]


def test_bin_packing_profile_packs_the_same_pods(start_cluster: Any, tmp_path: Path) -> None:
    profile = tmp_path / "bin-packing.yaml"
    profile.write_text(BIN_PACKING)
    cluster = start_cluster("--scheduler-config", str(profile), nodes=3)
    cluster.kubectl("apply", "-f", "-", input=deployment("web", 6, cpu="1"))
    rollout(cluster, "web")
    # 6 CPUs of requests on 4-CPU nodes: two nodes are the fewest that fit, full first.
    assert sorted(per_node(cluster, "app=web").values()) == [2, 4]


def test_too_big_pod_waits_with_reasons_until_a_big_enough_node_joins(start_cluster: Any) -> None:
    cluster = start_cluster(nodes=3)
    cluster.kubectl("run", "huge", "--image=nginx",
                    '--overrides={"spec":{"containers":[{"name":"huge","image":"nginx",'
                    '"resources":{"requests":{"cpu":"12"}}}]}}')
    wait_unschedulable(cluster, "huge")
    await_event(cluster, "FailedScheduling", "huge")
    events = describe_events(cluster, "huge")
    assert ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
            "3 No preemption victims found for incoming pod.") in events
    assert cluster.get_json("pod", "huge")["status"]["phase"] == "Pending"
    before = cluster.get_json("pod", "huge")
    # A new simulated machine: a Node labelled skiff.dev/fake=true is served by the fleet.
    cluster.kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Node
metadata: {name: big-node, labels: {skiff.dev/fake: "true"}}
status: {capacity: {cpu: "16", memory: 64Gi, pods: "110"}}
""")
    cluster.kubectl("wait", "node/big-node", "--for=condition=Ready", WAIT)
    cluster.kubectl("wait", "pod/huge", "--for=condition=Ready", WAIT)
    after = cluster.get_json("pod", "huge")
    assert after["spec"]["nodeName"] == "big-node"
    assert after["metadata"]["uid"] == before["metadata"]["uid"]  # the same pod, never recreated


def test_required_anti_affinity_puts_one_replica_per_node(start_cluster: Any) -> None:
    cluster = start_cluster(nodes=3)
    anti = """      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: solo}}
            topologyKey: kubernetes.io/hostname
"""
    cluster.kubectl("apply", "-f", "-", input=deployment("solo", 4, extra_spec=anti))
    cluster.kubectl("wait", "deployment/solo", WAIT, "--for=jsonpath={.status.availableReplicas}=3")
    placed = per_node(cluster, "app=solo")
    assert placed == Counter({"skiff-node-0": 1, "skiff-node-1": 1, "skiff-node-2": 1, "": 1})
    (surplus,) = pending_pods(cluster, "app=solo")
    wait_unschedulable(cluster, surplus)
    await_event(cluster, "FailedScheduling", surplus)
    assert ("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. preemption: "
            "0/3 nodes are available: 3 No preemption victims found for incoming pod.") \
        in describe_events(cluster, surplus)


def test_high_priority_pod_preempts_a_low_priority_one_on_a_full_node(start_cluster: Any) -> None:
    cluster = start_cluster(nodes=3)
    cluster.kubectl("apply", "-f", "-", input="""
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 10
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
""")
    # Three 3-CPU pods fill the three 4-CPU nodes (one each).
    cluster.kubectl("apply", "-f", "-",
                    input=deployment("filler", 3, cpu="3", extra_spec="      priorityClassName: low\n"))
    rollout(cluster, "filler")
    fillers = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods(cluster, "app=filler")}
    assert sorted(fillers.values()) == ["skiff-node-0", "skiff-node-1", "skiff-node-2"]
    cluster.kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Pod
metadata: {name: vip}
spec:
  priorityClassName: high
  containers: [{name: app, image: nginx, resources: {requests: {cpu: "3"}}}]
""")
    # Priority admission: the class name resolves to the pod's priority at creation.
    assert cluster.get_json("pod", "vip")["spec"].get("priority") == 1000
    cluster.kubectl("wait", "pod/vip", "--for=condition=Ready", WAIT)
    vip = cluster.get_json("pod", "vip")
    line = await_event(cluster, "Preempted")
    victim = next(name for name in fillers if name in line)
    assert fillers[victim] == vip["spec"]["nodeName"]
    assert f"Preempted by pod {vip['metadata']['uid']} on node {vip['spec']['nodeName']}" in line
    cluster.kubectl("wait", f"pod/{victim}", "--for=delete", WAIT)
    # The ReplicaSet replaces the victim; the replacement cannot preempt its equals.
    (replacement,) = pending_pods(cluster, "app=filler")
    wait_unschedulable(cluster, replacement)


# -- a GPU node and zones --------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_zones(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SkiffProcess]:
    """Four plain nodes over three zones plus one tainted GPU node, shared by the tests below
    (each works in its own namespace and only asserts hard placement rules)."""
    config = tmp_path_factory.mktemp("nodes") / "gpu-zones.yaml"
    config.write_text(GPU_ZONES_CONFIG)
    proc = SkiffProcess(new_base("scheduling"), "--node-config", str(config), nodes=5)
    try:
        proc.start()
        yield proc
    finally:
        proc.remove()


@pytest.fixture
def in_namespace(gpu_zones: SkiffProcess, request: pytest.FixtureRequest) -> Iterator[SkiffProcess]:
    """``gpu_zones`` with kubectl defaulting to a fresh namespace (via its kubeconfig context)."""
    name = request.node.name.removeprefix("test_").replace("_", "-")[:40].strip("-")
    gpu_zones.kubectl("create", "namespace", name)
    gpu_zones.kubectl("config", "set-context", "--current", f"--namespace={name}")
    try:
        yield gpu_zones
    finally:
        gpu_zones.kubectl("config", "set-context", "--current", "--namespace=default")
        gpu_zones.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_gpu_node_selector_lands_only_on_the_labelled_node(in_namespace: SkiffProcess) -> None:
    cluster = in_namespace
    gpu_pod = """      nodeSelector: {gpu: nvidia}
      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
"""
    cluster.kubectl("apply", "-f", "-", input=deployment("trainer", 3, extra_spec=gpu_pod))
    rollout(cluster, "trainer")
    assert per_node(cluster, "app=trainer") == Counter({"gpu-0": 3})
    node = cluster.get_json("node", "gpu-0")
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "2"


def test_gpu_taint_keeps_other_pods_off(in_namespace: SkiffProcess) -> None:
    cluster = in_namespace
    cluster.kubectl("apply", "-f", "-", input=deployment("plain", 8))
    rollout(cluster, "plain")
    placed = per_node(cluster, "app=plain")
    assert "gpu-0" not in placed and sum(placed.values()) == 8
    # Selecting the GPU node without tolerating its taint: nowhere to go, and why.
    cluster.kubectl("run", "no-toleration", "--image=nginx", '--overrides={"spec":{"nodeSelector":{"gpu":"nvidia"}}}')
    wait_unschedulable(cluster, "no-toleration")
    await_event(cluster, "FailedScheduling", "no-toleration")
    assert ("0/5 nodes are available: 1 node(s) had untolerated taint {nvidia.com/gpu: present}, "
            "4 node(s) didn't match Pod's node affinity/selector.") in describe_events(cluster, "no-toleration")


def test_topology_spread_over_zones_holds(in_namespace: SkiffProcess) -> None:
    cluster = in_namespace
    nodes = {n["metadata"]["name"]: n["metadata"]["labels"][ZONE] for n in cluster.get_json("nodes")["items"]}
    assert nodes == {"skiff-node-0": "zone-a", "skiff-node-1": "zone-b", "skiff-node-2": "zone-c",
                     "skiff-node-3": "zone-a", "gpu-0": "zone-b"}
    spread = """      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: DoNotSchedule
        labelSelector: {matchLabels: {app: zoned}}
"""
    cluster.kubectl("apply", "-f", "-", input=deployment("zoned", 6, extra_spec=spread))
    rollout(cluster, "zoned")
    zones = Counter(nodes[p["spec"]["nodeName"]] for p in pods(cluster, "app=zoned"))
    # zone-a has two plain nodes, zone-b one (plus the tainted GPU node), zone-c one:
    # still two pods per zone.
    assert zones == Counter({"zone-a": 2, "zone-b": 2, "zone-c": 2})
    # One more replica may go anywhere (skew 1), two more must not pile into one zone.
    cluster.kubectl("scale", "deployment/zoned", "--replicas=9")
    rollout(cluster, "zoned")
    zones = Counter(nodes[p["spec"]["nodeName"]] for p in pods(cluster, "app=zoned"))
    assert zones == Counter({"zone-a": 3, "zone-b": 3, "zone-c": 3})
