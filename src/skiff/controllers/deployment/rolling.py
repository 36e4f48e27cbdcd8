"""RollingUpdate: replace pods a few at a time, within the surge and availability budget.

Each sync takes at most one step and returns; the next event (a pod became
available, a ReplicaSet was resized) triggers the next one::

    new RS exists or is created (sized within maxSurge)
      │
      ├─ new RS below target and total < replicas + maxSurge ─▶ scale new RS up, stop
      │
      ├─ old pods exist and available > replicas - maxUnavailable
      │     1. first scale down old ReplicaSets' *unhealthy* pods (not available:
      │        they serve nobody), oldest ReplicaSet first
      │     2. then healthy ones, as far as availability allows ─▶ stop if anything moved
      │
      └─ nothing to do: clean up old ReplicaSets if the rollout is complete

so at every moment: pods (counted by ReplicaSet sizes) <= replicas + maxSurge,
and available pods >= replicas - maxUnavailable (once they were).
"""

from __future__ import annotations

from typing import Any

from . import history as h
from . import progress as p
from . import replicas as r
from .sync import DeploymentSync

Obj = dict[str, Any]


async def rollout(sync: DeploymentSync) -> None:
    new_rs, old = await sync.new_and_old(create=True)
    all_rss = old + ([new_rs] if new_rs is not None else [])
    scaled, new_rs = await _reconcile_new(sync, all_rss, new_rs)
    if scaled:
        await sync.write_rollout_status(new_rs, old)
        return
    all_rss = old + ([new_rs] if new_rs is not None else [])
    if await _reconcile_old(sync, all_rss, [rs for rs in old if r.spec_replicas(rs) > 0], new_rs):
        await sync.write_rollout_status(new_rs, _fresh(sync, old))
        return
    if p.is_complete(sync.d, sync.d.get("status") or {}):
        await sync.cleanup(old)
    await sync.write_rollout_status(new_rs, old)


def _fresh(sync: DeploymentSync, rss: list[Obj]) -> list[Obj]:
    """``rss`` as last written during this sync."""
    by_uid = {rs["metadata"]["uid"]: rs for rs in sync.rss}
    return [by_uid.get(rs["metadata"]["uid"], rs) for rs in rss]


async def _reconcile_new(sync: DeploymentSync, all_rss: list[Obj], new_rs: Obj | None
                         ) -> tuple[bool, Obj | None]:
    if new_rs is None:
        return False, None
    wanted = r.desired_replicas(sync.d)
    current = r.spec_replicas(new_rs)
    if current == wanted:
        return False, new_rs
    if current > wanted:
        return await sync.scale_rs(new_rs, wanted)
    return await sync.scale_rs(new_rs, r.new_rs_replicas(sync.d, all_rss, new_rs))


async def _reconcile_old(sync: DeploymentSync, all_rss: list[Obj], old: list[Obj],
                         new_rs: Obj | None) -> bool:
    if r.total_spec(old) == 0:
        return False
    min_available = r.desired_replicas(sync.d) - r.max_unavailable(sync.d)
    new_unavailable = r.spec_replicas(new_rs) - r.status_count(new_rs, "availableReplicas")
    most_to_remove = r.total_spec(all_rss) - min_available - new_unavailable
    if most_to_remove <= 0:
        return False
    old, cleaned = await _scale_down_unhealthy(sync, old, most_to_remove)
    all_rss = old + ([new_rs] if new_rs is not None else [])
    scaled = await _scale_down_healthy(sync, all_rss, old)
    return cleaned + scaled > 0


async def _scale_down_unhealthy(sync: DeploymentSync, old: list[Obj], budget: int
                                ) -> tuple[list[Obj], int]:
    """Remove not-available pods of old ReplicaSets first (up to ``budget``)."""
    removed = 0
    out: list[Obj] = []
    for rs in h.by_creation(old):
        size = r.spec_replicas(rs)
        unhealthy = size - r.status_count(rs, "availableReplicas")
        if removed >= budget or size == 0 or unhealthy <= 0:
            out.append(rs)
            continue
        step = min(budget - removed, unhealthy)
        _, rs = await sync.scale_rs(rs, size - step)
        removed += step
        out.append(rs)
    return out, removed


async def _scale_down_healthy(sync: DeploymentSync, all_rss: list[Obj], old: list[Obj]) -> int:
    """Remove available old pods while availability stays above the minimum."""
    min_available = r.desired_replicas(sync.d) - r.max_unavailable(sync.d)
    available = sum(r.surviving_available(rs) for rs in all_rss)
    if available <= min_available:
        return 0
    budget = available - min_available
    removed = 0
    for rs in h.by_creation(old):
        if removed >= budget:
            break
        size = r.spec_replicas(rs)
        if size == 0:
            continue
        step = min(size, budget - removed)
        await sync.scale_rs(rs, size - step)
        removed += step
    return removed
