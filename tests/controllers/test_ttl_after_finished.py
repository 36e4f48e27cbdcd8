"""TTL-after-finished deletes finished Jobs on time (a fake clock: no waiting)."""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from housekeeping_support import ApiServer, EagerFakeClock, meta, running_controllers, wait_gone
from skiff.api.kinds.meta.cells import format_time
from skiff.client.clock import FakeClock
from skiff.client.resources import JOBS
from skiff.controllers.gc import GarbageCollector
from skiff.controllers.ttlafterfinished import TTLAfterFinishedController

Obj = dict[str, Any]


@pytest.fixture
async def clock() -> FakeClock:
    return EagerFakeClock()


@pytest.fixture
async def api(tmp_path: Path, clock: FakeClock) -> AsyncIterator[ApiServer]:
    async with ApiServer(tmp_path) as server:
        # the Job is deleted in the foreground: the garbage collector finishes that
        async with running_controllers(server.client, [
                ("garbagecollector", functools.partial(GarbageCollector, resync_period=3600)),
                ("ttl-after-finished", TTLAfterFinishedController)], clock=clock):
            yield server


def stamp(epoch: float) -> str:
    return format_time(datetime.fromtimestamp(epoch, timezone.utc))


async def finished_job(api: ApiServer, name: str, *, ttl: int | None, done_at: float,
                       condition: str = "Complete") -> Obj:
    spec: Obj = {"template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "c", "image": "busybox"}]}}}
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    job = await api.client.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job",
                                         "metadata": {"name": name}, "spec": spec},
                                  namespace="default")
    status: Obj = {"startTime": stamp(done_at - 5), "conditions": [
        {"type": "SuccessCriteriaMet" if condition == "Complete" else "FailureTarget",
         "status": "True", "lastTransitionTime": stamp(done_at)},
        {"type": condition, "status": "True", "lastTransitionTime": stamp(done_at)}]}
    if condition == "Complete":
        status.update(completionTime=stamp(done_at), succeeded=1)
    else:
        status.update(failed=1)
    return await api.client.patch(JOBS, name, {"status": status}, namespace="default",
                                  subresource="status")


async def test_a_finished_job_is_deleted_when_its_ttl_passes(api: ApiServer, clock: FakeClock) -> None:
    await finished_job(api, "keep", ttl=None, done_at=clock.time())
    await finished_job(api, "pi", ttl=30, done_at=clock.time() - 10)
    # the controller parks the job until it expires, 20 s from "now" (the other
    # sleeper is the collector's hourly re-discovery)
    await clock.wait_for_sleepers(2)
    assert clock.next_deadline() == pytest.approx(clock.monotonic() + 20)
    assert meta(await api.client.get(JOBS, "pi", namespace="default"))["name"] == "pi"
    clock.advance(20)
    await wait_gone(api.client, JOBS, {"pi"}, namespace="default")
    assert meta(await api.client.get(JOBS, "keep", namespace="default"))["name"] == "keep"


async def test_an_expired_failed_job_goes_at_once(api: ApiServer, clock: FakeClock) -> None:
    await finished_job(api, "broken", ttl=0, done_at=clock.time() - 100, condition="Failed")
    await wait_gone(api.client, JOBS, {"broken"}, namespace="default")
