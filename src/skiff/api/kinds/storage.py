"""The ``storage.k8s.io/v1`` group: StorageClass, plus CSIDriver, CSINode and VolumeAttachment.

    kubectl get storageclass
    NAME                   PROVISIONER             RECLAIMPOLICY   VOLUMEBINDINGMODE      ALLOWVOLUMEEXPANSION   AGE
    local-path (default)   rancher.io/local-path   Delete          WaitForFirstConsumer   false                  5m

A class is the default one when annotated ``storageclass.kubernetes.io/is-default-class: "true"``.
Its provisioner, parameters, reclaim policy and binding mode are fixed at creation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from ..errors import Cause
from ..resource import Column, ResourceInfo, Subresource
from . import meta as m

Obj = dict[str, Any]

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
MAX_PARAMETERS_SIZE = 256 * 1024


def is_default_class(obj: Obj) -> bool:
    annotations = m.get_path(obj, "metadata.annotations", {}) or {}
    return "true" in (annotations.get(DEFAULT_CLASS_ANNOTATION), annotations.get(BETA_DEFAULT_CLASS_ANNOTATION))


def default_class(classes: list[Obj]) -> Obj | None:
    """The cluster's default class among ``classes``: the newest default, then the first by name."""
    defaults = sorted((c for c in classes if is_default_class(c)), key=lambda c: str(m.get_path(c, "metadata.name", "")))
    return max(defaults, key=lambda c: str(m.get_path(c, "metadata.creationTimestamp", "") or ""), default=None)


def default_storage_class(obj: Obj) -> None:
    if not obj.get("reclaimPolicy"):
        obj["reclaimPolicy"] = "Delete"
    if not obj.get("volumeBindingMode"):
        obj["volumeBindingMode"] = "Immediate"


def _validate_parameters(params: dict[str, Any], path: str) -> list[Cause]:
    causes: list[Cause] = []
    total = 0
    for k, v in params.items():
        if not k:
            causes.append(m.invalid(path, k, "field can not be empty."))
        total += len(k) + len(str(v))
    if total > MAX_PARAMETERS_SIZE:
        causes.append(m.too_long(path, MAX_PARAMETERS_SIZE))
    return causes


