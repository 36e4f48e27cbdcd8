"""Node health as data: Unknown conditions, taints from conditions, tolerations.

Pure functions shared by the node lifecycle controller and the taint eviction
controller (no I/O, no clock of their own).

Conditions a silent node gets (the kubelet stopped renewing its Lease)::

    Ready, MemoryPressure, DiskPressure, PIDPressure
        -> status Unknown, reason NodeStatusUnknown,
           message "Kubelet stopped posting node status."
           (a condition it never posted: NodeStatusNeverUpdated,
            "Kubelet never posted node status.")
    NetworkUnavailable is left alone (the network plugin owns it)

Taints kept in sync with the conditions (Kubernetes' ``node.kubernetes.io/*``)::

    Ready False        not-ready:NoSchedule    + not-ready:NoExecute   (timeAdded)
    Ready Unknown      unreachable:NoSchedule  + unreachable:NoExecute (timeAdded)
    MemoryPressure True  memory-pressure:NoSchedule   (DiskPressure, PIDPressure,
    NetworkUnavailable True -> disk-pressure, pid-pressure, network-unavailable)
    spec.unschedulable   unschedulable:NoSchedule

Other taints (an admin's, a cloud provider's) are never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

Obj = dict[str, Any]

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

#: (condition type, status) -> the NoSchedule taint key it calls for.
CONDITION_TAINTS: Mapping[tuple[str, str], str] = {
    ("Ready", "False"): NOT_READY,
    ("Ready", "Unknown"): UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
}
#: Every (key, effect) this controller owns.
MANAGED: frozenset[tuple[str, str]] = frozenset(
    {(k, NO_SCHEDULE) for k in CONDITION_TAINTS.values()} | {(UNSCHEDULABLE, NO_SCHEDULE)}
    | {(NOT_READY, NO_EXECUTE), (UNREACHABLE, NO_EXECUTE)})

#: Conditions turned Unknown when the kubelet goes silent, in the order they are added.
SILENCED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."
NEVER_REASON = "NodeStatusNeverUpdated"
NEVER_MESSAGE = "Kubelet never posted node status."


def condition(node: Obj, ctype: str) -> Obj | None:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond  # type: ignore[no-any-return]
    return None


def ready_status(node: Obj) -> str:
    """``True`` | ``False`` | ``Unknown`` (no Ready condition at all counts as Unknown)."""
    cond = condition(node, "Ready")
    return str(cond.get("status") or "Unknown") if cond else "Unknown"


def silenced_conditions(node: Obj, now: str) -> list[Obj] | None:
    """The node's conditions with the kubelet-posted ones set to Unknown (None: no change)."""
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
    by_type = {c.get("type"): c for c in conditions}
    changed = False
    for ctype in SILENCED_CONDITIONS:
        cond = by_type.get(ctype)
        if cond is None:
            created = (node.get("metadata") or {}).get("creationTimestamp")
            conditions.append({"type": ctype, "status": "Unknown", "lastHeartbeatTime": created,
                               "lastTransitionTime": now, "reason": NEVER_REASON,
                               "message": NEVER_MESSAGE})
            changed = True
        elif cond.get("status") != "Unknown":
            cond.update(status="Unknown", reason=UNKNOWN_REASON, message=UNKNOWN_MESSAGE,
                        lastTransitionTime=now)
            changed = True
    return conditions if changed else None


def desired_taints(node: Obj, *, no_execute: str = "taint", now: str) -> list[Obj]:
    """``spec.taints`` as it should be: others' taints kept, ours from the conditions.

    ``no_execute`` says what to do with the NoExecute taint a not-Ready node
    calls for: ``taint`` (add it, or keep it), ``hold`` (keep one that is
    there, add none: a disrupted zone) or ``clear`` (remove it: every zone is
    disrupted, the problem is more likely ours than the nodes').  Taints
    already present keep their ``timeAdded``; new NoExecute taints get ``now``.
    """
    current = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
    wanted: list[tuple[str, str]] = []
    for cond in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get((str(cond.get("type")), str(cond.get("status"))))
        if key:
            wanted.append((key, NO_SCHEDULE))
    if (node.get("spec") or {}).get("unschedulable"):
        wanted.append((UNSCHEDULABLE, NO_SCHEDULE))
    ready = ready_status(node)
    held: tuple[str, str] | None = None
    if ready != "True" and no_execute != "clear":
        wanted_ne = (NOT_READY if ready == "False" else UNREACHABLE, NO_EXECUTE)
        if no_execute == "taint":
            wanted.append(wanted_ne)
        else:
            held = wanted_ne
    out = [t for t in current if (t.get("key"), t.get("effect")) not in MANAGED
           or (t.get("key"), t.get("effect")) in wanted or (t.get("key"), t.get("effect")) == held]
    have = {(t.get("key"), t.get("effect")) for t in out}
    for key, effect in dict.fromkeys(wanted):
        if (key, effect) not in have:
            taint: Obj = {"key": key, "effect": effect}
            if effect == NO_EXECUTE:
                taint["timeAdded"] = now
            out.append(taint)
    return out


def no_execute_taints(node: Obj | None) -> list[Obj]:
    if node is None:
        return []
    return [t for t in (node.get("spec") or {}).get("taints") or []
            if isinstance(t, dict) and t.get("effect") == NO_EXECUTE]


def toleration_matches(toleration: Obj, taint: Obj) -> bool:
    """Kubernetes' ToleratesTaint: effect (empty = all), key (empty + Exists = all), value."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def toleration_window(taints: Iterable[Obj], tolerations: Iterable[Obj]) -> float | None:
    """How long a pod may stay on a node with these NoExecute taints.

    0: evict now (a taint is not tolerated, or tolerated for <= 0 s);
    None: forever (every matching toleration has no ``tolerationSeconds``);
    otherwise the smallest ``tolerationSeconds`` among the tolerations used.
    """
    tols = list(tolerations)
    shortest: float | None = None
    for taint in taints:
        used = [t for t in tols if toleration_matches(t, taint)]
        if not used:
            return 0.0
        for tol in used:
            seconds = tol.get("tolerationSeconds")
            if seconds is None:
                continue
            if int(seconds) <= 0:
                return 0.0
            shortest = float(seconds) if shortest is None else min(shortest, float(seconds))
    return shortest
