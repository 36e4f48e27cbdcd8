"""The StatefulSet controller against a real API server, fake nodes and the real scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skiff.client.resources import (
    CONTROLLERREVISIONS, EVENTS, PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS,
)
from skiff.controllers.statefulset.identity import parent_and_ordinal
from test_statefulset_support import (
    NEVER_READY, EventLog, WorkloadCluster, by_name, image_of, is_ready, meta, name_of, pod_template,
)

Obj = dict[str, Any]
CLAIM = {"metadata": {"name": "www"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


def statefulset(replicas: int, *, claims: bool = False, **spec: Any) -> Obj:
    body: Obj = {"apiVersion": "apps/v1", "kind": "StatefulSet",
                 "metadata": {"name": "web", "namespace": "default"},
                 "spec": {"replicas": replicas, "serviceName": "web",
                          "selector": {"matchLabels": {"app": "web"}},
                          "template": pod_template("web"), **spec}}
    if claims:
        body["spec"]["volumeClaimTemplates"] = [CLAIM]
    return body


def settled(replicas: int, generation: int = 1, **more: Any) -> Any:
    """A predicate on the StatefulSet list: web reports these counts for this generation."""
    def check(items: list[Obj]) -> Obj | None:
        sts = by_name(items).get("web")
        if sts is None:
            return None
        status = sts.get("status") or {}
        wanted = {"observedGeneration": generation, "replicas": replicas,
                  "readyReplicas": replicas, **more}
        return sts if all((status.get(k) or 0) == v for k, v in wanted.items()) else None
    return check


async def scale(c: WorkloadCluster, replicas: int) -> None:
    await c.client.patch(STATEFULSETS, "web", {"spec": {"replicas": replicas}}, namespace="default")


async def test_pods_start_in_order_stop_in_reverse_and_keep_their_claims(tmp_path: Path) -> None:
    async with WorkloadCluster(tmp_path) as c:
        pods, sets = await c.observe(PODS), await c.observe(STATEFULSETS)
        claims, events = await c.observe(PERSISTENTVOLUMECLAIMS), await c.observe(EVENTS)
        log = EventLog(pods)
        created: list[tuple[str, bool]] = []  # (pod, was its predecessor Running+Ready then?)

        def on_pod(type_: str, pod: Obj) -> None:
            if type_ == "ADDED":
                ordinal = parent_and_ordinal(pod)[1]
                before = pods.get(f"web-{ordinal - 1}")
                created.append((name_of(pod), ordinal == 0 or (before is not None and is_ready(before))))
        pods.on_change(on_pod)

        await c.client.create(STATEFULSETS, statefulset(3, claims=True), namespace="default")
        sts = await sets.wait_for(settled(3), what="3 ready replicas")
        assert created == [("web-0", True), ("web-1", True), ("web-2", True)]

        revision = sts["status"]["updateRevision"]
        assert sts["status"]["currentRevision"] == revision and sts["status"]["updatedReplicas"] == 3
        for ordinal, pod in enumerate(sorted(pods.items(), key=name_of)):
            name = f"web-{ordinal}"
            assert name_of(pod) == name
            assert meta(pod)["labels"] == {"app": "web", "statefulset.kubernetes.io/pod-name": name,
                                           "apps.kubernetes.io/pod-index": str(ordinal),
                                           "controller-revision-hash": revision}
            assert pod["spec"]["hostname"] == name and pod["spec"]["subdomain"] == "web"
            assert {"name": "www", "persistentVolumeClaim": {"claimName": f"www-{name}"}} \
                in pod["spec"]["volumes"]
            assert [r["uid"] for r in meta(pod)["ownerReferences"]] == [meta(sts)["uid"]]
        first_claims = {name_of(p): meta(p)["uid"] for p in claims.items()}
        assert sorted(first_claims) == ["www-web-0", "www-web-1", "www-web-2"]
        for claim in claims.items():
            assert claim["status"]["phase"] == "Bound"  # a local-path volume where its pod runs
            assert meta(claim)["labels"] == {"app": "web"}
            assert not meta(claim).get("ownerReferences")  # Retain / Retain
        await events.wait_for(lambda items: {
            "create Pod web-2 in StatefulSet web successful",
            "create Claim www-web-0 Pod web-0 in StatefulSet web success",
        } <= {e["message"] for e in items if e["reason"] == "SuccessfulCreate"}, what="events")

        await scale(c, 1)
        await sets.wait_for(settled(1, 2), what="scaled down to 1")
        await pods.wait_for(lambda items: [name_of(p) for p in items] == ["web-0"], what="web-0 only")
        web2_gone = log.first(lambda t, p: t == "DELETED" and name_of(p) == "web-2")
        web1_goes = log.first(lambda t, p: name_of(p) == "web-1" and bool(meta(p).get("deletionTimestamp")))
        assert web2_gone < web1_goes  # one at a time, highest ordinal first
        assert {name_of(p): meta(p)["uid"] for p in claims.items()} == first_claims
        await events.wait_for(lambda items: "delete Pod web-1 in StatefulSet web successful"
                              in {e["message"] for e in items if e["reason"] == "SuccessfulDelete"})

        await scale(c, 3)
        await sets.wait_for(settled(3, 3), what="scaled back to 3")
        assert {name_of(p): meta(p)["uid"] for p in claims.items()} == first_claims
        assert [name_of(p) for p in sorted(pods.items(), key=name_of)] == ["web-0", "web-1", "web-2"]


async def test_rolling_update_honours_the_partition_and_kubectl_rolls_back(tmp_path: Path) -> None:
    async with WorkloadCluster(tmp_path) as c:
        pods, sets = await c.observe(PODS), await c.observe(STATEFULSETS)
        revisions = await c.observe(CONTROLLERREVISIONS)
        log = EventLog(pods)
        await c.client.create(STATEFULSETS, statefulset(3), namespace="default")
        await sets.wait_for(settled(3), what="3 ready replicas")
        out = await c.kubectl("rollout", "status", "statefulset/web", "--timeout=15s")
        # rollingUpdate is defaulted (partition 0), so kubectl reports a partitioned roll out
        assert "partitioned roll out complete: 3 new pods have been updated..." in out

        await c.client.patch(STATEFULSETS, "web", {"spec": {
            "updateStrategy": {"rollingUpdate": {"partition": 2}},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}},
            namespace="default", patch_type="strategic")
        sts = await sets.wait_for(settled(3, 2, updatedReplicas=1, currentReplicas=2), what="web-2 updated")
        assert sts["status"]["currentRevision"] != sts["status"]["updateRevision"]
        await pods.wait_for(lambda items: len(items) == 3 and all(is_ready(p) for p in items))
        assert {name_of(p): image_of(p) for p in pods.items()} == {
            "web-0": "nginx:1.26", "web-1": "nginx:1.26", "web-2": "nginx:1.27"}
        out = await c.kubectl("rollout", "status", "statefulset/web", "--timeout=15s")
        assert "partitioned roll out complete: 1 new pods have been updated..." in out

        await c.client.patch(STATEFULSETS, "web", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}},
                             namespace="default")
        sts = await sets.wait_for(settled(3, 3, updatedReplicas=3, currentReplicas=3), what="all updated")
        assert sts["status"]["currentRevision"] == sts["status"]["updateRevision"]
        assert {image_of(p) for p in pods.items()} == {"nginx:1.27"}

        def went(name: str) -> int:
            return log.first(lambda t, p: name_of(p) == name and image_of(p) == "nginx:1.26"
                             and bool(meta(p).get("deletionTimestamp")))
        back = log.first(lambda t, p: name_of(p) == "web-1" and image_of(p) == "nginx:1.27" and is_ready(p))
        assert went("web-1") < back < went("web-0")  # one at a time, from the top down

        owned = [r for r in revisions.items() if meta(r)["ownerReferences"][0]["uid"] == meta(sts)["uid"]]
        assert sorted(r["revision"] for r in owned) == [1, 2]
        for r in owned:
            assert meta(r)["labels"]["app"] == "web" and "controller.kubernetes.io/hash" in meta(r)["labels"]
            assert meta(r)["ownerReferences"][0]["controller"] is True
        assert sts["status"]["currentRevision"] in {name_of(r) for r in owned if r["revision"] == 2}
        history = await c.kubectl("rollout", "history", "statefulset/web")
        assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

        out = await c.kubectl("rollout", "undo", "statefulset/web")
        assert "statefulset.apps/web rolled back" in out
        await sets.wait_for(settled(3, 4, updatedReplicas=3, currentReplicas=3), what="rolled back")
        await pods.wait_for(lambda items: len(items) == 3 and all(
            is_ready(p) and image_of(p) == "nginx:1.26" for p in items), what="old image back")
        await revisions.wait_for(lambda items: sorted(r["revision"] for r in items) == [2, 3],
                                 what="revision 1 renumbered to 3")
        out = await c.kubectl("rollout", "undo", "statefulset/web", "--to-revision=3")
        assert "skipped rollback (current template already matches revision 3)" in out


async def test_on_delete_replaces_only_deleted_pods_under_the_same_name(tmp_path: Path) -> None:
    async with WorkloadCluster(tmp_path) as c:
        pods, sets = await c.observe(PODS), await c.observe(STATEFULSETS)
        await c.client.create(STATEFULSETS, statefulset(2, updateStrategy={"type": "OnDelete"}),
                              namespace="default")
        await sets.wait_for(settled(2), what="2 ready replicas")
        old = by_name(pods.items())
        await c.client.patch(STATEFULSETS, "web", {"spec": {"template": {"spec": {
            "containers": [{"name": "c", "image": "nginx:1.27"}]}}}},
            namespace="default", patch_type="strategic")
        sts = await sets.wait_for(settled(2, 2, updatedReplicas=0, currentReplicas=2), what="update seen")
        assert sts["status"]["updateRevision"] != sts["status"]["currentRevision"]
        assert {name_of(p): meta(p)["uid"] for p in pods.items()} == {n: meta(p)["uid"] for n, p in old.items()}

        await c.client.delete(PODS, "web-1", namespace="default")
        fresh = await pods.wait_for(lambda items: next((p for p in items if name_of(p) == "web-1"
                                                        and meta(p)["uid"] != meta(old["web-1"])["uid"]
                                                        and is_ready(p)), None), what="web-1 again")
        assert image_of(fresh) == "nginx:1.27"
        assert image_of(by_name(pods.items())["web-0"]) == "nginx:1.26"
        await sets.wait_for(settled(2, 2, updatedReplicas=1, currentReplicas=1), what="counts")

        failed = by_name(pods.items())["web-0"]  # a pod that failed is replaced under its name too
        await c.client.patch(PODS, "web-0", {"status": {"phase": "Failed"}}, namespace="default",
                             subresource="status")
        again = await pods.wait_for(lambda items: next((p for p in items if name_of(p) == "web-0"
                                                        and meta(p)["uid"] != meta(failed)["uid"]
                                                        and is_ready(p)), None), what="web-0 again")
        assert image_of(again) == "nginx:1.27"
        await sets.wait_for(settled(2, 2, updatedReplicas=2), what="both at the update revision")


async def test_parallel_starts_every_pod_at_once(tmp_path: Path) -> None:
    async with WorkloadCluster(tmp_path) as c:
        pods, sets = await c.observe(PODS), await c.observe(STATEFULSETS)
        body = statefulset(3, podManagementPolicy="Parallel")
        body["spec"]["template"] = pod_template("web", annotations=NEVER_READY)
        await c.client.create(STATEFULSETS, body, namespace="default")
        await pods.wait_for(lambda items: len(items) == 3 and all(
            p["status"].get("phase") == "Running" for p in items), what="3 running pods")
        assert not any(is_ready(p) for p in pods.items())  # nobody waited for readiness
        await scale(c, 0)
        await pods.wait_for(lambda items: not items, what="all gone")
        await sets.wait_for(lambda items: (by_name(items)["web"].get("status") or {}).get("replicas") == 0)


async def test_claims_of_a_set_with_when_deleted_delete_go_with_the_set(tmp_path: Path) -> None:
    async with WorkloadCluster(tmp_path) as c:
        sets, claims = await c.observe(STATEFULSETS), await c.observe(PERSISTENTVOLUMECLAIMS)
        body = statefulset(2, claims=True, persistentVolumeClaimRetentionPolicy={
            "whenDeleted": "Delete", "whenScaled": "Retain"})
        await c.client.create(STATEFULSETS, body, namespace="default")
        sts = await sets.wait_for(settled(2), what="2 ready replicas")
        owners = {name_of(p): [(r["kind"], r["uid"], r.get("controller"))
                               for r in meta(p).get("ownerReferences") or []] for p in claims.items()}
        mine = [("StatefulSet", meta(sts)["uid"], True)]
        assert owners == {"www-web-0": mine, "www-web-1": mine}

        await scale(c, 1)  # whenScaled: Retain -> the claim of web-1 stays
        await sets.wait_for(settled(1, 2), what="scaled down to 1")
        assert sorted(name_of(p) for p in claims.items()) == ["www-web-0", "www-web-1"]
        await c.client.delete(STATEFULSETS, "web", namespace="default")  # the garbage collector follows
        await claims.wait_for(lambda items: not items, what="claims deleted with the StatefulSet")
