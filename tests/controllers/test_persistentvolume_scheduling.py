"""Storage and scheduling together: the real scheduler (VolumeBinding) with the storage controllers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from skiff.client.resources import EVENTS, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS, STATEFULSETS
from skiff.controllers.persistentvolume.matching import STORAGE_CLASSES

from test_persistentvolume_support import by_name, claim, phase, pod, reasons, storage_cluster, volume

Obj = dict[str, Any]


def node_of(obj: Obj | None) -> str:
    return str(((obj or {}).get("spec") or {}).get("nodeName") or "")


def affinity_node(pv: Obj) -> str:
    [term] = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
    return str(term["matchExpressions"][0]["values"][0])


def pinned(host: str) -> Obj:
    return {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}]}}


def scheduling_failure(items: list[Obj], name: str) -> str:
    for reason, message in reasons(items, name):
        if reason == "FailedScheduling":
            return message
    return ""


async def test_default_class_claim_is_provisioned_where_its_pod_goes(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    async with storage_cluster(tmp_path, monkeypatch, scheduler=True) as c:
        pvcs, pods = await c.observe(PERSISTENTVOLUMECLAIMS), await c.observe(PODS)
        pvs, events = await c.observe(PERSISTENTVOLUMES, namespace=None), await c.observe(EVENTS)
        classes = await c.observe(STORAGE_CLASSES, namespace=None)
        await classes.wait_for(lambda items: by_name(items, "standard"), what="default class")
        await c.client.create(PERSISTENTVOLUMECLAIMS, claim("data"), namespace="default")
        await events.wait_for(lambda items: ("WaitForFirstConsumer", "waiting for first consumer to be created "
                                             "before binding") in reasons(items, "data"), what="waiting event")
        assert phase(by_name(pvcs.items(), "data")) == "Pending" and not pvs.items()
        await c.client.create(PODS, pod("app", "data"), namespace="default")
        bound = await pvcs.wait_for(lambda items: (p := by_name(items, "data")) and phase(p) == "Bound" and p,
                                    what="claim Bound")
        running = await pods.wait_for(lambda items: (p := by_name(items, "app")) and node_of(p) and p,
                                      what="pod bound")
        assert bound["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node_of(running)
        pv = by_name(pvs.items(), bound["spec"]["volumeName"])
        assert affinity_node(pv) == node_of(running)
        assert Path(pv["spec"]["hostPath"]["path"]).is_dir()


async def test_statefulset_gets_one_bound_claim_per_ordinal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with storage_cluster(tmp_path, monkeypatch, scheduler=True, more=("statefulset",)) as c:
        pvcs, pods = await c.observe(PERSISTENTVOLUMECLAIMS), await c.observe(PODS)
        pvs = await c.observe(PERSISTENTVOLUMES, namespace=None)
        template = {"metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "db", "image": "busybox",
                                             "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}
        await c.client.create(STATEFULSETS, {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                     "template": template,
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                         "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}},
            namespace="default")
        names = ["data-db-0", "data-db-1", "data-db-2"]
        await pvcs.wait_for(lambda items: all(phase(by_name(items, n)) == "Bound" for n in names),
                            timeout=30, what="three Bound claims")
        await pods.wait_for(lambda items: all(node_of(by_name(items, f"db-{i}")) for i in range(3)),
                            what="three pods placed")
        for i, name in enumerate(names):
            pvc = by_name(pvcs.items(), name)
            assert pvc["spec"]["storageClassName"] == "standard"
            pv = by_name(pvs.items(), pvc["spec"]["volumeName"])
            assert affinity_node(pv) == node_of(by_name(pods.items(), f"db-{i}"))


async def test_static_local_volume_decides_the_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with storage_cluster(tmp_path, monkeypatch, scheduler=True) as c:
        pvcs, pods = await c.observe(PERSISTENTVOLUMECLAIMS), await c.observe(PODS)
        pvs = await c.observe(PERSISTENTVOLUMES, namespace=None)
        await c.client.create(STORAGE_CLASSES, {"metadata": {"name": "local"}, "provisioner": "kubernetes.io/no-provisioner",
                                                "volumeBindingMode": "WaitForFirstConsumer"})
        (tmp_path / "disk").mkdir()
        await c.client.create(PERSISTENTVOLUMES, volume("disk-on-1", "10Gi", tmp_path / "disk", cls="local",
                                                        nodeAffinity=pinned("skiff-node-1")))
        await pvs.wait_for(lambda items: phase(by_name(items, "disk-on-1")) == "Available", what="Available")
        await c.client.create(PERSISTENTVOLUMECLAIMS, claim("fast", "5Gi", cls="local"), namespace="default")
        await c.client.create(PODS, pod("user", "fast"), namespace="default")
        placed = await pods.wait_for(lambda items: (p := by_name(items, "user")) and node_of(p) and p,
                                     what="pod placed")
        assert node_of(placed) == "skiff-node-1"
        bound = await pvcs.wait_for(lambda items: (p := by_name(items, "fast")) and phase(p) == "Bound" and p,
                                    what="claim Bound")
        assert bound["spec"]["volumeName"] == "disk-on-1"
        # A second claim of the class finds no volume and the class cannot provision: unschedulable.
        await c.client.create(PERSISTENTVOLUMECLAIMS, claim("more", "5Gi", cls="local"), namespace="default")
        await c.client.create(PODS, pod("second", "more"), namespace="default")
        events = await c.observe(EVENTS)
        message = await events.wait_for(lambda items: scheduling_failure(items, "second"), what="FailedScheduling")
        assert message.startswith("0/2 nodes are available: 2 node(s) didn't find available persistent volumes "
                                  "to bind. preemption: ")


async def test_unbound_immediate_claim_blocks_until_bound_and_affinity_conflicts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with storage_cluster(tmp_path, monkeypatch, scheduler=True) as c:
        pods, events = await c.observe(PODS), await c.observe(EVENTS)
        await c.client.create(PERSISTENTVOLUMECLAIMS, claim("later", cls=""), namespace="default")
        await c.client.create(PODS, pod("waits", "later"), namespace="default")
        message = await events.wait_for(lambda items: scheduling_failure(items, "waits"), what="FailedScheduling")
        assert message.startswith("0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.")
        await c.client.create(PERSISTENTVOLUMES, volume("arrives", "1Gi", tmp_path / "a",
                                                        nodeAffinity=pinned("skiff-node-0")))
        placed = await pods.wait_for(lambda items: (p := by_name(items, "waits")) and node_of(p) and p,
                                     what="pod placed once its claim is bound")
        assert node_of(placed) == "skiff-node-0"
        elsewhere = pod("elsewhere", "later")
        elsewhere["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "skiff-node-1"}
        await c.client.create(PODS, elsewhere, namespace="default")
        message = await events.wait_for(lambda items: scheduling_failure(items, "elsewhere"), what="conflict")
        assert message.startswith("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                                  "1 node(s) had volume node affinity conflict.")
        await c.client.create(PODS, pod("lost", "missing"), namespace="default")
        message = await events.wait_for(lambda items: scheduling_failure(items, "lost"), what="missing claim")
        assert message.startswith('0/2 nodes are available: persistentvolumeclaim "missing" not found.')
