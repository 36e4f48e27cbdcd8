"""The scheduler component against skiff's real API server (in-process, sqlite, loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

from apiserver_support import ApiServer
from skiff.client.informer import Informer
from skiff.client.resources import EVENTS, NODES, PODS
from skiff.client.rest import ApiClient
from skiff.scheduler.scheduler import Scheduler

from .builders import node, pod

Obj = dict[str, Any]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiClient]:
    async with ApiServer(tmp_path) as server:
        yield server.client


async def until(informer: Informer, check: Callable[[], bool], timeout: float = 10) -> None:
    """Wait (event-driven) until ``check()`` holds, re-checking on every change the informer sees."""
    changed = asyncio.Event()
    informer.add_handler(on_add=lambda o: changed.set(), on_update=lambda o, n: changed.set(),
                         on_delete=lambda o: changed.set())

    async def loop() -> None:
        while not check():
            changed.clear()
            await changed.wait()

    await asyncio.wait_for(loop(), timeout)


def api_pod(name: str, cpu: str, **kw: Any) -> Obj:
    p = pod(name, cpu, **kw)
    p["metadata"].pop("uid")
    p.pop("status")
    return p


async def test_schedules_binds_and_explains(api: ApiClient) -> None:
    for i in range(3):
        await api.create(NODES, node(f"n{i}", "2", "4Gi"))
    for i in range(6):
        await api.create(PODS, api_pod(f"web-{i}", "500m"), namespace="default")
    await api.create(PODS, api_pod("huge", "16"), namespace="default")
    await api.create(PODS, api_pod("other", "100m", spec={"schedulerName": "someone-else"}), namespace="default")

    sched = Scheduler(api)
    pods = sched.factory.informer(PODS)
    runner = asyncio.create_task(sched.run())
    try:
        def done() -> bool:
            bound = [p for p in pods.list() if (p.get("spec") or {}).get("nodeName")]
            huge = pods.get("default/huge") or {}
            conds = (huge.get("status") or {}).get("conditions") or []
            return len(bound) == 6 and any(c.get("type") == "PodScheduled" and c.get("status") == "False"
                                           for c in conds)
        await until(pods, done)
        per_node: dict[str, int] = {}
        for p in pods.list():
            n = (p.get("spec") or {}).get("nodeName")
            if n:
                per_node[n] = per_node.get(n, 0) + 1
        assert sorted(per_node.values()) == [2, 2, 2]
        assert not (pods.get("default/other") or {}).get("spec", {}).get("nodeName")
        cond = next(c for c in pods.get("default/huge")["status"]["conditions"] if c["type"] == "PodScheduled")
        assert cond["reason"] == "Unschedulable"
        assert cond["message"] == ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
                                   "available: 3 No preemption victims found for incoming pod.")
        await sched.recorder.flush()
        events = (await api.list(EVENTS, namespace="default")).items
        scheduled = [e for e in events if e["reason"] == "Scheduled"]
        assert len(scheduled) == 6
        web0 = next(e for e in scheduled if e["involvedObject"]["name"] == "web-0")
        assert web0["message"] == f"Successfully assigned default/web-0 to {pods.get('default/web-0')['spec']['nodeName']}"
        assert web0["source"]["component"] == "default-scheduler"
        failed = [e for e in events if e["reason"] == "FailedScheduling"]
        assert failed and failed[0]["type"] == "Warning" and failed[0]["message"] == cond["message"]
    finally:
        sched.stop()
        await asyncio.wait_for(runner, 10)


async def test_new_node_unblocks_a_pending_pod(api: ApiClient) -> None:
    await api.create(NODES, node("small", "1", "1Gi"))
    await api.create(PODS, api_pod("big", "2"), namespace="default")
    sched = Scheduler(api)
    pods = sched.factory.informer(PODS)
    runner = asyncio.create_task(sched.run())
    try:
        await until(pods, lambda: any(c.get("status") == "False" for c in
                                      ((pods.get("default/big") or {}).get("status") or {}).get("conditions") or []))
        await api.create(NODES, node("large", "4", "8Gi"))
        await until(pods, lambda: ((pods.get("default/big") or {}).get("spec") or {}).get("nodeName") == "large")
    finally:
        sched.stop()
        await asyncio.wait_for(runner, 10)


async def test_preemption_evicts_lower_priority_pod(api: ApiClient) -> None:
    await api.create(NODES, node("only", "1", "2Gi"))
    await api.create(PODS, api_pod("low", "1", priority=0), namespace="default")
    sched = Scheduler(api)
    pods = sched.factory.informer(PODS)
    runner = asyncio.create_task(sched.run())
    try:
        await until(pods, lambda: ((pods.get("default/low") or {}).get("spec") or {}).get("nodeName") == "only")
        await api.create(PODS, api_pod("vip", "1", priority=1000), namespace="default")

        def evicted_and_nominated() -> bool:
            low = pods.get("default/low")
            vip = pods.get("default/vip") or {}
            gone = low is None or bool((low.get("metadata") or {}).get("deletionTimestamp"))
            return gone and (vip.get("status") or {}).get("nominatedNodeName") == "only"
        await until(pods, evicted_and_nominated)
    finally:
        sched.stop()
        await asyncio.wait_for(runner, 10)
