"""Binding runs concurrently with scheduling and stays correct (real API server, in-process).

While bindings are in flight the next pods are scheduled against the assumed
ones (no node is over-committed); Reserve runs inside the scheduling cycle;
a failed bind un-reserves, forgets the assumed pod and retries it later.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping

from skiff.api.errors import StatusError
from skiff.client.resources import NODES, PODS
from skiff.client.rest import ApiClient
from skiff.scheduler.interface import SUCCESS, CycleState, Status, unschedulable
from skiff.scheduler.plugins import default_registry
from skiff.scheduler.podinfo import PodInfo
from skiff.scheduler.profile import DEFAULT_PLUGINS, PluginRef, Profile
from skiff.scheduler.scheduler import Scheduler
from skiff.scheduler.snapshot import NodeInfo

from .builders import node
from .test_component import api, api_pod  # noqa: F401  (api is a fixture)

Obj = dict[str, Any]


class HeldScheduler(Scheduler):
    """Binds only when the test says so; counts binds in flight and calls per pod."""

    def __init__(self, *args: Any, fail: Mapping[str, int] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.release = asyncio.Event()
        self.in_flight = 0
        self.most_in_flight = 0
        self.calls: dict[str, int] = {}
        self.fail = dict(fail or {})    # pod name -> how many binds of it fail first
        self.progress = asyncio.Event()  # set after every scheduling cycle and bind step

    async def schedule_queued(self, qp: Any) -> None:
        await super().schedule_queued(qp)
        self.progress.set()

    async def _bind(self, pod: Obj, node: str) -> None:
        name = pod["metadata"]["name"]
        self.calls[name] = self.calls.get(name, 0) + 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.progress.set()
        try:
            await self.release.wait()
            if self.fail.get(name, 0) > 0:
                self.fail[name] -= 1
                raise StatusError(500, "InternalError", "etcd is having a bad day")
            await super()._bind(pod, node)
        finally:
            self.in_flight -= 1
            self.progress.set()

    async def until(self, check: Callable[[], bool], timeout: float = 10) -> None:
        """Wait until ``check()`` holds, re-checking after every cycle, bind step or pod change."""
        self.factory.informer(PODS).add_handler(on_add=lambda o: self.progress.set(),
                                                on_update=lambda o, n: self.progress.set(),
                                                on_delete=lambda o: self.progress.set())

        async def loop() -> None:
            while not check():
                self.progress.clear()
                await self.progress.wait()

        await asyncio.wait_for(loop(), timeout)


def scheduled_false(pod: Obj | None) -> Obj | None:
    for c in ((pod or {}).get("status") or {}).get("conditions") or ():
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return c
    return None


def bound_to(pods: Any) -> dict[str, str]:
    return {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods.list() if p["spec"].get("nodeName")}


async def run(sched: Scheduler) -> asyncio.Task[None]:
    return asyncio.create_task(sched.run())


async def stop(sched: HeldScheduler, task: asyncio.Task[None]) -> None:
    sched.release.set()
    sched.stop()
    await asyncio.wait_for(task, 10)


async def test_binds_in_flight_never_overcommit_a_node(api: ApiClient) -> None:  # noqa: F811
    for name in ("x", "y"):
        await api.create(NODES, node(name, "1", "4Gi"))
    for i in range(6):
        await api.create(PODS, api_pod(f"p{i}", "500m"), namespace="default")
    sched = HeldScheduler(api)
    pods = sched.factory.informer(PODS)
    task = await run(sched)
    try:
        # Every bind is held, yet all six pods get their cycle: four fit, two do not.
        await sched.until(lambda: sched.in_flight == 4 and
                    sum(scheduled_false(p) is not None for p in pods.list()) == 2)
        assert len(sched.snapshot.assumed) == 4
        for info in sched.snapshot.node_infos():
            assert info.requested.milli_cpu <= info.allocatable.milli_cpu == 1000
            assert len(info.pods) == 2
        refused = [p for p in pods.list() if scheduled_false(p)]
        assert all(scheduled_false(p)["message"].startswith("0/2 nodes are available: 2 Insufficient cpu.")
                   for p in refused)
        sched.release.set()
        await sched.until(lambda: len(bound_to(pods)) == 4)
        per_node = list(bound_to(pods).values())
        assert sorted(per_node) == ["x", "x", "y", "y"]
        assert not sched.snapshot.assumed or all(k in {f"default/{n}" for n in bound_to(pods)}
                                                 for k in sched.snapshot.assumed)
    finally:
        await stop(sched, task)


async def test_binds_are_bounded_but_scheduling_goes_on(api: ApiClient) -> None:  # noqa: F811
    await api.create(NODES, node("big", "64", "64Gi"))
    for i in range(8):
        await api.create(PODS, api_pod(f"p{i}", "100m"), namespace="default")
    sched = HeldScheduler(api)
    sched._bindings = asyncio.Semaphore(3)
    pods = sched.factory.informer(PODS)
    task = await run(sched)
    try:
        await sched.until(lambda: len(sched.snapshot.assumed) == 8 and sched.in_flight == 3)
        assert sched.most_in_flight == 3
        sched.release.set()
        await sched.until(lambda: len(bound_to(pods)) == 8)
        assert sched.most_in_flight == 3 and sched.scheduled == 8
    finally:
        await stop(sched, task)


async def test_a_failed_bind_forgets_the_pod_and_tries_again(api: ApiClient) -> None:  # noqa: F811
    await api.create(NODES, node("only", "1", "4Gi"))
    await api.create(PODS, api_pod("a", "1"), namespace="default")
    sched = HeldScheduler(api, fail={"a": 1})
    sched.queue.initial_backoff = 60.0       # the retry waits: the state in between is checked
    pods = sched.factory.informer(PODS)
    task = await run(sched)
    try:
        sched.release.set()
        await sched.until(lambda: (scheduled_false(pods.get("default/a")) or {}).get("reason") == "SchedulerError")
        assert "etcd is having a bad day" in scheduled_false(pods.get("default/a"))["message"]
        assert sched.queue.where("default/a") == "backoff"          # requeued, backing off
        assert "default/a" not in sched.snapshot.assumed            # forgotten ...
        assert sched.snapshot.get("only").requested.milli_cpu == 0  # ... so the node is free again
        # A newcomer takes the room the failed pod left.
        await api.create(PODS, api_pod("b", "1"), namespace="default")
        await sched.until(lambda: bound_to(pods) == {"b": "only"})
        # A minute later (on the queue's clock) the retry finds the node full.
        sched.queue.clock = lambda: time.monotonic() + 61
        sched.queue.flush_backoff_completed()
        await sched.until(lambda: (scheduled_false(pods.get("default/a")) or {}).get("reason") == "Unschedulable")
        assert sched.calls == {"a": 1, "b": 1}
    finally:
        await stop(sched, task)


async def test_a_failed_bind_is_retried_until_it_binds(api: ApiClient) -> None:  # noqa: F811
    await api.create(NODES, node("only", "1", "4Gi"))
    await api.create(PODS, api_pod("a", "500m"), namespace="default")
    sched = HeldScheduler(api, fail={"a": 2})
    sched.queue.initial_backoff = 0.01
    sched.release.set()
    pods = sched.factory.informer(PODS)
    task = await run(sched)
    try:
        await sched.until(lambda: bound_to(pods) == {"a": "only"})
        assert sched.calls == {"a": 3}
        assert sched.snapshot.get("only").requested.milli_cpu == 500
    finally:
        await stop(sched, task)


class OrderRecorder:
    """Filter + Reserve plugin that logs the order of its calls; refuses to reserve pod "veto"."""

    name = "OrderRecorder"

    def __init__(self, log: list[str]) -> None:
        self.log = log

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        self.log.append(f"filter {pod.name}")
        return SUCCESS

    def reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status:
        self.log.append(f"reserve {pod.name}")
        return unschedulable("reservation refused") if pod.name == "veto" else SUCCESS

    def unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        self.log.append(f"unreserve {pod.name}")


async def test_reserve_runs_in_the_cycle_even_when_binds_queue_up(api: ApiClient) -> None:  # noqa: F811
    log: list[str] = []
    registry = default_registry()
    registry.register(OrderRecorder.name, lambda args, handle: OrderRecorder(log))
    profile = Profile(plugins=DEFAULT_PLUGINS + (PluginRef(OrderRecorder.name),))
    await api.create(NODES, node("n", "8", "8Gi"))
    sched = HeldScheduler(api, profiles=[profile], registry=registry)
    sched._bindings = asyncio.Semaphore(1)     # the first bind blocks every later one
    pods = sched.factory.informer(PODS)
    task = await run(sched)
    try:
        for name in ("a", "b", "veto", "c"):
            await api.create(PODS, api_pod(name, "100m"), namespace="default")
            await sched.until(lambda: f"reserve {name}" in log)
        assert log == ["filter a", "reserve a", "filter b", "reserve b", "filter veto", "reserve veto",
                       "unreserve veto", "filter c", "reserve c"]
        await sched.until(lambda: (scheduled_false(pods.get("default/veto")) or {}).get("message")
                    == "reservation refused")
        assert "default/veto" not in sched.snapshot.assumed
        assert sched.snapshot.get("n").requested.milli_cpu == 300       # a, b and c
        assert sched.queue.where("default/veto") in ("unschedulable", "backoff")   # parked, not lost
        sched.release.set()
        await sched.until(lambda: set(bound_to(pods)) == {"a", "b", "c"})
    finally:
        await stop(sched, task)
