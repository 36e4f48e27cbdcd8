"""ReplicaSet / ReplicationController controllers against the real API server and fake nodes."""

from __future__ import annotations

import asyncio
from typing import Any

from pathlib import Path

from controller_cluster import Cluster, Observed
from skiff.controllers.gc import GarbageCollector
from skiff.client.resources import EVENTS, PODS, REPLICASETS
from skiff.controllers.replicaset import REPLICATIONCONTROLLERS

Obj = dict[str, Any]


def replicaset(name: str, replicas: int, *, app: str | None = None, min_ready: int = 0) -> Obj:
    app = app or name
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "selector": {"matchLabels": {"app": app}},
                     "template": {"metadata": {"labels": {"app": app, "tier": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}


def owned_by(owner: Obj) -> Any:
    uid = owner["metadata"]["uid"]

    def pods(items: list[Obj]) -> list[Obj]:
        return [p for p in items if not p["metadata"].get("deletionTimestamp")
                and any(r.get("uid") == uid and r.get("controller")
                        for r in p["metadata"].get("ownerReferences") or [])]
    return pods


def status_is(name: str, **want: int) -> Any:
    def check(items: list[Obj]) -> Obj | None:
        for rs in items:
            if rs["metadata"]["name"] == name and all(
                    (rs.get("status") or {}).get(k, 0) == v for k, v in want.items()):
                return rs
        return None
    return check


async def test_creates_pods_owned_by_it_and_reports_status(cluster: Cluster) -> None:
    pods = await cluster.observe(PODS)
    sets = await cluster.observe(REPLICASETS)
    rs = await cluster.client.create(REPLICASETS, replicaset("web", 3))
    mine = owned_by(rs)
    await sets.wait_for(status_is("web", replicas=3, readyReplicas=3, availableReplicas=3,
                                  fullyLabeledReplicas=3, observedGeneration=1), what="web ready")
    owned = mine(pods.items())
    assert len(owned) == 3
    for pod in owned:
        ref = pod["metadata"]["ownerReferences"][0]
        assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
                       "uid": rs["metadata"]["uid"], "controller": True,
                       "blockOwnerDeletion": True}
        name = pod["metadata"]["name"]
        assert name.startswith("web-") and len(name) == len("web-") + 5
        assert pod["metadata"]["labels"] == {"app": "web", "tier": "web"}
        assert pod["status"]["phase"] == "Running"
    events = await cluster.observe(EVENTS)
    created = await events.wait_for(
        lambda items: [e for e in items if e["reason"] == "SuccessfulCreate"
                       and e["involvedObject"]["name"] == "web"] if len(
            [e for e in items if e["reason"] == "SuccessfulCreate"]) >= 3 else None,
        what="3 SuccessfulCreate events")
    messages = sorted(e["message"] for e in created)
    assert messages == sorted(f"Created pod: {p['metadata']['name']}" for p in owned)
    assert all(e["source"]["component"] == "replicaset-controller" and e["type"] == "Normal"
               and e["involvedObject"]["kind"] == "ReplicaSet" for e in created)


async def test_a_deleted_pod_is_replaced(cluster: Cluster) -> None:
    pods = await cluster.observe(PODS)
    sets = await cluster.observe(REPLICASETS)
    rs = await cluster.client.create(REPLICASETS, replicaset("web", 2))
    mine = owned_by(rs)
    await sets.wait_for(status_is("web", readyReplicas=2), what="2 ready")
    victim = mine(pods.items())[0]["metadata"]["name"]
    await cluster.client.delete(PODS, victim, namespace="default")
    await pods.wait_for(lambda items: len(mine(items)) == 2 and victim not in
                        [p["metadata"]["name"] for p in items], what="replacement")
    await sets.wait_for(status_is("web", replicas=2, readyReplicas=2), what="2 ready again")


async def test_scale_down_deletes_unscheduled_pods_first(cluster: Cluster) -> None:
    pods = await cluster.observe(PODS)
    sets = await cluster.observe(REPLICASETS)
    rs = await cluster.client.create(REPLICASETS, replicaset("web", 2))
    mine = owned_by(rs)
    await sets.wait_for(status_is("web", readyReplicas=2), what="2 ready")
    running = {p["metadata"]["name"] for p in mine(pods.items())}
    # An orphan that matches but can never be scheduled: adopted, and the first to go.
    stuck = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "stuck", "namespace": "default", "labels": {"app": "web"}},
             "spec": {"containers": [{"name": "c",
                                      "image": "registry.invalid/does-not-exist:1"}]}}
    await cluster.client.create(PODS, stuck)
    # The adopted orphan makes 3 pods for 2 replicas: the unscheduled one is deleted.
    await pods.wait_for(lambda items: all(p["metadata"]["name"] != "stuck" for p in items),
                        what="stuck pod deleted")
    assert {p["metadata"]["name"] for p in mine(pods.items())} == running
    await cluster.client.patch(REPLICASETS, "web", {"spec": {"replicas": 5}}, namespace="default")
    await sets.wait_for(status_is("web", replicas=5, readyReplicas=5), what="5 ready")
    await cluster.client.patch(REPLICASETS, "web", {"spec": {"replicas": 1}}, namespace="default")
    await sets.wait_for(status_is("web", replicas=1, readyReplicas=1, observedGeneration=3),
                        what="scaled to 1")
    assert len(mine(pods.items())) == 1
    events = await cluster.observe(EVENTS)
    deleted = await events.wait_for(
        lambda items: (d := [e for e in items if e["reason"] == "SuccessfulDelete"]) and
        sum(e.get("count", 1) for e in d) >= 5 and d, what="SuccessfulDelete events")
    assert all(e["message"].startswith("Deleted pod: web-") or e["message"] == "Deleted pod: stuck"
               for e in deleted)
    assert any(e["message"] == "Deleted pod: stuck" for e in deleted)


