"""apps/v1 DaemonSet: defaults, validation and the ``kubectl get daemonsets`` table.

    NAME   DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR   AGE
    log    3         3         3       3            3           <none>          5m
                                                   (wide: CONTAINERS IMAGES SELECTOR)

A rolling update moves either ``maxUnavailable`` or ``maxSurge`` pods at a
time (exactly one of them must be non-zero).  No scale subresource.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo
from .. import meta as m
from .. import podspec
from . import rollout
from . import selector as sel
from . import workload as w

Obj = dict[str, Any]


def default(obj: Obj) -> None:
    """SetDefaults_DaemonSet plus the pod template defaults."""
    spec = obj.setdefault("spec", {})
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, dict):
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.get("rollingUpdate")
        if not isinstance(rolling, dict):
            rolling = strategy["rollingUpdate"] = {}
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    template = spec.get("template")
    if not isinstance(template, dict):
        template = spec["template"] = {}
    podspec.default_pod_template(template)


def _validate_update_strategy(strategy: Obj, path: str) -> list[Cause]:
    kind = strategy.get("type", "")
    if kind == "OnDelete":
        return []
    if kind == "RollingUpdate":
        rpath = m.child(path, "rollingUpdate")
        rolling = strategy.get("rollingUpdate")
        if rolling is None:
            return [m.required(rpath)]
        unavailable, surge = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        upath, spath = m.child(rpath, "maxUnavailable"), m.child(rpath, "maxSurge")
        causes = w.validate_positive_int_or_percent(unavailable, upath)
        causes += w.validate_positive_int_or_percent(surge, spath)
        causes += w.validate_not_more_than_100_percent(unavailable, upath)
        causes += w.validate_not_more_than_100_percent(surge, spath)
        has_unavailable = w.int_or_percent_value(unavailable) != 0
        has_surge = w.int_or_percent_value(surge) != 0
        if has_unavailable and has_surge:
            causes.append(sel.invalid_quoted(spath, sel.go_int_or_string(surge),
                                             "may not be set when maxUnavailable is non-zero"))
        elif not has_unavailable and not has_surge:
            causes.append(m.required(upath, "cannot be 0 when maxSurge is 0"))
        return causes
    rendered = f'apps.DaemonSetUpdateStrategy{{Type:{sel._go_string(kind)}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}'
    return [Cause("FieldValueNotSupported",
                  f'Unsupported value: {rendered}: supported values: "RollingUpdate", "OnDelete"', path)]


def validate_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    """ValidateDaemonSetSpec."""
    selector = spec.get("selector")
    template = spec.get("template") or {}
    tpath = m.child(path, "template")
    causes = sel.validate_label_selector(selector, m.child(path, "selector"))
    if sel.is_well_formed(selector):
        causes += w.validate_template_matches(selector, template, tpath)
    if sel.is_empty(selector):
        causes.append(sel.invalid_quoted(m.child(path, "selector"), sel.go_selector(selector),
                                         "empty selector is invalid for daemonset"))
    causes += podspec.validate_pod_template(template, tpath)
    causes += w.validate_always_restart_template(template, tpath, "DaemonSet")
    causes += m.validate_nonnegative(spec.get("minReadySeconds"), m.child(path, "minReadySeconds"))
    causes += _validate_update_strategy(spec.get("updateStrategy") or {}, m.child(path, "updateStrategy"))
    causes += m.validate_nonnegative(spec.get("revisionHistoryLimit"), m.child(path, "revisionHistoryLimit"))
    return causes


validate = w.validator(validate_spec)


COLUMNS = (
    m.NAME_COLUMN,
    Column("Desired", type="integer", description="Number of nodes that should run the daemon pod."),
    Column("Current", type="integer", description="Number of nodes running at least one daemon pod."),
    Column("Ready", type="integer", description="Number of nodes whose daemon pod is ready."),
    Column("Up-to-date", type="integer", description="Number of nodes running the updated daemon pod."),
    Column("Available", type="integer", description="Number of nodes whose daemon pod is available."),
    Column("Node Selector", description="Labels a node must have to run the daemon pod."),
    m.AGE_COLUMN,
    w.CONTAINERS_COLUMN, w.IMAGES_COLUMN, w.SELECTOR_COLUMN,
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    status = obj.get("status") or {}
    return [m.object_name(obj), status.get("desiredNumberScheduled", 0),
            status.get("currentNumberScheduled", 0), status.get("numberReady", 0),
            status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            m.format_labels(m.get_path(obj, "spec.template.spec.nodeSelector")),
            m.object_age(obj, now), *w.wide_cells(obj),
            m.format_selector(m.get_path(obj, "spec.selector"))]


def prepare_create(obj: Obj) -> None:
    rollout.start_generation(obj)


DAEMONSETS = ResourceInfo(
    group="apps", version="v1", kind="DaemonSet", plural="daemonsets", singular="daemonset",
    namespaced=True, schema_type="io.k8s.api.apps.v1.DaemonSet",
    short_names=("ds",), categories=("all",),
    subresources=(w.status_subresource("DaemonSet"),), has_status=True,
    columns=COLUMNS, row=row, default=default, validate=validate,
    prepare_create=prepare_create, prepare_update=rollout.prepare_update_with(default),
)
