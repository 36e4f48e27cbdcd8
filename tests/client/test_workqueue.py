"""The work queue's guarantees: dedupe, one worker per key, delays, back-off."""

from __future__ import annotations

import asyncio

import pytest

from skiff.client.clock import FakeClock
from skiff.client.workqueue import ExponentialBackoff, WorkQueue


async def test_duplicate_adds_are_handed_out_once() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    for key in ["a", "b", "a", "a", "c", "b"]:
        q.add(key)
    assert len(q) == 3
    assert [await q.get(), await q.get(), await q.get()] == ["a", "b", "c"]
    assert len(q) == 0


async def test_key_being_processed_is_requeued_only_after_done() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    q.add("a")
    assert await q.get() == "a"
    q.add("a")  # changed again while a worker holds it
    assert len(q) == 0 and q.is_processing("a")
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not second.done()  # a second worker must not get "a" yet
    q.done("a")
    assert await second == "a"


async def test_done_without_re_add_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    q.add("a")
    await q.get()
    q.done("a")
    assert len(q) == 0 and not q.is_processing("a")


async def test_waiting_worker_wakes_on_add() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    waiter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("x")
    assert await waiter == "x"


async def test_add_after_waits_for_the_clock() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("later", 5.0)
    assert len(q) == 0 and q.delayed == 1
    waiter = asyncio.create_task(q.get())
    await clock.wait_for_sleepers(1)
    clock.advance(4.9)
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.advance(0.1)
    assert await waiter == "later"
    assert q.delayed == 0


async def test_earlier_delay_of_same_key_wins_and_key_is_delivered_once() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("k", 10.0)
    q.add_after("k", 2.0)
    q.add_after("k", 7.0)
    assert q.delayed == 1
    clock.advance(2.0)
    assert await q.get() == "k"
    q.done("k")
    clock.advance(20.0)
    q.add("other")
    assert await q.get() == "other"  # "k" did not come back from the superseded 10 s entry
    assert len(q) == 0


async def test_rate_limited_requeue_backs_off_exponentially_until_forget() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    delays = []
    for _ in range(4):
        before = clock.monotonic()
        q.add_rate_limited("k")
        waiter = asyncio.create_task(q.get())
        await clock.wait_for_sleepers(1)
        deadline = clock.next_deadline()
        assert deadline is not None
        delays.append(round(deadline - before, 6))
        clock.advance(deadline - before)
        assert await waiter == "k"
        q.done("k")
    assert delays == [0.005, 0.01, 0.02, 0.04]
    assert q.num_requeues("k") == 4
    q.forget("k")
    assert q.num_requeues("k") == 0


def test_backoff_is_capped() -> None:
    backoff: ExponentialBackoff[str] = ExponentialBackoff(base=0.005, cap=1000.0)
    delays = [backoff.when("k") for _ in range(100)]
    assert delays[0] == 0.005
    assert max(delays) == 1000.0 and delays[-1] == 1000.0
    assert delays == sorted(delays)
    assert backoff.when("other") == 0.005  # per key


async def test_shut_down_drains_then_returns_none() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    q.add("a")
    q.add_after("delayed", 1.0)
    q.shut_down()
    q.add("ignored")
    assert await q.get() == "a"
    assert await q.get() is None


async def test_shut_down_wakes_idle_workers() -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    workers = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shut_down()
    assert await asyncio.gather(*workers) == [None, None, None]


async def test_many_workers_never_share_a_key() -> None:
    q: WorkQueue[int] = WorkQueue(clock=FakeClock())
    active: set[int] = set()
    seen: list[int] = []

    async def worker() -> None:
        while (key := await q.get()) is not None:
            assert key not in active
            active.add(key)
            await asyncio.sleep(0)
            if len(seen) < 200:
                q.add(key % 5)  # keep re-adding keys that are being processed
            seen.append(key)
            active.discard(key)
            q.done(key)

    tasks = [asyncio.create_task(worker()) for _ in range(4)]
    for i in range(5):
        q.add(i)
    while len(seen) < 200:
        await asyncio.sleep(0)
    q.shut_down()
    await asyncio.gather(*tasks)
    assert set(seen) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("delay", [0, -1])
async def test_non_positive_delay_adds_immediately(delay: float) -> None:
    q: WorkQueue[str] = WorkQueue(clock=FakeClock())
    q.add_after("now", delay)
    assert len(q) == 1