async def test_orphans_are_adopted_and_non_matching_pods_released(cluster: Cluster) -> None:
    pods = await cluster.observe(PODS)
    sets = await cluster.observe(REPLICASETS)
    orphan = {"apiVersion": "v1", "kind": "Pod",
              "metadata": {"name": "lonely", "namespace": "default", "labels": {"app": "web"}},
              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    await cluster.client.create(PODS, orphan)
    rs = await cluster.client.create(REPLICASETS, replicaset("web", 2))
    mine = owned_by(rs)
    await sets.wait_for(status_is("web", replicas=2, readyReplicas=2), what="2 ready")
    assert "lonely" in {p["metadata"]["name"] for p in mine(pods.items())}
    # Relabel the adopted pod: it is released and replaced.
    await cluster.client.patch(PODS, "lonely", {"metadata": {"labels": {"app": "other"}}},
                               namespace="default")
    await pods.wait_for(lambda items: len(mine(items)) == 2
                        and "lonely" not in {p["metadata"]["name"] for p in mine(items)},
                        what="release + replacement")
    released = pods.get("lonely")
    assert released is not None and not released["metadata"].get("ownerReferences")


async def test_min_ready_seconds_delays_availability(cluster: Cluster) -> None:
    sets = await cluster.observe(REPLICASETS)
    # 3 s, not 1: a Ready condition's lastTransitionTime has whole seconds (as in Kubernetes),
    # so a pod can count as ready up to a second before it was; with 1 s the status that
    # first counted both pods ready already counted them available once (a full `make test`).
    await cluster.client.create(REPLICASETS, replicaset("slow", 2, min_ready=3))
    ready = await sets.wait_for(status_is("slow", readyReplicas=2), what="ready")
    assert ready["status"].get("availableReplicas", 0) < 2
    await sets.wait_for(status_is("slow", availableReplicas=2), what="available after 3s")


async def test_replication_controller(cluster: Cluster) -> None:
    pods = await cluster.observe(PODS)
    rcs = await cluster.observe(REPLICATIONCONTROLLERS)
    rc = await cluster.client.create(REPLICATIONCONTROLLERS, {
        "apiVersion": "v1", "kind": "ReplicationController",
        "metadata": {"name": "legacy", "namespace": "default"},
        "spec": {"replicas": 2, "selector": {"app": "legacy"},
                 "template": {"metadata": {"labels": {"app": "legacy"}},
                              "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
    await rcs.wait_for(status_is("legacy", replicas=2, readyReplicas=2, availableReplicas=2),
                       what="rc ready")
    owned = owned_by(rc)(pods.items())
    assert len(owned) == 2
    assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
               and p["metadata"]["ownerReferences"][0]["apiVersion"] == "v1" for p in owned)


async def test_never_creates_more_than_replicas(cluster: Cluster) -> None:
    """Expectations: however many events arrive meanwhile, at most N pods ever exist."""
    pods = await cluster.observe(PODS)
    most = 0
    names: set[str] = set()

    def track(type_: str, pod: Obj) -> None:
        nonlocal most
        if type_ == "ADDED":
            names.add(pod["metadata"]["name"])
        live = [p for p in pods.items() if not p["metadata"].get("deletionTimestamp")]
        most = max(most, len(live))
    pods.on_change(track)
    sets = await cluster.observe(REPLICASETS)
    await cluster.client.create(REPLICASETS, replicaset("many", 20))
    await sets.wait_for(status_is("many", replicas=20, readyReplicas=20), what="20 ready")
    await asyncio.sleep(0)  # let the last handler calls run
    assert most == 20 and len(names) == 20


async def test_delete_with_cascade_orphan_leaves_pods_that_a_new_replicaset_adopts(
        tmp_path: Path) -> None:
    async with Cluster(tmp_path, extra=[("garbagecollector", GarbageCollector)]) as cluster:
        pods = await cluster.observe(PODS)
        sets = await cluster.observe(REPLICASETS)
        rs = await cluster.client.create(REPLICASETS, replicaset("web", 2))
        await sets.wait_for(status_is("web", readyReplicas=2), what="2 ready")
        names = {p["metadata"]["name"] for p in owned_by(rs)(pods.items())}
        await cluster.client.delete(REPLICASETS, "web", namespace="default",
                                    propagation_policy="Orphan")
        await sets.wait_for(lambda items: not items, what="ReplicaSet gone")
        await pods.wait_for(lambda items: {p["metadata"]["name"] for p in items
                                           if not p["metadata"].get("ownerReferences")} == names,
                            what="pods unowned")
        assert all(p["status"]["phase"] == "Running" for p in pods.items())
        # A new ReplicaSet with the same selector adopts them instead of creating pods.
        again = await cluster.client.create(REPLICASETS, replicaset("web2", 2, app="web"))
        await sets.wait_for(status_is("web2", replicas=2, readyReplicas=2), what="adopted")
        assert {p["metadata"]["name"] for p in owned_by(again)(pods.items())} == names
        assert {p["metadata"]["name"] for p in pods.items()} == names
