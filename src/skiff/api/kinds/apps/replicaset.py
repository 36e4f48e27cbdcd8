"""apps/v1 ReplicaSet: defaults, validation and the ``kubectl get replicasets`` table.

    NAME         DESIRED   CURRENT   READY   AGE   (wide: CONTAINERS IMAGES SELECTOR)
    web-5d9c7b   3         3         3       5m

Supports the field selector ``status.replicas`` (as kube-apiserver does).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo, ScalePaths
from .. import meta as m
from .. import podspec
from . import rollout
from . import selector as sel
from . import workload as w

Obj = dict[str, Any]


def default(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    template = spec.get("template")
    if not isinstance(template, dict):
        template = spec["template"] = {}
    podspec.default_pod_template(template)


def validate_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    """ValidateReplicaSetSpec (its empty-selector message says "deployment", as upstream)."""
    causes = m.validate_nonnegative(spec.get("replicas"), m.child(path, "replicas"))
    causes += m.validate_nonnegative(spec.get("minReadySeconds"), m.child(path, "minReadySeconds"))
    causes += w.validate_required_selector(spec.get("selector"), m.child(path, "selector"), "deployment")
    causes += w.validate_replicated_template(spec, path, "ReplicaSet")
    return causes


validate = w.validator(validate_spec)


COLUMNS = (
    m.NAME_COLUMN,
    Column("Desired", type="integer", description="Number of desired pods."),
    Column("Current", type="integer", description="Number of most recently observed pods."),
    Column("Ready", type="integer", description="Number of pods that are ready."),
    m.AGE_COLUMN,
    w.CONTAINERS_COLUMN, w.IMAGES_COLUMN, w.SELECTOR_COLUMN,
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    status = obj.get("status") or {}
    return [m.object_name(obj), m.get_path(obj, "spec.replicas", 0), status.get("replicas", 0),
            status.get("readyReplicas", 0), m.object_age(obj, now), *w.wide_cells(obj),
            m.format_selector(m.get_path(obj, "spec.selector"))]


def prepare_create(obj: Obj) -> None:
    rollout.start_generation(obj)


REPLICASETS = ResourceInfo(
    group="apps", version="v1", kind="ReplicaSet", plural="replicasets", singular="replicaset",
    namespaced=True, schema_type="io.k8s.api.apps.v1.ReplicaSet",
    short_names=("rs",), categories=("all",),
    subresources=(w.status_subresource("ReplicaSet"), w.SCALE), has_status=True,
    scale=ScalePaths(label_selector="spec.selector"),
    columns=COLUMNS, row=row, default=default, validate=validate,
    prepare_create=prepare_create, prepare_update=rollout.prepare_update_with(default),
    field_labels={"status.replicas": lambda o: str(m.get_path(o, "status.replicas", 0))},
)
