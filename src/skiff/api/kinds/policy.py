"""The ``policy/v1`` group: PodDisruptionBudget (and the Eviction body kind).

    NAME   MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE
    web    2               N/A               1                     5m

A budget sets ``minAvailable`` or ``maxUnavailable`` (an int or a percentage),
never both.  ``Eviction`` is not a resource: it is the body POSTed to the
``pods/eviction`` subresource (see :data:`EVICTION_KIND`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import Cause
from ..resource import Column, ResourceInfo, Subresource
from . import meta as m
from .apps import rollout
from .apps import selector as sel
from .apps import workload as w

Obj = dict[str, Any]

#: (group, version, kind) of the body of ``POST /api/v1/namespaces/ns/pods/name/eviction``.
EVICTION_KIND = ("policy", "v1", "Eviction")
UNHEALTHY_POD_EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")


def validate_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    causes: list[Cause] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(m.invalid(path, spec, "minAvailable and maxUnavailable cannot be both set"))
    for name in ("minAvailable", "maxUnavailable"):
        if spec.get(name) is not None:
            causes += w.validate_positive_int_or_percent(spec[name], m.child(path, name))
            causes += w.validate_not_more_than_100_percent(spec[name], m.child(path, name))
    causes += sel.validate_label_selector(spec.get("selector"), m.child(path, "selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        causes.append(m.not_supported(m.child(path, "unhealthyPodEvictionPolicy"), policy,
                                      UNHEALTHY_POD_EVICTION_POLICIES))
    return causes


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        causes = m.validate_object_meta(obj.get("metadata"), True)
    else:
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    return causes + validate_spec(obj.get("spec") or {})


def _int_or_string_cell(value: Any) -> str:
    return "N/A" if value is None else str(value)


COLUMNS = (
    m.NAME_COLUMN,
    Column("Min Available", description="The minimum number of pods that must be available."),
    Column("Max Unavailable", description="The maximum number of pods that may be unavailable."),
    Column("Allowed Disruptions", type="integer", description="How many pods may be disrupted now."),
    m.AGE_COLUMN,
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    spec = obj.get("spec") or {}
    return [m.object_name(obj), _int_or_string_cell(spec.get("minAvailable")),
            _int_or_string_cell(spec.get("maxUnavailable")),
            m.get_path(obj, "status.disruptionsAllowed", 0), m.object_age(obj, now)]


def _no_defaults(obj: Obj) -> None:
    return None


def prepare_create(obj: Obj) -> None:
    rollout.start_generation(obj)


PODDISRUPTIONBUDGETS = ResourceInfo(
    group="policy", version="v1", kind="PodDisruptionBudget", plural="poddisruptionbudgets",
    singular="poddisruptionbudget", namespaced=True, schema_type="io.k8s.api.policy.v1.PodDisruptionBudget",
    short_names=("pdb",), subresources=(Subresource("status", kind="PodDisruptionBudget"),), has_status=True,
    columns=COLUMNS, row=row, validate=validate,
    prepare_create=prepare_create, prepare_update=rollout.prepare_update_with(_no_defaults),
)

RESOURCES: tuple[ResourceInfo, ...] = (PODDISRUPTIONBUDGETS,)
