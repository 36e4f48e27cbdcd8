"""Deployment controller against the real API server, fake nodes and the ReplicaSet controller."""

from __future__ import annotations

from typing import Any

from controller_cluster import UNPULLABLE_IMAGE, Cluster, Observed
from skiff.client.resources import DEPLOYMENTS, EVENTS, PODS, REPLICASETS

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"


def deployment(name: str, replicas: int, image: str = "nginx:1.26", *, surge: Any = 1,
               unavailable: Any = 0, strategy: str = "RollingUpdate",
               deadline: int | None = None, history: int | None = None) -> Obj:
    spec: Obj = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": image}]}},
                 "strategy": {"type": strategy}}
    if strategy == "RollingUpdate":
        spec["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    if deadline is not None:
        spec["progressDeadlineSeconds"] = deadline
    if history is not None:
        spec["revisionHistoryLimit"] = history
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def cond(obj: Obj, type_: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or []
                 if c["type"] == type_), None)


def rolled_out(name: str, replicas: int) -> Any:
    """kubectl rollout status' completion test."""
    def check(items: list[Obj]) -> Obj | None:
        for d in items:
            s = d.get("status") or {}
            if d["metadata"]["name"] == name \
                    and d["metadata"]["generation"] <= s.get("observedGeneration", 0) \
                    and s.get("updatedReplicas", 0) == replicas == s.get("replicas", 0) \
                    and s.get("availableReplicas", 0) == replicas:
                return d
        return None
    return check


def image_of(obj: Obj) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def live_pods(pods: Observed, app: str) -> list[Obj]:
    return [p for p in pods.items() if p["metadata"].get("labels", {}).get("app") == app
            and not p["metadata"].get("deletionTimestamp")]


async def set_image(cluster: Cluster, name: str, image: str) -> None:
    await cluster.client.patch(
        DEPLOYMENTS, name,
        {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}},
        namespace="default", patch_type="strategic")


