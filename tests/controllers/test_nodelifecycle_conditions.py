"""TaintNodesByCondition for the kubelet's pressure conditions, and what follows from it:
the scheduler keeps new pods off a pressured node (unless they tolerate it, as DaemonSet
pods do), and a pod the kubelet evicted for pressure is replaced by its ReplicaSet on a
node without pressure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from housekeeping_support import ApiServer, background, meta, running_controllers, watch_until
from skiff.client.resources import NODES, PODS, REPLICASETS
from skiff.controllers.daemonset.placement import DAEMON_TOLERATIONS
from skiff.controllers.nodelifecycle import NodeLifecycleController
from skiff.controllers.nodelifecycle.health import desired_taints
from skiff.controllers.replicaset import ReplicaSetController
from skiff.kubelet.fake import FakeNodeAgent, FakeNodeFleet, fake_node_specs
from skiff.scheduler.scheduler import run_scheduler

Obj = dict[str, Any]
NEVER = 1e9          # the fleets never post status on their own: the test writes conditions
PRESSURE_TAINTS = {"MemoryPressure": "node.kubernetes.io/memory-pressure",
                   "DiskPressure": "node.kubernetes.io/disk-pressure",
                   "PIDPressure": "node.kubernetes.io/pid-pressure"}


def node_with(conditions: dict[str, str], taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": "n"}, "spec": {"taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": "True"}] + [
                {"type": t, "status": s} for t, s in conditions.items()]}}


def taints(node: Obj) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


@pytest.mark.parametrize("condition", sorted(PRESSURE_TAINTS))
def test_each_pressure_condition_calls_for_its_noschedule_taint(condition: str) -> None:
    admin = {"key": "team", "value": "a", "effect": "NoSchedule"}
    pressured = desired_taints(node_with({condition: "True"}, [admin]), now="t")
    assert pressured == [admin, {"key": PRESSURE_TAINTS[condition], "effect": "NoSchedule"}]
    relieved = desired_taints(node_with({condition: "False"}, pressured), now="t")
    assert relieved == [admin]
    assert desired_taints(node_with({condition: "Unknown"}), now="t") == []


def test_daemonset_pods_tolerate_every_pressure_taint() -> None:
    tolerated = {(t["key"], t.get("effect")) for t in DAEMON_TOLERATIONS if t.get("operator") == "Exists"}
    assert {(key, "NoSchedule") for key in PRESSURE_TAINTS.values()} <= tolerated


class Cluster:
    def __init__(self, api: ApiServer) -> None:
        self.api = api
        self.client = api.client
        self.fleets: dict[str, FakeNodeFleet] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def start_nodes(self, count: int) -> list[str]:
        for spec in fake_node_specs(count):
            fleet = FakeNodeFleet(self.client, [FakeNodeAgent(self.client, spec)], lease_interval=NEVER,
                                  status_interval=NEVER, workers=2)
            self.fleets[spec.name] = fleet
            self.tasks[spec.name] = asyncio.create_task(fleet.run())
            await asyncio.wait_for(fleet.registered.wait(), 10)
        return list(self.fleets)

    async def stop(self, name: str) -> None:
        self.fleets[name].stop()
        await asyncio.wait_for(self.tasks.pop(name), 10)

    async def set_condition(self, name: str, ctype: str, status: str) -> None:
        node = await self.client.get(NODES, name)
        updated = [dict(c, status=status) if c["type"] == ctype else c for c in node["status"]["conditions"]]
        await self.client.patch(NODES, name, {"status": {"conditions": updated}}, subresource="status")

    async def wait_taints(self, name: str, wanted: set[tuple[str, str]]) -> None:
        await watch_until(self.client, NODES, lambda _t, o: taints(o) == wanted,
                          field_selector=f"metadata.name={name}")


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with ApiServer(tmp_path) as api:
        c = Cluster(api)
        try:
            yield c
        finally:
            for name in list(c.tasks):
                await c.stop(name)


async def test_pressure_conditions_taint_the_node_and_untaint_it_when_they_clear(cluster: Cluster) -> None:
    [name] = await cluster.start_nodes(1)
    async with running_controllers(cluster.client, [("nodelifecycle", NodeLifecycleController)]):
        for ctype, key in sorted(PRESSURE_TAINTS.items()):
            await cluster.set_condition(name, ctype, "True")
            await cluster.wait_taints(name, {(key, "NoSchedule")})
            await cluster.set_condition(name, ctype, "False")
            await cluster.wait_taints(name, set())


async def test_an_evicted_replica_is_replaced_on_a_node_without_pressure(cluster: Cluster) -> None:
    a, b = await cluster.start_nodes(2)
    client = cluster.client
    labels = {"app": "web"}
    async with running_controllers(client, [("nodelifecycle", NodeLifecycleController),
                                            ("replicaset", ReplicaSetController)]), \
            background(run_scheduler(client)):
        await cluster.set_condition(b, "DiskPressure", "True")          # first: everything on a
        await cluster.wait_taints(b, {("node.kubernetes.io/disk-pressure", "NoSchedule")})
        rs = await client.create(REPLICASETS, {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
            namespace="default")
        first = await watch_until(client, PODS, lambda _t, o: o["status"].get("phase") == "Running",
                                  namespace="default")
        assert first["spec"]["nodeName"] == a
        await cluster.set_condition(b, "DiskPressure", "False")
        await cluster.wait_taints(b, set())

        # node a's kubelet runs short of memory and evicts the replica (as .kubelet.eviction does)
        await cluster.stop(a)          # its fake kubelet would go on reporting the pod Running
        await cluster.set_condition(a, "MemoryPressure", "True")
        await cluster.wait_taints(a, {("node.kubernetes.io/memory-pressure", "NoSchedule")})
        message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 42Mi. "
        since = (await client.list(PODS, namespace="default")).resource_version
        await client.patch(PODS, meta(first)["name"], {"status": {
            "phase": "Failed", "reason": "Evicted", "message": message,
            "conditions": [{"type": "DisruptionTarget", "status": "True",
                            "reason": "TerminationByKubelet", "message": message}]}},
            namespace="default", subresource="status")

        replacement = await watch_until(
            client, PODS, lambda _t, o: meta(o)["name"] != meta(first)["name"]
            and o["status"].get("phase") == "Running", namespace="default", since=since)
        assert replacement["spec"]["nodeName"] == b
        assert meta(replacement)["ownerReferences"][0]["uid"] == meta(rs)["uid"]
        evicted = await client.get(PODS, meta(first)["name"], namespace="default")
        assert (evicted["status"]["phase"], evicted["status"]["reason"]) == ("Failed", "Evicted")

        # a pod that tolerates the pressure (as DaemonSet pods do) may still go to node a
        await client.create(PODS, {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent"},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": a}, "tolerations": list(DAEMON_TOLERATIONS),
                     "containers": [{"name": "c", "image": "nginx"}]}}, namespace="default")
        placed = await watch_until(client, PODS, lambda _t, o: meta(o)["name"] == "agent"
                                   and bool(o["spec"].get("nodeName")), namespace="default")
        assert placed["spec"]["nodeName"] == a
