"""HorizontalPodAutoscaler: defaults, validation and the ``kubectl get hpa`` table.

    NAME   REFERENCE        TARGETS              MINPODS   MAXPODS   REPLICAS   AGE
    web    Deployment/web   cpu: 42%/80%         1         10        3          5m

The rules are written for the ``autoscaling/v2`` shape (Kubernetes validates
its internal type, which has that shape); the ``autoscaling/v1`` record
converts with :mod:`.conversion` first, so field paths and messages are the
same in both versions.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo, Subresource
from .. import meta as m
from ..apps import rollout
from .conversion import (
    CONDITIONS_ANNOTATION, CURRENT_METRICS_ANNOTATION, DEFAULT_CPU_UTILIZATION, hpa_v1_to_v2,
)

Obj = dict[str, Any]

METRIC_SOURCE_TYPES = ("Object", "Pods", "Resource", "External", "ContainerResource")
_SOURCE_FIELDS = {"Object": "object", "Pods": "pods", "Resource": "resource", "External": "external",
                  "ContainerResource": "containerResource"}
MIN_REPLICAS_LOWER_BOUND = 1
MAX_STABILIZATION_WINDOW_SECONDS = 3600
MAX_PERIOD_SECONDS = 1800


def _scale_up_rules() -> Obj:
    return {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                         {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _scale_down_rules() -> Obj:
    # no stabilizationWindowSeconds: left unset, the controller's
    # --horizontal-pod-autoscaler-downscale-stabilization (5 min) applies, as in Kubernetes
    return {"selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _fill_rules(rules: Obj | None, defaults: Obj) -> Obj:
    if not isinstance(rules, dict):
        return defaults
    for name, value in defaults.items():
        if rules.get(name) is None:
            rules[name] = value
    return rules


def default_v2(obj: Obj) -> None:
    """SetDefaults_HorizontalPodAutoscaler (v2): minReplicas 1, CPU 80%, behavior gaps filled."""
    spec = obj.setdefault("spec", {})
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _fill_rules(behavior.get("scaleUp"), _scale_up_rules())
        behavior["scaleDown"] = _fill_rules(behavior.get("scaleDown"), _scale_down_rules())


def default_v1(obj: Obj) -> None:
    """SetDefaults_HorizontalPodAutoscaler (v1): minReplicas 1."""
    spec = obj.setdefault("spec", {})
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1


# --- validation (v2 shape) ------------------------------------------------------------

def _validate_ref(ref: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for name in ("kind", "name"):
        value = ref.get(name) or ""
        if not value:
            causes.append(m.required(m.child(path, name)))
        else:
            causes += m.invalid_each(m.child(path, name), value, m.name_is_path_segment(value))
    return causes


def _positive(value: Any) -> bool:
    amount = m.parse_quantity(value)
    return amount is not None and amount > 0


def _validate_target(target: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    kind = target.get("type") or ""
    if not kind:
        causes.append(m.required(m.child(path, "type"), "must specify a metric target type"))
    if kind not in ("Utilization", "Value", "AverageValue"):
        causes.append(m.invalid(m.child(path, "type"), kind, "must be either Utilization, Value, or AverageValue"))
    for name in ("value", "averageValue"):
        if target.get(name) is not None and not _positive(target[name]):
            causes.append(m.invalid(m.child(path, name), m.canonical_quantity(target[name]), "must be positive"))
    utilization = target.get("averageUtilization")
    if utilization is not None and utilization < 1:
        causes.append(m.invalid(m.child(path, "averageUtilization"), utilization, "must be greater than 0"))
    return causes


def _validate_metric_name(metric: Obj, path: str) -> list[Cause]:
    name = metric.get("name") or ""
    if not name:
        return [m.required(m.child(path, "name"), "must specify a metric name")]
    return m.invalid_each(m.child(path, "name"), name, m.name_is_path_segment(name))


def _validate_source(kind: str, src: Obj, path: str) -> list[Cause]:
    target = src.get("target") or {}
    tpath = m.child(path, "target")
    causes: list[Cause] = []
    if kind in ("resource", "containerResource"):
        if not src.get("name"):
            causes.append(m.required(m.child(path, "name"), "must specify a resource name"))
        if kind == "containerResource" and not src.get("container"):
            causes.append(m.required(m.child(path, "container"), "must specify a container"))
        causes += _validate_target(target, tpath)
        if target.get("averageUtilization") is None and target.get("averageValue") is None:
            causes.append(m.required(m.child(tpath, "averageUtilization"),
                                     "must set either a target raw value or a target utilization"))
        if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
            causes.append(m.forbidden(m.child(tpath, "averageValue"),
                                      "may not set both a target raw value and a target utilization"))
        return causes
    metric = src.get("metric") or {}
    causes += _validate_metric_name(metric, m.child(path, "metric"))
    causes += _validate_target(target, tpath)
    if kind == "pods":
        if target.get("averageValue") is None:
            causes.append(m.required(m.child(tpath, "averageValue"), "must specify a positive target averageValue"))
    elif kind == "object":
        causes = _validate_ref(src.get("describedObject") or {}, m.child(path, "describedObject")) + causes
        if target.get("value") is None and target.get("averageValue") is None:
            causes.append(m.required(m.child(tpath, "averageValue"), "must set either a target value or averageValue"))
    elif kind == "external":
        if target.get("value") is None and target.get("averageValue") is None:
            causes.append(m.required(m.child(tpath, "averageValue"),
                                     "must set either a target value for metric or a per-pod target"))
        if target.get("value") is not None and target.get("averageValue") is not None:
            causes.append(m.forbidden(m.child(tpath, "value"),
                                      "may not set both a target value for metric and a per-pod target"))
    return causes


def _validate_metric(metric: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    kind = metric.get("type") or ""
    if not kind:
        causes.append(m.required(m.child(path, "type"), "must specify a metric source type"))
    if kind not in METRIC_SOURCE_TYPES:
        causes.append(m.not_supported(m.child(path, "type"), kind, METRIC_SOURCE_TYPES))
    present = [f for f in ("object", "external", "pods", "resource", "containerResource") if metric.get(f) is not None]
    if present:
        causes += _validate_source(present[0], metric[present[0]], m.child(path, present[0]))
    expected = _SOURCE_FIELDS.get(kind)
    if expected is None:
        causes.append(m.not_supported(m.child(path, "type"), kind, METRIC_SOURCE_TYPES))
    elif metric.get(expected) is None:
        causes.append(m.required(m.child(path, expected), "must populate information for the given metric source"))
    if len(present) != 1:
        for name in present:
            if name != expected:
                causes.append(m.forbidden(m.child(path, name), "must populate the given metric source only"))
    return causes


def _validate_rules(rules: Obj | None, path: str) -> list[Cause]:
    if rules is None:
        return []
    causes: list[Cause] = []
    window = rules.get("stabilizationWindowSeconds")
    if window is not None:
        if window < 0:
            causes.append(m.invalid(m.child(path, "stabilizationWindowSeconds"), window,
                                    "must be greater than or equal to zero"))
        elif window > MAX_STABILIZATION_WINDOW_SECONDS:
            causes.append(m.invalid(m.child(path, "stabilizationWindowSeconds"), window,
                                    f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"))
    select = rules.get("selectPolicy")
    if select is not None and select not in ("Max", "Min", "Disabled"):
        causes.append(m.not_supported(m.child(path, "selectPolicy"), select, ["Disabled", "Max", "Min"]))
    policies = rules.get("policies") or []
    ppath = m.child(path, "policies")
    if not policies:
        causes.append(m.required(ppath, "must specify at least one Policy"))
    for i, policy in enumerate(policies):
        p = m.index(ppath, i)
        if policy.get("type") not in ("Pods", "Percent"):
            causes.append(m.not_supported(m.child(p, "type"), policy.get("type", ""), ["Percent", "Pods"]))
        if (policy.get("value") or 0) <= 0:
            causes.append(m.invalid(m.child(p, "value"), policy.get("value", 0), "must be greater than zero"))
        period = policy.get("periodSeconds") or 0
        if period <= 0:
            causes.append(m.invalid(m.child(p, "periodSeconds"), period, "must be greater than zero"))
        elif period > MAX_PERIOD_SECONDS:
            causes.append(m.invalid(m.child(p, "periodSeconds"), period,
                                    f"must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return causes


def validate_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    causes: list[Cause] = []
    min_replicas = spec.get("minReplicas")
    max_replicas = spec.get("maxReplicas") or 0
    if min_replicas is not None and min_replicas < MIN_REPLICAS_LOWER_BOUND:
        causes.append(m.invalid(m.child(path, "minReplicas"), min_replicas,
                                f"must be greater than or equal to {MIN_REPLICAS_LOWER_BOUND}"))
    if max_replicas < 1:
        causes.append(m.invalid(m.child(path, "maxReplicas"), max_replicas, "must be greater than 0"))
    if min_replicas is not None and max_replicas < min_replicas:
        causes.append(m.invalid(m.child(path, "maxReplicas"), max_replicas,
                                "must be greater than or equal to `minReplicas`"))
    ref_causes = _validate_ref(spec.get("scaleTargetRef") or {}, m.child(path, "scaleTargetRef"))
    if ref_causes:
        return causes + ref_causes
    metric_causes: list[Cause] = []
    for i, metric in enumerate(spec.get("metrics") or []):
        metric_causes += _validate_metric(metric, m.index(m.child(path, "metrics"), i))
    if metric_causes:
        return causes + metric_causes
    behavior = spec.get("behavior")
    if behavior is not None:
        causes += _validate_rules(behavior.get("scaleUp"), m.child(path, "behavior.scaleUp"))
        causes += _validate_rules(behavior.get("scaleDown"), m.child(path, "behavior.scaleDown"))
    return causes


def validate_v2(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        causes = m.validate_object_meta(obj.get("metadata"), True)
    else:
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    return causes + validate_spec(obj.get("spec") or {})


def validate_v1(obj: Obj, old: Obj | None) -> list[Cause]:
    return validate_v2(hpa_v1_to_v2(obj), None if old is None else hpa_v1_to_v2(old))


# --- table -----------------------------------------------------------------------------

def _q(value: Any) -> str:
    return m.canonical_quantity(value) if value is not None else "0"


def _target_cell(spec: Obj, status: Obj | None) -> str:
    kind = spec.get("type")
    if kind in ("External", "Object"):
        key = kind.lower()
        target = (spec.get(key) or {}).get("target") or {}
        current = (status or {}).get(key) if status else None
        if target.get("averageValue") is not None:
            cur = "<unknown>"
            if current is not None and (current.get("current") or {}).get("averageValue") is not None:
                cur = _q(current["current"]["averageValue"])
            return f"{cur}/{_q(target['averageValue'])} (avg)"
        cur = _q((current.get("current") or {}).get("value")) if current is not None else "<unknown>"
        return f"{cur}/{_q(target.get('value'))}"
    if kind == "Pods":
        target = (spec.get("pods") or {}).get("target") or {}
        current = (status or {}).get("pods") if status else None
        cur = _q((current.get("current") or {}).get("averageValue")) if current is not None else "<unknown>"
        return f"{cur}/{_q(target.get('averageValue'))}"
    if kind in ("Resource", "ContainerResource"):
        key = "resource" if kind == "Resource" else "containerResource"
        src = spec.get(key) or {}
        target = src.get("target") or {}
        current = ((status or {}).get(key) or None) if status else None
        name = src.get("name", "")
        if target.get("averageValue") is not None:
            cur = _q((current.get("current") or {}).get("averageValue")) if current is not None else "<unknown>"
            return f"{name}: {cur}/{_q(target['averageValue'])}"
        cur = "<unknown>"
        if current is not None and (current.get("current") or {}).get("averageUtilization") is not None:
            cur = f"{current['current']['averageUtilization']}%"
        goal = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
        return f"{name}: {cur}/{goal}"
    return "<unknown type>"


def format_metrics(specs: list[Obj], statuses: list[Obj]) -> str:
    """The TARGETS cell: at most two ``current/target`` pairs, then ``+ N more...``."""
    if not specs:
        return "<none>"
    cells = [_target_cell(s, statuses[i] if i < len(statuses) else None) for i, s in enumerate(specs)]
    if len(cells) > 2:
        return ", ".join(cells[:2]) + f" + {len(cells) - 2} more..."
    return ", ".join(cells)


COLUMNS = (
    m.NAME_COLUMN,
    Column("Reference", description="The workload being scaled."),
    Column("Targets", description="Current and target values of the metrics."),
    Column("MinPods", description="Lower limit for the number of pods."),
    Column("MaxPods", description="Upper limit for the number of pods."),
    Column("Replicas", description="Current number of pods."),
    m.AGE_COLUMN,
)


def row_v2(obj: Obj, now: datetime | None = None) -> list[Any]:
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    min_pods = spec.get("minReplicas")
    return [m.object_name(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            format_metrics(spec.get("metrics") or [], status.get("currentMetrics") or []),
            str(min_pods) if min_pods is not None else "<unset>",
            spec.get("maxReplicas", 0), status.get("currentReplicas", 0), m.object_age(obj, now)]


def row_v1(obj: Obj, now: datetime | None = None) -> list[Any]:
    return row_v2(hpa_v1_to_v2(obj), now)


def prepare_create(obj: Obj) -> None:
    obj.pop("status", None)


def prepare_update_v2(obj: Obj, old: Obj) -> None:
    rollout.keep_status(obj, old)


def prepare_update_v1(obj: Obj, old: Obj) -> None:
    """Keep the stored status, including the parts v1 parks in annotations."""
    rollout.keep_status(obj, old)
    annotations = m.ensure_meta(obj).setdefault("annotations", {})
    old_annotations = m.get_path(old, "metadata.annotations", {}) or {}
    for key in (CURRENT_METRICS_ANNOTATION, CONDITIONS_ANNOTATION):
        if key in old_annotations:
            annotations[key] = copy.deepcopy(old_annotations[key])
        else:
            annotations.pop(key, None)
    if not annotations:
        obj["metadata"].pop("annotations", None)


def _record(version: str) -> ResourceInfo:
    v1 = version == "v1"
    return ResourceInfo(
        group="autoscaling", version=version, kind="HorizontalPodAutoscaler",
        plural="horizontalpodautoscalers", singular="horizontalpodautoscaler", namespaced=True,
        schema_type=f"io.k8s.api.autoscaling.{version}.HorizontalPodAutoscaler",
        short_names=("hpa",), categories=("all",),
        subresources=(Subresource("status", kind="HorizontalPodAutoscaler"),), has_status=True,
        columns=COLUMNS, row=row_v1 if v1 else row_v2,
        default=default_v1 if v1 else default_v2, validate=validate_v1 if v1 else validate_v2,
        prepare_create=prepare_create, prepare_update=prepare_update_v1 if v1 else prepare_update_v2,
    )


HPA_V2 = _record("v2")
HPA_V1 = _record("v1")
