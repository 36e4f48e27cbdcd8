"""From two kubelet scrapes to usage rates: the arithmetic of metrics-server.

A kubelet's ``/metrics/resource`` gives cumulative CPU seconds and the working set
now, each sample stamped with the time it was read (see
:mod:`skiff.kubelet.resourcemetrics`).  A CPU *rate* needs two samples of the same
container::

    scrape 1 (t1)   cpu 12.40 s         scrape 2 (t2)   cpu 12.65 s   memory 8 MiB
                    ───────────────────────────────────▶
    usage.cpu = (12.65 - 12.40) / (t2 - t1) cores      window = t2 - t1
    usage.memory = 8 MiB (the newer sample)            timestamp = t2

No rate is reported for a container whose counter went backwards or whose start time
changed between the two (it restarted), or for samples less than
:data:`MIN_WINDOW_SECONDS` apart; a pod is reported only when every container it had
in the newer scrape has a rate (so a pod never shows half its usage).
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_WINDOW_SECONDS = 0.5


@dataclass(frozen=True)
class Point:
    """One cumulative sample: CPU core-seconds, working-set bytes, when it was read."""

    cpu_seconds: float
    memory_bytes: int
    timestamp: float
    started_at: float = 0.0    # the container's start (0: unknown, as for a node)


@dataclass(frozen=True)
class Scrape:
    """What one kubelet reported: its node's point and each running container's."""

    node: Point | None
    containers: dict[tuple[str, str, str], Point]   # (namespace, pod, container) -> point


@dataclass(frozen=True)
class Usage:
    nanocores: int
    memory_bytes: int
    timestamp: float     # of the newer sample
    window: float        # seconds between the two samples


def rate(older: Point | None, newer: Point) -> Usage | None:
    """The usage between two points of the same thing, or None when there is no honest rate."""
    if older is None or newer.started_at != older.started_at:
        return None
    window = newer.timestamp - older.timestamp
    used = newer.cpu_seconds - older.cpu_seconds
    if window < MIN_WINDOW_SECONDS or used < 0:
        return None
    return Usage(round(used / window * 1e9), newer.memory_bytes, newer.timestamp, window)


def parse_scrape(text: str) -> Scrape:
    """Parse a ``/metrics/resource`` body (Prometheus text format); unknown series are ignored."""
    from prometheus_client.parser import text_string_to_metric_families

    node_cpu = node_memory = node_time = None
    cpu: dict[tuple[str, str, str], tuple[float, float]] = {}
    memory: dict[tuple[str, str, str], int] = {}
    started: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            stamp = float(sample.timestamp) if sample.timestamp is not None else 0.0
            key = (sample.labels.get("namespace", ""), sample.labels.get("pod", ""),
                   sample.labels.get("container", ""))
            if sample.name == "node_cpu_usage_seconds_total":
                node_cpu, node_time = sample.value, stamp
            elif sample.name == "node_memory_working_set_bytes":
                node_memory = int(sample.value)
            elif sample.name == "container_cpu_usage_seconds_total":
                cpu[key] = (sample.value, stamp)
            elif sample.name == "container_memory_working_set_bytes":
                memory[key] = int(sample.value)
            elif sample.name == "container_start_time_seconds":
                started[key] = sample.value
    node = None
    if node_cpu is not None and node_memory is not None and node_time is not None:
        node = Point(node_cpu, node_memory, node_time)
    containers = {key: Point(seconds, memory[key], stamp, started.get(key, 0.0))
                  for key, (seconds, stamp) in cpu.items() if key in memory}
    return Scrape(node, containers)


def pod_usage(older: Scrape | None, newer: Scrape) -> dict[tuple[str, str], dict[str, Usage]]:
    """Per pod ``(namespace, name)``: each container's usage, only for fully measured pods."""
    pods: dict[tuple[str, str], dict[str, Usage | None]] = {}
    for (namespace, pod, container), point in newer.containers.items():
        before = older.containers.get((namespace, pod, container)) if older else None
        pods.setdefault((namespace, pod), {})[container] = rate(before, point)
    return {key: {name: usage for name, usage in containers.items() if usage is not None}
            for key, containers in pods.items() if all(u is not None for u in containers.values())}
