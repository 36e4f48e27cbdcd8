"""When a CronJob runs, and the Job it runs then.

Times are aware datetimes; the schedule (``spec.schedule`` read in
``spec.timeZone``, or a ``TZ=``/``CRON_TZ=`` prefix) comes from
:mod:`skiff.api.kinds.batch.cron`, parsed as Kubernetes parses it.

The run due now is the most recent activation since the last one started
(``status.lastScheduleTime``, else the CronJob's creation), and no older than
``startingDeadlineSeconds``::

    earliest = max(lastScheduleTime or creationTimestamp, now - startingDeadlineSeconds)
    t1 = next(earliest), t2 = next(t1)
    now < t1          nothing due
    now < t2          t1 is due
    else              several were missed: the latest one <= now is due
                      (more than 100 missed: also a TooManyMissedTimes warning)

Only the latest missed run is started, never a backlog.  The Job for the run
at ``t`` is named ``<cronjob>-<t in minutes since the epoch>`` -- the name is
the lock that keeps one run from starting twice -- and carries the template's
labels and annotations, ``batch.kubernetes.io/cronjob-scheduled-timestamp``
(``t`` in RFC 3339, in the CronJob's time zone) and a controller reference.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from ...api.kinds.batch import cron
from ...api.kinds.meta.cells import parse_time
from ..ownership import owner_reference

Obj = dict[str, Any]

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
#: More missed runs than this earn a TooManyMissedTimes warning.
MANY_MISSED = 100
#: Wake up a little after the activation (Kubernetes' nextScheduleDelta: clock skew).
WAKE_DELAY = 0.1


class ScheduleError(ValueError):
    """A schedule that parses but can never run sensibly (e.g. Feb 31)."""


def schedule_text(cronjob: Obj) -> str:
    """The schedule with its time zone, as the controller parses it."""
    spec = cronjob.get("spec") or {}
    schedule = str(spec.get("schedule") or "")
    zone = spec.get("timeZone")
    if "TZ" in schedule or zone is None:
        return schedule
    try:
        cron.load_location(zone)
    except cron.CronError:
        return schedule
    return f"TZ={zone} {schedule}"


def zone_of(cronjob: Obj) -> Any:
    return cron.load_location((cronjob.get("spec") or {}).get("timeZone") or "")


@dataclass(frozen=True)
class DueRun:
    """What :func:`most_recent` found."""

    earliest: datetime  # last schedule (or creation), or the starting deadline
    due: datetime | None  # the run to start now, if any
    missed: int = 0  # about how many runs were missed (0 when at most one is due)

    @property
    def many_missed(self) -> bool:
        return self.missed > MANY_MISSED


def most_recent(cronjob: Obj, now: datetime, schedule: cron.Schedule, *,
                with_deadline: bool) -> DueRun:
    """The most recent activation in ``(earliest, now]`` (see module docstring)."""
    meta = cronjob.get("metadata") or {}
    status = cronjob.get("status") or {}
    earliest = parse_time(status.get("lastScheduleTime")) or parse_time(
        meta.get("creationTimestamp")) or now
    deadline = (cronjob.get("spec") or {}).get("startingDeadlineSeconds")
    if with_deadline and deadline is not None:
        earliest = max(earliest, now - timedelta(seconds=int(deadline)))
    t1 = schedule.next(earliest)
    t2 = schedule.next(t1) if t1 is not None else None
    if t1 is None or t2 is None:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    if now < t1:
        return DueRun(earliest, None)
    if now < t2:
        return DueRun(earliest, t1)
    between = round((t2 - t1).total_seconds())
    if between < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    missed = int((now - t1).total_seconds()) // between + 1
    # Jump close to now (one interval early, so uneven schedules come out right), then walk.
    latest: datetime | None = None
    t = schedule.next(t1 + timedelta(seconds=(missed - 2) * between))
    while t is not None and t <= now:
        latest = t
        t = schedule.next(t)
    return DueRun(earliest, latest, missed)


def seconds_until_next(cronjob: Obj, now: datetime, schedule: cron.Schedule) -> float:
    """How long to wait before looking at the CronJob again (the next activation)."""
    try:
        run = most_recent(cronjob, now, schedule, with_deadline=False)
        base = run.due if run.due is not None else (run.earliest if not run.missed else now)
    except ScheduleError:
        base = now
    upcoming = schedule.next(base) or (now + timedelta(days=366))
    return (upcoming - now).total_seconds() + WAKE_DELAY


def job_name(cronjob: Obj, scheduled: datetime) -> str:
    return f"{cronjob['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def rfc3339(when: datetime) -> str:
    """Go's time.RFC3339: ``Z`` for UTC, else the numeric offset."""
    text = when.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def job_for(cronjob: Obj, scheduled: datetime) -> Obj:
    """The Job to create for the run at ``scheduled``."""
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = rfc3339(scheduled.astimezone(zone_of(cronjob)))
    meta: Obj = {"name": job_name(cronjob, scheduled),
                 "namespace": cronjob["metadata"].get("namespace"),
                 "annotations": annotations,
                 "ownerReferences": [owner_reference(cronjob, api_version="batch/v1",
                                                     kind="CronJob")]}
    if tmeta.get("labels"):
        meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)
