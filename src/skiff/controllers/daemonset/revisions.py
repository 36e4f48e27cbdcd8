"""A DaemonSet's ControllerRevisions: the current one, the old ones, and cleanup.

::

    revisions holding the DaemonSet's template now:
        none      ─▶ create <ds>-<hash> (revision: highest old + 1; a taken name with
                     other data raises collisionCount and tries the next name)
        several   ─▶ keep the highest-numbered one, delete the others
        one       ─▶ it; renumbered to highest old + 1 if it is lower (a rollback)
    hash = its controller-revision-hash label; pods with that label are up to date

Cleanup keeps at most ``revisionHistoryLimit`` old revisions, deleting the
lowest-numbered first but never one whose hash a pod still carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...client.rest import ApiClient
from .. import history

Obj = dict[str, Any]


@dataclass(frozen=True)
class History:
    current: Obj
    old: list[Obj]
    collision_count: int

    @property
    def hash(self) -> str:
        return str(((self.current.get("metadata") or {}).get("labels") or {})
                   .get(history.CONTROLLER_REVISION_HASH, ""))


def _snapshot(ds: Obj, number: int, collision_count: int) -> Obj:
    return history.new_revision(
        ds, api_version="apps/v1", kind="DaemonSet", data=history.template_patch(ds),
        revision=number, collision_count=collision_count,
        hash_label=history.CONTROLLER_REVISION_HASH,
        annotations=(ds.get("metadata") or {}).get("annotations"))


async def construct(client: ApiClient, ds: Obj, revisions: list[Obj]) -> History:
    """Find or make the current revision (see module docstring)."""
    probe = {"data": history.template_patch(ds)}
    current = [r for r in revisions if history.same_data(r, probe)]
    old = [r for r in revisions if not history.same_data(r, probe)]
    number = history.next_number(old)
    collision_count = int((ds.get("status") or {}).get("collisionCount") or 0)
    if not current:
        created, collision_count = await history.create_revision(
            client, lambda count: _snapshot(ds, number, count), collision_count)
        return History(created, old, collision_count)
    keep = history.sort_revisions(current)[-1]
    for duplicate in current:
        if duplicate is not keep:
            await history.delete_revision(client, duplicate)
    if history.number(keep) < number:
        keep = await history.renumber(client, keep, number)
    return History(keep, old, collision_count)


def to_clean_up(ds: Obj, old: list[Obj], pods: list[Obj]) -> list[Obj]:
    """Old revisions beyond revisionHistoryLimit that no pod uses, lowest first."""
    limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
    extra = len(old) - int(10 if limit is None else limit)
    if extra <= 0:
        return []
    live = {((p.get("metadata") or {}).get("labels") or {}).get(history.CONTROLLER_REVISION_HASH)
            for p in pods}
    out: list[Obj] = []
    for revision in history.sort_revisions(old):
        if len(out) >= extra:
            break
        labels = (revision.get("metadata") or {}).get("labels") or {}
        if labels.get(history.CONTROLLER_REVISION_HASH) in live:
            continue
        out.append(revision)
    return out
