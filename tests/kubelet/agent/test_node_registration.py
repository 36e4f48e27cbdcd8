"""The node itself: registration from the machine, Lease renewal, status heartbeats,
re-registration after the Node was deleted (time moved by a fake clock)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from kubelet_support import Node

from skiff.api.errors import StatusError
from skiff.client.clock import FakeClock
from skiff.client.resources import LEASES, NODES
from skiff.client.rest import ApiClient
from skiff.kubelet.images.store import ImageStore


async def eventually(check: object, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            result = await check()  # type: ignore[operator]
        except StatusError:
            result = False
        if result:
            return
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.05)


async def test_registration_lease_and_heartbeats(client: ApiClient, tmp_path: Path, image_store: ImageStore,
                                                 node_ns: Path) -> None:
    clock = FakeClock(wall_start=1_900_000_000.0)
    node = Node(client, tmp_path / "node", image_store, node_ns, clock=clock)
    try:
        await node.start()
        registered = await client.get(NODES, "node-1")
        status = registered["status"]
        assert status["capacity"]["cpu"] == str(os.cpu_count())
        assert status["capacity"]["memory"].endswith("Ki") and status["allocatable"]["memory"].endswith("Ki")
        assert int(status["allocatable"]["memory"][:-2]) < int(status["capacity"]["memory"][:-2])
        assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
        conditions = {c["type"]: c for c in status["conditions"]}
        assert set(conditions) == {"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"}
        assert conditions["Ready"]["reason"] == "KubeletReady"
        assert status["nodeInfo"]["kubeletVersion"].startswith("v1.32")
        assert any("docker.io/library/busybox:test" in i["names"] for i in status["images"])
        assert registered["spec"]["podCIDR"] == "10.244.0.0/24"
        first = (await client.get(LEASES, "node-1", namespace="kube-node-lease"))["spec"]["renewTime"]

        await clock.wait_for_sleepers(3)
        clock.advance(10.0)

        async def renewed() -> bool:
            lease = await client.get(LEASES, "node-1", namespace="kube-node-lease")
            return bool(lease["spec"]["renewTime"] > first)
        await eventually(renewed)
        await clock.wait_for_sleepers(3)        # lease, status and eviction loops went round once
        version = (await client.get(NODES, "node-1"))["metadata"]["resourceVersion"]
        clock.advance(10.0)
        await clock.wait_for_sleepers(3)
        unchanged = await client.get(NODES, "node-1")
        assert unchanged["metadata"]["resourceVersion"] == version   # nothing new: no write

        await client.delete(NODES, "node-1")
        await clock.wait_for_sleepers(3)
        clock.advance(10.0)

        async def back() -> bool:
            return bool((await client.get(NODES, "node-1"))["metadata"]["name"])
        await eventually(back)
    finally:
        await node.destroy()


async def test_the_kubelet_records_its_start_and_node_conditions_as_events(node: Node) -> None:
    """What `kubectl describe node` shows under Events after a start (it finds a kubelet's
    node events by the node's name used as uid)."""
    from kubelet_support import wait_event

    client = node.client
    ready = await wait_event(client, "node-1", "NodeReady")
    assert ready["message"] == "Node node-1 status is now: NodeReady"
    assert ready["involvedObject"] == {"kind": "Node", "name": "node-1", "uid": "node-1", "apiVersion": "v1"}
    assert ready["source"]["component"] == "kubelet"
    for reason in ("NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID"):
        await wait_event(client, "node-1", reason, contains=f"status is now: {reason}")
    await wait_event(client, "node-1", "Starting", contains="Starting kubelet.")
