"""Recreate: stop every old pod, then start the new ones.

::

    scale every old ReplicaSet to 0 ─▶ (stop; wait for the RS controller)
    old pods still running (any phase but Succeeded/Failed) ─▶ wait
    create the new ReplicaSet if needed, scale it to spec.replicas
    rollout complete ─▶ clean up old ReplicaSets beyond revisionHistoryLimit

There is a window with no pods at all: that is the point of Recreate (two
versions never run side by side).
"""

from __future__ import annotations

from typing import Any

from . import progress as p
from . import replicas as r
from .sync import DeploymentSync

Obj = dict[str, Any]


async def rollout(sync: DeploymentSync, pods_of: dict[str, list[Obj]]) -> None:
    """``pods_of`` maps ReplicaSet UID to its pods (from the pod cache)."""
    new_rs, old = await sync.new_and_old(create=False)
    scaled = False
    for rs in old:
        if r.spec_replicas(rs) > 0:
            await sync.scale_rs(rs, 0)
            scaled = True
    if scaled:
        await sync.write_rollout_status(new_rs, old)
        return
    if _old_pods_running(new_rs, old, pods_of):
        await sync.write_rollout_status(new_rs, old)
        return
    if new_rs is None:
        new_rs, old = await sync.new_and_old(create=True)
    if new_rs is not None:
        _, new_rs = await sync.scale_rs(new_rs, r.desired_replicas(sync.d))
    if p.is_complete(sync.d, sync.d.get("status") or {}):
        await sync.cleanup(old)
    await sync.write_rollout_status(new_rs, old)


def _old_pods_running(new_rs: Obj | None, old: list[Obj], pods_of: dict[str, list[Obj]]) -> bool:
    if r.total_status(old, "replicas") > 0:
        return True
    new_uid = new_rs["metadata"]["uid"] if new_rs is not None else None
    for uid, pods in pods_of.items():
        if uid == new_uid:
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                return True
    return False
