"""The kubelet's resource metrics: ``GET /metrics/resource``, what ``kubectl top`` ends up showing.

A kubelet reports how much CPU and memory its node and each running container use,
in Prometheus' text format, as cumulative CPU seconds and a current working set.
The metrics server (:mod:`skiff.metrics`) scrapes this every resolution period and
turns two scrapes into rates for the ``metrics.k8s.io`` API::

    node_cpu_usage_seconds_total                              1234.56  <ms timestamp>
    node_memory_working_set_bytes                             8.1e+08  <ms timestamp>
    container_cpu_usage_seconds_total{container,namespace,pod}    2.31  <ms timestamp>
    container_memory_working_set_bytes{container,namespace,pod} 1.2e+06 <ms timestamp>
    container_start_time_seconds{container,namespace,pod}     1.7e+09
    pod_cpu_usage_seconds_total{namespace,pod}  /  pod_memory_working_set_bytes{namespace,pod}
    resource_scrape_error                                     0

Where the numbers come from (all read in a worker thread):

    node       CPU: /proc/stat, every CPU's busy time (the whole machine, as the root
               cgroup a kubelet reads); memory: the root memory cgroup's usage minus
               inactive file pages (see .evictionsignals.node_memory)
    container  runc: the container's cgroup -- cpuacct.usage (v1) or cpu.stat
               usage_usec (v2), and usage minus inactive file pages for memory;
               process runtime (no cgroups): the container's main process only,
               utime + stime (+ its waited-for children) from /proc/<pid>/stat and
               its resident set -- processes it started and left running are not counted

Only running containers are reported; a pod's figures are the sum of its containers'.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .containerstart import CONTAINER_NAME_LABEL
from .evictionsignals import container_working_set, node_memory, read_int, read_keyed, resident_memory
from .podsandbox import POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL
from .runtime import cgroups
from .runtime.interface import ContainerState, ContainerStatus, Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class ContainerUsage:
    namespace: str
    pod: str
    container: str
    cpu_seconds: float          # cumulative, in core-seconds
    memory_bytes: int           # working set now
    started_at: float           # epoch seconds
    sampled_at: float           # epoch seconds


@dataclass(frozen=True)
class NodeUsage:
    cpu_seconds: float
    memory_bytes: int
    sampled_at: float


def machine_cpu_seconds(stat: Path = Path("/proc/stat")) -> float:
    """Busy CPU time of the whole machine since boot, in core-seconds (/proc/stat's first line)."""
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return 0.0
    # cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is in user)
    ticks = [int(v) for v in fields[1:9]] + [0] * (8 - len(fields[1:9]))
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
    return busy / os.sysconf("SC_CLK_TCK")


def cgroup_cpu_seconds(cgroup_path: str, root: Path = cgroups.CGROUP_MOUNT) -> float | None:
    relative = cgroup_path.strip("/")
    if cgroups.is_unified(root):
        usec = read_keyed(root / relative / "cpu.stat").get("usage_usec")
        return None if usec is None else usec / 1e6
    nanos = read_int(root / "cpuacct" / relative / "cpuacct.usage")
    return None if nanos is None else nanos / 1e9


def process_cpu_seconds(pid: int | None, proc: Path = Path("/proc")) -> float | None:
    """utime + stime + cutime + cstime of one process, when there is no cgroup to ask."""
    if pid is None:
        return None
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()   # after "pid (comm)": state is fields[0]
    if len(fields) < 15:
        return None
    try:
        ticks = sum(int(v) for v in fields[11:15])
    except (ValueError, IndexError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


class ResourceMetrics:
    """Reads usage for ``/metrics/resource``; ``cgroup_parent`` None: a runtime without cgroups."""

    def __init__(self, runtime: Runtime, *, cgroup_parent: str | None,
                 cgroup_root: Path = cgroups.CGROUP_MOUNT) -> None:
        self.runtime = runtime
        self.cgroup_parent = cgroup_parent
        self.cgroup_root = cgroup_root

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> "ResourceMetrics":
        from .runtime.runc import RuncRuntime
        parent = runtime.cgroup_parent if isinstance(runtime, RuncRuntime) else None
        return cls(runtime, cgroup_parent=parent)

    async def sample(self) -> tuple[NodeUsage, list[ContainerUsage]]:
        running = [c for c in await self.runtime.list() if c.state == ContainerState.RUNNING]
        return await asyncio.to_thread(self._sample, running)

    def _sample(self, running: list[ContainerStatus]) -> tuple[NodeUsage, list[ContainerUsage]]:
        memory = node_memory(self.cgroup_root)
        node = NodeUsage(machine_cpu_seconds(), memory.capacity - memory.available, time.time())
        containers = []
        for c in running:
            if self.cgroup_parent is not None:
                path = cgroups.container_path(self.cgroup_parent, c.labels.get(POD_UID_LABEL, ""), c.id)
                cpu = cgroup_cpu_seconds(path, self.cgroup_root)
                mem = container_working_set(path, self.cgroup_root)
            else:
                cpu, mem = process_cpu_seconds(c.pid), resident_memory(c.pid)
            if cpu is None or mem is None:
                continue   # gone between the listing and the read
            started = c.started_at or c.created_at
            containers.append(ContainerUsage(
                c.labels.get(POD_NAMESPACE_LABEL, ""), c.labels.get(POD_NAME_LABEL, ""),
                c.labels.get(CONTAINER_NAME_LABEL, c.name), cpu, mem, started.timestamp(), time.time()))
        return node, containers

    async def render(self) -> bytes:
        """The ``/metrics/resource`` body (Prometheus text format 0.0.4)."""
        try:
            node, containers = await self.sample()
        except Exception:   # noqa: BLE001 - reported as the scrape error, as a kubelet does
            return render(None, [])
        return render(node, containers)


def render(node: NodeUsage | None, containers: list[ContainerUsage]) -> bytes:
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
    from prometheus_client.exposition import generate_latest

    def counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
        return CounterMetricFamily(name, f"[STABLE] {doc}", labels=labels)

    def gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, f"[STABLE] {doc}", labels=labels)

    keys = ["container", "namespace", "pod"]
    c_cpu = counter("container_cpu_usage_seconds", "Cumulative cpu time consumed by the container in core-seconds", keys)
    c_mem = gauge("container_memory_working_set_bytes", "Current working set of the container in bytes", keys)
    c_start = gauge("container_start_time_seconds", "Start time of the container since unix epoch in seconds", keys)
    p_cpu = counter("pod_cpu_usage_seconds", "Cumulative cpu time consumed by the pod in core-seconds",
                    ["namespace", "pod"])
    p_mem = gauge("pod_memory_working_set_bytes", "Current working set of the pod in bytes", ["namespace", "pod"])
    n_cpu = counter("node_cpu_usage_seconds", "Cumulative cpu time consumed by the node in core-seconds", [])
    n_mem = gauge("node_memory_working_set_bytes", "Current working set of the node in bytes", [])
    error = gauge("resource_scrape_error", "1 if there was an error while getting container metrics, 0 otherwise", [])
    pods: dict[tuple[str, str], list[ContainerUsage]] = {}
    for c in containers:
        labels = [c.container, c.namespace, c.pod]
        c_cpu.add_metric(labels, c.cpu_seconds, timestamp=c.sampled_at)
        c_mem.add_metric(labels, c.memory_bytes, timestamp=c.sampled_at)
        c_start.add_metric(labels, c.started_at)
        pods.setdefault((c.namespace, c.pod), []).append(c)
    for (namespace, pod), members in pods.items():
        at = max(m.sampled_at for m in members)
        p_cpu.add_metric([namespace, pod], sum(m.cpu_seconds for m in members), timestamp=at)
        p_mem.add_metric([namespace, pod], sum(m.memory_bytes for m in members), timestamp=at)
    if node is not None:
        n_cpu.add_metric([], node.cpu_seconds, timestamp=node.sampled_at)
        n_mem.add_metric([], node.memory_bytes, timestamp=node.sampled_at)
    error.add_metric([], 0 if node is not None else 1)
    families: list[Metric] = [c_cpu, c_mem, c_start, n_cpu, n_mem, p_cpu, p_mem, error]

    class Snapshot:
        def collect(self) -> list[Metric]:
            return families

    from prometheus_client import CollectorRegistry
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot())
    return generate_latest(registry)
