"""The ``scheduling.k8s.io/v1`` group: PriorityClass.

    NAME                      VALUE        GLOBAL-DEFAULT   AGE   PREEMPTIONPOLICY
    system-node-critical      2000001000   false            5m    PreemptLowerPriority
    high                      1000         false            1m    PreemptLowerPriority

User classes may not exceed 1,000,000,000; names starting ``system-`` are
reserved for the two built-in classes (:func:`system_priority_classes`, which
the API server creates at startup).  Value and preemption policy are immutable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import Cause
from ..resource import Column, ResourceInfo
from . import meta as m

Obj = dict[str, Any]

HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_PREFIX = "system-"
SYSTEM_CLUSTER_CRITICAL = "system-cluster-critical"
SYSTEM_NODE_CRITICAL = "system-node-critical"
#: name -> value of the built-in classes (neither is the global default).
SYSTEM_PRIORITIES = {SYSTEM_NODE_CRITICAL: 2_000_001_000, SYSTEM_CLUSTER_CRITICAL: 2_000_000_000}
PREEMPTION_POLICIES = ("PreemptLowerPriority", "Never")


def system_priority_classes() -> list[Obj]:
    """The built-in PriorityClasses, as the API server bootstraps them."""
    descriptions = {SYSTEM_NODE_CRITICAL: "Node-critical system pods; they stay on their node.",
                    SYSTEM_CLUSTER_CRITICAL: "Cluster-critical system pods; they may move between nodes."}
    return [{"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name},
             "value": value, "globalDefault": False, "description": descriptions[name],
             "preemptionPolicy": "PreemptLowerPriority"}
            for name, value in SYSTEM_PRIORITIES.items()]


def default(obj: Obj) -> None:
    if obj.get("preemptionPolicy") is None:
        obj["preemptionPolicy"] = "PreemptLowerPriority"


def _system_class_problem(name: str, value: int, global_default: bool) -> str | None:
    if name not in SYSTEM_PRIORITIES:
        return f"{name} is not a known system priority class"
    if value != SYSTEM_PRIORITIES[name]:
        return f"value of {name} PriorityClass must be {SYSTEM_PRIORITIES[name]}"
    if global_default:
        return f"globalDefault of {name} PriorityClass must be false"
    return None


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    value = obj.get("value") or 0
    if old is not None:
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        if value != (old.get("value") or 0):
            causes.append(m.forbidden("value", "may not be changed in an update."))
        causes += m.validate_immutable(obj.get("preemptionPolicy"), old.get("preemptionPolicy"), "preemptionPolicy")
        return causes
    causes = m.validate_object_meta(obj.get("metadata"), False)
    name = m.object_name(obj)
    if name.startswith(SYSTEM_PREFIX):
        problem = _system_class_problem(name, value, bool(obj.get("globalDefault")))
        if problem:
            causes.append(m.forbidden("metadata.name", f"priority class names with '{SYSTEM_PREFIX}' prefix are "
                                      f"reserved for system use only. error: {problem}"))
    elif value > HIGHEST_USER_DEFINABLE_PRIORITY:
        causes.append(m.forbidden("value", "maximum allowed value of a user defined priority is "
                                  f"{HIGHEST_USER_DEFINABLE_PRIORITY}"))
    policy = obj.get("preemptionPolicy")
    if policy is not None and policy not in PREEMPTION_POLICIES:
        causes.append(m.not_supported("preemptionPolicy", policy, PREEMPTION_POLICIES))
    return causes


COLUMNS = (
    m.NAME_COLUMN,
    Column("Value", type="integer", description="Priority of pods using this class."),
    Column("Global-Default", type="boolean", description="Whether pods without a class get this one."),
    m.AGE_COLUMN,
    Column("PreemptionPolicy", description="Whether pods of this class may preempt others."),
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), obj.get("value", 0), bool(obj.get("globalDefault") or False),
            m.object_age(obj, now), obj.get("preemptionPolicy") or ""]


PRIORITYCLASSES = ResourceInfo(
    group="scheduling.k8s.io", version="v1", kind="PriorityClass", plural="priorityclasses",
    singular="priorityclass", namespaced=False, schema_type="io.k8s.api.scheduling.v1.PriorityClass",
    short_names=("pc",), columns=COLUMNS, row=row, default=default, validate=validate,
)

RESOURCES: tuple[ResourceInfo, ...] = (PRIORITYCLASSES,)
