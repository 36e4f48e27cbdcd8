"""Support for the Job and CronJob controller tests (no tests here).

:func:`batch_cluster` starts the real API server in-process, two simulated
nodes (pods with ``restartPolicy: Never/OnFailure`` complete at once unless
``skiff.dev/fake-run-seconds`` says otherwise; ``skiff.dev/fake-exit-code``
makes them fail), the real scheduler, and the controllers under test -- each
group of controllers on the clock the test chooses.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from housekeeping_support import ApiServer, background, meta, running_controllers, watch_until
from skiff.client.clock import Clock
from skiff.client.resources import EVENTS, JOBS, PODS
from skiff.controllers.gc import GarbageCollector
from skiff.controllers.job import JobController
from skiff.controllers.manager import ControllerFactory
from skiff.kubelet.fake import FakeNodeAgent, FakeNodeFleet, fake_node_specs
from skiff.scheduler.scheduler import run_scheduler

Obj = dict[str, Any]

#: A small back-off base for tests on the real clock (10 s in production).
FAST_BACKOFF = 0.05


def job_controller(*, backoff_base: float = FAST_BACKOFF) -> ControllerFactory:
    return functools.partial(JobController, backoff_base=backoff_base)


def gc_controller() -> ControllerFactory:
    return functools.partial(GarbageCollector, resync_period=3600)


@contextlib.asynccontextmanager
async def batch_cluster(tmp_path: Path,
                        *groups: tuple[Sequence[tuple[str, ControllerFactory]], Clock | None],
                        node_clock: Clock | None = None) -> AsyncIterator[ApiServer]:
    """API server + 2 fake nodes + scheduler + each (controllers, clock) group.

    ``node_clock``: the simulated nodes' clock (pod start/finish times, run-seconds);
    their lease and status heartbeats are then hourly, so they stay out of the way.
    """
    async with ApiServer(tmp_path) as api, contextlib.AsyncExitStack() as stack:
        agents = [FakeNodeAgent(api.client, spec, clock=node_clock) for spec in fake_node_specs(2)]
        quiet = {} if node_clock is None else {"lease_interval": 3600.0, "status_interval": 3600.0}
        fleet = FakeNodeFleet(api.client, agents, workers=4, clock=node_clock, **quiet)
        await stack.enter_async_context(background(fleet.run()))
        await asyncio.wait_for(fleet.registered.wait(), 10)
        await stack.enter_async_context(background(run_scheduler(api.client)))
        for factories, clock in groups:
            await stack.enter_async_context(running_controllers(api.client, factories, clock=clock))
        yield api


def pod_template(*, run_seconds: float | None = None, exit_code: int | None = None,
                 restart: str = "Never", command: Sequence[str] | None = None) -> Obj:
    annotations: dict[str, str] = {}
    if run_seconds is not None:
        annotations["skiff.dev/fake-run-seconds"] = str(run_seconds)
    if exit_code is not None:
        annotations["skiff.dev/fake-exit-code"] = str(exit_code)
    container: Obj = {"name": "work", "image": "busybox", "imagePullPolicy": "IfNotPresent"}
    if command:
        container["command"] = list(command)
    template: Obj = {"spec": {"restartPolicy": restart, "containers": [container]}}
    if annotations:
        template["metadata"] = {"annotations": annotations}
    return template


def job_manifest(name: str, *, template: Obj | None = None, **spec: Any) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": template or pod_template(), **spec}}


async def create_job(api: ApiServer, name: str, **kwargs: Any) -> Obj:
    created: Obj = await api.client.create(JOBS, job_manifest(name, **kwargs), namespace="default")
    return created


def condition(obj: Obj, type_: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return cond  # type: ignore[no-any-return]
    return None


async def wait_job(api: ApiServer, name: str, check: Callable[[Obj], Any], *,
                   timeout: float = 15.0) -> Obj:
    """Watch the Job until ``check(job)`` holds; that Job."""
    return await watch_until(api.client, JOBS, lambda _t, o: meta(o)["name"] == name
                             and bool(check(o)), namespace="default", timeout=timeout)


async def wait_finished(api: ApiServer, name: str, type_: str = "Complete", **kw: Any) -> Obj:
    return await wait_job(api, name, lambda j: condition(j, type_) is not None, **kw)


def owned_by(job: Obj, pods: Sequence[Obj]) -> list[Obj]:
    uid = meta(job)["uid"]
    return [p for p in pods if any(r.get("uid") == uid for r in meta(p).get("ownerReferences") or [])]


async def job_pods(api: ApiServer, job: Obj) -> list[Obj]:
    return owned_by(job, (await api.client.list(PODS, namespace="default")).items)


async def events_for(api: ApiServer, name: str, reason: str, *, count: int = 1,
                     timeout: float = 15.0) -> list[Obj]:
    """Watch until ``count`` events (summing their ``count``) with ``reason`` name ``name``."""
    seen: dict[str, Obj] = {}

    def check(_type: str, event: Obj) -> bool:
        if event["involvedObject"].get("name") == name and event.get("reason") == reason:
            seen[meta(event)["name"]] = event
        return sum(int(e.get("count") or 1) for e in seen.values()) >= count
    await watch_until(api.client, EVENTS, check, namespace="default", timeout=timeout)
    return list(seen.values())


class PodWatch:
    """Follows every pod of the namespace through a watch, from a resourceVersion on.

    ``most_running`` is the largest number of pods seen at once that were
    neither finished nor being deleted (judged from each event, in order).
    """

    def __init__(self, api: ApiServer, since: str) -> None:
        self.api = api
        self.since = since
        self.pods: dict[str, Obj] = {}
        self.most_running = 0
        self.names: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def running(self) -> int:
        return sum(1 for p in self.pods.values() if not meta(p).get("deletionTimestamp")
                   and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))

    async def _follow(self) -> None:
        rv = self.since
        while True:
            async with self.api.client.watch(PODS, namespace="default", resource_version=rv,
                                             timeout_seconds=60) as events:
                async for type_, pod in events:
                    name = meta(pod)["name"]
                    if type_ == "DELETED":
                        self.pods.pop(name, None)
                    else:
                        if name not in self.pods and type_ == "ADDED":
                            self.names.append(name)
                        self.pods[name] = pod
                    self.most_running = max(self.most_running, self.running())
                rv = events.resource_version or rv

    async def __aenter__(self) -> "PodWatch":
        self._task = asyncio.create_task(self._follow())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
