"""The CronJob controller on a fake clock: minute boundaries are crossed by advancing it.

The Job controller, the simulated nodes and the scheduler run on the real
clock, so the Jobs a CronJob starts really run (and finish at once unless
their pods say ``skiff.dev/fake-run-seconds``).
"""

from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from housekeeping_support import ApiServer, EagerFakeClock, meta, wait_gone, watch_until
from skiff.api.kinds.meta.cells import parse_time
from skiff.client.resources import CRONJOBS, EVENTS, JOBS, PODS
from skiff.controllers.cronjob import CronJobController
from test_job_support import (
    batch_cluster, condition, events_for, gc_controller, job_controller, owned_by, pod_template,
    wait_finished,
)

Obj = dict[str, Any]


@pytest.fixture
def clock() -> EagerFakeClock:
    return EagerFakeClock(wall_start=math.floor(time.time()) - 1)


@pytest.fixture
async def api(tmp_path: Path, clock: EagerFakeClock) -> AsyncIterator[ApiServer]:
    async with batch_cluster(
            tmp_path, ([("job", job_controller()), ("garbagecollector", gc_controller())], None),
            ([("cronjob", CronJobController)], clock)) as server:
        yield server


def cronjob(name: str, schedule: str = "*/1 * * * *", *, template: Obj | None = None,
            job_spec: Obj | None = None, **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, **spec, "jobTemplate": {
                "metadata": {"labels": {"app": name}},
                "spec": {**(job_spec or {}), "template": template or pod_template()}}}}


