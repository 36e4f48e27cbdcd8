"""Pod startup latency and idle CPU of a real runc node (issue 4, Performance).

Starts ``skiff up --runtime runc`` (the host's one runc node: the bench holds the
host-wide lock ``/tmp/skiff-runc-node.lock`` while it runs) with a busybox image built
from the distribution's busybox-static and imported (nothing is pulled), then:

1. latency, ``--runs`` times: ``--pods`` pods (busybox ``sleep``) created at once; for
   each, the time from sending its create to a watch event showing it ``Running``.
   Prints p50/p99 of every run and their medians (the goal: p50 <= 300 ms,
   p99 <= 1 s for 20 pods), and the CPU spent per pod: by each of ``skiff up``'s
   processes (the server: API server, store, controllers; the scheduler; the node
   agent: kubelet, proxy, DNS), and by everything ``skiff up`` started (a cgroup of
   its own: shims, runc, helpers; the containers are in theirs).  The pods are
   deleted between runs.  After each run, the same burst with runc alone (``--pods``
   bare ``runc run --detach``, four at a time as the node agent starts pods; see
   ``_runcalone.py``) gives this machine's floor at that moment, and the ratio of the
   pods' p50 to it is printed: a figure that moves much less with the machine's speed.
2. idle CPU: each process's CPU (utime + stime from ``/proc``) over an idle window
   with no pods, then with ``--scale`` running pods (created 20 at a time), as % of
   one core (the goal: under 2 % for the node agent with 100 pods); the pods' shims
   (one small process per container) and the cgroup's total are printed next to it.
   Then the ``--scale`` pods are deleted at once: how long until they are gone, and the
   node agent's CPU per deleted pod (with many pods on a node, removal is the dearer end).

On a machine shared with other work the latencies move with its load (printed with
every figure); the CPU per pod moves much less.

Everything is removed at the end, also on failure or Ctrl-C: the node takes its
containers, pod networks and bridge down when ``skiff up`` stops; whatever a crash
leaves is removed from the data directory afterwards.

Run as root: ``.venv/bin/python bench/podstartup.py [--runs 5] [--pods 20]
[--scale 100] [--idle-seconds 60]``  (about 3 minutes with the defaults).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from skiff.api.errors import StatusError  # noqa: E402
from skiff.client.resources import NODES, PODS  # noqa: E402
from skiff.client.rest import ApiClient  # noqa: E402
from _cluster import component_processes  # noqa: E402
from _runcalone import RuncAlone  # noqa: E402

Obj = dict[str, Any]
LOCK = Path("/tmp/skiff-runc-node.lock")
IMAGE = "busybox:latest"
START_SLOTS = 4       # the node agent's pods starting at once (its --parallel-starts default)
NAMESPACE = "default"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
TICKS = os.sysconf("SC_CLK_TCK")


# -- the cluster ---------------------------------------------------------------------------


class CpuAccount:
    """A cgroup of its own for ``skiff up`` and everything it starts that stays there:
    the container shims and their launcher, runc (until runc moves the container's
    process into the container's cgroup), ip, nft.  The containers are not counted."""

    V1 = Path("/sys/fs/cgroup/cpuacct")
    V2 = Path("/sys/fs/cgroup")

    def __init__(self, name: str) -> None:
        self.v1 = self.V1.is_dir()
        self.path = (self.V1 if self.v1 else self.V2) / name
        self.path.mkdir()

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv``, run from inside the cgroup (it joins before starting anything)."""
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.path / "cgroup.procs"), *argv]

    def seconds(self) -> float:
        if self.v1:
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        for line in (self.path / "cpu.stat").read_text().splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
        return 0.0

    def remove(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as err:                 # shims of stopped containers still exiting
                if time.monotonic() > deadline:
                    print(f"cgroup {self.path} not removed: {err}", file=sys.stderr)
                    return
            time.sleep(0.1)


class RuncNode:
    """One ``skiff up --runtime runc`` process on a fresh data directory."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.proc: subprocess.Popen[str] | None = None
        self.account = CpuAccount(base.name)

    def start(self) -> None:
        image = self.base / "busybox.tar"
        subprocess.run([sys.executable, str(ROOT / "tests" / "fixtures" / "busybox_image.py"), str(image)],
                       check=True, capture_output=True)
        skiff = [sys.executable, "-m", "skiff"]
        subprocess.run([*skiff, "image", "import", str(image), "--name", IMAGE, "--data-dir", str(self.data)],
                       check=True, capture_output=True)
        self.proc = subprocess.Popen(
            self.account.wrap([*skiff, "up", "--runtime", "runc", "--port", "0",
                               "--data-dir", str(self.data), "--log-level", "WARNING"]),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=open(self.base / "skiff.stderr", "w"),
            text=True, start_new_session=True, cwd=self.base)
        assert self.proc.stdout is not None
        for line in self.proc.stdout:        # printed once the API server answers
            if line.startswith("export KUBECONFIG="):
                return
        raise RuntimeError("skiff up exited before it was ready:\n" + self.stderr_tail())

    def stderr_tail(self) -> str:
        try:
            return "".join((self.base / "skiff.stderr").read_text().splitlines(True)[-30:])
        except OSError:
            return ""

    def client(self) -> ApiClient:
        return ApiClient.from_kubeconfig(self.data / "kubeconfig", user_agent="bench-podstartup")

    def processes(self) -> dict[str, int]:
        """``skiff up``'s processes: ``server`` (API server, store, controllers) and, unless
        it runs with ``--single-process``, its children ``scheduler`` and ``node agent``."""
        assert self.proc is not None
        return {"server": self.proc.pid, **component_processes(self.proc.pid)}

    def process_cpu(self) -> dict[str, float]:
        """utime + stime of each of ``skiff up``'s processes (threads included)."""
        result: dict[str, float] = {}
        for name, pid in self.processes().items():
            with contextlib.suppress(OSError):
                result[name] = _cpu_of(f"/proc/{pid}/stat")
        return result

    def shim_cpu(self) -> tuple[int, float]:
        """How many container shims run, and their CPU seconds (children included)."""
        count, total = 0, 0.0
        for started in (self.data / "kubelet" / "run" / "runtime" / "containers").glob("*/started.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                pid = int(json.loads(started.read_text())["shimPid"])
                total += _cpu_of(f"/proc/{pid}/stat", children=True)
                count += 1
        return count, total

    def stop(self) -> None:
        """SIGTERM (the node takes everything down), then remove what is left."""
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print("skiff up did not stop in time; killing it", file=sys.stderr)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        leftovers = self._sweep()
        if leftovers:
            print(f"removed what skiff up left behind: {', '.join(leftovers)}", file=sys.stderr)
        self.account.remove()

    def _sweep(self) -> list[str]:
        """Remove containers, mounts, the bridge and nft tables a failed stop left."""
        found: list[str] = []
        runc_root = self.data / "kubelet" / "run" / "runtime" / "runc"
        if runc_root.exists():
            listing = subprocess.run(["runc", "--root", str(runc_root), "list", "-q"],
                                     capture_output=True, text=True)
            for container in listing.stdout.split():
                found.append(f"container {container[:12]}")
                subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", container],
                               capture_output=True)
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                  if str(self.data) in line.split()[1]]
        for point in sorted(mounts, key=lambda p: p.count("/"), reverse=True):
            found.append(f"mount {point}")
            subprocess.run(["umount", "-l", point], capture_output=True)
        if subprocess.run(["ip", "link", "show", "skiff0"], capture_output=True).returncode == 0:
            found.append("bridge skiff0")
            subprocess.run(["ip", "link", "del", "skiff0"], capture_output=True)
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        for line in tables.splitlines():
            words = line.split()
            if len(words) == 3 and words[2].startswith(("skiff-net-skiff0", "skiff-proxy-skiff-node-0")):
                found.append(f"nft table {words[2]}")
                subprocess.run(["nft", "delete", "table", words[1], words[2]], capture_output=True)
        return found


