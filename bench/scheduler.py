"""Scheduler throughput on simulated nodes (issue 3).  Prints, per case:

* pods/s bound end to end: pods created / (last pod bound - first create sent)   goal >= 300/s
* p50 / p99 create->bound latency (POST sent -> a watch shows spec.nodeName)
* also: API create rate, pods/s Running, node registration time, server RSS

Setup of one run: a fresh ``skiff up --runtime fake --nodes N`` (sqlite, HTTPS on
loopback, scheduler + controllers + N simulated nodes in that one process); this
process waits until all N nodes are Ready, opens a watch on the namespace's pods, then
creates the pods as fast as the API accepts them (``--concurrency`` requests in
flight, aiohttp, keep-alive) and waits until every pod is bound (and Running).

Cases (``--case``): ``plain`` (pods with small requests), ``affinity`` (the same
pods in groups of 10, each with a *preferred* pod affinity to its group over zones
and a *required* pod anti-affinity to its group over hostnames).

Run: ``.venv/bin/python bench/scheduler.py`` -- the issue's suite: 1,000 nodes and
10,000 pods (median of ``--runs`` runs, default 3), then 5,000 nodes and the affinity
case once each.  ``--nodes/--pods/--case`` run one configuration only.  Every run is
bounded (``--budget`` seconds, default 240, after which it reports what it has); the
suite takes about 4-6 minutes on the 2-core machine.  ``--profile DIR`` samples the
server with py-spy (if installed) during the pod phase and prints the top frames.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import Running, percentile  # noqa: E402

import aiohttp  # noqa: E402

NS = "bench"
GROUP_SIZE = 10
IDLE_SAMPLE = 5.0  # seconds of idle cluster measured before the pods come


def pod_body(i: int, case: str) -> dict[str, Any]:
    group = f"g{i // GROUP_SIZE}"
    spec: dict[str, Any] = {
        "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
        "terminationGracePeriodSeconds": 0,
    }
    if case == "affinity":
        same = {"labelSelector": {"matchLabels": {"group": group}}}
        spec["affinity"] = {
            "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "podAffinityTerm": {**same, "topologyKey": "topology.kubernetes.io/zone"}}]},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {**same, "topologyKey": "kubernetes.io/hostname"}]},
        }
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p-{i:06d}", "labels": {"app": "bench", "group": group}},
            "spec": spec}


@dataclass
class Result:
    nodes: int
    pods: int
    case: str
    register_s: float = 0.0
    create_rate: float = 0.0
    bound_rate: float = 0.0
    running_rate: float = 0.0
    p50: float = 0.0
    p99: float = 0.0
    bound: int = 0
    running: int = 0
    rss_mb: float = 0.0
    idle_cpu: float = 0.0  # server CPU share with N idle nodes (leases, node status)
    cpu_ms_per_pod: float = 0.0  # server CPU time during the pod phase / pods bound
    errors: Counter[str] = field(default_factory=Counter)
    note: str = ""

    def line(self) -> str:
        done = "" if self.bound == self.pods else f"  ONLY {self.bound}/{self.pods} BOUND"
        return (f"{self.nodes:>5} nodes {self.pods:>6} pods {self.case:<8} "
                f"bound {self.bound_rate:6.1f} pods/s  create->bound p50 {self.p50:6.1f} s "
                f"p99 {self.p99:6.1f} s | created {self.create_rate:5.0f}/s  running "
                f"{self.running_rate:6.1f}/s  server CPU {self.cpu_ms_per_pod:5.1f} ms/pod "
                f"(one free core: {1000 / max(1e-9, self.cpu_ms_per_pod):4.0f} pods/s), "
                f"idle {100 * self.idle_cpu:3.0f}%  nodes ready in {self.register_s:5.1f} s  "
                f"RSS {self.rss_mb:4.0f} MB{done}{self.note}")


async def wait_nodes_ready(s: aiohttp.ClientSession, count: int, deadline: float) -> None:
    """List, then watch nodes until ``count`` of them are Ready."""
    def ready(node: dict[str, Any]) -> bool:
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (node.get("status") or {}).get("conditions") or ())

    async with s.get("/api/v1/nodes") as r:
        listed = orjson.loads(await r.read())
    state = {n["metadata"]["name"]: ready(n) for n in listed["items"]}
    if sum(state.values()) >= count:
        return
    rv = listed["metadata"]["resourceVersion"]
    async with s.get("/api/v1/nodes", params={"watch": "1", "resourceVersion": rv},
                     timeout=aiohttp.ClientTimeout(total=max(1.0, deadline - time.monotonic()))) as r:
        async for line in r.content:
            event = orjson.loads(line)
            obj = event["object"]
            state[obj["metadata"]["name"]] = event["type"] != "DELETED" and ready(obj)
            if sum(state.values()) >= count:
                return
    raise NodesNotReady(f"only {sum(state.values())}/{count} nodes Ready")


class NodesNotReady(RuntimeError):
    pass


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def watch_pods(s: aiohttp.ClientSession, rv: str, bound: dict[str, float],
                     running: dict[str, float], total: int, done: asyncio.Event) -> None:
    params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "false"}
    async with s.get(f"/api/v1/namespaces/{NS}/pods", params=params,
                     timeout=aiohttp.ClientTimeout(total=None)) as r:
        async for line in r.content:
            now = time.perf_counter()
            obj = orjson.loads(line)["object"]
            name = obj["metadata"]["name"]
            if name not in bound and (obj.get("spec") or {}).get("nodeName"):
                bound[name] = now
            if name not in running and (obj.get("status") or {}).get("phase") == "Running":
                running[name] = now
            if len(bound) >= total and len(running) >= total:
                done.set()
                return


async def one_run(c: Running, nodes: int, pods: int, case: str, concurrency: int,
                  budget: float, profile: Path | None) -> Result:
    result = Result(nodes, pods, case)
    deadline = time.monotonic() + budget
    conn = aiohttp.TCPConnector(ssl=c.ssl_context(), limit=concurrency + 4)
    async with aiohttp.ClientSession(c.url, connector=conn, read_bufsize=1 << 20) as s:
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(wait_nodes_ready(s, nodes, deadline), max(1.0, deadline - time.monotonic()))
        except (NodesNotReady, asyncio.TimeoutError) as e:
            result.note = f"  NODES NOT READY within the budget ({e or 'timeout'})"
            return result
        result.register_s = time.perf_counter() - t0 + (t0 - c.started)
        idle_from = cpu_seconds(c.proc.pid)
        await asyncio.sleep(IDLE_SAMPLE)
        result.idle_cpu = (cpu_seconds(c.proc.pid) - idle_from) / IDLE_SAMPLE
        async with s.post("/api/v1/namespaces", json={"metadata": {"name": NS}}) as r:
            assert r.status in (201, 409), r.status
        async with s.get(f"/api/v1/namespaces/{NS}/pods") as r:
            rv = orjson.loads(await r.read())["metadata"]["resourceVersion"]
        bound: dict[str, float] = {}
        running: dict[str, float] = {}
        sent: dict[str, float] = {}
        done = asyncio.Event()
        watcher = asyncio.create_task(watch_pods(s, rv, bound, running, pods, done))
        spy = start_profiler(c, profile, min(60.0, budget / 2)) if profile else None
        bodies = iter(range(pods))
        created_at = 0.0

        async def creator() -> None:
            nonlocal created_at
            for i in bodies:
                body = orjson.dumps(pod_body(i, case))
                name = f"p-{i:06d}"
                while time.monotonic() < deadline:
                    sent.setdefault(name, time.perf_counter())
                    async with s.post(f"/api/v1/namespaces/{NS}/pods", data=body,
                                      headers={"Content-Type": "application/json"}) as r:
                        await r.read()
                        if r.status in (201, 409):
                            break
                        result.errors[str(r.status)] += 1
                        await asyncio.sleep(0.05)  # 429/5xx: the server asked us to slow down
                created_at = time.perf_counter()

        start = time.perf_counter()
        cpu_from = cpu_seconds(c.proc.pid)
        await asyncio.gather(*(creator() for _ in range(concurrency)))
        result.create_rate = pods / max(1e-9, created_at - start)
        try:
            await asyncio.wait_for(done.wait(), max(0.1, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            pass
        watcher.cancel()
        busy = cpu_seconds(c.proc.pid) - cpu_from
        if spy is not None:
            finish_profiler(spy)
    result.bound, result.running = len(bound), len(running)
    result.cpu_ms_per_pod = 1000 * busy / max(1, len(bound))
    first = min(sent.values(), default=0.0)
    if bound:
        result.bound_rate = len(bound) / (max(bound.values()) - first)
        latencies = [bound[n] - sent[n] for n in bound if n in sent]
        result.p50, result.p99 = percentile(latencies, 50), percentile(latencies, 99)
    if running:
        result.running_rate = len(running) / (max(running.values()) - first)
    result.rss_mb = c.rss_mb()
    return result


# -- profiling (optional) -----------------------------------------------------------------

def start_profiler(c: Running, out_dir: Path, seconds: float) -> tuple[subprocess.Popen[bytes], Path] | None:
    spy = shutil.which("py-spy")
    if spy is None:
        print("  (py-spy not on PATH: no profile)")
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"skiff-{int(time.time())}.txt"
    proc = subprocess.Popen([spy, "record", "--pid", str(c.proc.pid), "--duration", str(int(seconds)),
                             "--rate", "50", "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, out


def finish_profiler(spy: tuple[subprocess.Popen[bytes], Path] | None) -> None:
    if spy is None:
        return
    proc, out = spy
    try:
        proc.wait(timeout=90)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait()
    if out.exists():
        print(summarize_profile(out))


def summarize_profile(path: Path, top: int = 25) -> str:
    """Collapsed stacks -> share of samples per frame (inclusive) and per frame (self)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f.split(" (")[0] + " " + f.split("/")[-1].rstrip(")") if " (" in f else f
                  for f in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"  profile {path} ({total} samples)", "  self%  frame"]
    lines += [f"  {100 * n / total:5.1f}  {f}" for f, n in own.most_common(top)]
    lines += ["  incl%  frame"]
    lines += [f"  {100 * n / total:5.1f}  {f}" for f, n in inclusive.most_common(top + 15)]
    return "\n".join(lines)


