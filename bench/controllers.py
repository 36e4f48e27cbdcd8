"""Controller figures (issue 5).  Prints, each the median of several runs:

* Deployment of 1,000 replicas on 100 fake nodes: create -> all available      goal <= 10 s
* pods/s created by the ReplicaSet controller during that scale-up
* rolling update of all 1,000 (new image, default 25% surge / 25% unavailable):
  image patched -> rollout complete (kubectl rollout status' test)              goal <= 20 s

Everything runs in this one process, as ``skiff up --single-process`` does: the API server
(sqlite in a temp dir, plain HTTP on 127.0.0.1), 100 simulated nodes, the
scheduler, and the controllers.  The observer is one Deployment watch and one
pod watch.

Run: ``.venv/bin/python bench/controllers.py [--runs N] [--replicas N] [--nodes N]``.
Bounded: each phase gives up after 120 s.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from aiohttp import web  # noqa: E402

from skiff.apiserver.app import make_app  # noqa: E402
from skiff.client.resources import DEPLOYMENTS, NAMESPACES, PODS  # noqa: E402
from skiff.client.rest import ApiClient  # noqa: E402
from skiff.controllers.manager import run_controllers  # noqa: E402
from skiff.kubelet.fake import FakeNodeAgent, FakeNodeFleet, fake_node_specs  # noqa: E402
from skiff.storage.sqlite import SqliteBackend  # noqa: E402

Obj = dict[str, Any]
PHASE_LIMIT = 120.0


def deployment(name: str, replicas: int) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "bench"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.26",
                                                           "resources": {"requests": {"cpu": "10m"}}}]}}}}


def rolled_out(d: Obj, replicas: int, image: str) -> bool:
    s = d.get("status") or {}
    return (d["spec"]["template"]["spec"]["containers"][0]["image"] == image
            and d["metadata"].get("generation", 0) <= s.get("observedGeneration", 0)
            and s.get("updatedReplicas") == replicas == s.get("replicas")
            and s.get("availableReplicas") == replicas)


async def wait_deployment(client: ApiClient, name: str, replicas: int, image: str) -> float:
    """Watch the Deployment until it is rolled out with ``image``; the time it happened."""
    listing = await client.list(DEPLOYMENTS, namespace="bench")
    for d in listing.items:
        if d["metadata"]["name"] == name and rolled_out(d, replicas, image):
            return time.perf_counter()
    async with client.watch(DEPLOYMENTS, namespace="bench", resource_version=listing.resource_version,
                            field_selector=f"metadata.name={name}") as events:
        async for _, d in events:
            if rolled_out(d, replicas, image):
                return time.perf_counter()
    raise RuntimeError("deployment watch ended")


class PodWatch:
    """Counts pod creations and tracks how many pods are ready (and not terminating)."""

    def __init__(self) -> None:
        self.created: list[float] = []
        self.ready: set[str] = set()
        self.min_ready_during_rollout: int | None = None
        self.in_rollout = False

    async def run(self, client: ApiClient, since: str) -> None:
        async with client.watch(PODS, namespace="bench", resource_version=since) as events:
            async for type_, pod in events:
                meta = pod["metadata"]
                if type_ == "ADDED":
                    self.created.append(time.perf_counter())
                ready = type_ != "DELETED" and not meta.get("deletionTimestamp") and any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (pod.get("status") or {}).get("conditions") or [])
                if ready:
                    self.ready.add(meta["uid"])
                else:
                    self.ready.discard(meta["uid"])
                if self.in_rollout:
                    n = len(self.ready)
                    if self.min_ready_during_rollout is None or n < self.min_ready_during_rollout:
                        self.min_ready_during_rollout = n


async def report_progress(client: ApiClient) -> None:
    """--verbose: the Deployment's status and the ReplicaSets' sizes once a second."""
    from skiff.client.resources import REPLICASETS
    started = time.perf_counter()
    while True:
        await asyncio.sleep(1)
        deploys = (await client.list(DEPLOYMENTS, namespace="bench")).items
        sets = (await client.list(REPLICASETS, namespace="bench")).items
        for d in deploys:
            s = d.get("status") or {}
            print(f"  {time.perf_counter() - started:6.1f}s replicas={s.get('replicas')} "
                  f"updated={s.get('updatedReplicas')} ready={s.get('readyReplicas')} "
                  f"available={s.get('availableReplicas')} sets=" + ",".join(
                      f"{rs['spec']['replicas']}/{(rs.get('status') or {}).get('replicas')}"
                      f"/{(rs.get('status') or {}).get('availableReplicas')}" for rs in sets),
                  flush=True)


async def one_run(replicas: int, nodes: int, verbose: bool = False,
                  watch_pods: bool = True) -> tuple[float, float, float]:
    data = Path(tempfile.mkdtemp(prefix="skiff-bench-ctl-"))
    backend = SqliteBackend(str(data / "db"))
    await backend.start()
    runner = web.AppRunner(make_app(backend), handle_signals=False, shutdown_timeout=0.1)
    tasks: list[asyncio.Task[Any]] = []
    client: ApiClient | None = None
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        client = ApiClient(f"http://127.0.0.1:{runner.addresses[0][1]}", max_connections=256)
        agents = [FakeNodeAgent(client, spec) for spec in fake_node_specs(nodes)]
        fleet = FakeNodeFleet(client, agents, workers=16)
        tasks.append(asyncio.create_task(fleet.run()))
        await asyncio.wait_for(fleet.registered.wait(), 30)
        from skiff.scheduler.scheduler import run_scheduler
        tasks.append(asyncio.create_task(run_scheduler(client)))
        started = asyncio.Event()
        tasks.append(asyncio.create_task(run_controllers(client, started=started)))
        await asyncio.wait_for(started.wait(), 30)
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "bench"}})
        since = (await client.list(PODS, namespace="bench")).resource_version
        watch = PodWatch()
        stamps = watch.created
        if watch_pods:
            tasks.append(asyncio.create_task(watch.run(client, since)))
        if verbose:
            tasks.append(asyncio.create_task(report_progress(client)))

        t0 = time.perf_counter()
        await client.create(DEPLOYMENTS, deployment("web", replicas))
        done = await asyncio.wait_for(wait_deployment(client, "web", replicas, "nginx:1.26"), PHASE_LIMIT)
        scale_up = done - t0
        first = stamps[0] if stamps else t0
        last = stamps[replicas - 1] if len(stamps) >= replicas else done
        pods_per_s = replicas / max(1e-9, last - t0) if last > first else float("nan")

        t1 = time.perf_counter()
        watch.in_rollout = True
        await client.patch(DEPLOYMENTS, "web", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "nginx:1.27"}]}}}}, namespace="bench", patch_type="strategic")
        done = await asyncio.wait_for(wait_deployment(client, "web", replicas, "nginx:1.27"), PHASE_LIMIT)
        if watch_pods:
            print(f"  fewest ready pods during the rolling update: {watch.min_ready_during_rollout} "
                  f"(maxUnavailable 25%: must stay >= {replicas - replicas // 4})", flush=True)
        return scale_up, pods_per_s, done - t1
    finally:
        for task in reversed(tasks):
            task.cancel()
        for task in reversed(tasks):
            try:
                await asyncio.wait_for(task, 10)
            except (asyncio.CancelledError, Exception):
                pass
        if client is not None:
            await client.close()
        await runner.cleanup()
        await backend.close()
        shutil.rmtree(data, ignore_errors=True)


def main() -> None:
    # A SIGTERM unwinds like an exception: the run's finally removes its data dir.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--verbose", action="store_true", help="print progress every second")
    parser.add_argument("--no-pod-watch", action="store_true",
                        help="skip the observer's pod watch (no pods/s, no availability check)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    results = []
    for i in range(args.runs):
        result = asyncio.run(one_run(args.replicas, args.nodes, args.verbose, not args.no_pod_watch))
        print(f"run {i + 1}: all available {result[0]:.2f} s, RS controller {result[1]:.0f} pods/s, "
              f"rolling update {result[2]:.2f} s", flush=True)
        results.append(result)
    up, rate, roll = (statistics.median(r[k] for r in results) for k in range(3))
    print(f"Deployment of {args.replicas} replicas on {args.nodes} fake nodes: "
          f"all available in {up:.2f} s (goal <= 10 s)")
    print(f"ReplicaSet controller: {rate:.0f} pods/s created (median of {args.runs})")
    print(f"rolling update of all {args.replicas}: {roll:.2f} s (goal <= 20 s)")


if __name__ == "__main__":
    main()
