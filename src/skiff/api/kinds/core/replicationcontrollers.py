"""ReplicationControllers: the original "keep N pods running" workload (ReplicaSet's ancestor).

Defaults: ``replicas: 1``; an empty ``selector`` and empty object labels are taken
from the pod template's labels; the template gets the usual PodSpec defaults.
The ``scale`` subresource reads ``spec.replicas``/``status.replicas``; the selector is
a plain label map (``spec.selector``), which Scale reports as ``a=1,b=2``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo, ScalePaths, Subresource
from .. import meta as m
from .. import podspec

Obj = dict[str, Any]

RC_COLUMNS = (
    m.NAME_COLUMN,
    Column("Desired", type="integer", description="Desired number of pods."),
    Column("Current", type="integer", description="Pods created."),
    Column("Ready", type="integer", description="Pods ready."),
    m.AGE_COLUMN,
    Column("Containers", priority=1, description="Names of each container in the template."),
    Column("Images", priority=1, description="Images referenced by each container in the template."),
    Column("Selector", priority=1, description="Label selector of the pods."),
)


def rc_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    names, images = m.container_cells(m.get_path(spec, "template.spec.containers", []))
    return [m.object_name(obj), spec.get("replicas") or 0, status.get("replicas") or 0,
            status.get("readyReplicas") or 0, m.object_age(obj, now), names, images,
            m.format_labels(spec.get("selector"))]


def default_rc(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    template = spec.get("template")
    labels = m.get_path(template, "metadata.labels") if isinstance(template, dict) else None
    if labels:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = m.ensure_meta(obj)
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if isinstance(template, dict):
        podspec.default_pod_template(template)


def prepare_rc_create(obj: Obj) -> None:
    obj["status"] = {"replicas": 0}


def validate_rc(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), True) if old is None else \
        m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    spec = obj.get("spec") or {}
    causes += m.validate_nonnegative(spec.get("replicas"), "spec.replicas")
    causes += m.validate_nonnegative(spec.get("minReadySeconds"), "spec.minReadySeconds")
    selector = spec.get("selector") or {}
    if not selector:
        causes.append(m.required("spec.selector"))
    else:
        causes += m.validate_labels(selector, "spec.selector")
    template = spec.get("template")
    if not isinstance(template, dict):
        causes.append(m.required("spec.template"))
        return causes
    labels = m.get_path(template, "metadata.labels", {}) or {}
    if selector and any(labels.get(k) != v for k, v in selector.items()):
        causes.append(m.invalid("spec.template.metadata.labels", labels,
                                "`selector` does not match template `labels`"))
    causes += podspec.validate_pod_template(template, "spec.template")
    restart = m.get_path(template, "spec.restartPolicy")
    if restart and restart != "Always":
        causes.append(m.not_supported("spec.template.spec.restartPolicy", restart, ["Always"]))
    if m.get_path(template, "spec.activeDeadlineSeconds") is not None:
        causes.append(m.forbidden("spec.template.spec.activeDeadlineSeconds",
                                  "activeDeadlineSeconds in ReplicationController is not Supported"))
    return causes


REPLICATION_CONTROLLERS = ResourceInfo(
    group="", version="v1", kind="ReplicationController", plural="replicationcontrollers",
    singular="replicationcontroller", namespaced=True,
    schema_type="io.k8s.api.core.v1.ReplicationController", short_names=("rc",), categories=("all",),
    subresources=(
        Subresource("scale", "Scale", group="autoscaling", version="v1"),
        Subresource("status", "ReplicationController"),
    ),
    has_status=True, scale=ScalePaths(label_selector="spec.selector"),
    columns=RC_COLUMNS, row=rc_row, default=default_rc, validate=validate_rc,
    prepare_create=prepare_rc_create,
    field_labels={"status.replicas": lambda o: str(m.get_path(o, "status.replicas", 0))},
)
