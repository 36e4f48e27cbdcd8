"""A CronJob's Jobs: the active list, finished Jobs, and the history limits.

``status.active`` holds ObjectReferences to the Jobs the CronJob started and
has not yet seen finish.  Finished Jobs are kept as history: at most
``successfulJobsHistoryLimit`` Complete ones (default 3) and
``failedJobsHistoryLimit`` Failed ones (default 1); beyond that the oldest (by
``status.startTime``, never-started last, then by name) are deleted, in the
background (their pods are left to the garbage collector)::

    SuccessfulDelete  "Deleted job hello-28958400"
    FailedDelete      "Deleted job: <error>"              (Warning)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from ...api.errors import StatusError
from ...api.kinds.meta.cells import format_time, parse_time
from ...client.resources import JOBS
from ...client.rest import ApiClient, TransportError
from ..events import NORMAL, WARNING

Obj = dict[str, Any]


class Host(Protocol):
    client: ApiClient

    def record_event(self, obj: Obj, type_: str, reason: str, message: str) -> None: ...


def active_refs(cronjob: Obj) -> list[Obj]:
    return list((cronjob.get("status") or {}).get("active") or [])


def in_active(cronjob: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in active_refs(cronjob))


def drop_active(cronjob: Obj, uid: str) -> None:
    cronjob.setdefault("status", {})["active"] = [
        ref for ref in active_refs(cronjob) if ref.get("uid") != uid]


def finished_type(job: Obj) -> str | None:
    """``Complete`` or ``Failed`` for a finished Job, else None."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return str(cond["type"])
    return None


def stamp(when: datetime) -> str:
    return format_time(when)


def later(a: str, b: str) -> bool:
    """Is timestamp ``a`` after timestamp ``b``?"""
    ta, tb = parse_time(a), parse_time(b)
    return ta is not None and (tb is None or ta > tb)


def _age_order(job: Obj) -> tuple[int, float, str]:
    start = parse_time((job.get("status") or {}).get("startTime"))
    name = str(job["metadata"]["name"])
    return (0, start.timestamp(), name) if start else (1, 0.0, name)


async def delete_job(host: Host, cronjob: Obj, job: Obj) -> bool:
    """Delete ``job`` (background propagation) and drop it from the active list."""
    meta = job["metadata"]
    try:
        await host.client.delete(JOBS, meta["name"], namespace=meta.get("namespace"),
                                 propagation_policy="Background")
    except (StatusError, TransportError) as e:
        if isinstance(e, StatusError) and e.code == 404:
            drop_active(cronjob, str(meta.get("uid")))
            return True  # gone already
        host.record_event(cronjob, WARNING, "FailedDelete", f"Deleted job: {e}")
        return False
    drop_active(cronjob, str(meta.get("uid")))
    host.record_event(cronjob, NORMAL, "SuccessfulDelete", f"Deleted job {meta['name']}")
    return True


async def clean_up(host: Host, cronjob: Obj, jobs: list[Obj]) -> bool:
    """Enforce both history limits; True when the status (active list) changed."""
    spec = cronjob.get("spec") or {}
    changed = False
    for kind, limit in (("Complete", spec.get("successfulJobsHistoryLimit")),
                        ("Failed", spec.get("failedJobsHistoryLimit"))):
        if limit is None:
            continue
        finished = sorted((j for j in jobs if finished_type(j) == kind
                           and not j["metadata"].get("deletionTimestamp")), key=_age_order)
        for job in finished[:max(0, len(finished) - int(limit))]:
            if await delete_job(host, cronjob, job):
                changed = True
    return changed
