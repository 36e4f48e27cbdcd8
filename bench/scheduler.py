"""Scheduler throughput on simulated nodes (issue 3).  Prints, per case:

* pods/s bound end to end: pods created / (last pod bound - first create sent)   goal >= 300/s
* p50 / p99 create->bound latency (POST sent -> a watch shows spec.nodeName)
* also: API create rate, pods/s Running, node registration time, server RSS, and CPU
  time per bound pod (from the first create until the last pod is bound) of each of
  ``skiff up``'s processes: the server (API server, store, controllers), the scheduler
  and the node agent (the N simulated nodes)

Setup of one run: a fresh ``skiff up --runtime fake --nodes N`` (sqlite, HTTPS on
loopback; the API server and controllers in that process, the scheduler and the N
simulated nodes in its two child processes, as ``skiff up`` runs them on a machine with
more than one core); this
process waits until all N nodes are Ready, opens a watch on the namespace's pods, then
creates the pods as fast as the API accepts them (``--concurrency`` requests in
flight, aiohttp, keep-alive) and waits until every pod is bound (and Running).

Cases (``--case``): ``plain`` (pods with small requests), ``affinity`` (the same
pods in groups of 10, each with a *preferred* pod affinity to its group over zones
and a *required* pod anti-affinity to its group over hostnames).

``--single-process`` runs ``skiff up --single-process`` instead (everything in one
process, one core).  ``--cprofile DIR`` runs the server and its component processes
under cProfile and prints their top functions (``--core --cprofile DIR`` profiles the scheduling cycle).

Run: ``.venv/bin/python bench/scheduler.py`` -- the issue's suite: 1,000 nodes and
10,000 pods (median of ``--runs`` runs, default 3), then 5,000 nodes and the affinity
case once each.  ``--nodes/--pods/--case`` run one configuration only.  Every run is
bounded (``--budget`` seconds, default 240, after which it reports what it has); the
suite takes about 4-6 minutes on the 2-core machine.  ``--profile DIR`` samples the
server with py-spy (if installed) during the pod phase and prints the top frames.
"""

from __future__ import annotations

import argparse
import io
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
from typing import Any, Callable, Iterator

import cProfile  # noqa: F401  (run as ``-m cProfile`` in the child processes)
import pstats

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cluster import Running, component_processes, percentile  # noqa: E402

import aiohttp  # noqa: E402

NS = "bench"
GROUP_SIZE = 10
IDLE_SAMPLE = 5.0  # seconds of idle cluster measured before the pods come
IDLE_FROM = 22.0   # ... starting this long after start-up: every node's Lease is renewed
                   # every 10 s from 10-20 s after the nodes start (status every 5 min)


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
    agent_idle_cpu: float = 0.0  # the node agent's CPU share meanwhile
    marginal_ms_per_pod: float = 0.0  # cpu_ms_per_pod less the idle share over the same time
    cpu_ms_per_pod: float = 0.0  # server CPU time from the first create until all bound / pods bound
    sched_ms_per_pod: float = 0.0  # the scheduler process's CPU time / pods bound
    agent_ms_per_pod: float = 0.0  # the node agent process's CPU time / pods bound
    bench_ms_per_pod: float = 0.0  # this process's (creates and the watch) CPU time / pods bound
    load: float = 0.0  # 1-minute load average when the pods phase started
    errors: Counter[str] = field(default_factory=Counter)
    note: str = ""

    def line(self) -> str:
        done = "" if self.bound == self.pods else f"  ONLY {self.bound}/{self.pods} BOUND"
        if self.running != self.pods:
            done += f"  ONLY {self.running}/{self.pods} RUNNING"
        return (f"{self.nodes:>5} nodes {self.pods:>6} pods {self.case:<8} "
                f"bound {self.bound_rate:6.1f} pods/s  create->bound p50 {self.p50:6.1f} s "
                f"p99 {self.p99:6.1f} s | created {self.create_rate:5.0f}/s  running "
                f"{self.running_rate:6.1f}/s  server CPU {self.cpu_ms_per_pod:5.1f} ms/pod "
                f"({self.marginal_ms_per_pod:4.1f} without the idle share) "
                f"(one free core: {1000 / max(1e-9, self.cpu_ms_per_pod):4.0f} pods/s), "
                + (f"scheduler process {self.sched_ms_per_pod:5.2f} ms/pod, node agent process "
                   f"{self.agent_ms_per_pod:5.2f} ms/pod, " if self.sched_ms_per_pod else "")
                + f"load generator {self.bench_ms_per_pod:4.2f} ms/pod, "
                + f"load {self.load:.1f}, "
                f"idle {100 * self.idle_cpu:3.0f}% (node agent {100 * self.agent_idle_cpu:3.0f}%)  nodes ready in {self.register_s:5.1f} s  "
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
                     running: dict[str, float], total: int, done: asyncio.Event,
                     on_all_bound: Callable[[], None]) -> None:
    """Record when each pod is first seen bound and Running.  A watch the server ends is
    resumed from a fresh list (pods first seen there get the list's time)."""
    def seen(obj: dict[str, Any], now: float) -> bool:
        name = obj["metadata"]["name"]
        if name not in bound and (obj.get("spec") or {}).get("nodeName"):
            bound[name] = now
            if len(bound) == total:
                on_all_bound()
        if name not in running and (obj.get("status") or {}).get("phase") == "Running":
            running[name] = now
        return len(bound) >= total and len(running) >= total

    while True:
        params = {"watch": "1", "resourceVersion": rv, "allowWatchBookmarks": "false"}
        async with s.get(f"/api/v1/namespaces/{NS}/pods", params=params,
                         timeout=aiohttp.ClientTimeout(total=None)) as r:
            async for line in r.content:
                if seen(orjson.loads(line)["object"], time.perf_counter()):
                    done.set()
                    return
        async with s.get(f"/api/v1/namespaces/{NS}/pods") as r:
            listed = orjson.loads(await r.read())
        now = time.perf_counter()
        rv = listed["metadata"]["resourceVersion"]
        if any([seen(obj, now) for obj in listed["items"]]):
            done.set()
            return


