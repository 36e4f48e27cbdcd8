"""A StatefulSet's current and update revisions.

::

    candidate = revision of the set's template now (number: highest + 1)
    the newest revision holds that template      ─▶ update revision = it
    an older one does (a rollback)                ─▶ renumber it to highest + 1
    none does                                     ─▶ create it (collisionCount grows
                                                      while its name is taken)
    current revision = the one named status.currentRevision, or (first sync) the update one

Pods below the partition are made from the current revision, the others from
the update revision; a finished rolling update makes the update revision current
(see :mod:`.status`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...client.rest import ApiClient
from .. import history

Obj = dict[str, Any]


@dataclass(frozen=True)
class Revisions:
    current: Obj
    update: Obj
    collision_count: int

    @property
    def current_name(self) -> str:
        return str(self.current["metadata"]["name"])

    @property
    def update_name(self) -> str:
        return str(self.update["metadata"]["name"])


def _candidate(sts: Obj, number: int, collision_count: int) -> Obj:
    return history.new_revision(
        sts, api_version="apps/v1", kind="StatefulSet", data=history.template_patch(sts),
        revision=number, collision_count=collision_count, hash_label=history.REVISION_HASH,
        annotations=(sts.get("metadata") or {}).get("annotations"))


async def resolve(client: ApiClient, sts: Obj, revisions: list[Obj]) -> Revisions:
    """Find or make the update revision; ``revisions`` sorted (see module docstring)."""
    status = sts.get("status") or {}
    collision_count = int(status.get("collisionCount") or 0)
    number = history.next_number(revisions)
    candidate = _candidate(sts, number, collision_count)
    equal = [r for r in revisions if history.same_data(r, candidate)]
    if equal and equal[-1] is revisions[-1]:
        update = revisions[-1]
    elif equal:
        update = await history.renumber(client, equal[-1], number)
    else:
        update, collision_count = await history.create_revision(
            client, lambda count: _candidate(sts, number, count), collision_count)
    current_name = status.get("currentRevision")
    current = next((r for r in revisions if r["metadata"].get("name") == current_name), update)
    return Revisions(current=current, update=update, collision_count=collision_count)
