"""PersistentVolumes (cluster-scoped storage) and PersistentVolumeClaims (a pod's request for it).

A claim is created ``Pending``; the volume binder pairs it with a volume (setting
``spec.volumeName`` on the claim and ``spec.claimRef`` on the volume) and both become
``Bound``.  After creation a claim's spec is fixed except for a larger storage request
(expansion), the one-time binding of ``volumeName`` and, for a claim created without
``storageClassName``, the default class given to it later.

Defaults: PV ``persistentVolumeReclaimPolicy: Retain``, ``volumeMode: Filesystem``,
``status.phase: Pending``; PVC ``volumeMode: Filesystem``, ``status.phase: Pending``.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo, Subresource
from .. import meta as m

Obj = dict[str, Any]

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")
_ACCESS_MODE_SHORT = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                      ("ReadWriteOncePod", "RWOP"))
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
PV_SOURCES = (
    "gcePersistentDisk", "awsElasticBlockStore", "hostPath", "glusterfs", "nfs", "rbd", "iscsi",
    "cinder", "cephfs", "fc", "flocker", "flexVolume", "azureFile", "vsphereVolume", "quobyte",
    "azureDisk", "photonPersistentDisk", "portworxVolume", "scaleIO", "local", "storageos", "csi",
)


def access_modes_cell(modes: list[str] | None) -> str:
    present = set(modes or [])
    return ",".join(short for mode, short in _ACCESS_MODE_SHORT if mode in present)


def storage_class(obj: Obj) -> str:
    annotations = m.get_path(obj, "metadata.annotations", {}) or {}
    if STORAGE_CLASS_ANNOTATION in annotations:
        return str(annotations[STORAGE_CLASS_ANNOTATION])
    return str(m.get_path(obj, "spec.storageClassName", ""))


def _validate_access_modes(modes: list[str], path: str, required_detail: str) -> list[Cause]:
    causes: list[Cause] = []
    if not modes:
        causes.append(m.required(path, required_detail))
    for mode in modes:
        if mode not in ACCESS_MODES:
            causes.append(m.not_supported(path, mode, ACCESS_MODES))
    if "ReadWriteOncePod" in modes and len(modes) > 1:
        causes.append(m.forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return causes


def _validate_common_spec(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    class_name = spec.get("storageClassName") or ""
    if class_name:
        causes += m.invalid_each("spec.storageClassName", class_name, m.is_dns1123_subdomain(class_name))
    mode = spec.get("volumeMode")
    if mode and mode not in VOLUME_MODES:
        causes.append(m.not_supported("spec.volumeMode", mode, VOLUME_MODES))
    return causes


# --- PersistentVolume -----------------------------------------------------------

PV_COLUMNS = (
    m.NAME_COLUMN,
    Column("Capacity", description="Storage capacity."),
    Column("Access Modes", description="RWO, ROX, RWX, RWOP."),
    Column("Reclaim Policy", description="What happens when the claim is released."),
    Column("Status", description="Volume phase."),
    Column("Claim", description="namespace/name of the bound claim."),
    Column("StorageClass", description="StorageClass of the pv"),
    Column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
    Column("Reason", description="Why the volume is in its phase."),
    m.AGE_COLUMN,
    Column("VolumeMode", priority=1, description="Filesystem or Block."),
)


def pv_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    claim = spec.get("claimRef")
    claim_cell = f"{claim.get('namespace', '')}/{claim.get('name', '')}" if isinstance(claim, dict) else ""
    phase = "Terminating" if m.get_path(obj, "metadata.deletionTimestamp") else status.get("phase", "")
    capacity = (spec.get("capacity") or {}).get("storage")
    return [m.object_name(obj), m.canonical_quantity(capacity) if capacity is not None else "0",
            access_modes_cell(spec.get("accessModes")), spec.get("persistentVolumeReclaimPolicy", ""),
            phase, claim_cell, storage_class(obj), spec.get("volumeAttributesClassName") or "<unset>",
            status.get("reason", ""), m.object_age(obj, now), spec.get("volumeMode") or "<unset>"]


def default_pv(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if not spec.get("volumeMode"):
        spec["volumeMode"] = "Filesystem"
    host_path = spec.get("hostPath")
    if isinstance(host_path, dict):
        host_path.setdefault("type", "")
    status = obj.setdefault("status", {})
    if not status.get("phase"):
        status["phase"] = "Pending"


def prepare_pv_create(obj: Obj) -> None:
    obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": m.format_time(m.utc_now())}


def validate_pv(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), False) if old is None else \
        m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    spec = obj.get("spec") or {}
    causes += _validate_access_modes(spec.get("accessModes") or [], "spec.accessModes", "")
    capacity = spec.get("capacity") or {}
    if not capacity:
        causes.append(m.required("spec.capacity"))
    elif "storage" not in capacity or len(capacity) > 1:
        causes.append(m.not_supported("spec.capacity", capacity, ["storage"]))
    else:
        amount = m.parse_quantity(capacity["storage"])
        if amount is None or amount < 0:
            causes.append(m.invalid("spec.capacity[storage]", m.canonical_quantity(capacity["storage"]), m.IS_NEGATIVE))
    policy = spec.get("persistentVolumeReclaimPolicy") or ""
    if policy and policy not in RECLAIM_POLICIES:
        causes.append(m.not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    causes += _validate_common_spec(spec)
    sources = [s for s in PV_SOURCES if spec.get(s) is not None]
    if not sources:
        causes.append(m.required("spec", "must specify a volume type"))
    for extra in sources[1:]:
        causes.append(m.forbidden(m.child("spec", extra), "may not specify more than 1 volume type"))
    for source in ("hostPath", "local"):
        if isinstance(spec.get(source), dict) and not spec[source].get("path"):
            causes.append(m.required(f"spec.{source}.path"))
    if old is not None:
        old_spec = old.get("spec") or {}
        if any(spec.get(s) != old_spec.get(s) for s in PV_SOURCES):
            causes.append(m.forbidden("spec.persistentvolumesource",
                                      "spec.persistentvolumesource is forbidden once set"))
        causes += m.validate_immutable(spec.get("volumeMode"), old_spec.get("volumeMode"), "volumeMode")
    return causes


PERSISTENT_VOLUMES = ResourceInfo(
    group="", version="v1", kind="PersistentVolume", plural="persistentvolumes",
    singular="persistentvolume", namespaced=False, schema_type="io.k8s.api.core.v1.PersistentVolume",
    short_names=("pv",), subresources=(Subresource("status", "PersistentVolume"),), has_status=True,
    columns=PV_COLUMNS, row=pv_row, default=default_pv, validate=validate_pv,
    prepare_create=prepare_pv_create,
)


# --- PersistentVolumeClaim ------------------------------------------------------

PVC_COLUMNS = (
    m.NAME_COLUMN,
    Column("Status", description="Claim phase."),
    Column("Volume", description="The bound volume."),
    Column("Capacity", description="Capacity of the bound volume."),
    Column("Access Modes", description="Access modes of the bound volume."),
    Column("StorageClass", description="StorageClass of the pvc"),
    Column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
    m.AGE_COLUMN,
    Column("VolumeMode", priority=1, description="Filesystem or Block."),
)


def pvc_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    phase = "Terminating" if m.get_path(obj, "metadata.deletionTimestamp") else status.get("phase", "")
    capacity = access = ""
    if spec.get("volumeName"):
        access = access_modes_cell(status.get("accessModes"))
        storage = (status.get("capacity") or {}).get("storage")
        capacity = m.canonical_quantity(storage) if storage is not None else "0"
    return [m.object_name(obj), phase, spec.get("volumeName", ""), capacity, access, storage_class(obj),
            status.get("currentVolumeAttributesClassName") or "<unset>", m.object_age(obj, now),
            spec.get("volumeMode") or "<unset>"]


def default_pvc(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not spec.get("volumeMode"):
        spec["volumeMode"] = "Filesystem"
    status = obj.setdefault("status", {})
    if not status.get("phase"):
        status["phase"] = "Pending"


def prepare_pvc_create(obj: Obj) -> None:
    obj["status"] = {"phase": "Pending"}


def validate_pvc_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    causes = _validate_access_modes(spec.get("accessModes") or [], m.child(path, "accessModes"),
                                    "at least 1 access mode is required")
    requests = m.get_path(spec, "resources.requests", {}) or {}
    storage_path = m.key(m.child(path, "resources"), "storage")
    if "storage" not in requests:
        causes.append(m.required(storage_path))
    else:
        amount = m.parse_quantity(requests["storage"])
        if amount is None or amount <= 0:
            causes.append(m.invalid(storage_path, m.canonical_quantity(requests["storage"]), "must be greater than zero"))
    if path == "spec":
        causes += _validate_common_spec(spec)
    return causes


def validate_pvc(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), True) if old is None else \
        m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    spec = obj.get("spec") or {}
    causes += validate_pvc_spec(spec)
    if old is not None:
        new_spec, old_spec = copy.deepcopy(spec), copy.deepcopy(old.get("spec") or {})
        if not old_spec.get("volumeName") and new_spec.get("volumeName"):
            old_spec["volumeName"] = new_spec["volumeName"]  # binding an unbound claim is allowed
        if old_spec.get("storageClassName") is None and new_spec.get("storageClassName") and \
                STORAGE_CLASS_ANNOTATION not in (m.get_path(old, "metadata.annotations", {}) or {}):
            old_spec["storageClassName"] = new_spec["storageClassName"]  # a default class assigned later
        new_size = m.parse_quantity(m.get_path(new_spec, "resources.requests.storage"))
        old_size = m.parse_quantity(m.get_path(old_spec, "resources.requests.storage"))
        bound = m.get_path(obj, "status.phase") == "Bound"
        for s in (new_spec, old_spec):
            requests = m.get_path(s, "resources.requests")
            if bound and isinstance(requests, dict):
                requests.pop("storage", None)
            s.pop("volumeAttributesClassName", None)
        if new_spec != old_spec:
            causes.append(m.forbidden("spec", "spec is immutable after creation except resources.requests "
                                              "and volumeAttributesClassName for bound claims\n"
                                      + m.spec_diff(old_spec, new_spec, "core.PersistentVolumeClaimSpec")))
        if new_size is not None and old_size is not None and new_size < old_size:
            causes.append(m.forbidden("spec.resources.requests.storage", "field can not be less than previous value"))
    return causes


PERSISTENT_VOLUME_CLAIMS = ResourceInfo(
    group="", version="v1", kind="PersistentVolumeClaim", plural="persistentvolumeclaims",
    singular="persistentvolumeclaim", namespaced=True,
    schema_type="io.k8s.api.core.v1.PersistentVolumeClaim", short_names=("pvc",),
    subresources=(Subresource("status", "PersistentVolumeClaim"),), has_status=True,
    columns=PVC_COLUMNS, row=pvc_row, default=default_pvc, validate=validate_pvc,
    prepare_create=prepare_pvc_create,
)
