"""A DaemonSet's status, counted per node (``kubectl get ds`` and ``rollout status`` read it).

::

    desiredNumberScheduled   nodes that should run the pod
    currentNumberScheduled   ... and have one
    numberMisscheduled       nodes that should not run it but have one
    numberReady              nodes whose (oldest) pod is Ready
    numberAvailable          ... and ready for minReadySeconds
    numberUnavailable        desired - available
    updatedNumberScheduled   nodes whose (oldest) pod runs the current revision
    observedGeneration       raised only by a sync that saw all its own writes
    collisionCount           revision name collisions so far
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import podstate
from .placement import should_run
from .pods import is_updated, oldest_first

Obj = dict[str, Any]

FIELDS = ("desiredNumberScheduled", "currentNumberScheduled", "numberMisscheduled", "numberReady",
          "updatedNumberScheduled", "numberAvailable", "numberUnavailable", "observedGeneration",
          "collisionCount")


def compute(ds: Obj, nodes: Iterable[Obj], node_pods: dict[str, list[Obj]], spec: Obj, hash_: str,
            generation: str | None, now: float) -> Obj:
    """Status counts (without observedGeneration / collisionCount, which the caller decides)."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    desired = current = misscheduled = ready = available = updated = 0
    for node in nodes:
        run, _ = should_run(node, ds, spec)
        pods = node_pods.get(str(node["metadata"]["name"])) or []
        if not run:
            misscheduled += bool(pods)
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        pod = oldest_first(pods)[0]
        is_ready, is_available = podstate.readiness(pod, min_ready, now)
        ready += is_ready
        available += is_available
        updated += is_updated(pod, hash_, generation)
    return {"desiredNumberScheduled": desired, "currentNumberScheduled": current,
            "numberMisscheduled": misscheduled, "numberReady": ready,
            "updatedNumberScheduled": updated, "numberAvailable": available,
            "numberUnavailable": desired - available}


def differs(old: Obj, new: Obj) -> bool:
    return any((old.get(k) or 0) != (new.get(k) or 0) for k in FIELDS)