def validate_storage_class(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is not None:
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        if (obj.get("parameters") or {}) != (old.get("parameters") or {}):
            causes.append(m.forbidden("parameters", "updates to parameters are forbidden."))
        if obj.get("provisioner") != old.get("provisioner"):
            causes.append(m.forbidden("provisioner", "updates to provisioner are forbidden."))
        if obj.get("reclaimPolicy") != old.get("reclaimPolicy"):
            causes.append(m.forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        causes += m.validate_immutable(obj.get("volumeBindingMode"), old.get("volumeBindingMode"),
                                       "volumeBindingMode")
        return causes
    causes = m.validate_object_meta(obj.get("metadata"), False)
    provisioner = obj.get("provisioner") or ""
    if not provisioner:
        causes.append(m.required("provisioner"))
    else:
        causes += m.invalid_each("provisioner", provisioner.lower(), m.is_qualified_name(provisioner.lower()))
    causes += _validate_parameters(obj.get("parameters") or {}, "parameters")
    policy = obj.get("reclaimPolicy")
    if policy is not None and policy not in RECLAIM_POLICIES:
        causes.append(m.not_supported("reclaimPolicy", policy, RECLAIM_POLICIES))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        causes.append(m.required("volumeBindingMode"))
    elif mode not in BINDING_MODES:
        causes.append(m.not_supported("volumeBindingMode", mode, BINDING_MODES))
    return causes


STORAGE_CLASS_COLUMNS = (
    m.NAME_COLUMN,
    Column("Provisioner", description="The volume plugin that provisions volumes of this class."),
    Column("ReclaimPolicy", description="What happens to a volume when its claim is released."),
    Column("VolumeBindingMode", description="When volumes are bound and provisioned."),
    Column("AllowVolumeExpansion", description="Whether volumes of this class can grow."),
    m.AGE_COLUMN,
)


def storage_class_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    name = m.object_name(obj) + (" (default)" if is_default_class(obj) else "")
    return [name, obj.get("provisioner", ""), obj.get("reclaimPolicy") or "Delete",
            obj.get("volumeBindingMode") or "Immediate", bool(obj.get("allowVolumeExpansion") or False),
            m.object_age(obj, now)]


STORAGECLASSES = ResourceInfo(
    group="storage.k8s.io", version="v1", kind="StorageClass", plural="storageclasses",
    singular="storageclass", namespaced=False, schema_type="io.k8s.api.storage.v1.StorageClass",
    short_names=("sc",), columns=STORAGE_CLASS_COLUMNS, row=storage_class_row,
    default=default_storage_class, validate=validate_storage_class,
)


# --- CSIDriver, CSINode, VolumeAttachment (records and tables; light validation) ---------

def default_csi_driver(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    for name, value in (("attachRequired", True), ("podInfoOnMount", False), ("storageCapacity", False),
                        ("fsGroupPolicy", "ReadWriteOnceWithFSType"), ("requiresRepublish", False),
                        ("seLinuxMount", False)):
        if spec.get(name) is None:
            spec[name] = value
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]


def _validate_meta(namespaced: bool) -> Callable[[Obj, Obj | None], list[Cause]]:
    def validate(obj: Obj, old: Obj | None) -> list[Cause]:
        if old is None:
            return m.validate_object_meta(obj.get("metadata"), namespaced)
        return m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    return validate


def csi_driver_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    spec = obj.get("spec") or {}
    tokens = spec.get("tokenRequests")
    return [m.object_name(obj),
            spec.get("attachRequired", True) if spec.get("attachRequired") is not None else True,
            bool(spec.get("podInfoOnMount") or False), bool(spec.get("storageCapacity") or False),
            ",".join(t.get("audience", "") for t in tokens) if tokens is not None else "<unset>",
            bool(spec.get("requiresRepublish") or False),
            ",".join(spec.get("volumeLifecycleModes") or []) or "<none>", m.object_age(obj, now)]


CSIDRIVERS = ResourceInfo(
    group="storage.k8s.io", version="v1", kind="CSIDriver", plural="csidrivers", singular="csidriver",
    namespaced=False, schema_type="io.k8s.api.storage.v1.CSIDriver",
    columns=(m.NAME_COLUMN, Column("AttachRequired", type="boolean"), Column("PodInfoOnMount", type="boolean"),
             Column("StorageCapacity", type="boolean"), Column("TokenRequests"),
             Column("RequiresRepublish", type="boolean"), Column("Modes"), m.AGE_COLUMN),
    row=csi_driver_row, default=default_csi_driver, validate=_validate_meta(False),
)


def csi_node_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), len(m.get_path(obj, "spec.drivers", []) or []), m.object_age(obj, now)]


CSINODES = ResourceInfo(
    group="storage.k8s.io", version="v1", kind="CSINode", plural="csinodes", singular="csinode",
    namespaced=False, schema_type="io.k8s.api.storage.v1.CSINode",
    columns=(m.NAME_COLUMN, Column("Drivers", type="integer"), m.AGE_COLUMN),
    row=csi_node_row, validate=_validate_meta(False),
)


def volume_attachment_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), m.get_path(obj, "spec.attacher", ""),
            m.get_path(obj, "spec.source.persistentVolumeName", ""), m.get_path(obj, "spec.nodeName", ""),
            bool(m.get_path(obj, "status.attached", False)), m.object_age(obj, now)]


VOLUMEATTACHMENTS = ResourceInfo(
    group="storage.k8s.io", version="v1", kind="VolumeAttachment", plural="volumeattachments",
    singular="volumeattachment", namespaced=False, schema_type="io.k8s.api.storage.v1.VolumeAttachment",
    subresources=(Subresource("status", kind="VolumeAttachment"),), has_status=True,
    columns=(m.NAME_COLUMN, Column("Attacher", format="name"), Column("PV"), Column("Node"),
             Column("Attached", type="boolean"), m.AGE_COLUMN),
    row=volume_attachment_row, validate=_validate_meta(False),
)

RESOURCES: tuple[ResourceInfo, ...] = (STORAGECLASSES, CSIDRIVERS, CSINODES, VOLUMEATTACHMENTS)
