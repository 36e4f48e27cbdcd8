"""The scheduling queue: ordering, back-off, parking and re-queueing on events — with a fake clock."""

import asyncio

import pytest

from skiff.scheduler.queue import (ASSIGNED_POD_DELETE, NODE_ADD, NODE_UPDATE, PVC_ADD, SchedulingQueue)

from .builders import pod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def q(clock):
    return SchedulingQueue(clock=clock)


def names(q):
    out = []
    while (qp := q.pop_nowait()) is not None:
        out.append(qp.pod.name)
    return out


def test_priority_then_arrival_order(q, clock):
    q.add(pod("low", priority=1))
    clock.now += 1
    q.add(pod("high", priority=100))
    clock.now += 1
    q.add(pod("low2", priority=1))
    q.add(pod("mid", priority=50))
    assert names(q) == ["high", "mid", "low", "low2"]


def test_backoff_doubles_up_to_ten_seconds(q):
    assert [q.backoff_duration(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_unschedulable_pod_waits_for_a_relevant_event(q, clock):
    q.add(pod("p"))
    qp = q.pop_nowait()
    q.add_unschedulable(qp, {"NodeResourcesFit"})
    assert q.where(qp.key) == "unschedulable"
    assert q.on_event(PVC_ADD) == 0                  # irrelevant to NodeResourcesFit
    assert q.where(qp.key) == "unschedulable"
    assert q.on_event(ASSIGNED_POD_DELETE) == 1      # freed resources may help
    assert q.where(qp.key) == "backoff"              # still inside its 1 s back-off
    assert q.pop_nowait() is None
    clock.now += 1.0
    assert q.pop_nowait().pod.name == "p"


def test_node_add_moves_everything(q, clock):
    for name in ("a", "b"):
        q.add(pod(name))
        q.add_unschedulable(q.pop_nowait(), {"TaintToleration"})
    clock.now += 30
    assert q.on_event(NODE_ADD) == 2
    assert sorted(names(q)) == ["a", "b"]


def test_event_during_the_cycle_sends_the_pod_to_backoff(q, clock):
    q.add(pod("p"))
    qp = q.pop_nowait()
    q.on_event(NODE_UPDATE)                          # arrives while p is being scheduled
    q.add_unschedulable(qp, {"NodeAffinity"})
    assert q.where(qp.key) == "backoff"


def test_errors_go_to_backoff(q, clock):
    q.add(pod("p"))
    q.add_unschedulable(q.pop_nowait(), error=True)
    assert q.where("default/p") == "backoff"
    clock.now += 1
    assert names(q) == ["p"]


def test_five_minutes_without_events_requeues(q, clock):
    q.add(pod("p"))
    q.add_unschedulable(q.pop_nowait(), {"NodeAffinity"})
    clock.now += 299
    q.flush_unschedulable_leftover()
    assert q.where("default/p") == "unschedulable"
    clock.now += 1
    q.flush_unschedulable_leftover()
    assert names(q) == ["p"]


def test_attempts_grow_the_backoff(q, clock):
    q.add(pod("p"))
    for attempt in range(1, 4):
        qp = q.pop_nowait()
        assert qp.attempts == attempt
        q.add_unschedulable(qp, error=True)
        clock.now += q.backoff_duration(attempt) - 0.01
        assert q.pop_nowait() is None
        clock.now += 0.01


def test_update_of_a_parked_pod_retries_it(q, clock):
    q.add(pod("p", "10"))
    q.add_unschedulable(q.pop_nowait(), {"NodeResourcesFit"})
    clock.now += 5
    q.update(pod("p", "1"))
    qp = q.pop_nowait()
    assert qp.pod.requests.milli_cpu == 1000


def test_delete_and_scheduling_gates(q):
    q.add(pod("gone"))
    q.delete("default/gone")
    q.add(pod("gated", schedulingGates=[{"name": "wait"}]))
    assert q.pop_nowait() is None
    assert q.where("default/gated") == "gated"
    q.update(pod("gated"))
    assert names(q) == ["gated"]


def test_nominations(q):
    p = pod("vip", priority=10)
    p["status"]["nominatedNodeName"] = "n1"
    q.add(p)
    assert [x.name for x in q.nominated_pods()["n1"]] == ["vip"]
    q.delete("default/vip")
    assert q.nominated_pods() == {}


async def test_pop_waits_for_work(q):
    task = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    assert not task.done()
    q.add(pod("p"))
    qp = await asyncio.wait_for(task, 1)
    assert qp.pod.name == "p"
    closing = asyncio.create_task(q.pop())
    await asyncio.sleep(0)
    q.close()
    assert await asyncio.wait_for(closing, 1) is None
