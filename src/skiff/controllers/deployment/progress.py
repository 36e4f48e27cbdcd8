"""Deployment status and conditions: is it available, is it progressing, is it stuck?

Status is recomputed from the ReplicaSets on every sync::

    replicas            pods of all its ReplicaSets (status.replicas summed)
    updatedReplicas     pods of the new ReplicaSet
    readyReplicas       ready pods, availableReplicas: available pods (summed)
    unavailableReplicas spec.replicas - availableReplicas (never negative)
    observedGeneration  the generation this status describes

Conditions (type / status / reason)::

    Available    True  MinimumReplicasAvailable    at least replicas - maxUnavailable available
                 False MinimumReplicasUnavailable
    Progressing  True  NewReplicaSetCreated        a new ReplicaSet was just created
                 True  FoundNewReplicaSet          an existing one became the new one
                 True  ReplicaSetUpdated           pods moved since the last sync
                 True  NewReplicaSetAvailable      the rollout completed
                 False ProgressDeadlineExceeded    nothing moved for progressDeadlineSeconds
                 Unknown DeploymentPaused / DeploymentResumed
    ReplicaFailure True FailedCreate (copied from the new ReplicaSet) | FailedRSCreate

A condition keeps its ``lastTransitionTime`` while its status stays the same;
``lastUpdateTime`` moves whenever it is rewritten.  The progress deadline is
measured from the Progressing condition's ``lastUpdateTime``.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from ...api.kinds.meta.cells import format_time, parse_time
from . import replicas as r

Obj = dict[str, Any]

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"

MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"
NEW_RS_CREATED = "NewReplicaSetCreated"
FOUND_NEW_RS = "FoundNewReplicaSet"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"
FAILED_RS_CREATE = "FailedRSCreate"

#: progressDeadlineSeconds at this value means "no deadline" (math.MaxInt32).
NO_DEADLINE = 2**31 - 1


def stamp(now: float) -> str:
    return format_time(datetime.fromtimestamp(now, timezone.utc))


def condition(status: Obj, type_: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return cond  # type: ignore[no-any-return]
    return None


def new_condition(type_: str, status: str, reason: str, message: str, now: float) -> Obj:
    when = stamp(now)
    return {"type": type_, "status": status, "lastUpdateTime": when,
            "lastTransitionTime": when, "reason": reason, "message": message}


def set_condition(status: Obj, cond: Obj) -> None:
    """Put ``cond`` in place of its type's condition (no-op if status and reason match)."""
    current = condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] \
            and current.get("reason") == cond["reason"]:
        return
    if current is not None and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_condition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_condition(status: Obj, type_: str) -> None:
    kept = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if kept:
        status["conditions"] = kept
    else:
        status.pop("conditions", None)


def has_deadline(d: Obj) -> bool:
    deadline = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return deadline is not None and int(deadline) != NO_DEADLINE


