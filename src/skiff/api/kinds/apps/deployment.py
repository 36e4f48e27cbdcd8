"""apps/v1 Deployment: defaults, validation and the ``kubectl get deployments`` table.

    NAME   READY   UP-TO-DATE   AVAILABLE   AGE   (wide: CONTAINERS IMAGES SELECTOR)
    web    2/3     3            2           5m

READY is ``status.readyReplicas/spec.replicas``.  The selector is immutable in
apps/v1; a spec or annotation change starts a new generation.
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

STRATEGY_TYPES = ("Recreate", "RollingUpdate")


def default(obj: Obj) -> None:
    """SetDefaults_Deployment plus the pod template defaults."""
    spec = obj.setdefault("spec", {})
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = spec.setdefault("strategy", {})
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            rolling = strategy["rollingUpdate"] = {}
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = "25%"
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    template = spec.get("template")
    if not isinstance(template, dict):
        template = spec["template"] = {}
    podspec.default_pod_template(template)


def _go_strategy(strategy: Obj) -> str:
    rolling = strategy.get("rollingUpdate")
    rendered = "(*apps.RollingUpdateDeployment)(nil)" if rolling is None else "&apps.RollingUpdateDeployment{...}"
    return f'apps.DeploymentStrategy{{Type:{sel._go_string(strategy.get("type", ""))}, RollingUpdate:{rendered}}}'


def _validate_strategy(strategy: Obj, path: str) -> list[Cause]:
    kind = strategy.get("type", "")
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        if rolling is not None:
            return [m.forbidden(m.child(path, "rollingUpdate"),
                                "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if kind == "RollingUpdate":
        rpath = m.child(path, "rollingUpdate")
        if rolling is None:
            return [m.required(rpath, "this should be defaulted and never be nil")]
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        causes = w.validate_positive_int_or_percent(unavailable, m.child(rpath, "maxUnavailable"))
        causes += w.validate_positive_int_or_percent(surge, m.child(rpath, "maxSurge"))
        if w.int_or_percent_value(unavailable) == 0 and w.int_or_percent_value(surge) == 0:
            causes.append(sel.invalid_quoted(m.child(rpath, "maxUnavailable"), sel.go_int_or_string(unavailable),
                                             "may not be 0 when `maxSurge` is 0"))
        causes += w.validate_not_more_than_100_percent(unavailable, m.child(rpath, "maxUnavailable"))
        return causes
    supported = ", ".join(f'"{t}"' for t in STRATEGY_TYPES)
    return [Cause("FieldValueNotSupported",
                  f"Unsupported value: {_go_strategy(strategy)}: supported values: {supported}", path)]


def validate_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    """ValidateDeploymentSpec."""
    causes = m.validate_nonnegative(spec.get("replicas"), m.child(path, "replicas"))
    causes += w.validate_required_selector(spec.get("selector"), m.child(path, "selector"), "deployment")
    causes += w.validate_replicated_template(spec, path, "ReplicaSet")
    causes += _validate_strategy(spec.get("strategy") or {}, m.child(path, "strategy"))
    min_ready = spec.get("minReadySeconds") or 0
    causes += m.validate_nonnegative(min_ready, m.child(path, "minReadySeconds"))
    causes += m.validate_nonnegative(spec.get("revisionHistoryLimit"), m.child(path, "revisionHistoryLimit"))
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        causes += m.validate_nonnegative(deadline, m.child(path, "progressDeadlineSeconds"))
        if deadline <= min_ready:
            causes.append(m.invalid(m.child(path, "progressDeadlineSeconds"), deadline,
                                    "must be greater than minReadySeconds"))
    return causes


validate = w.validator(validate_spec)


COLUMNS = (
    m.NAME_COLUMN,
    Column("Ready", description="Number of the pod with ready state"),
    Column("Up-to-date", description="Total number of non-terminated pods that have the desired template."),
    Column("Available", description="Total number of available pods (ready for at least minReadySeconds)."),
    m.AGE_COLUMN,
    w.CONTAINERS_COLUMN, w.IMAGES_COLUMN, w.SELECTOR_COLUMN,
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    status = obj.get("status") or {}
    desired = m.get_path(obj, "spec.replicas", 0)
    selector = m.get_path(obj, "spec.selector")
    selector_cell = sel.selector_string(selector) if sel.is_well_formed(selector) else "<invalid>"
    return [m.object_name(obj), f"{status.get('readyReplicas', 0)}/{desired}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0),
            m.object_age(obj, now), *w.wide_cells(obj), selector_cell]


def prepare_create(obj: Obj) -> None:
    rollout.start_generation(obj)


DEPLOYMENTS = ResourceInfo(
    group="apps", version="v1", kind="Deployment", plural="deployments", singular="deployment",
    namespaced=True, schema_type="io.k8s.api.apps.v1.Deployment",
    short_names=("deploy",), categories=("all",),
    subresources=(w.status_subresource("Deployment"), w.SCALE), has_status=True,
    scale=ScalePaths(label_selector="spec.selector"),
    columns=COLUMNS, row=row, default=default, validate=validate,
    prepare_create=prepare_create,
    prepare_update=rollout.prepare_update_with(default, watch_annotations=True),
)
