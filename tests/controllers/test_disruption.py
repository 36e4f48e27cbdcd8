"""PodDisruptionBudget status, and ``kubectl drain`` honouring it through the eviction subresource."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from housekeeping_support import (
    ApiServer, background, meta, owner_ref, running_controllers, watch_until,
)
from skiff.client.resources import DEPLOYMENTS, PODS, REPLICASETS
from skiff.controllers.disruption import PODDISRUPTIONBUDGETS, DisruptionController
from skiff.controllers.gc import GarbageCollector
from skiff.controllers.replicaset import ReplicaSetController
from skiff.kubelet.fake import FakeNodeAgent, FakeNodeFleet, fake_node_specs
from skiff.scheduler.scheduler import run_scheduler

Obj = dict[str, Any]
NODE_A, NODE_B = (s.name for s in fake_node_specs(2))


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer(tmp_path) as server:
        agents = [FakeNodeAgent(server.client, spec) for spec in fake_node_specs(2)]
        fleet = FakeNodeFleet(server.client, agents, workers=2)
        async with background(fleet.run()):
            await asyncio.wait_for(fleet.registered.wait(), 10)
            yield server


def template(app: str) -> Obj:
    return {"metadata": {"labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


async def owned_pods(api: ApiServer, owner: Obj, count: int, node: str) -> list[str]:
    names = []
    for i in range(count):
        name = f"{meta(owner)['name']}-{i}"
        await api.client.create(PODS, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "web"}, "ownerReferences": [owner_ref(owner)]},
            "spec": {"nodeName": node, **template("web")["spec"]}}, namespace="default")
        names.append(name)
    for name in names:
        await watch_until(api.client, PODS, lambda _t, o, n=name: meta(o)["name"] == n
                          and o["status"].get("phase") == "Running", namespace="default")
    return names


async def replicaset(api: ApiServer, name: str, replicas: int, owner: Obj | None = None) -> Obj:
    body: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
                 "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                          "template": template("web")}}
    if owner is not None:
        body["metadata"]["ownerReferences"] = [owner_ref(owner)]
    return await api.client.create(REPLICASETS, body, namespace="default")


async def budget(api: ApiServer, **spec: Any) -> None:
    await api.client.create(PODDISRUPTIONBUDGETS, {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}, namespace="default")


async def settled_status(api: ApiServer, **want: int) -> Obj:
    def done(_t: str, pdb: Obj) -> bool:
        status = pdb.get("status") or {}
        return status.get("observedGeneration") == meta(pdb).get("generation") and all(
            status.get(k) == v for k, v in want.items())
    pdb = await watch_until(api.client, PODDISRUPTIONBUDGETS, done, namespace="default")
    return pdb["status"]  # type: ignore[no-any-return]


async def test_min_available_counts_the_matching_pods(api: ApiServer) -> None:
    rs = await replicaset(api, "web", 3)
    await owned_pods(api, rs, 3, NODE_A)
    async with running_controllers(api.client, [("disruption", DisruptionController)]):
        await budget(api, minAvailable=2)
        status = await settled_status(api, currentHealthy=3, desiredHealthy=2, expectedPods=3,
                                      disruptionsAllowed=1)
        cond = status["conditions"][0]
        assert (cond["type"], cond["status"], cond["reason"]) == (
            "DisruptionAllowed", "True", "SufficientPods")
        # a pod that is no longer Ready leaves no room for a disruption
        pod = await api.client.get(PODS, "web-0", namespace="default")
        conditions = [dict(c, status="False") if c["type"] == "Ready" else c
                      for c in pod["status"]["conditions"]]
        await api.client.patch(PODS, "web-0", {"status": {"conditions": conditions}},
                               namespace="default", subresource="status")
        status = await settled_status(api, currentHealthy=2, disruptionsAllowed=0)
        assert status["conditions"][0]["reason"] == "InsufficientPods"


async def test_max_unavailable_uses_the_deployments_scale(api: ApiServer) -> None:
    deploy = await api.client.create(DEPLOYMENTS, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 5, "selector": {"matchLabels": {"app": "web"}},
                 "template": template("web")}}, namespace="default")
    rs = await replicaset(api, "web-1", 4, owner=deploy)
    await owned_pods(api, rs, 4, NODE_A)
    async with running_controllers(api.client, [("disruption", DisruptionController)]):
        await budget(api, maxUnavailable="50%")
        # 5 expected (the Deployment's replicas), 50% of 5 rounds up to 3 -> 2 must stay
        await settled_status(api, expectedPods=5, desiredHealthy=2, currentHealthy=4,
                             disruptionsAllowed=2)


async def test_a_budget_without_pods_allows_nothing(api: ApiServer) -> None:
    async with running_controllers(api.client, [("disruption", DisruptionController)]):
        await budget(api, minAvailable=0)
        status = await settled_status(api, expectedPods=0, currentHealthy=0, disruptionsAllowed=0)
        assert status["conditions"][0]["status"] == "False"


async def test_kubectl_drain_waits_for_the_budget(api: ApiServer) -> None:
    """Both replicas on node A, at least 1 must stay available: drain evicts one, waits
    until its replacement runs on node B, then evicts the other."""
    rs = await replicaset(api, "web", 2)
    first, second = await owned_pods(api, rs, 2, NODE_A)
    async with background(run_scheduler(api.client)), running_controllers(api.client, [
            ("replicaset", ReplicaSetController), ("garbagecollector", GarbageCollector),
            ("disruption", DisruptionController)]):
        await budget(api, minAvailable=1)
        await settled_status(api, disruptionsAllowed=1)
        since = (await api.client.list(PODS, namespace="default")).resource_version
        code, out, err = await api.kubectl("drain", NODE_A, "--ignore-daemonsets",
                                           "--timeout=40s", timeout=45)
        assert code == 0, err
        assert f"node/{NODE_A} drained" in out
        events: list[tuple[int, str, Obj]] = []
        async with api.client.watch(PODS, namespace="default", resource_version=since,
                                    timeout_seconds=1) as stream:
            async for type_, pod in stream:
                events.append((int(meta(pod)["resourceVersion"]), type_, pod))

        def first_rv(check: Any) -> int:
            return min(rv for rv, t, p in events if check(t, p))
        ready_on_b = first_rv(lambda _t, p: p["spec"].get("nodeName") == NODE_B and any(
            c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or []))
        evicted = sorted(first_rv(lambda _t, p, n=n: meta(p)["name"] == n
                                  and bool(meta(p).get("deletionTimestamp"))) for n in (first, second))
        # the second eviction waited for a replacement to be Ready elsewhere
        assert evicted[0] < ready_on_b < evicted[1]
        remaining = (await api.client.list(PODS, namespace="default")).items
        assert remaining and all(p["spec"]["nodeName"] == NODE_B for p in remaining)
