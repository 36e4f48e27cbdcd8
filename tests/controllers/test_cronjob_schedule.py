"""Which CronJob run is due, when to look again, and the Job for a run (pure functions)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from skiff.api.kinds.batch import cron
from skiff.controllers.cronjob import history
from skiff.controllers.cronjob.schedule import (
    ScheduleError, job_for, job_name, most_recent, schedule_text, seconds_until_next,
)

Obj = dict[str, Any]
T0 = datetime(2025, 3, 10, 12, 0, 0, tzinfo=timezone.utc)


def cj(schedule: str = "*/1 * * * *", *, created: datetime = T0, last: datetime | None = None,
       **spec: Any) -> Obj:
    status = {"lastScheduleTime": last.strftime("%Y-%m-%dT%H:%M:%SZ")} if last else {}
    return {"metadata": {"name": "hello", "namespace": "ns", "uid": "u-1",
                         "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {
                "metadata": {"labels": {"app": "hello"}, "annotations": {"note": "x"}},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}},
            "status": status}


def due(obj: Obj, now: datetime, *, with_deadline: bool = True) -> tuple[datetime | None, bool]:
    run = most_recent(obj, now, cron.parse(schedule_text(obj)), with_deadline=with_deadline)
    return run.due, run.many_missed


def test_nothing_due_before_the_first_activation() -> None:
    assert due(cj(created=T0 + timedelta(seconds=5)), T0 + timedelta(seconds=59)) == (None, False)
    assert due(cj(created=T0 + timedelta(seconds=5)), T0 + timedelta(seconds=60)) == (
        T0 + timedelta(minutes=1), False)


def test_the_latest_missed_run_is_due_and_many_misses_are_flagged() -> None:
    assert due(cj(), T0 + timedelta(minutes=7, seconds=3)) == (T0 + timedelta(minutes=7), False)
    assert due(cj(last=T0 + timedelta(minutes=7)), T0 + timedelta(minutes=7, seconds=50)) == (None, False)
    assert due(cj(), T0 + timedelta(minutes=150, seconds=3)) == (T0 + timedelta(minutes=150), True)
    hourly = cj("15 * * * *")
    assert due(hourly, T0 + timedelta(hours=5)) == (T0 + timedelta(hours=4, minutes=15), False)


def test_the_starting_deadline_bounds_what_counts_as_missed() -> None:
    late = T0 + timedelta(minutes=150, seconds=40)
    assert due(cj(startingDeadlineSeconds=60), late) == (T0 + timedelta(minutes=150), False)
    assert due(cj(startingDeadlineSeconds=20), late) == (None, False)
    assert due(cj(startingDeadlineSeconds=20), late, with_deadline=False)[0] == T0 + timedelta(minutes=150)


def test_time_zones_shift_the_schedule() -> None:
    # 09:00 in New York on 2025-03-10 (EDT, UTC-4) is 13:00 UTC
    ny = cj("0 9 * * *", timeZone="America/New_York")
    assert schedule_text(ny) == "TZ=America/New_York 0 9 * * *"
    assert due(ny, T0 + timedelta(hours=1, minutes=1))[0] == datetime(2025, 3, 10, 13, 0, tzinfo=timezone.utc)
    assert schedule_text(cj("CRON_TZ=Asia/Tokyo 0 9 * * *")) == "CRON_TZ=Asia/Tokyo 0 9 * * *"


def test_an_impossible_date_is_an_invalid_schedule() -> None:
    with pytest.raises(ScheduleError, match="less than 1 second"):
        due(cj("0 0 31 2 *"), T0)


def test_when_to_look_again() -> None:
    schedule = cron.parse("*/1 * * * *")
    now = T0 + timedelta(seconds=20)
    assert seconds_until_next(cj(), now, schedule) == pytest.approx(40.1)
    after_run = cj(last=T0 + timedelta(minutes=1))
    assert seconds_until_next(after_run, T0 + timedelta(minutes=1, seconds=1), schedule) == pytest.approx(59.1)
    # many runs missed: the next activation after now
    assert seconds_until_next(cj(), T0 + timedelta(minutes=30, seconds=30), schedule) == pytest.approx(30.1)


def test_the_job_of_a_run() -> None:
    run = T0 + timedelta(minutes=5)
    job = job_for(cj(timeZone="Asia/Kolkata"), run)
    # 2025-03-10T12:05:00Z is 1741608300 s, i.e. minute 29026805, since the epoch
    assert job_name(cj(), run) == job["metadata"]["name"] == "hello-29026805"
    assert job["metadata"]["labels"] == {"app": "hello"}
    assert job["metadata"]["annotations"] == {
        "note": "x", "batch.kubernetes.io/cronjob-scheduled-timestamp": "2025-03-10T17:35:00+05:30"}
    assert job["metadata"]["ownerReferences"] == [{
        "apiVersion": "batch/v1", "kind": "CronJob", "name": "hello", "uid": "u-1",
        "controller": True, "blockOwnerDeletion": True}]
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    utc = job_for(cj(), run)["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert utc == "2025-03-10T12:05:00Z"


def job(name: str, kind: str | None, start: str | None) -> Obj:
    status: Obj = {}
    if start:
        status["startTime"] = start
    if kind:
        status["conditions"] = [{"type": kind, "status": "True"}]
    return {"metadata": {"name": name, "uid": name}, "status": status}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.deleted: list[str] = []
        self.client = self

    async def delete(self, _res: Any, name: str, **_kw: Any) -> Obj:
        self.deleted.append(name)
        return {}

    def record_event(self, _obj: Obj, _type: str, reason: str, message: str) -> None:
        self.events.append((reason, message))


async def test_history_limits_delete_the_oldest_finished_jobs() -> None:
    owner = cj(successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0)
    owner["status"]["active"] = [{"name": "f-old", "uid": "f-old"}]
    jobs = [job("c-new", "Complete", "2025-01-01T00:03:00Z"),
            job("c-old", "Complete", "2025-01-01T00:01:00Z"),
            job("c-never", "Complete", None),
            job("f-old", "Failed", "2025-01-01T00:02:00Z"),
            job("running", None, "2025-01-01T00:00:00Z")]
    host = Recorder()
    assert await history.clean_up(host, owner, jobs)  # type: ignore[arg-type]
    assert host.deleted == ["c-old", "c-new", "f-old"]  # never-started sorts last: it stays
    assert ("SuccessfulDelete", "Deleted job c-old") in host.events
    assert owner["status"]["active"] == []
