"""The DaemonSet controller against a real API server, fake nodes and the real scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from skiff.client.resources import CONTROLLERREVISIONS, DAEMONSETS, EVENTS, NODES, PODS
from test_statefulset_support import (
    EventLog, WorkloadCluster, by_name, image_of, is_ready, meta, name_of, pod_template,
)

Obj = dict[str, Any]
DEDICATED = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
DAEMON_TOLERATIONS = {
    ("node.kubernetes.io/not-ready", "NoExecute"), ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"), ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"), ("node.kubernetes.io/unschedulable", "NoSchedule"),
}


def daemonset(name: str, strategy: Obj | None = None, **template_spec: Any) -> Obj:
    spec: Obj = {"selector": {"matchLabels": {"app": name}},
                 "template": pod_template(name, **template_spec)}
    if strategy is not None:
        spec["updateStrategy"] = strategy
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def rolled_out(name: str, nodes: int, generation: int = 1) -> Callable[[list[Obj]], Obj | None]:
    """A predicate on the DaemonSet list: ``name`` is fully rolled out on ``nodes`` nodes."""
    def check(items: list[Obj]) -> Obj | None:
        ds = by_name(items).get(name)
        status = (ds or {}).get("status") or {}
        wanted = {"observedGeneration": generation, "desiredNumberScheduled": nodes,
                  "currentNumberScheduled": nodes, "numberReady": nodes, "numberAvailable": nodes,
                  "updatedNumberScheduled": nodes, "numberMisscheduled": 0}
        return ds if ds is not None and all((status.get(k) or 0) == v for k, v in wanted.items()) else None
    return check


def placed(items: list[Obj], app: str) -> dict[str, list[Obj]]:
    """The app's live pods by node."""
    out: dict[str, list[Obj]] = {}
    for pod in items:
        if meta(pod)["labels"].get("app") == app and not meta(pod).get("deletionTimestamp"):
            out.setdefault(pod["spec"].get("nodeName", ""), []).append(pod)
    return out


def one_ready_pod_on(nodes: list[str], app: str, image: str) -> Callable[[list[Obj]], bool]:
    def check(items: list[Obj]) -> bool:
        by_node = placed(items, app)
        return sorted(by_node) == sorted(nodes) and all(
            len(pods) == 1 and is_ready(pods[0]) and image_of(pods[0]) == image for pods in by_node.values())
    return check


async def test_one_pod_per_eligible_node_as_nodes_come_and_go(tmp_path: Path) -> None:
    async with WorkloadCluster(tmp_path, taints=[[], [], DEDICATED]) as c:
        pods, sets = await c.observe(PODS), await c.observe(DAEMONSETS)
        events = await c.observe(EVENTS)
        untainted = c.node_names[:2]
        await c.client.create(DAEMONSETS, daemonset("log"), namespace="default")
        await c.client.create(DAEMONSETS, daemonset(
            "agent", tolerations=[{"key": "dedicated", "operator": "Exists"}]), namespace="default")
        await sets.wait_for(rolled_out("log", 2), what="log on the 2 untainted nodes")
        await sets.wait_for(rolled_out("agent", 3), what="agent on all 3 nodes")
        await pods.wait_for(one_ready_pod_on(untainted, "log", "nginx:1.26"))
        await pods.wait_for(one_ready_pod_on(c.node_names, "agent", "nginx:1.26"))

        for pod in pods.items():
            node = pod["spec"]["nodeName"]
            assert pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
                "nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [node]}]}]}
            assert DAEMON_TOLERATIONS <= {(t.get("key"), t.get("effect")) for t in pod["spec"]["tolerations"]}
            assert meta(pod)["generateName"] == f"{meta(pod)['labels']['app']}-"
            assert "controller-revision-hash" in meta(pod)["labels"]
        await events.wait_for(lambda items: any(
            e["reason"] == "SuccessfulCreate" and e["message"].startswith("Created pod: log-")
            and e["involvedObject"]["name"] == "log" for e in items), what="SuccessfulCreate")
        out = await c.kubectl("rollout", "status", "daemonset/log", "--timeout=15s")
        assert 'daemon set "log" successfully rolled out' in out

        await c.add_node("late-node")  # a machine joins: it gets a log pod
        await sets.wait_for(rolled_out("log", 3), what="log on the new node")
        await pods.wait_for(one_ready_pod_on([*untainted, "late-node"], "log", "nginx:1.26"))

        await c.client.delete(NODES, "late-node")  # and leaves: its pod goes (pod GC)
        await sets.wait_for(rolled_out("log", 2), what="log back to 2 nodes")
        await pods.wait_for(lambda items: "late-node" not in {p["spec"].get("nodeName") for p in items},
                            what="no pods left on the removed node")


