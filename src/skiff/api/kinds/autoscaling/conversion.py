"""HorizontalPodAutoscaler conversion between ``autoscaling/v1`` and ``autoscaling/v2``.

The same HPA objects are served in both versions.  ``v2`` is the full model
(any number of metrics, scaling behavior, conditions); ``v1`` only knows one
CPU-utilization target.  Kubernetes keeps ``v1`` lossless by parking what it
cannot express in four annotations on the ``v1`` object::

    autoscaling.alpha.kubernetes.io/metrics          spec.metrics other than CPU utilization (v1 MetricSpec JSON)
    autoscaling.alpha.kubernetes.io/current-metrics  status.currentMetrics                   (v1 MetricStatus JSON)
    autoscaling.alpha.kubernetes.io/behavior         spec.behavior   (keys spelled as Go field names: "ScaleUp")
    autoscaling.alpha.kubernetes.io/conditions       status.conditions

    v1 ──hpa_v1_to_v2──▶ v2      reads and drops the annotations;
                                   no metric at all means "CPU at 80%"
    v2 ──hpa_v2_to_v1──▶ v1      first CPU-utilization metric -> targetCPUUtilizationPercentage,
                                   the rest -> annotations

Both functions are pure: they return a new object and never touch their input.
"""

from __future__ import annotations

import copy
import json
from typing import Any

Obj = dict[str, Any]

METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
ROUND_TRIP_ANNOTATIONS = (METRICS_ANNOTATION, CURRENT_METRICS_ANNOTATION,
                          BEHAVIOR_ANNOTATION, CONDITIONS_ANNOTATION)

#: The CPU target an HPA has when it names no metric at all.
DEFAULT_CPU_UTILIZATION = 80


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _drop(d: Obj, *keys: str) -> Obj:
    return {k: v for k, v in d.items() if k not in keys and v is not None}


def _is_cpu_utilization(metric: Obj) -> bool:
    res = metric.get("resource") or {}
    return (metric.get("type") == "Resource" and res.get("name") == "cpu"
            and (res.get("target") or {}).get("averageUtilization") is not None)


