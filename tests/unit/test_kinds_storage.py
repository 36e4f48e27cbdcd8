"""storage.k8s.io/v1: StorageClass (plus CSIDriver, CSINode, VolumeAttachment tables)."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from skiff.api.kinds.storage import CSIDRIVERS, CSINODES, STORAGECLASSES, VOLUMEATTACHMENTS

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)
CREATED = "2024-01-01T00:55:00Z"


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def storage_class(**fields: Any) -> dict[str, Any]:
    obj = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "provisioner": "rancher.io/local-path",
           "metadata": {"name": "local-path", "creationTimestamp": CREATED}}
    obj.update(fields)
    return obj


def test_defaults_and_row() -> None:
    sc = storage_class()
    STORAGECLASSES.default(sc)
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
    assert STORAGECLASSES.validate(sc, None) == []
    assert [c.name for c in STORAGECLASSES.columns] == [
        "Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"]
    assert STORAGECLASSES.row(sc, NOW) == ["local-path", "rancher.io/local-path", "Delete", "Immediate", False, "5m"]
    sc["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    sc["volumeBindingMode"] = "WaitForFirstConsumer"
    assert STORAGECLASSES.row(sc, NOW)[:4] == ["local-path (default)", "rancher.io/local-path", "Delete",
                                                "WaitForFirstConsumer"]
    assert STORAGECLASSES.short_names == ("sc",) and not STORAGECLASSES.namespaced


def test_validation() -> None:
    sc = storage_class(provisioner="", reclaimPolicy="Recycle", volumeBindingMode="Lazy")
    assert messages(STORAGECLASSES.validate(sc, None)) == [
        "provisioner: Required value",
        'reclaimPolicy: Unsupported value: "Recycle": supported values: "Delete", "Retain"',
        'volumeBindingMode: Unsupported value: "Lazy": supported values: "Immediate", "WaitForFirstConsumer"']


def test_fields_fixed_after_creation() -> None:
    old = storage_class(parameters={"path": "/a"})
    STORAGECLASSES.default(old)
    new = copy.deepcopy(old)
    new["parameters"] = {"path": "/b"}
    new["reclaimPolicy"] = "Retain"
    new["allowVolumeExpansion"] = True
    assert messages(STORAGECLASSES.validate(new, old)) == [
        "parameters: Forbidden: updates to parameters are forbidden.",
        "reclaimPolicy: Forbidden: updates to reclaimPolicy are forbidden."]


def test_csi_records() -> None:
    driver = {"metadata": {"name": "csi.example.com", "creationTimestamp": CREATED}, "spec": {}}
    CSIDRIVERS.default(driver)
    assert driver["spec"]["attachRequired"] is True and driver["spec"]["volumeLifecycleModes"] == ["Persistent"]
    assert CSIDRIVERS.row(driver, NOW) == ["csi.example.com", True, False, False, "<unset>", False, "Persistent", "5m"]
    node = {"metadata": {"name": "node-1", "creationTimestamp": CREATED}, "spec": {"drivers": [{"name": "a"}]}}
    assert CSINODES.row(node, NOW) == ["node-1", 1, "5m"]
    attachment = {"metadata": {"name": "csi-123", "creationTimestamp": CREATED},
                  "spec": {"attacher": "csi.example.com", "nodeName": "node-1",
                           "source": {"persistentVolumeName": "pv-1"}},
                  "status": {"attached": True}}
    assert VOLUMEATTACHMENTS.row(attachment, NOW) == ["csi-123", "csi.example.com", "pv-1", "node-1", True, "5m"]
