"""The CronJob controller: start a Job at every activation of a cron schedule.

One reconcile of ``namespace/name`` (level-triggered; the schedule requeues it)::

    CronJob gone ─▶ done
    our last status write not in the cache yet ─▶ wait (its watch event requeues us)
    history   finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit
              are deleted, oldest first                          (SuccessfulDelete)
    active    finished Jobs leave status.active                  (SawCompletedJob)
              a succeeded Job moves status.lastSuccessfulTime on
              unfinished Jobs we did not start                   (UnexpectedJob)
              listed Jobs that no longer exist leave it          (MissingJob)
    stop here when the CronJob is being deleted, its time zone is unknown, it is
    suspended, or its schedule is unusable
    due run (schedule.py): none ─▶ look again at the next activation
              older than startingDeadlineSeconds                 (MissSchedule; rare,
                                as the due run is sought inside that window)
              already started (its Job is listed / lastScheduleTime) ─▶ wait
              Forbid and a Job still runs                        (JobAlreadyActive)
              Replace: delete the running Jobs first             (SuccessfulDelete)
              create the Job ─▶ status.active += it, lastScheduleTime = the run
                                                                 (SuccessfulCreate)
    write the status if it changed; look again at the next activation

All time comes from the controller's clock (``ControllerContext.clock``), so a
test moves a fake clock across minute boundaries instead of waiting for them.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime
from typing import Any

from ...api.errors import StatusError
from ...api.kinds.batch import cron
from ...client.informer import object_key
from ...client.resources import CRONJOBS, JOBS
from ...client.rest import TransportError
from ..events import NORMAL, WARNING
from ..ownership import CONTROLLER_INDEX, controller_ref, ensure_controller_index
from ..reconciler import Controller, ControllerContext
from . import history
from .history import drop_active, in_active
from .schedule import (
    ScheduleError, job_for, job_name, most_recent, schedule_text, seconds_until_next, utc,
)

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: Stop waiting for the cache to show our own status write after this long (seconds).
WRITE_TTL = 30.0


class ReplaceError(Exception):
    """A running Job could not be deleted to make way for the next run (Replace)."""


def job_reference(job: Obj) -> Obj:
    """The ObjectReference ``status.active`` lists."""
    meta = job["metadata"]
    return {"kind": "Job", "namespace": meta.get("namespace"), "name": meta["name"],
            "uid": meta["uid"], "apiVersion": "batch/v1",
            "resourceVersion": meta.get("resourceVersion")}


class CronJobController(Controller):
    """Reconciles batch/v1 CronJobs (see module docstring)."""

    name = "cronjob"
    component = "cronjob-controller"
    workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.cronjobs = self.informer(CRONJOBS)
        self.jobs = self.informer(JOBS)
        ensure_controller_index(self.jobs)
        self._unseen: dict[str, tuple[set[str], float]] = {}
        self.cronjobs.add_handler(on_add=self.enqueue, on_update=self._cronjob_updated,
                                  on_delete=self._cronjob_deleted)
        self.jobs.add_handler(on_add=self._job_changed,
                              on_update=self._job_updated, on_delete=self._job_changed)

    # -- handlers ---------------------------------------------------------------------------

    def _cronjob_updated(self, old: Obj, new: Obj) -> None:
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        if (old_spec.get("schedule"), old_spec.get("timeZone")) == (
                new_spec.get("schedule"), new_spec.get("timeZone")):
            self.enqueue(new)
            return
        try:
            schedule = cron.parse(schedule_text(new))
        except cron.CronError:
            self.record_event(new, WARNING, "UnParseableCronJobSchedule",
                              f"unparseable schedule for cronjob: {new_spec.get('schedule')}")
            return
        now = utc(self.clock.time())
        self.enqueue_after(object_key(new), seconds_until_next(new, now, schedule))

    def _cronjob_deleted(self, cronjob: Obj) -> None:
        key = object_key(cronjob)
        self._unseen.pop(key, None)
        self.enqueue_key(key)

    def _owner_key(self, job: Obj, ref: Obj | None) -> str | None:
        if ref is None or ref.get("kind") != "CronJob":
            return None
        cronjob = self.cronjobs.get_by(job["metadata"].get("namespace"), str(ref.get("name", "")))
        if cronjob is None or cronjob["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(cronjob)

    def _job_changed(self, job: Obj) -> None:
        key = self._owner_key(job, controller_ref(job))
        if key is not None:
            self.enqueue_key(key)

    def _job_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref:
            self._job_changed(old)
        self._job_changed(new)

    # -- reconcile ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        cached = self.cronjobs.get(key)
        if cached is None:
            self._unseen.pop(key, None)
            return None
        if not self._caught_up(key, cached):
            return None  # the write's own event brings us back
        cronjob = copy.deepcopy(cached)
        jobs = self._jobs_of(cronjob)
        changed = await history.clean_up(self, cronjob, jobs)
        error: BaseException | None = None
        wake_at: float | None = None
        try:
            wake_at, synced = await self._sync(cronjob, jobs)
            changed = changed or synced
        except (StatusError, TransportError, ReplaceError) as e:
            error = e
            changed = True
        if changed:
            await self._write_status(cronjob)
        if wake_at is not None:
            # A wall-clock time: a clock moved meanwhile cannot make us oversleep.
            self.enqueue_after(key, wake_at - self.clock.time())
            return None
        if error is not None:
            raise error
        return None

    def _jobs_of(self, cronjob: Obj) -> list[Obj]:
        """The Jobs whose controller reference is this CronJob (from the cache)."""
        return [job for job in self.jobs.by_index(CONTROLLER_INDEX, str(cronjob["metadata"]["uid"]))
                if (controller_ref(job) or {}).get("kind") == "CronJob"]

    async def _sync(self, cronjob: Obj, jobs: list[Obj]) -> tuple[float | None, bool]:
        """Steps "active" to "create" of the module docstring.

        Returns (when to look again, as wall-clock epoch seconds; whether the status changed).
        """
        now = utc(self.clock.time())
        changed = await self._track_jobs(cronjob, jobs)
        spec = cronjob.get("spec") or {}
        if cronjob["metadata"].get("deletionTimestamp"):
            return None, changed
        zone = spec.get("timeZone")
        if zone is not None:
            try:
                cron.load_location(zone)
            except cron.CronError as e:
                self.record_event(cronjob, WARNING, "UnknownTimeZone", f'invalid timeZone: "{zone}": {e}')
                return None, changed
        if spec.get("suspend") is True:
            return None, changed
        if "TZ" in str(spec.get("schedule") or ""):
            self.record_event(cronjob, WARNING, "UnsupportedSchedule",
                              f'CRON_TZ or TZ used in schedule "{spec.get("schedule")}" is not '
                              "officially supported, see https://kubernetes.io/docs/concepts/"
                              "workloads/controllers/cron-jobs/ for more details")
        try:
            schedule = cron.parse(schedule_text(cronjob))
        except cron.CronError as e:
            self.record_event(cronjob, WARNING, "UnparseableSchedule",
                              f'unparseable schedule: "{spec.get("schedule")}" : {e}')
            return None, changed
        try:
            run = most_recent(cronjob, now, schedule, with_deadline=True)
        except ScheduleError as e:
            self.record_event(cronjob, WARNING, "InvalidSchedule",
                              f"invalid schedule: {spec.get('schedule')} : {e}")
            return None, changed
        if run.many_missed:
            self.record_event(cronjob, WARNING, "TooManyMissedTimes",
                              "too many missed start times. Set or decrease "
                              ".spec.startingDeadlineSeconds or check clock skew")
        due = run.due
        wait = now.timestamp() + seconds_until_next(cronjob, now, schedule)
        if due is None:
            return wait, changed
        deadline = spec.get("startingDeadlineSeconds")
        if deadline is not None and due.timestamp() + int(deadline) < now.timestamp():
            self.record_event(cronjob, WARNING, "MissSchedule",
                              f"Missed scheduled time to start a job: {_rfc1123z(due)}")
            return wait, changed
        status = cronjob.setdefault("status", {})
        name = job_name(cronjob, due)
        if any(ref.get("name") == name for ref in history.active_refs(cronjob)) \
                or status.get("lastScheduleTime") == history.stamp(due):
            return wait, changed  # this run was started already
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and history.active_refs(cronjob):
            self.record_event(cronjob, NORMAL, "JobAlreadyActive",
                              "Not starting job because prior execution is running and "
                              "concurrency policy is Forbid")
            return wait, changed
        if policy == "Replace":
            for ref in list(history.active_refs(cronjob)):
                job = await self._get_job(str(ref.get("namespace") or ""), str(ref.get("name")))
                if job is not None:
                    if not await history.delete_job(self, cronjob, job):
                        raise ReplaceError(f"could not replace job {ref.get('namespace')}/{ref.get('name')}")
                    changed = True
        created = await self._create_job(cronjob, due)
        if created is None:
            return wait, changed
        status = cronjob.setdefault("status", {})
        status["active"] = history.active_refs(cronjob) + [job_reference(created)]
        status["lastScheduleTime"] = history.stamp(due)
        return wait, True

    async def _track_jobs(self, cronjob: Obj, jobs: list[Obj]) -> bool:
        changed = False
        status = cronjob.setdefault("status", {})
        children = set()
        for job in jobs:
            uid = str(job["metadata"]["uid"])
            children.add(uid)
            listed = in_active(cronjob, uid)
            finished = history.finished_type(job)
            if not listed and finished is None:
                fresh = await self._fetch(cronjob)
                if fresh is not None and in_active(fresh, uid):
                    cronjob.clear()
                    cronjob.update(fresh)  # our cache was behind
                    status = cronjob.setdefault("status", {})
                    continue
                self.record_event(cronjob, WARNING, "UnexpectedJob",
                                  f"Saw a job that the controller did not create or forgot: "
                                  f"{job['metadata']['name']}")
            elif finished is not None:
                if listed:
                    drop_active(cronjob, uid)
                    self.record_event(cronjob, NORMAL, "SawCompletedJob",
                                      f"Saw completed job: {job['metadata']['name']}, "
                                      f"condition: {finished}")
                    changed = True
                done_at = (job.get("status") or {}).get("completionTime")
                if finished == "Complete" and done_at and (
                        not status.get("lastSuccessfulTime")
                        or history.later(done_at, status["lastSuccessfulTime"])):
                    status["lastSuccessfulTime"] = done_at
                    changed = True
        for ref in list(history.active_refs(cronjob)):
            if ref.get("uid") in children:
                continue
            if await self._get_job(str(ref.get("namespace") or ""), str(ref.get("name"))) is None:
                self.record_event(cronjob, NORMAL, "MissingJob",
                                  f"Active job went missing: {ref.get('name')}")
                drop_active(cronjob, str(ref.get("uid")))
                changed = True
        return changed

    async def _create_job(self, cronjob: Obj, due: datetime) -> Obj | None:
        body = job_for(cronjob, due)
        ns = cronjob["metadata"].get("namespace")
        try:
            created: Obj = await self.client.create(JOBS, body, namespace=ns)
        except StatusError as e:
            if e.code == 409 and e.reason == "AlreadyExists":
                # Created before (by us, then the status write was lost?) or by someone else.
                existing = await self._get_job(str(ns), body["metadata"]["name"])
                if existing is None:
                    raise
                ref = controller_ref(existing)
                if ref is None or ref.get("uid") != cronjob["metadata"].get("uid"):
                    return None
                if in_active(cronjob, str(existing["metadata"]["uid"])):
                    return None
                return existing
            if e.code == 403 and "because it is being terminated" in e.message:
                raise
            self.record_event(cronjob, WARNING, "FailedCreate", f"Error creating job: {e.message}")
            raise
        self.record_event(cronjob, NORMAL, "SuccessfulCreate",
                          f"Created job {created['metadata']['name']}")
        return created

    async def _get_job(self, namespace: str, name: str) -> Obj | None:
        try:
            job: Obj = await self.client.get(JOBS, name, namespace=namespace)
            return job
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    async def _fetch(self, cronjob: Obj) -> Obj | None:
        meta = cronjob["metadata"]
        try:
            fresh: Obj = await self.client.get(CRONJOBS, meta["name"], namespace=meta.get("namespace"))
            return fresh
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    async def _write_status(self, cronjob: Obj) -> None:
        status = cronjob.setdefault("status", {})
        if not status.get("active"):
            status.pop("active", None)
        before = str(cronjob["metadata"].get("resourceVersion", ""))
        try:
            await self.client.update(CRONJOBS, cronjob, subresource="status")
        except StatusError as e:
            if e.code == 404:
                return
            raise
        key = object_key(cronjob)
        stale, since = self._unseen.get(key, (set(), self.clock.monotonic()))
        stale.add(before)
        self._unseen[key] = (stale, since)

    def _caught_up(self, key: str, cronjob: Obj) -> bool:
        entry = self._unseen.get(key)
        if entry is None:
            return True
        stale, since = entry
        if str(cronjob["metadata"].get("resourceVersion", "")) in stale \
                and self.clock.monotonic() - since < WRITE_TTL:
            return False
        del self._unseen[key]
        return True


def _rfc1123z(when: datetime) -> str:
    """Go's time.RFC1123Z in UTC: ``Mon, 02 Jan 2006 15:04:05 +0000``."""
    return utc(when.timestamp()).strftime("%a, %d %b %Y %H:%M:%S +0000")
