"""LimitRanges (per-namespace defaults and bounds for container resources) and
ResourceQuotas (per-namespace totals).

A LimitRange item of type ``Container`` fills in its own defaults: a missing
``default`` (limit) comes from ``max``, a missing ``defaultRequest`` from ``default``
and then from ``min``.  kube-apiserver has no printer for LimitRanges, so they list
with the generic ``NAME  CREATED AT`` columns.  A ResourceQuota prints its
``status`` as ``REQUEST``/``LIMIT`` cells: ``pods: 2/10, requests.cpu: 500m/2``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo, Subresource
from .. import meta as m

Obj = dict[str, Any]

LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
QUOTA_SCOPES = ("BestEffort", "CrossNamespacePodAffinity", "NotBestEffort", "NotTerminating",
                "PriorityClass", "Terminating")

# --- LimitRange -----------------------------------------------------------------


def default_limit_range(obj: Obj) -> None:
    for item in m.get_path(obj, "spec.limits", []) or []:
        if item.get("type") != "Container":
            continue
        default = dict(item.get("default") or {})
        request = dict(item.get("defaultRequest") or {})
        for k, v in (item.get("max") or {}).items():
            default.setdefault(k, v)
        for k, v in default.items():
            request.setdefault(k, v)
        for k, v in (item.get("min") or {}).items():
            request.setdefault(k, v)
        if default:
            item["default"] = default
        if request:
            item["defaultRequest"] = request


def _quantities(item: Obj, section: str, path: str, causes: list[Cause]) -> dict[str, Any]:
    out = {}
    for name, value in (item.get(section) or {}).items():
        amount = m.parse_quantity(value)
        if amount is None:
            causes.append(m.invalid(m.key(m.child(path, section), name), value, "must be a valid resource quantity"))
        else:
            out[name] = (amount, m.canonical_quantity(value))
    return out


def validate_limit_range(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), True) if old is None else \
        m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    seen: set[str] = set()
    for i, item in enumerate(m.get_path(obj, "spec.limits", []) or []):
        p = m.index("spec.limits", i)
        kind = item.get("type") or ""
        causes += m.invalid_each(m.child(p, "type"), kind, m.is_qualified_name(kind))
        if kind in seen:
            causes.append(m.duplicate(m.child(p, "type"), kind))
        seen.add(kind)
        mins = _quantities(item, "min", p, causes)
        maxs = _quantities(item, "max", p, causes)
        defaults = _quantities(item, "default", p, causes)
        requests = _quantities(item, "defaultRequest", p, causes)
        if kind == "Pod":
            for section in ("default", "defaultRequest"):
                if item.get(section):
                    causes.append(m.forbidden(m.child(p, section), "may not be specified when `type` is 'Pod'"))
        checks = (  # (a, b, path section, shown value, message) when a > b
            (mins, maxs, "min", "min", "min value {a} is greater than max value {b}"),
            (mins, requests, "defaultRequest", "b", "min value {a} is greater than default request value {b}"),
            (requests, maxs, "defaultRequest", "a", "default request value {a} is greater than max value {b}"),
            (requests, defaults, "defaultRequest", "a",
             "default request value {a} is greater than default limit value {b}"),
            (mins, defaults, "default", "a", "min value {a} is greater than default value {b}"),
            (defaults, maxs, "default", "b", "default value {a} is greater than max value {b}"),
        )
        for low, high, section, shown, message in checks:
            for name in sorted(set(low) & set(high)):
                (a, a_text), (b, b_text) = low[name], high[name]
                if a > b:
                    value = m.Verbatim(a_text if shown in ("a", "min") else b_text)
                    causes.append(m.invalid(m.key(m.child(p, section), name), value,
                                            message.format(a=a_text, b=b_text)))
    return causes


LIMIT_RANGES = ResourceInfo(
    group="", version="v1", kind="LimitRange", plural="limitranges", singular="limitrange",
    namespaced=True, schema_type="io.k8s.api.core.v1.LimitRange", short_names=("limits",),
    columns=m.DEFAULT_COLUMNS, row=m.name_created_row, default=default_limit_range,
    validate=validate_limit_range,
)

# --- ResourceQuota --------------------------------------------------------------

QUOTA_COLUMNS = (
    m.NAME_COLUMN,
    m.AGE_COLUMN,  # v1.32 prints AGE second; v1.33 moved it last
    Column("Request", description="Used/hard amounts of request and count quotas."),
    Column("Limit", description="Used/hard amounts of limit quotas."),
)


def quota_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    hard = m.get_path(obj, "status.hard", {}) or {}
    used = m.get_path(obj, "status.used", {}) or {}
    request_parts: list[str] = []
    limit_parts: list[str] = []
    for name in sorted(hard):
        text = f"{name}: {m.canonical_quantity(used.get(name, '0'))}/{m.canonical_quantity(hard[name])}"
        (limit_parts if name.split(".")[0] == "limits" and "." in name else request_parts).append(text)
    return [m.object_name(obj), m.object_age(obj, now), ", ".join(request_parts), ", ".join(limit_parts)]


def prepare_quota_create(obj: Obj) -> None:
    obj.pop("status", None)


def validate_quota(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), True) if old is None else \
        m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    for section in ("spec.hard", "status.hard", "status.used"):
        values = m.get_path(obj, section, {}) or {}
        for name in sorted(values):
            p = m.key(section, name)
            causes += m.invalid_each(p, name, m.is_qualified_name(name))
            amount = m.parse_quantity(values[name])
            if amount is None:
                causes.append(m.invalid(p, values[name], "must be a valid resource quantity"))
            elif amount < 0:
                causes.append(m.invalid(p, m.canonical_quantity(values[name]), m.IS_NEGATIVE))
    for i, scope in enumerate(m.get_path(obj, "spec.scopes", []) or []):
        if scope not in QUOTA_SCOPES:
            causes.append(m.not_supported(m.index("spec.scopes", i), scope, QUOTA_SCOPES))
    return causes


RESOURCE_QUOTAS = ResourceInfo(
    group="", version="v1", kind="ResourceQuota", plural="resourcequotas", singular="resourcequota",
    namespaced=True, schema_type="io.k8s.api.core.v1.ResourceQuota", short_names=("quota",),
    subresources=(Subresource("status", "ResourceQuota"),), has_status=True,
    columns=QUOTA_COLUMNS, row=quota_row, validate=validate_quota, prepare_create=prepare_quota_create,
)