async def create(api: ApiServer, body: Obj) -> tuple[Obj, int]:
    """Create the CronJob; (it, the epoch second of its first activation of a */1 schedule)."""
    created = await api.client.create(CRONJOBS, body, namespace="default")
    born = parse_time(meta(created)["creationTimestamp"])
    assert born is not None
    return created, (int(born.timestamp()) // 60 + 1) * 60


def move_to(clock: EagerFakeClock, epoch: float) -> None:
    clock.advance(max(0.0, epoch - clock.time()))


def stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def job_named(api: ApiServer, name: str) -> Obj:
    return await watch_until(api.client, JOBS, lambda t, o: t != "DELETED" and meta(o)["name"] == name,
                             namespace="default")


async def jobs_of(api: ApiServer, owner: Obj) -> list[str]:
    return sorted(meta(j)["name"] for j in owned_by(owner, (await api.client.list(
        JOBS, namespace="default")).items))


async def settled(api: ApiServer, name: str, scheduled: int, *, succeeded: bool = True) -> Obj:
    """Wait until the CronJob saw the run at ``scheduled`` finish."""
    def done(_t: str, cj: Obj) -> bool:
        status = cj.get("status") or {}
        return meta(cj)["name"] == name and status.get("lastScheduleTime") == stamp(scheduled) \
            and not status.get("active") and (not succeeded or "lastSuccessfulTime" in status)
    return await watch_until(api.client, CRONJOBS, done, namespace="default")


async def test_every_minute_a_job_and_only_the_history_limits_stay(
        api: ApiServer, clock: EagerFakeClock) -> None:
    ok, first = await create(api, cronjob("tick", successfulJobsHistoryLimit=2))
    bad, _ = await create(api, cronjob("oops", failedJobsHistoryLimit=1,
                                       template=pod_template(exit_code=1),
                                       job_spec={"backoffLimit": 0}))
    minutes = [first + 60 * i for i in range(3)]
    for at in minutes:
        move_to(clock, at + 1)
        job = await job_named(api, f"tick-{at // 60}")
        assert meta(job)["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == stamp(at)
        assert meta(job)["labels"]["app"] == "tick"
        assert meta(job)["ownerReferences"] == [{
            "apiVersion": "batch/v1", "kind": "CronJob", "name": "tick",
            "uid": meta(ok)["uid"], "controller": True, "blockOwnerDeletion": True}]
        done = await wait_finished(api, f"tick-{at // 60}")
        await wait_finished(api, f"oops-{at // 60}", "Failed")
        seen = await settled(api, "tick", at)
        assert seen["status"]["lastSuccessfulTime"] == done["status"]["completionTime"]
        await settled(api, "oops", at, succeeded=False)
    # the oldest run of each is deleted as the limits are exceeded
    await wait_gone(api.client, JOBS, {f"tick-{minutes[0] // 60}", f"oops-{minutes[0] // 60}",
                                       f"oops-{minutes[1] // 60}"}, namespace="default")
    assert await jobs_of(api, ok) == [f"tick-{m // 60}" for m in minutes[1:]]
    assert await jobs_of(api, bad) == [f"oops-{minutes[2] // 60}"]
    created = await events_for(api, "tick", "SuccessfulCreate", count=3)
    assert sorted(e["message"] for e in created) == [f"Created job tick-{m // 60}" for m in minutes]
    deleted = await events_for(api, "tick", "SuccessfulDelete")
    assert deleted[0]["message"] == f"Deleted job tick-{minutes[0] // 60}"
    saw = await events_for(api, "tick", "SawCompletedJob", count=3)
    assert f"Saw completed job: tick-{minutes[0] // 60}, condition: Complete" in {
        e["message"] for e in saw}
    assert all(e["source"]["component"] == "cronjob-controller" for e in created + deleted + saw)
    code, out, _ = await api.kubectl("get", "cronjob", "tick", "--no-headers")
    assert code == 0 and out.split()[:5] == ["tick", "*/1", "*", "*", "*"]


async def test_forbid_skips_a_run_while_one_is_running(api: ApiServer, clock: EagerFakeClock) -> None:
    cj, first = await create(api, cronjob("solo", concurrencyPolicy="Forbid",
                                          template=pod_template(run_seconds=3600)))
    move_to(clock, first + 1)
    running = await job_named(api, f"solo-{first // 60}")
    await watch_until(api.client, CRONJOBS, lambda _t, o: [
        a["name"] for a in (o.get("status") or {}).get("active") or []] == [meta(running)["name"]],
        namespace="default")
    move_to(clock, first + 61)
    skipped = await events_for(api, "solo", "JobAlreadyActive")
    assert skipped[0]["message"] == ("Not starting job because prior execution is running "
                                     "and concurrency policy is Forbid")
    assert await jobs_of(api, cj) == [f"solo-{first // 60}"]
    fresh = await api.client.get(CRONJOBS, "solo", namespace="default")
    assert fresh["status"]["lastScheduleTime"] == stamp(first)


async def test_replace_deletes_the_running_job(api: ApiServer, clock: EagerFakeClock) -> None:
    cj, first = await create(api, cronjob("swap", concurrencyPolicy="Replace",
                                          template=pod_template(run_seconds=3600)))
    move_to(clock, first + 1)
    old = await job_named(api, f"swap-{first // 60}")
    await watch_until(api.client, JOBS, lambda _t, o: meta(o)["name"] == meta(old)["name"]
                      and (o.get("status") or {}).get("ready") == 1, namespace="default")
    move_to(clock, first + 61)
    new = await job_named(api, f"swap-{(first + 60) // 60}")
    await wait_gone(api.client, JOBS, {meta(old)["name"]}, namespace="default")
    replaced = await events_for(api, "swap", "SuccessfulDelete")
    assert replaced[0]["message"] == f"Deleted job {meta(old)['name']}"
    status = (await api.client.get(CRONJOBS, "swap", namespace="default"))["status"]
    assert [a["name"] for a in status["active"]] == [meta(new)["name"]]
    assert status["active"][0]["uid"] == meta(new)["uid"]
    assert await jobs_of(api, cj) == [meta(new)["name"]]
    # the replaced Job's pod goes too (garbage collector; its tracking finalizer is released)
    old_pods = {meta(p)["name"] for p in owned_by(old, (await api.client.list(
        PODS, namespace="default")).items)}
    await wait_gone(api.client, PODS, old_pods, namespace="default")


async def test_missed_runs_and_the_starting_deadline(api: ApiServer, clock: EagerFakeClock) -> None:
    lax, first = await create(api, cronjob("lax"))
    window, _ = await create(api, cronjob("window", startingDeadlineSeconds=60))
    tight, _ = await create(api, cronjob("tight", startingDeadlineSeconds=20))
    # the controller was "down" for 150 minutes; it wakes 40 s after a minute boundary
    latest = first + 150 * 60
    move_to(clock, latest + 40)
    too_many = await events_for(api, "lax", "TooManyMissedTimes")
    assert too_many[0]["type"] == "Warning"
    assert too_many[0]["message"] == ("too many missed start times. Set or decrease "
                                      ".spec.startingDeadlineSeconds or check clock skew")
    # only the most recent missed run starts, never a backlog
    await job_named(api, f"lax-{latest // 60}")
    assert await jobs_of(api, lax) == [f"lax-{latest // 60}"]
    # 40 s late is within a 60 s starting deadline (and only runs inside it count as missed)
    await job_named(api, f"window-{latest // 60}")
    assert await jobs_of(api, window) == [f"window-{latest // 60}"]
    # ... but not within 20 s: that run is skipped, the next one starts on time
    assert await jobs_of(api, tight) == []
    move_to(clock, latest + 61)
    await job_named(api, f"tight-{(latest + 60) // 60}")
    assert await jobs_of(api, tight) == [f"tight-{(latest + 60) // 60}"]
    events = (await api.client.list(EVENTS, namespace="default")).items
    assert not [e for e in events if e["reason"] == "TooManyMissedTimes"
                and e["involvedObject"]["name"] != "lax"]


async def test_suspend_time_zone_and_create_job_from_cronjob(
        api: ApiServer, clock: EagerFakeClock) -> None:
    # 30 minutes past the hour in Kolkata (UTC+05:30) is the full hour in UTC
    cj, first = await create(api, cronjob("kolkata", "30 * * * *", timeZone="Asia/Kolkata",
                                          suspend=True))
    hour = (first // 3600 + 1) * 3600
    move_to(clock, hour + 3600 + 1)  # two runs pass while suspended
    await api.client.patch(CRONJOBS, "kolkata", {"spec": {"suspend": False}}, namespace="default")
    job = await job_named(api, f"kolkata-{(hour + 3600) // 60}")
    scheduled = meta(job)["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert scheduled.endswith(":30:00+05:30")
    assert parse_time(scheduled) == datetime.fromtimestamp(hour + 3600, timezone.utc)
    await wait_finished(api, meta(job)["name"])
    assert await jobs_of(api, cj) == [meta(job)["name"]]  # nothing ran while suspended
    code, out, err = await api.kubectl("create", "job", "by-hand", "--from=cronjob/kolkata")
    assert code == 0, err
    assert out.strip() == "job.batch/by-hand created"
    manual = await wait_finished(api, "by-hand")
    assert meta(manual)["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert meta(manual)["ownerReferences"][0]["uid"] == meta(cj)["uid"]
    assert condition(manual, "Complete") is not None