async def one_run(c: Cluster, nodes: int, pods: int, case: str, concurrency: int,
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
        await asyncio.sleep(max(0.0, c.started + IDLE_FROM - time.perf_counter()))
        idle_from = cpu_seconds(c.proc.pid)
        agent_idle_from = c.cpu_seconds("node agent")
        await asyncio.sleep(IDLE_SAMPLE)
        result.idle_cpu = (cpu_seconds(c.proc.pid) - idle_from) / IDLE_SAMPLE
        result.agent_idle_cpu = (c.cpu_seconds("node agent") - agent_idle_from) / IDLE_SAMPLE
        async with s.post("/api/v1/namespaces", json={"metadata": {"name": NS}}) as r:
            assert r.status in (201, 409), r.status
        async with s.get(f"/api/v1/namespaces/{NS}/pods") as r:
            rv = orjson.loads(await r.read())["metadata"]["resourceVersion"]
        bound: dict[str, float] = {}
        running: dict[str, float] = {}
        sent: dict[str, float] = {}
        done = asyncio.Event()
        cpu_at_bound: list[float] = []

        def all_bound() -> None:   # CPU used until the last pod is bound (not until Running)
            cpu_at_bound.append(cpu_seconds(c.proc.pid))
            cpu_at_bound.append(c.cpu_seconds("scheduler"))
            cpu_at_bound.append(c.cpu_seconds("node agent"))
            cpu_at_bound.append(time.process_time())

        watcher = asyncio.create_task(watch_pods(s, rv, bound, running, pods, done, all_bound))
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

        result.load = os.getloadavg()[0]
        start = time.perf_counter()
        cpu_from = cpu_seconds(c.proc.pid)
        bench_from = time.process_time()
        sched_from = c.cpu_seconds("scheduler")
        agent_from = c.cpu_seconds("node agent")
        await asyncio.gather(*(creator() for _ in range(concurrency)))
        result.create_rate = pods / max(1e-9, created_at - start)
        try:
            await asyncio.wait_for(done.wait(), max(0.1, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            pass
        watcher.cancel()
        if not cpu_at_bound:
            all_bound()
        busy = cpu_at_bound[0] - cpu_from
        sched_busy = cpu_at_bound[1] - sched_from
        agent_busy = cpu_at_bound[2] - agent_from
        bench_busy = cpu_at_bound[3] - bench_from
        if spy is not None:
            finish_profiler(spy)
        if len(running) < pods:
            await describe_stragglers(s, bound, running, result)
    result.bound, result.running = len(bound), len(running)
    result.cpu_ms_per_pod = 1000 * busy / max(1, len(bound))
    if bound:
        span = max(bound.values()) - min(sent.values(), default=0.0)
        result.marginal_ms_per_pod = 1000 * (busy - result.idle_cpu * span) / len(bound)
    result.sched_ms_per_pod = 1000 * sched_busy / max(1, len(bound))
    result.agent_ms_per_pod = 1000 * agent_busy / max(1, len(bound))
    result.bench_ms_per_pod = 1000 * bench_busy / max(1, len(bound))
    first = min(sent.values(), default=0.0)
    if bound:
        result.bound_rate = len(bound) / (max(bound.values()) - first)
        latencies = [bound[n] - sent[n] for n in bound if n in sent]
        result.p50, result.p99 = percentile(latencies, 50), percentile(latencies, 99)
    if running:
        result.running_rate = len(running) / (max(running.values()) - first)
    result.rss_mb = c.rss_mb()
    return result


async def describe_stragglers(s: aiohttp.ClientSession, bound: dict[str, float],
                              running: dict[str, float], result: Result) -> None:
    """What became of pods the watch never saw Running: a count per (bound?, phase) and one example."""
    async with s.get(f"/api/v1/namespaces/{NS}/pods") as r:
        listed = orjson.loads(await r.read())
    items = listed["items"]
    kinds: Counter[str] = Counter()
    example = ""
    for pod in items:
        name = pod["metadata"]["name"]
        if name in running:
            continue
        phase = (pod.get("status") or {}).get("phase")
        node = (pod.get("spec") or {}).get("nodeName")
        kinds[f"{'bound' if node else 'unbound'}/{phase}/{'seen-bound' if name in bound else 'not-seen'}"] += 1
        example = example or orjson.dumps({"name": name, "nodeName": node,
                                           "status": pod.get("status")}).decode()[:600]
    result.note += (f"  stragglers {dict(kinds)} e.g. {example} (listed {len(items)} pods, "
                    f"metadata {listed.get('metadata')})")


# -- the scheduling cycle alone (--core) ----------------------------------------------------

def core_run(nodes: int, pods: int, case: str, cprofile: Path | None) -> str:
    """The framework without API, informers or TLS: ``schedule_one`` + ``assume`` for every pod,
    over a snapshot of ``nodes`` simulated nodes (as ``skiff up --runtime fake`` registers them)."""
    from skiff.kubelet.fake import fake_node_specs
    from skiff.kubelet.node_status import node_object
    from skiff.scheduler.framework import Framework
    from skiff.scheduler.podinfo import PodInfo
    from skiff.scheduler.profile import default_profile
    from skiff.scheduler.snapshot import Snapshot
    import random

    snapshot = Snapshot([node_object(spec, 0.0) for spec in fake_node_specs(nodes)])
    fw = Framework(default_profile(), rng=random.Random(1))
    bodies = []
    for i in range(pods):
        body = pod_body(i, case)
        body["metadata"].update(namespace=NS, uid=f"uid-{i}")
        body["spec"].update(schedulerName="default-scheduler", priority=0)
        bodies.append(body)
    prof = cProfile.Profile() if cprofile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if prof:
        prof.enable()
    placed = 0
    for body in bodies:
        pi = PodInfo(body)
        result = fw.schedule_one(snapshot, pi)
        if result.node_name is not None:
            snapshot.assume(pi, result.node_name)
            placed += 1
    if prof:
        prof.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if prof and cprofile:
        cprofile.mkdir(parents=True, exist_ok=True)
        prof.dump_stats(str(cprofile / "core.prof"))
        print(summarize_cprofile(cprofile / "core.prof"))
    return (f"core: {nodes} nodes {pods} pods {case}: {placed} placed, {1000 * cpu / pods:.2f} ms CPU/pod "
            f"({pods / wall:.0f} pods/s), load {os.getloadavg()[0]:.1f}")


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


class Cluster(Running):
    """A running ``skiff up`` (``proc``) and its component processes, if any."""

    def cpu_seconds(self, component: str) -> float:
        """CPU time of a component process (0 when it runs inside the server)."""
        pid = component_processes(self.proc.pid).get(component)
        return cpu_seconds(pid) if pid is not None else 0.0


def _python(cprofile: Path | None) -> list[str]:
    return [sys.executable, "-m", "cProfile", "-o", str(cprofile)] if cprofile else [sys.executable]


def _stop(proc: subprocess.Popen[Any], grace: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def skiff_up(nodes: int, single_process: bool = False, cprofile: Path | None = None) -> Iterator[Cluster]:
    """``skiff up --runtime fake --nodes N`` in its own process group; stderr to a file
    (a pipe nobody reads would block a chatty server).  ``single_process``: with
    ``--single-process``.  ``cprofile``: the server process runs under cProfile, writing
    DIR/server.prof when it stops."""
    data = Path(tempfile.mkdtemp(prefix="skiff-bench-sched-"))
    started = time.perf_counter()
    extra: list[str] = ["--single-process"] if single_process else []
    if cprofile:
        cprofile.mkdir(parents=True, exist_ok=True)
    with open(data / "stderr", "w") as err:
        proc = subprocess.Popen(
            [*_python(cprofile and cprofile / "server.prof"),
             "-m", "skiff", "up", "--runtime", "fake",
             "--nodes", str(nodes), "--port", "0", "--data-dir", str(data / "d"), "--log-level", "WARNING",
             *extra],
            stdout=subprocess.PIPE, stderr=err, text=True, start_new_session=True,
            env=dict(os.environ, SKIFF_CPROFILE_DIR=str(cprofile)) if cprofile else None)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # printed once the API answers
            if line.startswith("export KUBECONFIG="):
                break
        else:
            raise RuntimeError("skiff up exited: " + (data / "stderr").read_text()[-2000:])
        yield Cluster(proc, data / "d", started)
    finally:
        _stop(proc, 30)
        if proc.stdout is not None:
            proc.stdout.close()
        for log_name in ("stderr",):
            path = data / log_name
            lines = path.read_text().splitlines() if path.exists() else []
            warnings = [ln for ln in lines if " WARNING " in ln or "ERROR" in ln]
            if warnings:
                print(f"  {log_name}: {len(warnings)} warning(s); last: {warnings[-1][:300]}")
        shutil.rmtree(data, ignore_errors=True)
        if cprofile:
            for name in ("server.prof", "scheduler.prof", "node-agent.prof"):
                if (cprofile / name).exists():
                    print(summarize_cprofile(cprofile / name))


def summarize_cprofile(path: Path, top: int = 30) -> str:
    """The functions with the most own time, and the most cumulative time."""
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return f"  cProfile {path}:\n" + "\n".join("    " + ln for ln in out.getvalue().splitlines() if ln.strip())


def run_case(nodes: int, pods: int, case: str, runs: int, concurrency: int, budget: float,
             profile: Path | None, single_process: bool = False,
             cprofile: Path | None = None) -> list[Result]:
    results = []
    for i in range(runs):
        with skiff_up(nodes=nodes, single_process=single_process,
                      cprofile=cprofile if i == 0 else None) as c:
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
                 cpu_ms_per_pod=statistics.median(r.cpu_ms_per_pod for r in results),
                 marginal_ms_per_pod=statistics.median(r.marginal_ms_per_pod for r in results),
                 sched_ms_per_pod=statistics.median(r.sched_ms_per_pod for r in results),
                 agent_ms_per_pod=statistics.median(r.agent_ms_per_pod for r in results),
                 bench_ms_per_pod=statistics.median(r.bench_ms_per_pod for r in results),
                 agent_idle_cpu=statistics.median(r.agent_idle_cpu for r in results),
                 load=statistics.median(r.load for r in results))
    return f"median of {len(results)}: {med.line()}"


def main() -> None:
    # A SIGTERM (timeout, Ctrl-C from a supervisor) unwinds like an exception, so the
    # clusters' finally blocks stop them: nothing is left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, default=None)
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--case", choices=("plain", "affinity"), default="plain")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--budget", type=float, default=240.0, help="seconds per run before giving up")
    ap.add_argument("--profile", type=Path, default=None, metavar="DIR", help="py-spy the server (first run)")
    ap.add_argument("--cprofile", type=Path, default=None, metavar="DIR",
                    help="run skiff up's processes under cProfile (first run)")
    ap.add_argument("--core", action="store_true",
                    help="time the scheduling cycle alone (no API server): ms CPU per pod")
    ap.add_argument("--single-process", action="store_true",
                    help="run skiff up --single-process (scheduler and nodes inside the server)")
    args = ap.parse_args()
    if args.core:
        for _ in range(args.runs):
            print(core_run(args.nodes or 1000, args.pods, args.case, args.cprofile), flush=True)
        return
    if args.nodes is not None:
        plan = [(args.nodes, args.pods, args.case, args.runs)]
    else:
        plan = [(1000, args.pods, "plain", args.runs), (5000, args.pods, "plain", 1),
                (1000, args.pods, "affinity", 1)]
    started = time.monotonic()
    for nodes, pods, case, runs in plan:
        print(f"{nodes} nodes, {pods} pods, {case}:", flush=True)
        results = run_case(nodes, pods, case, runs, args.concurrency, args.budget, args.profile,
                           args.single_process, args.cprofile)
        print("  " + median_line(results), flush=True)
    print(f"goal: >= 300 pods/s bound end to end (1,000 nodes, 10,000 pods); "
          f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