async def test_node_selector_and_labels_that_change(tmp_path: Path) -> None:
    async with WorkloadCluster(tmp_path, labels=[{"disk": "ssd"}, {}, {}]) as c:
        pods, sets = await c.observe(PODS), await c.observe(DAEMONSETS)
        await c.client.create(DAEMONSETS, daemonset("ssd", nodeSelector={"disk": "ssd"}), namespace="default")
        await sets.wait_for(rolled_out("ssd", 1), what="1 node with an ssd")
        await c.client.patch(NODES, c.node_names[1], {"metadata": {"labels": {"disk": "ssd"}}})
        await sets.wait_for(rolled_out("ssd", 2), what="a second ssd node")
        await pods.wait_for(one_ready_pod_on(c.node_names[:2], "ssd", "nginx:1.26"))
        await c.client.patch(NODES, c.node_names[0], {"metadata": {"labels": {"disk": None}}})
        await sets.wait_for(rolled_out("ssd", 1), what="the first node lost its ssd label")
        await pods.wait_for(one_ready_pod_on(c.node_names[1:2], "ssd", "nginx:1.26"))


async def test_rolling_update_keeps_at_most_max_unavailable_down_and_kubectl_rolls_back(
        tmp_path: Path) -> None:
    async with WorkloadCluster(tmp_path) as c:
        pods, sets = await c.observe(PODS), await c.observe(DAEMONSETS)
        revisions = await c.observe(CONTROLLERREVISIONS)
        await c.client.create(DAEMONSETS, daemonset("log", {"type": "RollingUpdate",
                                                             "rollingUpdate": {"maxUnavailable": 1}}),
                              namespace="default")
        await sets.wait_for(rolled_out("log", 3))
        await pods.wait_for(one_ready_pod_on(c.node_names, "log", "nginx:1.26"))
        serving: list[int] = []  # nodes with a ready, not terminating pod, after every change
        pods.on_change(lambda _t, _p: serving.append(
            sum(any(is_ready(p) for p in ps) for ps in placed(pods.items(), "log").values())))

        await c.client.patch(DAEMONSETS, "log", {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "nginx:1.27"}]}}}},
            namespace="default", patch_type="strategic")
        await sets.wait_for(rolled_out("log", 3, 2), what="rolled out")
        await pods.wait_for(one_ready_pod_on(c.node_names, "log", "nginx:1.27"))
        assert serving and min(serving) == 2  # one node at a time

        owned = await revisions.wait_for(lambda items: sorted(r["revision"] for r in items) == [1, 2] and items)
        hashes = {r["revision"]: meta(r)["labels"]["controller-revision-hash"] for r in owned}
        assert {meta(p)["labels"]["controller-revision-hash"] for p in pods.items()} == {hashes[2]}
        assert {name_of(r) for r in owned} == {f"log-{h}" for h in hashes.values()}
        history = await c.kubectl("rollout", "history", "daemonset/log")
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

        out = await c.kubectl("rollout", "undo", "daemonset/log")
        assert "daemonset.apps/log rolled back" in out
        await sets.wait_for(rolled_out("log", 3, 3), what="rolled back")
        await pods.wait_for(one_ready_pod_on(c.node_names, "log", "nginx:1.26"))
        assert min(serving) == 2
        await revisions.wait_for(lambda items: {r["revision"]: meta(r)["labels"]["controller-revision-hash"]
                                                for r in items} == {3: hashes[1], 2: hashes[2]},
                                 what="revision 1 renumbered to 3")
        out = await c.kubectl("rollout", "status", "daemonset/log", "--timeout=15s")
        assert 'daemon set "log" successfully rolled out' in out


