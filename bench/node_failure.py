"""How long until a dead node's pods run elsewhere, with skiff's default timings (real time).

In one process: the API server (sqlite in a temp dir, loopback HTTP), 3 simulated
nodes (each its own fleet, renewing its Lease every 10 s), the scheduler, and the
replicaset, garbage collector, node lifecycle and taint eviction controllers.  A
ReplicaSet of 6 pods (tolerationSeconds 5 for not-ready/unreachable, the default
proposed for skiff) spreads over the nodes; then one node is "powered off" (its
fleet stops: no heartbeats, no pod updates) right after it renewed its Lease --
the worst case -- and the script prints, from that moment:

    unknown     the node is marked Ready=Unknown and tainted unreachable
    evicted     its pods are marked for deletion
    replaced    as many Running pods as before on the other nodes

Run: ``.venv/bin/python bench/node_failure.py``  (about 30 s)
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from skiff.apiserver.app import make_app  # noqa: E402
from skiff.client.informer import Informer  # noqa: E402
from skiff.client.resources import LEASES, NODES, PODS, REPLICASETS  # noqa: E402
from skiff.client.rest import ApiClient  # noqa: E402
from skiff.controllers.gc import GarbageCollector  # noqa: E402
from skiff.controllers.manager import run_controllers  # noqa: E402
from skiff.controllers.nodelifecycle import (  # noqa: E402
    NodeLifecycleController, TaintEvictionController,
)
from skiff.controllers.replicaset import ReplicaSetController  # noqa: E402
from skiff.kubelet.fake import FakeNodeAgent, FakeNodeFleet, fake_node_specs  # noqa: E402
from skiff.scheduler.scheduler import run_scheduler  # noqa: E402
from skiff.storage.sqlite import SqliteBackend  # noqa: E402

Obj = dict[str, Any]
NODES_COUNT = 3
REPLICAS = 6
TOLERATION = 5


async def until(informer: Informer, predicate: Any) -> None:
    changed = asyncio.Event()
    informer.add_handler(on_add=lambda _o: changed.set(), on_update=lambda _o, _n: changed.set(),
                         on_delete=lambda _o: changed.set())
    while not predicate(informer.list()):
        changed.clear()
        await asyncio.wait_for(changed.wait(), 120)


def running_on(pods: list[Obj], nodes: set[str]) -> int:
    return sum(1 for p in pods if p["spec"].get("nodeName") in nodes
               and p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp"))


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="skiff-bench-") as tmp:
        backend = SqliteBackend(str(Path(tmp) / "db"))
        await backend.start()
        runner = web.AppRunner(make_app(backend), handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        client = ApiClient(f"http://127.0.0.1:{runner.addresses[0][1]}")
        tasks: list[asyncio.Task[Any]] = []
        fleets = []
        try:
            for spec in fake_node_specs(NODES_COUNT):
                fleet = FakeNodeFleet(client, [FakeNodeAgent(client, spec)], workers=2)
                fleets.append(fleet)
                tasks.append(asyncio.create_task(fleet.run()))
                await fleet.registered.wait()
            tasks.append(asyncio.create_task(run_scheduler(client)))
            started = asyncio.Event()
            tasks.append(asyncio.create_task(run_controllers(client, started=started, known=[
                ("replicaset", ReplicaSetController), ("garbagecollector", GarbageCollector),
                ("nodelifecycle", NodeLifecycleController),
                ("taint-eviction-controller", TaintEvictionController)])))
            await started.wait()
            pods = Informer(client, PODS, namespace="default")
            leases = Informer(client, LEASES, namespace="kube-node-lease")
            nodes = Informer(client, NODES)
            for inf in (pods, leases, nodes):
                tasks.append(asyncio.create_task(inf.run()))
            tolerations = [{"key": f"node.kubernetes.io/{k}", "operator": "Exists",
                            "effect": "NoExecute", "tolerationSeconds": TOLERATION}
                           for k in ("not-ready", "unreachable")]
            await client.create(REPLICASETS, {
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
                "spec": {"replicas": REPLICAS, "selector": {"matchLabels": {"app": "web"}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"tolerations": tolerations,
                                               "containers": [{"name": "c", "image": "nginx"}]}}}},
                namespace="default")
            everyone = {s.name for s in fake_node_specs(NODES_COUNT)}
            await until(pods, lambda items: running_on(items, everyone) == REPLICAS)
            victim = next(iter(sorted({p["spec"]["nodeName"] for p in pods.list()})))
            others = everyone - {victim}
            on_victim = running_on(pods.list(), {victim})
            # power it off right after a Lease renewal: the longest possible wait
            first = (leases.get(f"kube-node-lease/{victim}") or {})["spec"]["renewTime"]
            await until(leases, lambda _i: (leases.get(f"kube-node-lease/{victim}") or {})["spec"][
                "renewTime"] != first)
            fleets[sorted(everyone).index(victim)].stop()
            t0 = time.monotonic()
            print(f"{victim} stopped with {on_victim} of {REPLICAS} pods on it")

            def tainted(items: list[Obj]) -> bool:
                node = next(n for n in items if n["metadata"]["name"] == victim)
                return any(t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute"
                           for t in node["spec"].get("taints") or [])
            await until(nodes, tainted)
            print(f"unknown     {time.monotonic() - t0:5.1f} s")
            await until(pods, lambda items: all(p["metadata"].get("deletionTimestamp") for p in items
                                                if p["spec"].get("nodeName") == victim))
            print(f"evicted     {time.monotonic() - t0:5.1f} s")
            await until(pods, lambda items: running_on(items, others) == REPLICAS)
            print(f"replaced    {time.monotonic() - t0:5.1f} s")
        finally:
            for fleet in fleets:
                fleet.stop()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task
            await client.close()
            await runner.cleanup()
            await backend.close()


if __name__ == "__main__":
    asyncio.run(main())