async def test_creates_a_replicaset_named_by_template_hash_and_its_pods(cluster: Cluster) -> None:
    deploys = await cluster.observe(DEPLOYMENTS)
    sets = await cluster.observe(REPLICASETS)
    pods = await cluster.observe(PODS)
    d = await cluster.client.create(DEPLOYMENTS, deployment("web", 3))
    done = await deploys.wait_for(rolled_out("web", 3), what="web rolled out")
    assert done["metadata"]["annotations"][REVISION] == "1"
    (rs,) = sets.items()
    hash_ = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{hash_}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": hash_}
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == hash_
    assert rs["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
        "uid": d["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    annotations = rs["metadata"]["annotations"]
    assert annotations[REVISION] == "1"
    assert annotations["deployment.kubernetes.io/desired-replicas"] == "3"
    assert annotations["deployment.kubernetes.io/max-replicas"] == "4"
    assert len(live_pods(pods, "web")) == 3
    assert all(p["metadata"]["labels"]["pod-template-hash"] == hash_ for p in live_pods(pods, "web"))
    status = done["status"]
    assert status["readyReplicas"] == 3 and status.get("unavailableReplicas", 0) == 0
    available, progressing = cond(done, "Available"), cond(done, "Progressing")
    assert available and available["status"] == "True"
    assert available["reason"] == "MinimumReplicasAvailable"
    progressing = await deploys.wait_for(
        lambda items: (c := cond(items[0], "Progressing")) and c["reason"] == "NewReplicaSetAvailable"
        and c, what="NewReplicaSetAvailable")
    assert progressing["status"] == "True"
    assert progressing["message"] == f'ReplicaSet "web-{hash_}" has successfully progressed.'
    events = await cluster.observe(EVENTS)
    scaled = await events.wait_for(lambda items: [e for e in items
                                                  if e["reason"] == "ScalingReplicaSet"])
    assert scaled[0]["message"] == f"Scaled up replica set web-{hash_} from 0 to 3"
    assert scaled[0]["source"]["component"] == "deployment-controller"
    assert scaled[0]["involvedObject"]["kind"] == "Deployment"


async def test_rolling_update_respects_max_surge_and_max_unavailable(cluster: Cluster) -> None:
    """replicas 4, maxSurge 1, maxUnavailable 1: never more than 5 pods, never fewer than 3 ready."""
    deploys = await cluster.observe(DEPLOYMENTS)
    sets = await cluster.observe(REPLICASETS)
    pods = await cluster.observe(PODS)
    await cluster.client.create(DEPLOYMENTS, deployment("web", 4, surge=1, unavailable=1))
    await deploys.wait_for(rolled_out("web", 4), what="first rollout")
    violations: list[str] = []
    most_pods = 0

    def check(type_: str, obj: Obj) -> None:
        nonlocal most_pods
        total = sum(rs["spec"]["replicas"] for rs in sets.items())
        if total > 5:
            violations.append(f"RS sizes sum to {total}")
        live = live_pods(pods, "web")
        most_pods = max(most_pods, len(live))
        ready = [p for p in live if any(c["type"] == "Ready" and c["status"] == "True"
                                        for c in p.get("status", {}).get("conditions") or [])]
        if len(ready) < 3:
            violations.append(f"only {len(ready)} ready pods")
    sets.on_change(check)
    pods.on_change(check)
    await set_image(cluster, "web", "nginx:1.27")
    done = await deploys.wait_for(
        lambda items: rolled_out("web", 4)(items) if items and image_of(items[0]) == "nginx:1.27"
        else None, what="second rollout")
    assert not violations, violations[:5]
    assert most_pods <= 5
    assert done["metadata"]["annotations"][REVISION] == "2"
    new = [rs for rs in sets.items() if image_of(rs) == "nginx:1.27"]
    old = [rs for rs in sets.items() if image_of(rs) == "nginx:1.26"]
    assert len(new) == 1 and len(old) == 1
    assert new[0]["spec"]["replicas"] == 4 and old[0]["spec"]["replicas"] == 0
    assert new[0]["metadata"]["annotations"][REVISION] == "2"
    await pods.wait_for(lambda items: len(live_pods(pods, "web")) == 4
                        and all(image_of({"spec": {"template": p}}) == "nginx:1.27"
                                for p in live_pods(pods, "web")), what="only new pods")


async def test_history_and_undo(cluster: Cluster) -> None:
    deploys = await cluster.observe(DEPLOYMENTS)
    sets = await cluster.observe(REPLICASETS)
    await cluster.client.create(DEPLOYMENTS, deployment("web", 2, surge="50%", unavailable="50%"))
    await deploys.wait_for(rolled_out("web", 2), what="rev 1")
    await set_image(cluster, "web", "nginx:1.27")
    await deploys.wait_for(lambda items: image_of(items[0]) == "nginx:1.27"
                           and rolled_out("web", 2)(items), what="rev 2")
    rev1 = next(rs for rs in sets.items() if image_of(rs) == "nginx:1.26")
    # kubectl rollout undo: copy the old ReplicaSet's template (minus the hash label) back.
    template = rev1["spec"]["template"]
    template["metadata"]["labels"].pop("pod-template-hash")
    await cluster.client.patch(DEPLOYMENTS, "web", [
        {"op": "replace", "path": "/spec/template", "value": template}],
        namespace="default", patch_type="json")
    done = await deploys.wait_for(lambda items: image_of(items[0]) == "nginx:1.26"
                                  and rolled_out("web", 2)(items), what="undo")
    assert done["metadata"]["annotations"][REVISION] == "3"
    assert len(sets.items()) == 2  # the old ReplicaSet came back; no third one
    back = next(rs for rs in sets.items() if rs["metadata"]["uid"] == rev1["metadata"]["uid"])
    assert back["spec"]["replicas"] == 2
    assert back["metadata"]["annotations"][REVISION] == "3"
    assert back["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"


async def test_progress_deadline_exceeded_while_old_pods_keep_serving(cluster: Cluster) -> None:
    deploys = await cluster.observe(DEPLOYMENTS)
    pods = await cluster.observe(PODS)
    await cluster.client.create(DEPLOYMENTS, deployment("web", 3, surge=1, unavailable=0,
                                                        deadline=2))
    await deploys.wait_for(rolled_out("web", 3), what="rev 1")
    await set_image(cluster, "web", UNPULLABLE_IMAGE)
    stuck = await deploys.wait_for(
        lambda items: (c := cond(items[0], "Progressing")) and c["reason"] ==
        "ProgressDeadlineExceeded" and items[0], timeout=10, what="deadline exceeded")
    progressing = cond(stuck, "Progressing")
    assert progressing is not None and progressing["status"] == "False"
    assert progressing["message"].endswith("has timed out progressing.")
    available = cond(stuck, "Available")
    assert available is not None and available["status"] == "True"
    old_pods = [p for p in live_pods(pods, "web") if image_of({"spec": {"template": p}}) == "nginx:1.26"]
    assert len(old_pods) == 3  # maxUnavailable 0: every old pod still serves
    assert all(p["status"]["phase"] == "Running" for p in old_pods)
    # Undo by setting the old image back: the rollout recovers.
    await set_image(cluster, "web", "nginx:1.26")
    recovered = await deploys.wait_for(
        lambda items: image_of(items[0]) == "nginx:1.26" and rolled_out("web", 3)(items)
        and (c := cond(items[0], "Progressing")) and c["reason"] == "NewReplicaSetAvailable"
        and items[0], what="recovered")
    assert recovered["status"]["replicas"] == 3
    await pods.wait_for(lambda items: len(live_pods(pods, "web")) == 3, what="stuck pod removed")


async def test_pause_and_resume(cluster: Cluster) -> None:
    deploys = await cluster.observe(DEPLOYMENTS)
    sets = await cluster.observe(REPLICASETS)
    await cluster.client.create(DEPLOYMENTS, deployment("web", 2))
    await deploys.wait_for(rolled_out("web", 2), what="rev 1")
    await cluster.client.patch(DEPLOYMENTS, "web", {"spec": {"paused": True}}, namespace="default")
    paused = await deploys.wait_for(
        lambda items: (c := cond(items[0], "Progressing")) and c["reason"] == "DeploymentPaused"
        and items[0], what="paused condition")
    assert cond(paused, "Progressing")["status"] == "Unknown"  # type: ignore[index]
    await set_image(cluster, "web", "nginx:1.27")
    # Scaling still works while paused, but no new ReplicaSet appears.
    await cluster.client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 3}}, namespace="default")
    await sets.wait_for(lambda items: len(items) == 1 and items[0]["spec"]["replicas"] == 3
                        and items[0]["status"].get("readyReplicas") == 3, what="scaled while paused")
    await cluster.client.patch(DEPLOYMENTS, "web", {"spec": {"paused": False}}, namespace="default")
    await deploys.wait_for(lambda items: rolled_out("web", 3)(items)
                           and items[0]["metadata"]["annotations"][REVISION] == "2", what="resumed")
    assert len(sets.items()) == 2


