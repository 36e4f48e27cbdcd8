"""Pod networking latency: NodeNetwork.add_pod / remove_pod, one at a time and 10 at once.

Runs as root inside a network namespace made for the run (it stands for a node and
has no way out of the machine); everything is removed at the end. Prints medians
and p90s in milliseconds.

    python bench/podnetwork.py [PODS]
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from skiff.kubelet.network import NodeNetwork

T = TypeVar("T")


def summary(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    print(f"{label:<34} median {statistics.median(ordered):6.1f} ms   p90 {p90:6.1f} ms"
          f"   (n={len(ordered)})")


async def timed(samples: list[float], work: Awaitable[T]) -> T:
    started = time.perf_counter()
    result = await work
    samples.append((time.perf_counter() - started) * 1000)
    return result


async def run(pods: int) -> None:
    name = f"skiff-bench-{secrets.token_hex(4)}"
    state = Path(tempfile.mkdtemp(prefix="skiff-bench-net-"))
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    network = NodeNetwork(state_dir=state, pod_cidr="10.244.0.0/22",
                          node_netns=Path("/run/netns") / name)
    try:
        started = time.perf_counter()
        await network.setup()
        print(f"{'node setup':<34} {(time.perf_counter() - started) * 1000:6.1f} ms")

        adds: list[float] = []
        removes: list[float] = []
        uids = [str(uuid.uuid4()) for _ in range(pods)]
        for uid in uids:
            await timed(adds, network.add_pod(uid, "bench", "default"))
        for uid in uids:
            await timed(removes, network.remove_pod(uid))
        summary("add_pod, one at a time", adds)
        summary("remove_pod, one at a time", removes)

        adds, removes = [], []
        uids = [str(uuid.uuid4()) for _ in range(pods)]
        for batch in range(0, pods, 10):
            await asyncio.gather(*(timed(adds, network.add_pod(uid, "bench", "default"))
                                   for uid in uids[batch:batch + 10]))
        for batch in range(0, pods, 10):
            await asyncio.gather(*(timed(removes, network.remove_pod(uid))
                                   for uid in uids[batch:batch + 10]))
        summary("add_pod, 10 at once (each)", adds)
        summary("remove_pod, 10 at once (each)", removes)
    finally:
        await network.teardown()
        subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(state, ignore_errors=True)


def main() -> None:
    if os.geteuid() != 0:
        print("podnetwork: needs root (network namespaces); skipped")
        return
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 30))


if __name__ == "__main__":
    main()