def _cpu_of(stat_path: str, *, children: bool = False) -> float:
    try:
        with open(stat_path) as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])           # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])      # cutime, cstime
    return ticks / TICKS


@contextlib.contextmanager
def runc_node() -> Iterator[RuncNode]:
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)     # the host's one runc node: wait for any other
        base = Path(tempfile.mkdtemp(prefix="skiff-bench-podstartup-"))
        node = RuncNode(base)
        failed = True
        try:
            node.start()
            yield node
            failed = False
        finally:
            node.stop()
            if failed:                          # skiff up's log, for the post-mortem
                kept = Path(tempfile.gettempdir()) / f"{base.name}.stderr"
                with contextlib.suppress(OSError):
                    shutil.copy(base / "skiff.stderr", kept)
                    print(f"skiff up's log: {kept}", file=sys.stderr)
            shutil.rmtree(base, ignore_errors=True)


# -- measuring -----------------------------------------------------------------------------


def pod(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"bench": "podstartup"}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                "name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                "command": ["sleep", "36000"]}]}}


async def until_node_ready(client: ApiClient) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    nodes: list[Obj] = []
    while time.monotonic() < deadline:
        nodes = (await client.list(NODES)).items
        for node in nodes:
            conditions = (node.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return
        await asyncio.sleep(0.2)      # a one-off wait for the node to register
    seen = [(n["metadata"]["name"], (n.get("status") or {}).get("conditions")) for n in nodes]
    raise RuntimeError(f"the runc node never became Ready; nodes: {seen}")


async def start_pods(client: ApiClient, names: list[str],
                     bound_after: list[float] | None = None) -> list[float]:
    """Create ``names`` at once; each one's create -> Running (seen by a watch), seconds.
    ``bound_after`` receives each one's create -> bound to the node (spec.nodeName seen)."""
    listing = await client.list(PODS, namespace=NAMESPACE)
    sent: dict[str, float] = {}
    bound: dict[str, float] = {}
    running: dict[str, float] = {}
    wanted = set(names)

    async def watch() -> None:
        async with client.watch(PODS, namespace=NAMESPACE, resource_version=listing.resource_version) as events:
            async for _, obj in events:
                name = obj["metadata"]["name"]
                if name in wanted and name not in bound and (obj.get("spec") or {}).get("nodeName"):
                    bound[name] = time.monotonic()
                if name in wanted and name not in running and (obj.get("status") or {}).get("phase") == "Running":
                    running[name] = time.monotonic()
                    if len(running) == len(wanted):
                        return

    async def create(name: str) -> None:
        sent[name] = time.monotonic()
        await client.create(PODS, pod(name), namespace=NAMESPACE)

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.gather(*(create(name) for name in names))
        await asyncio.wait_for(asyncio.shield(watcher), 120)
    finally:
        watcher.cancel()
    if bound_after is not None:
        bound_after.extend(sorted(bound[name] - sent[name] for name in names if name in bound))
    return sorted(running[name] - sent[name] for name in names)


async def delete_pods(client: ApiClient, names: list[str]) -> float:
    """Delete ``names`` at once; seconds until the last one is gone."""
    started = time.monotonic()
    listing = await client.list(PODS, namespace=NAMESPACE)
    present = {p["metadata"]["name"] for p in listing.items} & set(names)

    async def watch() -> None:
        async with client.watch(PODS, namespace=NAMESPACE, resource_version=listing.resource_version) as events:
            async for kind, obj in events:
                if kind == "DELETED":
                    present.discard(obj["metadata"]["name"])
                    if not present:
                        return

    watcher = asyncio.create_task(watch())
    try:
        for name in list(present):
            with contextlib.suppress(StatusError):
                await client.delete(PODS, name, namespace=NAMESPACE)
        if present:
            await asyncio.wait_for(asyncio.shield(watcher), 120)
    finally:
        watcher.cancel()
    return time.monotonic() - started


def percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    return p50, p99


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def host_cpu() -> list[int]:
    """The machine's CPU time so far (/proc/stat's first line, in ticks)."""
    with open("/proc/stat") as stat:
        return [int(x) for x in stat.readline().split()[1:9]]


def host_busy(before: list[int], after: list[int], pods: int) -> tuple[str, float]:
    """How busy the machine's cores were between two host_cpu() readings, and that busy
    time per pod in ms (everything: skiff, runc, the containers, the kernel's own
    threads); steal is the time the hypervisor gave to other machines while this one
    wanted to run."""
    delta = [b - a for a, b in zip(before, after)]
    total = sum(delta) or 1
    idle = delta[3] + delta[4]                          # idle, iowait
    per_pod = (total - idle) / TICKS * 1000 / pods
    return (f"host cores {100 * (total - idle) / total:.0f} % busy ({per_pod:.0f} ms per pod), "
            f"steal {100 * delta[7] / total:.0f} %"), per_pod


def _per_process(before: dict[str, float], after: dict[str, float], scale: float, unit: str) -> str:
    return ", ".join(f"{name} {(after[name] - before.get(name, 0.0)) * scale:.2f}{unit}" for name in after)


async def idle_window(node: RuncNode, seconds: float, label: str) -> float:
    """Print the CPU of ``skiff up``'s processes over ``seconds`` of doing nothing; return
    the node agent's share in % of a core (the whole of skiff with ``--single-process``)."""
    cpu0, (_, shims0) = node.process_cpu(), node.shim_cpu()
    total0 = node.account.seconds()
    started = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    cpu1, (shims, shims1) = node.process_cpu(), node.shim_cpu()
    total = (node.account.seconds() - total0) / elapsed * 100
    agent = "node agent" if "node agent" in cpu1 else "server"
    percent = (cpu1[agent] - cpu0.get(agent, 0.0)) / elapsed * 100
    print(f"idle CPU, {label:<10} over {elapsed:.0f} s, % of a core: "
          f"{_per_process(cpu0, cpu1, 100 / elapsed, ' %')}; {shims} shims "
          f"{(shims1 - shims0) / elapsed * 100:.2f} %; all but the containers {total:.2f} %; {load()}")
    return percent


async def measure(node: RuncNode, args: argparse.Namespace) -> None:
    client = node.client()
    try:
        await until_node_ready(client)
        await asyncio.sleep(args.settle)            # the node's first status rounds
        baseline = await idle_window(node, args.idle_seconds / 2, "no pods")

        alone = RuncAlone(node.base / "runc-alone") if args.runc_alone else None
        try:
            await _latency_runs(node, client, args, alone)
        finally:
            if alone is not None:
                alone.cleanup()

        names = [f"idle-{i}" for i in range(args.scale)]
        for batch in range(0, args.scale, 20):
            latencies = await start_pods(client, names[batch:batch + 20])
            p50, p99 = percentiles(latencies)
            print(f"scale-up: pods {batch + 1}-{batch + len(latencies)} running "
                  f"(p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms)")
        await asyncio.sleep(args.settle)            # the last statuses and events written
        loaded = await idle_window(node, args.idle_seconds, f"{args.scale} pods")
        print(f"idle CPU of the node agent with {args.scale} pods: {loaded:.2f} % of a core "
              f"({loaded - baseline:+.2f} % over no pods; goal: under 2 %)")
        if names:
            cpu0 = node.process_cpu()
            gone = await delete_pods(client, names)
            await asyncio.sleep(1)                  # the node's last teardown work
            agent = "node agent" if "node agent" in cpu0 else "server"
            per_pod = (node.process_cpu()[agent] - cpu0[agent]) * 1000 / len(names)
            print(f"deleting the {len(names)} pods at once: gone in {gone:.1f} s; "
                  f"{agent} CPU per deleted pod {per_pod:.1f} ms")
    finally:
        await client.close()


async def _latency_runs(node: RuncNode, client: ApiClient, args: argparse.Namespace,
                        alone: RuncAlone | None) -> None:
    """``--runs`` bursts of ``--pods`` pods (each followed by runc alone's burst): print each
    run's figures and their medians."""
    p50s, p99s, host_per_pod = [], [], []
    alone_p50s: list[float] = []
    for run in range(args.runs):
        names = [f"bench-{run}-{i}" for i in range(args.pods)]
        cpu0, total0, host0 = node.process_cpu(), node.account.seconds(), host_cpu()
        to_bound: list[float] = []
        latencies = await start_pods(client, names, to_bound)
        cpu1, total, host1 = node.process_cpu(), node.account.seconds() - total0, host_cpu()
        p50, p99 = percentiles(latencies)
        p50s.append(p50)
        p99s.append(p99)
        gone = await delete_pods(client, names)
        bound50, bound99 = percentiles(to_bound)
        busy, per_pod = host_busy(host0, host1, args.pods)
        host_per_pod.append(per_pod)
        print(f"run {run + 1}: {args.pods} pods at once: create -> Running p50 {p50 * 1000:4.0f} ms, "
              f"p99 {p99 * 1000:4.0f} ms (-> bound p50 {bound50 * 1000:.0f}, p99 {bound99 * 1000:.0f} ms); CPU per pod: {_per_process(cpu0, cpu1, 1000 / args.pods, ' ms')}, "
              f"with shims, runc, helpers {total * 1000 / args.pods:.0f} ms; {busy}; "
              f"deleted in {gone:.1f} s; {load()}")
        if alone is not None:
            host0 = host_cpu()
            try:
                started = await alone.burst(args.pods, START_SLOTS, f"alone-{run}")
                host1 = host_cpu()
            finally:
                alone.stop_all()
            a50, a99 = percentiles(started)
            alone_p50s.append(a50)
            _, per_container = host_busy(host0, host1, args.pods)
            print(f"       runc alone, {args.pods} containers {START_SLOTS} at a time: p50 {a50 * 1000:4.0f} ms, "
                  f"p99 {a99 * 1000:4.0f} ms; host CPU per container {per_container:.0f} ms")
    p50 = statistics.median(p50s)
    print(f"median of {args.runs} runs: p50 {p50 * 1000:.0f} ms, "
          f"p99 {statistics.median(p99s) * 1000:.0f} ms  (goal: p50 <= 300 ms, p99 <= 1000 ms); "
          f"host CPU per pod {statistics.median(host_per_pod):.0f} ms (what the latencies move with)")
    if alone_p50s:
        floor = statistics.median(alone_p50s)
        print(f"runc alone, median: p50 {floor * 1000:.0f} ms; pods' p50 / runc alone's p50 = "
              f"{p50 / floor:.2f} (the part of the latency that is not this machine's runc)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--pods", type=int, default=20)
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=60.0,
                        help="the window with --scale pods (the one without pods is half of it)")
    parser.add_argument("--no-runc-alone", dest="runc_alone", action="store_false",
                        help="skip the reference burst of bare `runc run` after each run")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds of quiet before each idle window")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("runc") is None:
        print("podstartup: needs root and runc; skipped")
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))     # clean up as on Ctrl-C
    with runc_node() as node:
        try:
            asyncio.run(measure(node, args))
        except BaseException:
            print(node.stderr_tail(), file=sys.stderr)
            raise


if __name__ == "__main__":
    main()