async def test_recreate_stops_old_pods_before_starting_new_ones(cluster: Cluster) -> None:
    deploys = await cluster.observe(DEPLOYMENTS)
    pods = await cluster.observe(PODS)
    await cluster.client.create(DEPLOYMENTS, deployment("web", 2, strategy="Recreate"))
    await deploys.wait_for(rolled_out("web", 2), what="rev 1")
    mixed: list[str] = []

    def check(type_: str, obj: Obj) -> None:
        images = {image_of({"spec": {"template": p}}) for p in pods.items()
                  if p["metadata"].get("labels", {}).get("app") == "web"}
        if len(images) > 1:
            mixed.append(str(images))
    pods.on_change(check)
    await set_image(cluster, "web", "nginx:1.27")
    await deploys.wait_for(lambda items: image_of(items[0]) == "nginx:1.27"
                           and rolled_out("web", 2)(items), what="recreated")
    assert not mixed, mixed[:3]


async def test_revision_history_limit_cleans_up_old_replicasets(cluster: Cluster) -> None:
    deploys = await cluster.observe(DEPLOYMENTS)
    sets = await cluster.observe(REPLICASETS)
    await cluster.client.create(DEPLOYMENTS, deployment("web", 1, history=1))
    for i, image in enumerate(("nginx:1.27", "nginx:1.28", "nginx:1.29"), start=2):
        await set_image(cluster, "web", image)
        await deploys.wait_for(lambda items: image_of(items[0]) == image
                               and rolled_out("web", 1)(items), what=f"rev {i}")
    await sets.wait_for(lambda items: len(items) == 2, what="only 2 ReplicaSets left")
    assert sorted(image_of(rs) for rs in sets.items()) == ["nginx:1.28", "nginx:1.29"]


async def test_proportional_scaling_mid_rollout(cluster: Cluster) -> None:
    deploys = await cluster.observe(DEPLOYMENTS)
    sets = await cluster.observe(REPLICASETS)
    await cluster.client.create(DEPLOYMENTS, deployment("web", 10, surge=3, unavailable=2,
                                                        deadline=600))
    await deploys.wait_for(rolled_out("web", 10), what="rev 1")
    # A rollout to an image that never becomes ready stalls with both ReplicaSets active.
    await set_image(cluster, "web", UNPULLABLE_IMAGE)
    def sizes(items: list[Obj]) -> dict[str, int]:
        return {image_of(rs): rs["spec"]["replicas"] for rs in items}
    # surge 3: the new RS starts at 3; old scales to 8 (8 available = 10 - 2); new grows to
    # 5 (13 pods in all) and then nothing more can move.
    await sets.wait_for(lambda items: sizes(items) == {"nginx:1.26": 8, UNPULLABLE_IMAGE: 5},
                        what="stalled rollout 8 + 5")
    await cluster.client.patch(DEPLOYMENTS, "web", {"spec": {"replicas": 20}}, namespace="default")
    # 20 + 3 surge = 23 pods allowed, 10 more than now, shared by size: the old set gets
    # round(8 * 23 / 13) - 8 = 6, the new one round(5 * 23 / 13) - 5 = 4.
    await sets.wait_for(lambda items: sizes(items) == {"nginx:1.26": 14, UNPULLABLE_IMAGE: 9},
                        what="scaled proportionally to 14 + 9")
    for rs in sets.items():
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "20"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "23"
