"""Control-plane figures (issue: control plane).  Prints, each the median of several runs:

* cold start: ``skiff up --runtime fake`` spawned -> ``/readyz`` ok          goal <= 1 s
* idle RSS of that process with one fake node                               goal <= 100 MB
* single-object GET rate over HTTPS (keep-alive, concurrent clients)        goal >= 3,000/s
* create rate (ConfigMaps, concurrent clients)                              goal >= 1,000/s
* p99 create latency at a paced 200 creates/s                               goal <= 50 ms
* one event delivered to 1,000 open watches, p99 delivery latency          goal <= 100 ms

Run: ``.venv/bin/python bench/apiserver.py [--runs N]``.  Bounded: about a minute.
The load generator is an aiohttp client in a second process on loopback; on a
2-core machine it competes with the server for CPU, so rates are conservative.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import percentile, skiff_up  # noqa: E402

import aiohttp  # noqa: E402

CM = "/api/v1/namespaces/default/configmaps"


def cold_start() -> tuple[float, float]:
    with skiff_up() as c:
        ctx = c.ssl_context()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(c.url + "/readyz", context=ctx, timeout=1) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                time.sleep(0.005)
        ready = time.perf_counter() - c.started
        time.sleep(3)  # let the node register and the process settle: this is the idle figure
        return ready, c.rss_mb()


async def _get_rate(url: str, ctx, seconds: float = 4.0, concurrency: int = 32) -> float:
    conn = aiohttp.TCPConnector(ssl=ctx, limit=concurrency)
    async with aiohttp.ClientSession(url, connector=conn) as s:
        await s.post(CM, json={"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "bench-get"}, "data": {"k": "v"}})
        count = 0
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal count
            while time.perf_counter() < stop:
                async with s.get(CM + "/bench-get") as r:
                    await r.read()
                    assert r.status == 200, r.status
                count += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.perf_counter() - t0)


async def _create_rate(url: str, ctx, total: int = 3000, concurrency: int = 32) -> float:
    conn = aiohttp.TCPConnector(ssl=ctx, limit=concurrency)
    async with aiohttp.ClientSession(url, connector=conn) as s:
        names = iter(range(total))
        prefix = f"c{time.monotonic_ns()}-"

        async def worker() -> None:
            for i in names:
                async with s.post(CM, json={"apiVersion": "v1", "kind": "ConfigMap",
                                            "metadata": {"name": f"{prefix}{i}"},
                                            "data": {"k": "v"}}) as r:
                    await r.read()
                    assert r.status == 201, r.status

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - t0)


async def _paced_p99(url: str, ctx, rate: float = 200.0, seconds: float = 5.0) -> float:
    conn = aiohttp.TCPConnector(ssl=ctx, limit=64)
    latencies: list[float] = []
    async with aiohttp.ClientSession(url, connector=conn) as s:
        prefix = f"p{time.monotonic_ns()}-"

        async def one(i: int) -> None:
            t = time.perf_counter()
            async with s.post(CM, json={"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": f"{prefix}{i}"}}) as r:
                await r.read()
                assert r.status == 201, r.status
            latencies.append(time.perf_counter() - t)

        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return percentile(latencies, 99) * 1000


async def _watch_fanout(url: str, ctx, watchers: int = 1000, events: int = 5) -> float:
    conn = aiohttp.TCPConnector(ssl=ctx, limit=watchers + 8)
    latencies: list[float] = []
    async with aiohttp.ClientSession(url, connector=conn,
                                     timeout=aiohttp.ClientTimeout(total=None)) as s:
        name = f"w{time.monotonic_ns()}"
        async with s.post(CM, json={"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": name}, "data": {"i": "0"}}) as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        sent: dict[str, float] = {}
        ready = 0
        all_ready = asyncio.Event()
        all_seen = asyncio.Event()

        async def watch() -> None:
            nonlocal ready
            async with s.get(CM, params={"watch": "true", "resourceVersion": rv,
                                         "fieldSelector": f"metadata.name={name}"}) as r:
                ready += 1
                if ready == watchers:
                    all_ready.set()
                seen = 0
                async for line in r.content:
                    ev = json.loads(line)
                    i = ev["object"]["data"]["i"]
                    latencies.append(time.perf_counter() - sent[i])
                    seen += 1
                    if seen == events:
                        # Close only once every watcher has its last event: closing a
                        # watch costs this client more than reading one, and doing it
                        # while others still wait would add that cost to their latency.
                        if len(latencies) == watchers * events:
                            all_seen.set()
                        await all_seen.wait()
                        return

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        await asyncio.wait_for(all_ready.wait(), 60)
        for i in range(1, events + 1):
            sent[str(i)] = time.perf_counter()
            async with s.patch(CM + "/" + name, data=json.dumps({"data": {"i": str(i)}}),
                               headers={"Content-Type": "application/merge-patch+json"}) as r:
                assert r.status == 200, r.status
            await asyncio.sleep(0.3)
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    return percentile(latencies, 99) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    starts, rss = [], []
    for _ in range(args.runs):
        s, m = cold_start()
        starts.append(s)
        rss.append(m)
    print(f"cold start to /readyz:   {statistics.median(starts) * 1000:7.0f} ms   (goal <= 1000)")
    print(f"idle RSS, 1 fake node:   {statistics.median(rss):7.1f} MB   (goal <= 100)")
    gets, creates, p99s, fan = [], [], [], []
    with skiff_up() as c:
        ctx = c.ssl_context()
        for _ in range(args.runs):
            gets.append(asyncio.run(_get_rate(c.url, ctx)))
            creates.append(asyncio.run(_create_rate(c.url, ctx)))
            p99s.append(asyncio.run(_paced_p99(c.url, ctx)))
        fan.append(asyncio.run(_watch_fanout(c.url, ctx)))
    print(f"GET one object:          {statistics.median(gets):7.0f} /s  (goal >= 3000)")
    print(f"create:                  {statistics.median(creates):7.0f} /s  (goal >= 1000)")
    print(f"create p99 at 200/s:     {statistics.median(p99s):7.1f} ms  (goal <= 50)")
    print(f"watch fan-out p99, 1000: {statistics.median(fan):7.1f} ms  (goal <= 100)")


if __name__ == "__main__":
    main()