async def test_rolling_update_with_max_surge_never_leaves_a_node_without_a_pod(tmp_path: Path) -> None:
    async with WorkloadCluster(tmp_path) as c:
        pods, sets = await c.observe(PODS), await c.observe(DAEMONSETS)
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
        await c.client.create(DAEMONSETS, daemonset("log", strategy), namespace="default")
        await sets.wait_for(rolled_out("log", 3))
        await pods.wait_for(one_ready_pod_on(c.node_names, "log", "nginx:1.26"))
        serving: list[int] = []
        most_on_a_node: list[int] = []
        log = EventLog(pods)

        def on_pod(_t: str, _p: Obj) -> None:
            by_node = placed(pods.items(), "log")
            serving.append(sum(any(is_ready(p) for p in ps) for ps in by_node.values()))
            most_on_a_node.append(max((len(ps) for ps in by_node.values()), default=0))
        pods.on_change(on_pod)

        await c.client.patch(DAEMONSETS, "log", {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "nginx:1.27"}]}}}},
            namespace="default", patch_type="strategic")
        await sets.wait_for(rolled_out("log", 3, 2), what="rolled out")
        await pods.wait_for(one_ready_pod_on(c.node_names, "log", "nginx:1.27"))
        assert min(serving) == 3 and max(most_on_a_node) == 2  # new pod first, then the old one goes
        for node in c.node_names:  # on each node the new pod was ready before the old one went
            new_ready = log.first(lambda t, p, n=node: p["spec"].get("nodeName") == n
                                  and image_of(p) == "nginx:1.27" and is_ready(p))
            old_goes = log.first(lambda t, p, n=node: p["spec"].get("nodeName") == n
                                 and image_of(p) == "nginx:1.26" and bool(meta(p).get("deletionTimestamp")))
            assert new_ready < old_goes


async def test_on_delete_replaces_only_deleted_and_failed_pods(tmp_path: Path) -> None:
    async with WorkloadCluster(tmp_path, nodes=2) as c:
        pods, sets = await c.observe(PODS), await c.observe(DAEMONSETS)
        events = await c.observe(EVENTS)
        await c.client.create(DAEMONSETS, daemonset("log", {"type": "OnDelete"}), namespace="default")
        await sets.wait_for(rolled_out("log", 2))
        await c.client.patch(DAEMONSETS, "log", {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "nginx:1.27"}]}}}},
            namespace="default", patch_type="strategic")
        ds = await sets.wait_for(lambda items: next((d for d in items if d["status"].get("observedGeneration") == 2
                                                     and d["status"].get("updatedNumberScheduled", 0) == 0), None))
        assert ds["status"]["numberAvailable"] == 2
        assert {image_of(p) for p in pods.items()} == {"nginx:1.26"}
        victim = next(p for p in pods.items() if p["spec"]["nodeName"] == c.node_names[0])
        await c.client.delete(PODS, name_of(victim), namespace="default")
        await sets.wait_for(lambda items: (by_name(items)["log"]["status"].get("updatedNumberScheduled") == 1
                                           and by_name(items)["log"]["status"].get("numberAvailable") == 2))
        images = {p["spec"]["nodeName"]: image_of(p) for p in pods.items() if not meta(p).get("deletionTimestamp")}
        assert images == {c.node_names[0]: "nginx:1.27", c.node_names[1]: "nginx:1.26"}

        failed = next(p for p in pods.items() if p["spec"]["nodeName"] == c.node_names[1])
        await c.client.patch(PODS, name_of(failed), {"status": {"phase": "Failed"}}, namespace="default",
                             subresource="status")
        await pods.wait_for(lambda items: name_of(failed) not in by_name(items) and any(
            p["spec"].get("nodeName") == c.node_names[1] and is_ready(p) for p in items), what="replaced")
        await events.wait_for(lambda items: any(
            e["reason"] == "FailedDaemonPod" and e["message"] == f"Found failed daemon pod default/"
            f"{name_of(failed)} on node {c.node_names[1]}, will try to kill it" for e in items))
