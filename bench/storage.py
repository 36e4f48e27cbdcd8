"""Benchmark of the embedded store (skiff.storage.sqlite), printing its figures.

Usage: ``python bench/storage.py [--runs N] [--no-uvloop]``

Each run uses a fresh database in a temporary directory and measures:

* creates/s  -- sequential creates of ~1.5 KB pod-like JSON values
* updates/s  -- compare-and-swap updates of existing keys
* gets/s     -- latest reads of random existing keys
* list page  -- one ``range(limit=500)`` page (with its count) at the latest
                revision, and at a revision 200 writes back
* fan-out    -- one write delivered to 1,000 open watches: p99 (and max) of the
                delay from just before the write to each watcher receiving it

and prints the median over the runs.  Bounded to well under 30 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from skiff.storage.interface import Event
from skiff.storage.sqlite import SqliteBackend

PODS = "/registry/pods/"
CREATES = 5000
GETS = 20000
WATCHERS = 1000
FANOUT_EVENTS = 20
PAGE_WRITES = 200  # writes between a list's first page and the next


def pod_value(i: int) -> bytes:
    body = '{"kind":"Pod","apiVersion":"v1","metadata":{"name":"pod-%d","namespace":"ns-%d","labels":{"app":"web"}},' % (
        i,
        i % 10,
    )
    return (body + '"spec":{"containers":[{"name":"c","image":"nginx","args":["' + "x" * 1300 + '"]}]}}').encode()


def pod_key(i: int) -> str:
    return f"{PODS}ns-{i % 10}/pod-{i:06d}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def fan_out(store: SqliteBackend) -> tuple[float, float]:
    """p99 and max delivery delay (seconds) of one write to WATCHERS watches, median over events."""
    watches = [store.watch(PODS, start_revision=store.revision) for _ in range(WATCHERS)]
    received: list[float] = []
    all_in = asyncio.Event()

    async def consume(watch: object) -> None:
        async for _event in watch:  # type: ignore[attr-defined]
            received.append(time.perf_counter())
            if len(received) == WATCHERS:
                all_in.set()

    tasks = [asyncio.create_task(consume(w)) for w in watches]
    await asyncio.sleep(0)  # let every consumer reach its first wait
    p99s, maxes = [], []
    for n in range(FANOUT_EVENTS):
        received.clear()
        all_in.clear()
        started = time.perf_counter()
        await store.create(f"{PODS}fanout/e{n}", b"{}")
        await asyncio.wait_for(all_in.wait(), timeout=10)
        delays = [t - started for t in received]
        p99s.append(percentile(delays, 0.99))
        maxes.append(max(delays))
    for watch in watches:
        await watch.close()
    await asyncio.gather(*tasks)
    return statistics.median(p99s), statistics.median(maxes)


async def one_run(directory: Path) -> dict[str, float]:
    store = SqliteBackend(str(directory / "bench.db"), compact_interval=0)
    await store.start()
    try:
        values = [pod_value(i) for i in range(CREATES)]
        started = time.perf_counter()
        for i in range(CREATES):
            await store.create(pod_key(i), values[i])
        creates = CREATES / (time.perf_counter() - started)

        rng = random.Random(1)
        picks = [pod_key(rng.randrange(CREATES)) for _ in range(CREATES)]
        started = time.perf_counter()
        for key in picks:
            await store.update(key, values[0], expected_mod_revision=0)
        updates = CREATES / (time.perf_counter() - started)
        # a paginated list continues at its first page's revision while writes go on
        past_revision = store.revision
        for key in picks[:PAGE_WRITES]:
            await store.update(key, values[1], expected_mod_revision=0)

        picks = [pod_key(rng.randrange(CREATES)) for _ in range(GETS)]
        started = time.perf_counter()
        for key in picks:
            await store.get(key)
        gets = GETS / (time.perf_counter() - started)

        started = time.perf_counter()
        await store.range(PODS, limit=500)
        page_latest = time.perf_counter() - started
        started = time.perf_counter()
        await store.range(PODS, limit=500, revision=past_revision)
        page_past = time.perf_counter() - started

        p99, worst = await fan_out(store)
    finally:
        await store.close()
    return {
        "creates/s": creates,
        "updates/s": updates,
        "gets/s": gets,
        "list page 500 (latest) ms": page_latest * 1e3,
        "list page 500 (past revision) ms": page_past * 1e3,
        f"fan-out 1 event -> {WATCHERS} watches p99 ms": p99 * 1e3,
        f"fan-out 1 event -> {WATCHERS} watches max ms": worst * 1e3,
    }


async def main(runs: int) -> None:
    results: list[dict[str, float]] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="skiff-bench-") as directory:
            results.append(await one_run(Path(directory)))
    print(f"skiff storage bench (sqlite, {runs} runs, median; {os.cpu_count()} CPUs)")
    for name in results[0]:
        print(f"  {name:45s} {statistics.median(r[name] for r in results):10.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    options = parser.parse_args()
    if options.no_uvloop:
        asyncio.run(main(options.runs))
    else:
        import uvloop

        uvloop.run(main(options.runs))
    sys.exit(0)
