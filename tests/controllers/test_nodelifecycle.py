"""Node lifecycle and taint eviction, with simulated nodes on a fake clock.

Each simulated node runs in its own fleet with automatic heartbeats switched
off: the test renews a node's Lease itself (``beat``), and waits until the
controller has seen it, so time can jump without any sleeping.  "Killing" a
node stops its fleet: no heartbeats, nobody finishes its pods' deletion --
exactly what a node that lost power looks like.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

from housekeeping_support import (
    ApiServer, EagerFakeClock, background, meta, running_controllers, watch_until,
)
from skiff.api.kinds.meta.cells import parse_time
from skiff.client.clock import FakeClock
from skiff.client.informer import Informer
from skiff.client.resources import NODES, PODS, REPLICASETS
from skiff.controllers.nodelifecycle import (
    NodeLifecycleConfig, NodeLifecycleController, TaintEvictionController,
)
from skiff.controllers.reconciler import Controller, ControllerContext
from skiff.controllers.replicaset import ReplicaSetController
from skiff.kubelet.fake import FakeNodeAgent, FakeNodeFleet, fake_node_specs
from skiff.scheduler.scheduler import run_scheduler

Obj = dict[str, Any]
GRACE = 22.0
NEVER = 1e9  # heartbeat intervals of the fleets: the test beats by hand


class Node:
    """One simulated node in a fleet of its own."""

    def __init__(self, client: Any, index: int, clock: FakeClock) -> None:
        spec = fake_node_specs(index + 1)[index]
        self.agent = FakeNodeAgent(client, spec, clock=clock)
        self.fleet = FakeNodeFleet(client, [self.agent], clock=clock, lease_interval=NEVER,
                                   status_interval=NEVER, workers=2)
        self.name = spec.name
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.fleet.run())
        await asyncio.wait_for(self.fleet.registered.wait(), 10)

    async def kill(self) -> None:
        self.fleet.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
            self.task = None


class Scene:
    def __init__(self, api: ApiServer, clock: FakeClock) -> None:
        self.api = api
        self.clock = clock
        self.nodes: list[Node] = []
        self.lifecycle: NodeLifecycleController

    def capture(self, ctx: ControllerContext) -> Controller:
        self.lifecycle = NodeLifecycleController(ctx, config=NodeLifecycleConfig(grace_period=GRACE))
        return self.lifecycle

    async def beat(self, node: Node) -> None:
        """The node's kubelet renews its Lease; return once the controller has seen it."""
        await node.agent.renew_lease()
        assert node.agent.lease is not None
        renewed = node.agent.lease["spec"]["renewTime"]
        await until_cached(self.lifecycle.leases, lambda inf: (inf.get(
            f"kube-node-lease/{node.name}") or {}).get("spec", {}).get("renewTime") == renewed)


async def until_cached(informer: Informer, predicate: Callable[[Informer], bool]) -> None:
    changed = asyncio.Event()
    informer.add_handler(on_add=lambda _o: changed.set(), on_update=lambda _o, _n: changed.set(),
                         on_delete=lambda _o: changed.set())

    async def loop() -> None:
        while not predicate(informer):
            changed.clear()
            await changed.wait()
    await asyncio.wait_for(loop(), 10)


@pytest.fixture
async def scene(tmp_path: Path) -> AsyncIterator[Scene]:
    clock = EagerFakeClock()
    async with ApiServer(tmp_path) as api:
        s = Scene(api, clock)
        try:
            yield s
        finally:
            for node in s.nodes:
                await node.kill()


async def start(scene: Scene, nodes: int, *extra: tuple[str, Any]) -> None:
    for i in range(nodes):
        node = Node(scene.api.client, i, scene.clock)
        scene.nodes.append(node)
        await node.start()


def tolerating(seconds: int | None) -> list[Obj]:
    tol: list[Obj] = [{"key": key, "operator": "Exists", "effect": "NoExecute"}
                      for key in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]
    if seconds is not None:
        for t in tol:
            t["tolerationSeconds"] = seconds
    return tol


async def run_pod(scene: Scene, name: str, node: Node, tolerations: list[Obj]) -> Obj:
    await scene.api.client.create(PODS, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"nodeName": node.name, "tolerations": tolerations,
                 "containers": [{"name": "c", "image": "nginx"}]}}, namespace="default")
    return await watch_until(scene.api.client, PODS, lambda _t, o: meta(o)["name"] == name
                             and o["status"].get("phase") == "Running", namespace="default")


