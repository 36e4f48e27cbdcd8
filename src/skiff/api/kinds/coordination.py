"""The ``coordination.k8s.io/v1`` group: Lease (leader election, node heartbeats).

    NAME             HOLDER                AGE
    kube-scheduler   skiff-0_8f1c2d3e      5m
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import Cause
from ..resource import Column, ResourceInfo
from . import meta as m

Obj = dict[str, Any]

STRATEGIES = ("OldestEmulationVersion",)


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        causes = m.validate_object_meta(obj.get("metadata"), True)
    else:
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    spec = obj.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        causes.append(m.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    causes += m.validate_nonnegative(spec.get("leaseTransitions"), "spec.leaseTransitions")
    strategy = spec.get("strategy")
    if strategy is not None and strategy not in STRATEGIES:
        causes.append(m.not_supported("spec.strategy", strategy, STRATEGIES))
    return causes


COLUMNS = (
    m.NAME_COLUMN,
    Column("Holder", description="Identity of the current holder."),
    m.AGE_COLUMN,
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), m.get_path(obj, "spec.holderIdentity", ""), m.object_age(obj, now)]


LEASES = ResourceInfo(
    group="coordination.k8s.io", version="v1", kind="Lease", plural="leases", singular="lease",
    namespaced=True, schema_type="io.k8s.api.coordination.v1.Lease",
    columns=COLUMNS, row=row, validate=validate,
)

RESOURCES: tuple[ResourceInfo, ...] = (LEASES,)
