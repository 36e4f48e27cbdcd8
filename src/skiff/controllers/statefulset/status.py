"""A StatefulSet's status, counted from its member pods.

::

    replicas           members that exist (condemned ones too, until they are gone)
    readyReplicas      Running with Ready=True
    availableReplicas  ready for minReadySeconds
    currentReplicas    not terminating, labelled with the current revision
    updatedReplicas    not terminating, labelled with the update revision
    currentRevision / updateRevision / collisionCount / observedGeneration

A RollingUpdate is finished when every one of ``spec.replicas`` members exists,
is ready and runs the update revision: the update revision then becomes the
current one (``kubectl rollout status`` waits for exactly that).
"""

from __future__ import annotations

from typing import Any

from .. import podstate
from . import identity as ident
from .revisions import Revisions

Obj = dict[str, Any]

#: The fields a status write compares (absent counts are 0).
FIELDS = ("observedGeneration", "replicas", "readyReplicas", "currentReplicas", "updatedReplicas",
          "availableReplicas", "currentRevision", "updateRevision", "collisionCount")


def is_running_and_ready(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and podstate.is_ready(pod)


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    return is_running_and_ready(pod) and podstate.is_available(pod, min_ready_seconds, now)


def is_healthy(pod: Obj) -> bool:
    return is_running_and_ready(pod) and not podstate.is_terminating(pod)


def is_unavailable(pod: Obj | None, min_ready_seconds: int, now: float) -> bool:
    return pod is None or not is_healthy(pod) or not is_available(pod, min_ready_seconds, now)


def compute(sts: Obj, pods: list[Obj], revisions: Revisions, now: float) -> Obj:
    """The status for ``sts`` with these member pods."""
    spec = sts.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    replicas = ready = available = current = updated = 0
    for pod in pods:
        if not (pod.get("status") or {}).get("phase"):
            continue
        replicas += 1
        if is_running_and_ready(pod):
            ready += 1
            available += podstate.is_available(pod, min_ready, now)
        if not podstate.is_terminating(pod):
            revision = ident.revision_of(pod)
            current += revision == revisions.current_name
            updated += revision == revisions.update_name
    status: Obj = {
        "observedGeneration": sts["metadata"].get("generation"), "replicas": replicas,
        "readyReplicas": ready, "currentReplicas": current, "updatedReplicas": updated,
        "availableReplicas": available, "currentRevision": revisions.current_name,
        "updateRevision": revisions.update_name, "collisionCount": revisions.collision_count,
    }
    wanted = ident.replicas_of(sts)
    rolling = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    if rolling and updated == wanted and ready == wanted and replicas == wanted:
        status["currentReplicas"] = updated
        status["currentRevision"] = revisions.update_name
    return status


def differs(old: Obj, new: Obj) -> bool:
    return any((old.get(k) or 0) != (new.get(k) or 0) for k in FIELDS)