def calculate(d: Obj, all_rss: list[Obj], new_rs: Obj | None, now: float) -> Obj:
    """The Deployment's status computed from its ReplicaSets (conditions carried over)."""
    old = d.get("status") or {}
    available = r.total_status(all_rss, "availableReplicas")
    wanted = r.desired_replicas(d)
    status: Obj = {
        "observedGeneration": d["metadata"].get("generation"),
        "replicas": r.total_status(all_rss, "replicas"),
        "updatedReplicas": r.status_count(new_rs, "replicas"),
        "readyReplicas": r.total_status(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(0, wanted - available),
    }
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    if available >= wanted - r.max_unavailable(d):
        set_condition(status, new_condition(AVAILABLE, "True", MIN_AVAILABLE,
                                            "Deployment has minimum availability.", now))
    else:
        set_condition(status, new_condition(AVAILABLE, "False", MIN_UNAVAILABLE,
                                            "Deployment does not have minimum availability.", now))
    return status


def is_complete(d: Obj, status: Obj) -> bool:
    """Every replica updated and available, and this status is of the current spec."""
    wanted = r.desired_replicas(d)
    return (int(status.get("updatedReplicas") or 0) == wanted
            and int(status.get("replicas") or 0) == wanted
            and int(status.get("availableReplicas") or 0) == wanted
            and int(status.get("observedGeneration") or 0) >= int(d["metadata"].get("generation") or 0))


def is_progressing(d: Obj, status: Obj) -> bool:
    """Did pods move forward since the status the Deployment has now?"""
    old = d.get("status") or {}

    def count(s: Obj, k: str) -> int:
        return int(s.get(k) or 0)
    old_old_pods = count(old, "replicas") - count(old, "updatedReplicas")
    new_old_pods = count(status, "replicas") - count(status, "updatedReplicas")
    return (count(status, "updatedReplicas") > count(old, "updatedReplicas")
            or count(status, "readyReplicas") > count(old, "readyReplicas")
            or count(status, "availableReplicas") > count(old, "availableReplicas")
            or new_old_pods < old_old_pods)


def deadline_at(d: Obj, status: Obj) -> float | None:
    """When the current Progressing condition runs out (None: no running clock)."""
    if not has_deadline(d):
        return None
    cond = condition(status, PROGRESSING)
    if cond is None or cond.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT):
        return None
    since = parse_time(cond.get("lastUpdateTime"))
    if since is None:
        return None
    return since.timestamp() + int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0)


def is_timed_out(d: Obj, status: Obj, now: float) -> bool:
    cond = condition(status, PROGRESSING)
    if not has_deadline(d) or cond is None:
        return False
    if cond.get("reason") == TIMED_OUT:
        return True
    at = deadline_at(d, status)
    return at is not None and at < now


def _subject(new_rs: Obj | None, d: Obj) -> str:
    if new_rs is not None:
        return f'ReplicaSet "{new_rs["metadata"]["name"]}"'
    return f'Deployment "{d["metadata"]["name"]}"'


def rollout_status(d: Obj, all_rss: list[Obj], new_rs: Obj | None, now: float) -> Obj:
    """Status including the Progressing and ReplicaFailure conditions (syncRolloutStatus)."""
    status = calculate(d, all_rss, new_rs, now)
    if not has_deadline(d):
        remove_condition(status, PROGRESSING)
    current = condition(status, PROGRESSING)
    complete = (int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
                and current is not None and current.get("reason") == NEW_RS_AVAILABLE)
    if has_deadline(d) and not complete:
        if is_complete(d, status):
            set_condition(status, new_condition(
                PROGRESSING, "True", NEW_RS_AVAILABLE,
                f"{_subject(new_rs, d)} has successfully progressed.", now))
        elif is_progressing(d, status):
            cond = new_condition(PROGRESSING, "True", RS_UPDATED,
                                 f"{_subject(new_rs, d)} is progressing.", now)
            if current is not None and current.get("status") == "True":
                cond["lastTransitionTime"] = current.get("lastTransitionTime")
            remove_condition(status, PROGRESSING)
            set_condition(status, cond)
        elif is_timed_out(d, status, now):
            set_condition(status, new_condition(
                PROGRESSING, "False", TIMED_OUT,
                f"{_subject(new_rs, d)} has timed out progressing.", now))
    failure = condition((new_rs or {}).get("status") or {}, REPLICA_FAILURE)
    if failure is not None:
        set_condition(status, {"type": REPLICA_FAILURE, "status": failure.get("status"),
                               "lastUpdateTime": failure.get("lastTransitionTime"),
                               "lastTransitionTime": failure.get("lastTransitionTime"),
                               "reason": failure.get("reason"), "message": failure.get("message")})
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def comparable(status: Obj) -> Obj:
    """``status`` without empty counts (they are omitted on the wire)."""
    return {k: v for k, v in status.items() if v not in (None, 0, [], {})}