@contextlib.contextmanager
def skiff_up(nodes: int) -> Iterator[Running]:
    """``skiff up --runtime fake --nodes N`` in its own process group; stderr to a file
    (a pipe nobody reads would block a chatty server)."""
    data = Path(tempfile.mkdtemp(prefix="skiff-bench-sched-"))
    started = time.perf_counter()
    with open(data / "stderr", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "skiff", "up", "--runtime", "fake", "--nodes", str(nodes),
             "--port", "0", "--data-dir", str(data / "d"), "--log-level", "WARNING"],
            stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # printed once the API answers
            if line.startswith("export KUBECONFIG="):
                break
        else:
            raise RuntimeError("skiff up exited: " + (data / "stderr").read_text()[-2000:])
        yield Running(proc, data / "d", started)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        warnings = [ln for ln in (data / "stderr").read_text().splitlines() if " WARNING " in ln or "ERROR" in ln]
        if warnings:
            print(f"  server logged {len(warnings)} warning(s); last: {warnings[-1][:300]}")
        shutil.rmtree(data, ignore_errors=True)


def run_case(nodes: int, pods: int, case: str, runs: int, concurrency: int, budget: float,
             profile: Path | None) -> list[Result]:
    results = []
    for i in range(runs):
        with skiff_up(nodes=nodes) as c:
            r = asyncio.run(one_run(c, nodes, pods, case, concurrency, budget,
                                    profile if i == 0 else None))
        print(f"  run {i + 1}: {r.line()}" + (f"  errors {dict(r.errors)}" if r.errors else ""), flush=True)
        results.append(r)
    return results


