"""TTL after finished: delete a finished Job ``spec.ttlSecondsAfterFinished`` seconds later.

::

    Job with ttlSecondsAfterFinished and a Complete or Failed condition (True)
      │  finished at = that condition's lastTransitionTime (else status.completionTime)
      │  expires at  = finished at + ttlSecondsAfterFinished
      ├─ not yet:  look again when it expires (the work queue's delay)
      └─ expired:  GET it fresh (the TTL may have been changed or removed meanwhile),
                   then DELETE with propagationPolicy Foreground and a UID precondition,
                   so its pods are deleted first and a same-named successor is safe.

Time is the controller's injectable clock (wall time, compared with the API's
timestamps), so tests move it instead of sleeping.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from ..api.errors import StatusError
from ..api.kinds.meta.cells import parse_time
from ..client.informer import Informer, split_key
from ..client.resources import JOBS
from .reconciler import Controller, ControllerContext

Obj = dict[str, Any]
log = logging.getLogger(__name__)


def finished_at(job: Obj) -> float | None:
    """When the Job finished (epoch seconds), or None while it runs."""
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            when = parse_time(cond.get("lastTransitionTime")) or parse_time(status.get("completionTime"))
            return when.timestamp() if when else None
    return None


def expires_at(job: Obj) -> float | None:
    """When a finished Job with a TTL may be deleted (None: never, or not finished)."""
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        return None
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    done = finished_at(job)
    if ttl is None or done is None:
        return None
    return done + int(ttl)


class TTLAfterFinishedController(Controller):
    """Deletes finished Jobs once their TTL has passed (see module docstring)."""

    name: ClassVar[str] = "ttl-after-finished"
    workers: ClassVar[int] = 2
    component: ClassVar[str] = "ttl-after-finished-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.jobs: Informer = self.informer(JOBS)
        self.jobs.add_handler(on_add=self._maybe_enqueue,
                              on_update=lambda _old, new: self._maybe_enqueue(new))

    def _maybe_enqueue(self, job: Obj) -> None:
        if expires_at(job) is not None:
            self.enqueue(job)

    async def reconcile(self, key: str) -> float | None:
        job = self.jobs.get(key)
        if job is None:
            return None
        when = expires_at(job)
        if when is None:
            return None
        left = when - self.clock.time()
        if left > 0:
            return left
        namespace, name = split_key(key)
        try:  # the cache may be stale: decide on the latest Job
            fresh = await self.client.get(JOBS, name, namespace=namespace)
        except StatusError as e:
            if e.code == 404:
                return None
            raise
        when = expires_at(fresh)
        if when is None:
            return None
        left = when - self.clock.time()
        if left > 0:
            return left
        log.info("deleting finished job %s: its ttlSecondsAfterFinished has passed", key)
        try:
            await self.client.delete(JOBS, name, namespace=namespace, propagation_policy="Foreground",
                                     preconditions={"uid": fresh["metadata"]["uid"]})
        except StatusError as e:
            if e.code not in (404, 409):
                raise
        return None
