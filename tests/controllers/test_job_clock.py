"""Job time limits on a fake clock (controller and simulated nodes): no real waiting.

The failed-pod back-off (10 s, doubling) and activeDeadlineSeconds are checked
to the second: the clock only moves when the test moves it.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import AsyncIterator

import pytest

from housekeeping_support import ApiServer, EagerFakeClock, meta, wait_gone
from skiff.api.kinds.meta.cells import parse_time
from skiff.client.resources import PODS
from test_job_support import (
    batch_cluster, condition, create_job, job_controller, job_pods, pod_template, wait_finished,
    wait_job,
)


@pytest.fixture
def clock() -> EagerFakeClock:
    return EagerFakeClock(wall_start=math.floor(time.time()))


@pytest.fixture
async def api(tmp_path: Path, clock: EagerFakeClock) -> AsyncIterator[ApiServer]:
    async with batch_cluster(tmp_path, ([("job", job_controller(backoff_base=10))], clock),
                             node_clock=clock) as server:
        yield server


async def parked_until(clock: EagerFakeClock, seconds: float, sleepers: int = 3) -> None:
    """The Job controller waits for the clock: its wake-up is ``seconds`` from now.

    Sleepers: the nodes' lease and status tickers (hourly), the Job controller's
    work queue, which sleeps until its earliest delayed key, and (when pods run
    for a while) the nodes' pod queue.
    """
    await clock.wait_for_sleepers(sleepers)
    assert clock.next_deadline() == pytest.approx(clock.monotonic() + seconds)


async def test_failed_pods_are_replaced_after_an_exponential_back_off(
        api: ApiServer, clock: EagerFakeClock) -> None:
    job = await create_job(api, "retry", backoffLimit=2, template=pod_template(exit_code=1))
    await wait_job(api, "retry", lambda j: j.get("status", {}).get("failed") == 1)
    await parked_until(clock, 10)  # first failure: 10 s
    assert len(await job_pods(api, job)) == 1
    clock.advance(10)
    await wait_job(api, "retry", lambda j: j["status"].get("failed") == 2)
    await parked_until(clock, 20)  # second failure in a row: 20 s
    assert len(await job_pods(api, job)) == 2
    clock.advance(20)
    failed = await wait_finished(api, "retry", "Failed")
    assert failed["status"]["failed"] == 3
    cond = condition(failed, "Failed")
    assert cond is not None and cond["reason"] == "BackoffLimitExceeded"
    pods = sorted(await job_pods(api, job), key=lambda p: p["status"]["startTime"])
    started = [parse_time(p["status"]["startTime"]).timestamp() for p in pods]  # type: ignore[union-attr]
    assert [b - a for a, b in zip(started, started[1:])] == [10, 20]


async def test_active_deadline_seconds(api: ApiServer, clock: EagerFakeClock) -> None:
    job = await create_job(api, "bounded", activeDeadlineSeconds=30, parallelism=2, completions=4,
                           template=pod_template(run_seconds=3600))
    running = await wait_job(api, "bounded", lambda j: j.get("status", {}).get("ready") == 2)
    assert running["status"]["startTime"] == condition_time(clock.time())
    names = {meta(p)["name"] for p in await job_pods(api, job)}
    await parked_until(clock, 30, sleepers=4)  # the pods would run for an hour
    clock.advance(30)
    failed = await wait_finished(api, "bounded", "Failed")
    cond = condition(failed, "Failed")
    assert cond is not None and (cond["reason"], cond["message"]) == (
        "DeadlineExceeded", "Job was active longer than specified deadline")
    assert [c["type"] for c in failed["status"]["conditions"]] == ["FailureTarget", "Failed"]
    status = failed["status"]
    assert status["failed"] == 2 and status.get("active", 0) == 0 and status["terminating"] == 0
    await wait_gone(api.client, PODS, names, namespace="default")


def condition_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