def conditions(node: Obj) -> dict[str, Obj]:
    return {c["type"]: c for c in node["status"]["conditions"]}


def taints(node: Obj) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node["spec"].get("taints") or []}


def unreachable(_t: str, node: Obj) -> bool:
    return ("node.kubernetes.io/unreachable", "NoExecute") in taints(node)


def epoch(stamp: str) -> float:
    when = parse_time(stamp)
    assert isinstance(when, datetime)
    return when.timestamp()


async def test_a_silent_node_turns_unknown_is_tainted_and_its_pods_are_evicted(scene: Scene) -> None:
    await start(scene, 2)
    alive, dead = scene.nodes
    client, clock = scene.api.client, scene.clock
    async with running_controllers(client, [("nodelifecycle", scene.capture),
                                            ("taint-eviction-controller", TaintEvictionController)],
                                   clock=clock):
        short = await run_pod(scene, "short", dead, tolerating(5))
        await run_pod(scene, "forever", dead, tolerating(None))
        await run_pod(scene, "elsewhere", alive, tolerating(5))
        assert {c["type"]: c["status"] for c in short["status"]["conditions"]}["Ready"] == "True"
        await dead.kill()
        since = (await client.list(NODES)).resource_version
        for _ in range(2):  # 20 s pass: the dead node is within its grace period still
            clock.advance(10)
            await scene.beat(alive)
        clock.advance(3)  # 23 s since the dead node was last heard from
        node = await watch_until(client, NODES, unreachable, since=since,
                                 field_selector=f"metadata.name={dead.name}")
        conds = conditions(node)
        for ctype in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
            assert (conds[ctype]["status"], conds[ctype]["reason"], conds[ctype]["message"]) == (
                "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        assert taints(node) == {("node.kubernetes.io/unreachable", "NoSchedule"),
                                ("node.kubernetes.io/unreachable", "NoExecute")}
        tainted_at = epoch(next(t["timeAdded"] for t in node["spec"]["taints"]
                                if t["effect"] == "NoExecute"))
        healthy = await client.get(NODES, alive.name)
        assert conditions(healthy)["Ready"]["status"] == "True" and not taints(healthy)
        # its pods are no longer Ready
        not_ready = await watch_until(client, PODS, lambda _t, o: meta(o)["name"] == "short" and {
            c["type"]: c["status"] for c in o["status"]["conditions"]}["Ready"] == "False",
            namespace="default")
        assert not meta(not_ready).get("deletionTimestamp")

        clock.advance(5)  # the 5 s toleration runs out
        evicted = await watch_until(client, PODS, lambda _t, o: meta(o)["name"] == "short"
                                    and bool(meta(o).get("deletionTimestamp")), namespace="default")
        target = conditions(evicted)["DisruptionTarget"]
        assert (target["status"], target["reason"], target["message"]) == (
            "True", "DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
        assert epoch(target["lastTransitionTime"]) >= tainted_at + 5
        await scene.beat(alive)
        # the pod tolerating the taint forever stays; so does the one on the healthy node
        for name in ("forever", "elsewhere"):
            assert not meta(await client.get(PODS, name, namespace="default")).get("deletionTimestamp")


async def test_a_node_that_comes_back_loses_its_taints(scene: Scene) -> None:
    await start(scene, 2)
    alive, flaky = scene.nodes
    client, clock = scene.api.client, scene.clock
    async with running_controllers(client, [("nodelifecycle", scene.capture)], clock=clock):
        since = (await client.list(NODES)).resource_version
        clock.advance(10)
        await scene.beat(alive)
        clock.advance(13)
        tainted = await watch_until(client, NODES, unreachable, since=since,
                                    field_selector=f"metadata.name={flaky.name}")
        # the kubelet is back: it renews its Lease and posts Ready again
        await scene.beat(flaky)
        await flaky.agent.post_status()
        node = await watch_until(client, NODES, lambda _t, o: not taints(o),
                                 since=meta(tainted)["resourceVersion"],
                                 field_selector=f"metadata.name={flaky.name}")
        assert conditions(node)["Ready"]["status"] == "True"


async def test_no_eviction_when_every_node_is_silent(scene: Scene) -> None:
    """All nodes silent at once looks like our problem, not theirs: no NoExecute taints."""
    await start(scene, 2)
    client, clock = scene.api.client, scene.clock
    async with running_controllers(client, [("nodelifecycle", scene.capture)], clock=clock):
        since = (await client.list(NODES)).resource_version
        clock.advance(GRACE + 1)
        for node in scene.nodes:
            silenced = await watch_until(
                client, NODES, lambda _t, o: conditions(o)["Ready"]["status"] == "Unknown"
                and ("node.kubernetes.io/unreachable", "NoSchedule") in taints(o),
                since=since, field_selector=f"metadata.name={node.name}")
            assert taints(silenced) == {("node.kubernetes.io/unreachable", "NoSchedule")}


async def test_cordon_and_pressure_conditions_become_noschedule_taints(scene: Scene) -> None:
    await start(scene, 1)
    client, clock = scene.api.client, scene.clock
    name = scene.nodes[0].name
    async with running_controllers(client, [("nodelifecycle", scene.capture)], clock=clock):
        code, _, err = await scene.api.kubectl("cordon", name)
        assert code == 0, err
        await watch_until(client, NODES, lambda _t, o: taints(o) == {
            ("node.kubernetes.io/unschedulable", "NoSchedule")}, field_selector=f"metadata.name={name}")
        code, _, err = await scene.api.kubectl("uncordon", name)
        assert code == 0, err
        await watch_until(client, NODES, lambda _t, o: not taints(o) and not o["spec"].get(
            "unschedulable"), field_selector=f"metadata.name={name}")
        node = await client.get(NODES, name)
        pressured = [dict(c, status="True") if c["type"] == "MemoryPressure" else c
                     for c in node["status"]["conditions"]]
        await client.patch(NODES, name, {"status": {"conditions": pressured}}, subresource="status")
        await watch_until(client, NODES, lambda _t, o: taints(o) == {
            ("node.kubernetes.io/memory-pressure", "NoSchedule")}, field_selector=f"metadata.name={name}")


async def test_a_dead_nodes_pods_are_replaced_on_another_node(scene: Scene) -> None:
    """The whole chain: silence -> taint -> eviction -> ReplicaSet replaces -> scheduler places."""
    await start(scene, 2)
    alive, dead = scene.nodes
    client, clock = scene.api.client, scene.clock
    labels = {"app": "web"}
    rs = await client.create(REPLICASETS, {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"tolerations": tolerating(5),
                                       "containers": [{"name": "c", "image": "nginx"}]}}}},
        namespace="default")
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web",
             "uid": meta(rs)["uid"], "controller": True, "blockOwnerDeletion": True}
    for node in scene.nodes:  # one replica on each node, placed by hand
        await client.create(PODS, {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"web-{node.name}", "labels": labels, "ownerReferences": [owner]},
            "spec": {"nodeName": node.name, "tolerations": tolerating(5),
                     "containers": [{"name": "c", "image": "nginx"}]}}, namespace="default")
    # the ReplicaSet controller and the scheduler run on real time: their retries
    # must not wait for the test to move the fake clock
    async with background(run_scheduler(client)), \
            running_controllers(client, [("replicaset", ReplicaSetController)]), \
            running_controllers(client, [("nodelifecycle", scene.capture),
                                         ("taint-eviction-controller", TaintEvictionController)],
                                clock=clock):
        await dead.kill()
        clock.advance(10)
        await scene.beat(alive)
        clock.advance(10)
        await scene.beat(alive)
        clock.advance(3)
        since = (await client.list(PODS, namespace="default")).resource_version
        await watch_until(client, NODES, unreachable, field_selector=f"metadata.name={dead.name}")
        clock.advance(5)
        replacement = await watch_until(
            client, PODS, lambda _t, o: o["spec"].get("nodeName") == alive.name
            and meta(o)["name"] != f"web-{alive.name}" and o["status"].get("phase") == "Running",
            namespace="default", since=since)
        assert meta(replacement)["ownerReferences"][0]["uid"] == meta(rs)["uid"]
        old = await client.get(PODS, f"web-{dead.name}", namespace="default")
        assert meta(old).get("deletionTimestamp")  # Terminating until its node says it stopped
