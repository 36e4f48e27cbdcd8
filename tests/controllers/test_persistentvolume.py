"""The volume binder, the protection controllers and the local-path provisioner, in-process.

A real API server (with storage admission), simulated nodes, the test binder
(round-robin, knows nothing of volumes) and the storage controllers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller_cluster import Cluster
from skiff.api.errors import StatusError
from skiff.client.resources import EVENTS, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS
from skiff.controllers.persistentvolume.matching import STORAGE_CLASSES

from test_persistentvolume_support import by_name, claim, phase, pod, reasons, storage_cluster, volume

ANN_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"


async def test_default_class_admission_and_protection_finalizers(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    async with storage_cluster(tmp_path, monkeypatch, nodes=1) as c:
        classes = await c.observe(STORAGE_CLASSES, namespace=None)
        standard = await classes.wait_for(lambda items: by_name(items, "standard"), what="class standard")
        assert standard["provisioner"] == "skiff.dev/local-path"
        assert standard["reclaimPolicy"] == "Delete"
        assert standard["volumeBindingMode"] == "WaitForFirstConsumer"
        assert standard["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
        defaulted = await c.client.create(PERSISTENTVOLUMECLAIMS, claim("a"), namespace="default")
        assert defaulted["spec"]["storageClassName"] == "standard"
        assert defaulted["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
        no_class = await c.client.create(PERSISTENTVOLUMECLAIMS, claim("b", cls=""), namespace="default")
        assert no_class["spec"]["storageClassName"] == ""
        pv = await c.client.create(PERSISTENTVOLUMES, volume("pv-x", "1Gi", tmp_path / "x"))
        assert pv["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]


async def test_static_volume_binds_by_selector_smallest_fit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with storage_cluster(tmp_path, monkeypatch, nodes=1) as c:
        pvs, pvcs = await c.observe(PERSISTENTVOLUMES, namespace=None), await c.observe(PERSISTENTVOLUMECLAIMS)
        for name, size, tier in (("gold-big", "10Gi", "gold"), ("gold-small", "2Gi", "gold"),
                                 ("silver", "1Gi", "silver")):
            await c.client.create(PERSISTENTVOLUMES, volume(name, size, tmp_path / name, cls="manual",
                                                            labels={"tier": tier}))
        await pvs.wait_for(lambda items: all(phase(v) == "Available" for v in items) and len(items) == 3,
                           what="volumes Available")
        await c.client.create(PERSISTENTVOLUMECLAIMS, claim("data", "1Gi", cls="manual",
                                                            selector={"matchLabels": {"tier": "gold"}}),
                              namespace="default")
        bound = await pvcs.wait_for(lambda items: (p := by_name(items, "data")) and phase(p) == "Bound" and p,
                                    what="claim Bound")
        assert bound["spec"]["volumeName"] == "gold-small"
        assert bound["status"]["capacity"] == {"storage": "2Gi"}
        assert bound["status"]["accessModes"] == ["ReadWriteOnce"]
        assert bound["metadata"]["annotations"][ANN_COMPLETED] == "yes"
        assert bound["metadata"]["annotations"][ANN_BY_CONTROLLER] == "yes"
        pv = await pvs.wait_for(lambda items: (v := by_name(items, "gold-small")) and phase(v) == "Bound" and v,
                                what="volume Bound")
        assert pv["spec"]["claimRef"]["name"] == "data"
        assert pv["spec"]["claimRef"]["uid"] == bound["metadata"]["uid"]
        assert pv["metadata"]["annotations"][ANN_BY_CONTROLLER] == "yes"
        assert phase(by_name(pvs.items(), "gold-big")) == phase(by_name(pvs.items(), "silver")) == "Available"


async def test_pre_bound_both_ways_and_no_class_no_volume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with storage_cluster(tmp_path, monkeypatch, nodes=1) as c:
        pvs, pvcs = await c.observe(PERSISTENTVOLUMES, namespace=None), await c.observe(PERSISTENTVOLUMECLAIMS)
        events = await c.observe(EVENTS)
        await c.client.create(PERSISTENTVOLUMES, volume("reserved", "5Gi", tmp_path / "r",
                                                        claimRef={"namespace": "default", "name": "wanted"}))
        await c.client.create(PERSISTENTVOLUMES, volume("named", "1Gi", tmp_path / "n", cls="by-name"))
        await c.client.create(PERSISTENTVOLUMES, volume("tiny", "1Mi", tmp_path / "t"))
        await c.client.create(PERSISTENTVOLUMECLAIMS, claim("other", cls=""), namespace="default")
        await c.client.create(PERSISTENTVOLUMECLAIMS, claim("wanted", cls=""), namespace="default")
        await c.client.create(PERSISTENTVOLUMECLAIMS, claim("by-name", cls="by-name", volumeName="named"),
                              namespace="default")
        await c.client.create(PERSISTENTVOLUMECLAIMS, claim("too-big", "1Gi", cls="", volumeName="tiny"),
                              namespace="default")
        await pvcs.wait_for(lambda items: all(phase(by_name(items, n)) == "Bound" for n in ("wanted", "by-name")),
                            what="pre-bound claims Bound")
        assert by_name(pvcs.items(), "wanted")["spec"]["volumeName"] == "reserved"
        reserved = by_name(pvs.items(), "reserved")
        assert ANN_BY_CONTROLLER not in (reserved["metadata"].get("annotations") or {})   # the admin bound it
        # "other" got nothing: the only classless volume big enough was reserved for "wanted".
        await events.wait_for(lambda items: ("FailedBinding", "no persistent volumes available for this claim "
                                             "and no storage class is set") in reasons(items, "other"),
                              what="FailedBinding event")
        await events.wait_for(lambda items: ("VolumeMismatch", 'Cannot bind to requested volume "tiny": '
                                             "requested PV is too small") in reasons(items, "too-big"),
                              what="VolumeMismatch event")
        assert phase(by_name(pvcs.items(), "other")) == phase(by_name(pvcs.items(), "too-big")) == "Pending"


async def test_reclaim_policies_retain_delete_recycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with storage_cluster(tmp_path, monkeypatch, nodes=1) as c:
        pvs, pvcs = await c.observe(PERSISTENTVOLUMES, namespace=None), await c.observe(PERSISTENTVOLUMECLAIMS)
        events = await c.observe(EVENTS, namespace=None)
        data = tmp_path / "keep"
        data.mkdir()
        for policy in ("Retain", "Delete", "Recycle"):
            await c.client.create(PERSISTENTVOLUMES, volume(f"pv-{policy.lower()}", "1Gi", data, policy=policy,
                                                            claimRef={"namespace": "default",
                                                                      "name": f"c-{policy.lower()}"}))
            await c.client.create(PERSISTENTVOLUMECLAIMS, claim(f"c-{policy.lower()}", cls=""), namespace="default")
        await pvs.wait_for(lambda items: len(items) == 3 and all(phase(v) == "Bound" for v in items),
                           what="all Bound")
        for name in ("c-retain", "c-delete", "c-recycle"):
            await c.client.delete(PERSISTENTVOLUMECLAIMS, name, namespace="default")
        await pvcs.wait_for(lambda items: not items, what="claims gone")
        await pvs.wait_for(lambda items: by_name(items, "pv-delete") is None
                           and phase(by_name(items, "pv-retain")) == "Released"
                           and phase(by_name(items, "pv-recycle")) == "Failed", what="reclaimed")
        assert by_name(pvs.items(), "pv-recycle")["status"]["message"] == "No recycler plugin found for the volume!"
        await events.wait_for(lambda items: ("VolumeFailedRecycle", "No recycler plugin found for the volume!")
                              in reasons(items, "pv-recycle"), what="VolumeFailedRecycle event")
        assert data.is_dir()   # a static volume's data is never touched


async def test_claim_in_use_stays_terminating_until_its_pod_is_gone(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async with storage_cluster(tmp_path, monkeypatch, nodes=1) as c:
        pvcs, pods = await c.observe(PERSISTENTVOLUMECLAIMS), await c.observe(PODS)
        pvs = await c.observe(PERSISTENTVOLUMES, namespace=None)
        await c.client.create(PERSISTENTVOLUMES, volume("pv-1", "1Gi", tmp_path / "d"))
        await c.client.create(PERSISTENTVOLUMECLAIMS, claim("data", cls=""), namespace="default")
        await pvcs.wait_for(lambda items: phase(by_name(items, "data")) == "Bound", what="claim Bound")
        await c.client.create(PODS, pod("user", "data"), namespace="default")
        await pods.wait_for(lambda items: phase(by_name(items, "user")) == "Running", what="pod Running")
        await c.client.delete(PERSISTENTVOLUMECLAIMS, "data", namespace="default")
        # The pv-protection finalizer keeps the Bound volume too, even when deleted.
        await c.client.delete(PERSISTENTVOLUMES, "pv-1")
        terminating = await pvcs.wait_for(lambda items: (p := by_name(items, "data"))
                                          and p["metadata"].get("deletionTimestamp") and p, what="Terminating")
        assert terminating["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
        live = await c.client.get(PERSISTENTVOLUMECLAIMS, "data", namespace="default")
        assert live["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]   # still held by the pod
        assert (await c.client.get(PERSISTENTVOLUMES, "pv-1"))["metadata"]["finalizers"] == \
            ["kubernetes.io/pv-protection"]
        await c.client.delete(PODS, "user", namespace="default", grace_period_seconds=0)
        await pvcs.wait_for(lambda items: by_name(items, "data") is None, what="claim gone after its pod")
        await pvs.wait_for(lambda items: by_name(items, "pv-1") is None, what="volume gone once released")


async def test_immediate_class_provisions_and_delete_removes_the_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with storage_cluster(tmp_path, monkeypatch, nodes=2) as c:
        pvs, pvcs = await c.observe(PERSISTENTVOLUMES, namespace=None), await c.observe(PERSISTENTVOLUMECLAIMS)
        events = await c.observe(EVENTS)
        await c.client.create(STORAGE_CLASSES, {"metadata": {"name": "now"}, "provisioner": "skiff.dev/local-path",
                                                "volumeBindingMode": "Immediate", "reclaimPolicy": "Delete"})
        created = await c.client.create(PERSISTENTVOLUMECLAIMS, claim("fast", "3Gi", cls="now"), namespace="default")
        uid = created["metadata"]["uid"]
        bound = await pvcs.wait_for(lambda items: (p := by_name(items, "fast")) and phase(p) == "Bound" and p,
                                    what="provisioned claim Bound")
        assert bound["spec"]["volumeName"] == f"pvc-{uid}"
        assert bound["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == "skiff.dev/local-path"
        pv = by_name(pvs.items(), f"pvc-{uid}")
        assert pv["spec"]["capacity"] == {"storage": "3Gi"}
        assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        assert pv["spec"]["storageClassName"] == "now"
        assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "skiff.dev/local-path"
        path = Path(pv["spec"]["hostPath"]["path"])
        assert path == tmp_path / "volumes" / f"pvc-{uid}" and path.is_dir()
        [term] = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
        assert term["matchExpressions"][0]["key"] == "kubernetes.io/hostname"
        assert term["matchExpressions"][0]["values"][0].startswith("skiff-node-")
        msgs = reasons(events.items(), "fast")
        assert ("ProvisioningSucceeded", f"Successfully provisioned volume pvc-{uid}") in msgs
        assert ("Provisioning", 'External provisioner is provisioning volume for claim "default/fast"') in msgs
        (path / "file").write_text("data")
        await c.client.delete(PERSISTENTVOLUMECLAIMS, "fast", namespace="default")
        await pvs.wait_for(lambda items: by_name(items, f"pvc-{uid}") is None, what="volume deleted")
        assert not path.exists()


async def test_a_claim_made_before_any_default_class_gets_it_later(tmp_path: Path) -> None:
    async with Cluster(tmp_path, nodes=1, controllers=["persistentvolume-binder"]) as c:
        pvcs, events = await c.observe(PERSISTENTVOLUMECLAIMS), await c.observe(EVENTS)
        early = await c.client.create(PERSISTENTVOLUMECLAIMS, claim("early"), namespace="default")
        assert "storageClassName" not in early["spec"]
        await events.wait_for(lambda items: any(r == "FailedBinding" for r, _ in reasons(items, "early")),
                              what="FailedBinding while there is no class")
        await c.client.create(PERSISTENTVOLUMECLAIMS, claim("none", cls=""), namespace="default")
        await c.client.create(STORAGE_CLASSES, {
            "metadata": {"name": "gold", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "example.test/gold"})
        got = await pvcs.wait_for(lambda items: (p := by_name(items, "early")) and p["spec"].get("storageClassName")
                                  and p, what="default class assigned")
        assert got["spec"]["storageClassName"] == "gold"
        await events.wait_for(lambda items: ("ExternalProvisioning", 'waiting for a volume to be created, either by '
                                             'external provisioner "example.test/gold" or manually created by system '
                                             "administrator") in reasons(items, "early"), what="handed over")
        assert by_name(pvcs.items(), "none")["spec"]["storageClassName"] == ""   # "" is a choice: kept
        # Only that one change is allowed: a class once set is fixed.
        with pytest.raises(StatusError) as err:
            await c.client.patch(PERSISTENTVOLUMECLAIMS, "early", {"spec": {"storageClassName": "other"}},
                                 namespace="default")
        assert err.value.code == 422 and "spec is immutable" in str(err.value)