def median_line(results: list[Result]) -> str:
    best = sorted(results, key=lambda r: r.bound_rate)[len(results) // 2]
    med = Result(best.nodes, best.pods, best.case,
                 register_s=statistics.median(r.register_s for r in results),
                 create_rate=statistics.median(r.create_rate for r in results),
                 bound_rate=statistics.median(r.bound_rate for r in results),
                 running_rate=statistics.median(r.running_rate for r in results),
                 p50=statistics.median(r.p50 for r in results),
                 p99=statistics.median(r.p99 for r in results),
                 bound=min(r.bound for r in results), running=min(r.running for r in results),
                 rss_mb=statistics.median(r.rss_mb for r in results),
                 idle_cpu=statistics.median(r.idle_cpu for r in results),
                 cpu_ms_per_pod=statistics.median(r.cpu_ms_per_pod for r in results))
    return f"median of {len(results)}: {med.line()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=None)
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--case", choices=("plain", "affinity"), default="plain")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--budget", type=float, default=240.0, help="seconds per run before giving up")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR")
    args = ap.parse_args()
    if args.nodes is not None:
        plan = [(args.nodes, args.pods, args.case, args.runs)]
    else:
        plan = [(1000, args.pods, "plain", args.runs), (5000, args.pods, "plain", 1),
                (1000, args.pods, "affinity", 1)]
    started = time.monotonic()
    for nodes, pods, case, runs in plan:
        print(f"{nodes} nodes, {pods} pods, {case}:", flush=True)
        results = run_case(nodes, pods, case, runs, args.concurrency, args.budget, args.profile)
        print("  " + median_line(results), flush=True)
    print(f"goal: >= 300 pods/s bound end to end (1,000 nodes, 10,000 pods); "
          f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
