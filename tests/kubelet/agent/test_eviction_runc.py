"""Node-pressure eviction on a real node: a pod that allocates ~100 MB is evicted for memory
while a small one survives, and MemoryPressure goes True, then False again.

The machine is never actually pushed into pressure: once the hog has allocated, the
kubelet's memory.available threshold is set 20 Mi *above* what the node has available
(read the way the kubelet reads it), so the threshold is crossed at once and evicting the
hog (~100 MB back) clears it.  The machine is shared, so other processes move the figure
too: right after the eviction the threshold is lifted again, and the condition must then
turn False after the transition period (2 s).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from kubelet_support import Node, condition, container, pod, running, wait_event, wait_pod

from skiff.api.quantity import parse_quantity
from skiff.client.informer import Informer
from skiff.client.resources import NODES, PODS
from skiff.client.rest import ApiClient
from skiff.kubelet.eviction import MEMORY_AVAILABLE, EvictionConfig, parse_thresholds
from skiff.kubelet.evictionsignals import node_memory, read_keyed
from skiff.kubelet.images.store import ImageStore

Mi = 1 << 20
#: How far above what is available the threshold goes: crossed at once, and ~80 MB of room for
#: the rest of the machine to move before evicting the hog (~100 MB) fails to clear it.
MARGIN = 20 * Mi
#: ~100 MB held by the shell (a trailing loop: busybox would exec a last plain command, and
#: the memory with the shell); it leaves at once on SIGTERM so the memory comes back quickly.
HOG = ("trap 'exit 0' TERM; x=$(head -c 100000000 /dev/zero | tr '\\0' x); touch /tmp/allocated; "
       "while true; do sleep 1; done")
ALLOCATED = {"exec": {"command": ["test", "-f", "/tmp/allocated"]}, "periodSeconds": 1}
MESSAGE = re.compile(r"The node was low on resource: memory\. Threshold quantity: \w+, available: \w+\. "
                     r"Container hog was using (\w+), request is 0, has larger consumption of memory\. ")


def memory_pressure(node: dict) -> str:
    return next((c["status"] for c in node["status"].get("conditions") or []
                 if c["type"] == "MemoryPressure"), "")


async def test_memory_hog_is_evicted_and_pressure_comes_and_goes(
        client: ApiClient, tmp_path: Path, image_store: ImageStore, node_ns: Path) -> None:
    free = read_keyed(Path("/proc/meminfo")).get("MemAvailable", 0)
    if free < 1 << 30:
        pytest.skip(f"only {free >> 20} MiB available: not allocating 100 MB on a busy machine")
    quiet = EvictionConfig(thresholds=(), monitoring_interval=0.2, pressure_transition_period=2.0)
    node = Node(client, tmp_path / "node", image_store, node_ns, eviction=quiet)
    seen: list[str] = []
    nodes = Informer(client, NODES)
    nodes.add_handler(on_add=lambda n: seen.append(memory_pressure(n)),
                      on_update=lambda _, n: seen.append(memory_pressure(n)))
    watcher = asyncio.create_task(nodes.run())
    try:
        kubelet = await node.start()
        await client.create(PODS, pod("small", container("small", "sleep 3600")), namespace="default")
        await client.create(PODS, pod("hog", container("hog", HOG, readinessProbe=ALLOCATED)),
                            namespace="default")
        await wait_pod(client, "small", running())
        await wait_pod(client, "hog", lambda p: condition(p, "Ready") == "True")
        assert seen and "True" not in seen

        available = node_memory().available
        kubelet.eviction.configure(EvictionConfig(
            thresholds=parse_thresholds({MEMORY_AVAILABLE: str(available + MARGIN)}),
            monitoring_interval=0.2, pressure_transition_period=2.0))

        evicted = await wait_pod(client, "hog", lambda p: p["status"].get("phase") == "Failed")
        status = evicted["status"]
        assert status["reason"] == "Evicted"
        used = MESSAGE.fullmatch(status["message"])
        assert used is not None, status["message"]
        disruption = next(c for c in status["conditions"] if c["type"] == "DisruptionTarget")
        assert (disruption["status"], disruption["reason"], disruption["message"]) == (
            "True", "TerminationByKubelet", status["message"])
        assert "terminated" in status["containerStatuses"][0]["state"]
        small = await client.get(PODS, "small", namespace="default")
        assert running()(small) and kubelet.eviction.evicted == ["default/hog"]
        kubelet.eviction.configure(quiet)
        event = await wait_event(client, "hog", "Evicted")
        assert event["type"] == "Warning" and event["message"] == status["message"]
        assert 95_000_000 <= parse_quantity(used.group(1)).value() < 400_000_000

        def pressure_came_and_went() -> bool:
            return "True" in seen and seen[-1] == "False" and seen.index("True") < len(seen) - 1
        for _ in range(200):       # the transition period (2 s) after the last pressured pass
            if pressure_came_and_went():
                break
            await asyncio.sleep(0.05)
        assert pressure_came_and_went(), seen
        assert kubelet.eviction.evicted == ["default/hog"]
    finally:
        nodes.stop()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await node.destroy()
    assert node.leftovers() == []