def _cpu_metric(utilization: int) -> Obj:
    return {"type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                     "averageUtilization": utilization}}}


def _identifier(name: Any, selector: Any) -> Obj:
    out: Obj = {"name": name or ""}
    if selector is not None:
        out["selector"] = selector
    return out


# --- metric specs --------------------------------------------------------------

def _spec_v1_to_v2(m: Obj) -> Obj:
    out: Obj = {"type": m.get("type", "")}
    if (o := m.get("object")) is not None:
        average = o.get("averageValue")
        target: Obj = {"type": "Value" if average is None else "AverageValue",
                       "value": o.get("targetValue", "0")}
        if average is not None:
            target["averageValue"] = average
        out["object"] = {"describedObject": dict(o.get("target") or {}), "target": target,
                         "metric": _identifier(o.get("metricName"), o.get("selector"))}
    if (p := m.get("pods")) is not None:
        out["pods"] = {"metric": _identifier(p.get("metricName"), p.get("selector")),
                       "target": {"type": "AverageValue",
                                  "averageValue": p.get("targetAverageValue", "0")}}
    for key in ("resource", "containerResource"):
        if (r := m.get(key)) is not None:
            utilization = r.get("targetAverageUtilization")
            target = {"type": "AverageValue" if utilization is None else "Utilization"}
            if r.get("targetAverageValue") is not None:
                target["averageValue"] = r["targetAverageValue"]
            if utilization is not None:
                target["averageUtilization"] = utilization
            src: Obj = {"name": r.get("name", ""), "target": target}
            if key == "containerResource":
                src["container"] = r.get("container", "")
            out[key] = src
    if (e := m.get("external")) is not None:
        value = e.get("targetValue")
        target = {"type": "AverageValue" if value is None else "Value"}
        if value is not None:
            target["value"] = value
        if e.get("targetAverageValue") is not None:
            target["averageValue"] = e["targetAverageValue"]
        out["external"] = {"metric": _identifier(e.get("metricName"), e.get("metricSelector")),
                           "target": target}
    return out


def _spec_v2_to_v1(m: Obj) -> Obj:
    out: Obj = {"type": m.get("type", "")}
    if (o := m.get("object")) is not None:
        target = o.get("target") or {}
        metric = o.get("metric") or {}
        out["object"] = _drop({"target": dict(o.get("describedObject") or {}),
                               "metricName": metric.get("name", ""),
                               "targetValue": target.get("value", "0"),
                               "selector": metric.get("selector"),
                               "averageValue": target.get("averageValue")})
    if (p := m.get("pods")) is not None:
        metric = p.get("metric") or {}
        out["pods"] = _drop({"metricName": metric.get("name", ""),
                             "targetAverageValue": (p.get("target") or {}).get("averageValue", "0"),
                             "selector": metric.get("selector")})
    for key in ("resource", "containerResource"):
        if (r := m.get(key)) is not None:
            target = r.get("target") or {}
            src = _drop({"name": r.get("name", ""),
                         "targetAverageUtilization": target.get("averageUtilization"),
                         "targetAverageValue": target.get("averageValue")})
            if key == "containerResource":
                src["container"] = r.get("container", "")
            out[key] = src
    if (e := m.get("external")) is not None:
        target = e.get("target") or {}
        metric = e.get("metric") or {}
        out["external"] = _drop({"metricName": metric.get("name", ""),
                                 "metricSelector": metric.get("selector"),
                                 "targetValue": target.get("value"),
                                 "targetAverageValue": target.get("averageValue")})
    return out


# --- metric statuses -------------------------------------------------------------

def _status_v1_to_v2(m: Obj) -> Obj:
    out: Obj = {"type": m.get("type", "")}
    if (o := m.get("object")) is not None:
        current = _drop({"value": o.get("currentValue", "0"), "averageValue": o.get("averageValue")})
        out["object"] = {"metric": _identifier(o.get("metricName"), o.get("selector")),
                         "current": current, "describedObject": dict(o.get("target") or {})}
    if (p := m.get("pods")) is not None:
        out["pods"] = {"metric": _identifier(p.get("metricName"), p.get("selector")),
                       "current": {"averageValue": p.get("currentAverageValue", "0")}}
    for key in ("resource", "containerResource"):
        if (r := m.get(key)) is not None:
            current = _drop({"averageValue": r.get("currentAverageValue", "0"),
                             "averageUtilization": r.get("currentAverageUtilization")})
            src: Obj = {"name": r.get("name", ""), "current": current}
            if key == "containerResource":
                src["container"] = r.get("container", "")
            out[key] = src
    if (e := m.get("external")) is not None:
        current = _drop({"value": e.get("currentValue", "0"),
                         "averageValue": e.get("currentAverageValue")})
        out["external"] = {"metric": _identifier(e.get("metricName"), e.get("metricSelector")),
                           "current": current}
    return out


def _status_v2_to_v1(m: Obj) -> Obj:
    out: Obj = {"type": m.get("type", "")}
    if (o := m.get("object")) is not None:
        current = o.get("current") or {}
        metric = o.get("metric") or {}
        out["object"] = _drop({"target": dict(o.get("describedObject") or {}),
                               "metricName": metric.get("name", ""),
                               "currentValue": current.get("value", "0"),
                               "selector": metric.get("selector"),
                               "averageValue": current.get("averageValue")})
    if (p := m.get("pods")) is not None:
        metric = p.get("metric") or {}
        out["pods"] = _drop({"metricName": metric.get("name", ""),
                             "currentAverageValue": (p.get("current") or {}).get("averageValue", "0"),
                             "selector": metric.get("selector")})
    for key in ("resource", "containerResource"):
        if (r := m.get(key)) is not None:
            current = r.get("current") or {}
            src = _drop({"name": r.get("name", ""),
                         "currentAverageUtilization": current.get("averageUtilization"),
                         "currentAverageValue": current.get("averageValue", "0")})
            if key == "containerResource":
                src["container"] = r.get("container", "")
            out[key] = src
    if (e := m.get("external")) is not None:
        current = e.get("current") or {}
        metric = e.get("metric") or {}
        out["external"] = _drop({"metricName": metric.get("name", ""),
                                 "metricSelector": metric.get("selector"),
                                 "currentValue": current.get("value", "0"),
                                 "currentAverageValue": current.get("averageValue")})
    return out


# --- behavior: the annotation spells keys as Go field names ------------------------

_GO_RULE_KEYS = ("StabilizationWindowSeconds", "SelectPolicy", "Policies")
_GO_POLICY_KEYS = ("Type", "Value", "PeriodSeconds")


def _lower_first(key: str) -> str:
    return key[:1].lower() + key[1:]


def _behavior_to_annotation(behavior: Obj) -> str:
    def rules(r: Obj | None) -> Obj | None:
        if r is None:
            return None
        policies = r.get("policies")
        return {"StabilizationWindowSeconds": r.get("stabilizationWindowSeconds"),
                "SelectPolicy": r.get("selectPolicy"),
                "Policies": None if policies is None else [
                    {k: p.get(_lower_first(k), "" if k == "Type" else 0) for k in _GO_POLICY_KEYS}
                    for p in policies]}
    return _compact({"ScaleUp": rules(behavior.get("scaleUp")),
                     "ScaleDown": rules(behavior.get("scaleDown"))})


def _behavior_from_annotation(text: str) -> Obj | None:
    """Decode the behavior annotation; Go matches JSON keys case-insensitively, so do we."""
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None

    def pick(d: Obj, name: str) -> Any:
        for k, v in d.items():
            if k.lower() == name.lower():
                return v
        return None

    def rules(r: Any) -> Obj | None:
        if not isinstance(r, dict):
            return None
        out: Obj = {}
        for key in _GO_RULE_KEYS:
            value = pick(r, key)
            if value is None:
                continue
            if key == "Policies" and isinstance(value, list):
                value = [{_lower_first(k): pick(p, k) for k in _GO_POLICY_KEYS
                          if pick(p, k) is not None} for p in value if isinstance(p, dict)]
            out[_lower_first(key)] = value
        return out

    behavior = _drop({"scaleUp": rules(pick(raw, "ScaleUp")),
                      "scaleDown": rules(pick(raw, "ScaleDown"))})
    return behavior or None


def _load_list(text: str | None) -> list[Obj] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if value is None:
        return []
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else None


# --- whole objects -----------------------------------------------------------------

def hpa_v1_to_v2(obj: Obj) -> Obj:
    """An ``autoscaling/v1`` HorizontalPodAutoscaler as ``autoscaling/v2``."""
    metadata = copy.deepcopy(obj.get("metadata") or {})
    annotations: dict[str, str] = dict(metadata.get("annotations") or {})
    spec_in = obj.get("spec") or {}
    status_in = obj.get("status") or {}

    spec: Obj = {"scaleTargetRef": copy.deepcopy(spec_in.get("scaleTargetRef") or {})}
    if spec_in.get("minReplicas") is not None:
        spec["minReplicas"] = spec_in["minReplicas"]
    spec["maxReplicas"] = spec_in.get("maxReplicas", 0)
    metrics = [_spec_v1_to_v2(m) for m in _load_list(annotations.get(METRICS_ANNOTATION)) or []]
    if spec_in.get("targetCPUUtilizationPercentage") is not None:
        metrics.append(_cpu_metric(spec_in["targetCPUUtilizationPercentage"]))
    spec["metrics"] = metrics or [_cpu_metric(DEFAULT_CPU_UTILIZATION)]
    if BEHAVIOR_ANNOTATION in annotations:
        behavior = _behavior_from_annotation(annotations[BEHAVIOR_ANNOTATION])
        if behavior:
            spec["behavior"] = behavior

    status = _drop({"observedGeneration": status_in.get("observedGeneration"),
                    "lastScaleTime": status_in.get("lastScaleTime")})
    status["currentReplicas"] = status_in.get("currentReplicas", 0)
    status["desiredReplicas"] = status_in.get("desiredReplicas", 0)
    current = _load_list(annotations.get(CURRENT_METRICS_ANNOTATION))
    if current is not None:
        status["currentMetrics"] = [_status_v1_to_v2(m) for m in current]
    elif status_in.get("currentCPUUtilizationPercentage") is not None:
        status["currentMetrics"] = [{"type": "Resource", "resource": {
            "name": "cpu",
            "current": {"averageUtilization": status_in["currentCPUUtilizationPercentage"]}}}]
    conditions = _load_list(annotations.get(CONDITIONS_ANNOTATION))
    if conditions:
        status["conditions"] = conditions

    for key in ROUND_TRIP_ANNOTATIONS:
        annotations.pop(key, None)
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": metadata, "spec": spec, "status": status}


def hpa_v2_to_v1(obj: Obj) -> Obj:
    """An ``autoscaling/v2`` HorizontalPodAutoscaler as ``autoscaling/v1``."""
    metadata = copy.deepcopy(obj.get("metadata") or {})
    annotations: dict[str, str] = {k: v for k, v in (metadata.get("annotations") or {}).items()
                                   if k not in ROUND_TRIP_ANNOTATIONS}
    spec_in = obj.get("spec") or {}
    status_in = obj.get("status") or {}
    metrics: list[Obj] = spec_in.get("metrics") or []

    spec: Obj = {"scaleTargetRef": copy.deepcopy(spec_in.get("scaleTargetRef") or {})}
    if spec_in.get("minReplicas") is not None:
        spec["minReplicas"] = spec_in["minReplicas"]
    spec["maxReplicas"] = spec_in.get("maxReplicas", 0)
    cpu = next((m for m in metrics if _is_cpu_utilization(m)), None)
    if cpu is not None:
        spec["targetCPUUtilizationPercentage"] = cpu["resource"]["target"]["averageUtilization"]

    status = _drop({"observedGeneration": status_in.get("observedGeneration"),
                    "lastScaleTime": status_in.get("lastScaleTime")})
    status["currentReplicas"] = status_in.get("currentReplicas", 0)
    status["desiredReplicas"] = status_in.get("desiredReplicas", 0)
    current: list[Obj] = status_in.get("currentMetrics") or []
    for m in current:
        res = m.get("resource") or {}
        utilization = (res.get("current") or {}).get("averageUtilization")
        if m.get("type") == "Resource" and res.get("name") == "cpu" and utilization is not None:
            status["currentCPUUtilizationPercentage"] = utilization

    others = [_spec_v2_to_v1(m) for m in metrics if not _is_cpu_utilization(m)]
    if others:
        annotations[METRICS_ANNOTATION] = _compact(others)
    if current:
        annotations[CURRENT_METRICS_ANNOTATION] = _compact([_status_v2_to_v1(m) for m in current])
    if spec_in.get("behavior") is not None:
        annotations[BEHAVIOR_ANNOTATION] = _behavior_to_annotation(spec_in["behavior"])
    if status_in.get("conditions"):
        annotations[CONDITIONS_ANNOTATION] = _compact(status_in["conditions"])

    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    return {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": metadata, "spec": spec, "status": status}
