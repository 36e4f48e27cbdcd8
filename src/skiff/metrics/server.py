"""The metrics server: scrapes every kubelet, serves ``metrics.k8s.io`` (what metrics-server does).

::

    every resolution (15 s, metrics-server's default):
      nodes (informer) ──▶ GET http(s)://<node address>:<kubelet port>/metrics/resource
                           (all nodes at once, each with a timeout; simulated fake://
                           nodes have no kubelet server and are skipped)
                      ──▶ keep the last two scrapes per node (.points)
    the API server asks (a ReadOnlySource per resource, see skiff.apiserver.readonly):
      NodeMetrics  nodes/<name>          usage of the whole node
      PodMetrics   namespaces/<ns>/pods  usage per container; labels are the pod's,
                                         so ``kubectl top pod -l app=web`` selects

A pod or node appears once two scrapes have seen it (a CPU rate needs two points), so
after a pod starts ``kubectl top`` shows it within two resolutions, as with
metrics-server.  A node whose scrape fails keeps no metrics until it answers again.
Nothing is stored: after a restart the metrics come back after two scrapes.

Simulated nodes (``fake://``) run nothing, so their usage is part of the simulation,
read when asked: each container of a running pod uses what the pod's annotations
``skiff.dev/fake-cpu-usage`` / ``skiff.dev/fake-memory-usage`` say (nothing without
them), and a node the sum of its pods -- enough to watch an HPA act on simulated pods.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from datetime import datetime, timezone
from typing import Any

import aiohttp

from ..api.quantity import QuantityError, canonical, int_value, milli_value
from ..client.factory import InformerFactory
from ..client.resources import NODES, PODS
from ..client.rest import ApiClient
from .points import Scrape, Usage, parse_scrape, pod_usage, rate

log = logging.getLogger(__name__)

Obj = dict[str, Any]

GROUP_VERSION = "metrics.k8s.io/v1beta1"
DEFAULT_RESOLUTION = 15.0
SCRAPE_TIMEOUT = 10.0
ADDRESS_PREFERENCE = ("InternalIP", "ExternalIP", "Hostname")


def cpu_quantity(nanocores: int) -> str:
    return canonical(f"{nanocores}n")


def memory_quantity(size: int) -> str:
    return canonical(f"{size // 1024}Ki" if size % 1024 == 0 else str(size))


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _window(seconds: float) -> str:
    """A metav1.Duration as Go prints it (``15.002s``)."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _usage(u: Usage) -> Obj:
    return {"cpu": cpu_quantity(u.nanocores), "memory": memory_quantity(u.memory_bytes)}


def kubelet_url(node: Obj) -> str | None:
    """Where a node's kubelet serves ``/metrics/resource`` (None: simulated or not announced)."""
    status = node.get("status") or {}
    if str((status.get("nodeInfo") or {}).get("containerRuntimeVersion", "")).startswith("fake://"):
        return None
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 0
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    host = next((addresses[t] for t in ADDRESS_PREFERENCE if addresses.get(t)), "")
    if not port or not host:
        return None
    return f"{'[' + host + ']' if ':' in host else host}:{port}"


class MetricsServer:
    """Run with :meth:`run`; register :attr:`nodes` and :attr:`pods` as the API server's sources."""

    def __init__(self, client: ApiClient, *, resolution: float = DEFAULT_RESOLUTION,
                 kubelet_scheme: str = "http", kubelet_tls: ssl.SSLContext | None = None,
                 informers: InformerFactory | None = None) -> None:
        self.resolution = resolution
        self.scheme = kubelet_scheme
        self.tls = kubelet_tls
        self._own_informers = informers is None
        self.informers = informers or InformerFactory(client)
        self.node_informer = self.informers.informer(NODES)
        self.pod_informer = self.informers.informer(PODS)
        #: node name -> (older, newer) scrape
        self.scrapes: dict[str, tuple[Scrape | None, Scrape]] = {}
        self.nodes = NodeMetricsSource(self)
        self.pods = PodMetricsSource(self)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as session, asyncio.TaskGroup() as tg:
            if self._own_informers:
                tg.create_task(self.informers.run(), name="metrics-informers")
            try:
                await asyncio.gather(self.node_informer.wait_synced(), self.pod_informer.wait_synced())
                while True:
                    started = time.monotonic()
                    await self.scrape_all(session)
                    await asyncio.sleep(max(0.0, self.resolution - (time.monotonic() - started)))
            finally:
                if self._own_informers:
                    self.informers.stop()

    async def scrape_all(self, session: aiohttp.ClientSession) -> None:
        nodes = {n["metadata"]["name"]: url for n in self.node_informer.list()
                 if (url := kubelet_url(n)) is not None}
        results = await asyncio.gather(*(self._scrape(session, url) for url in nodes.values()))
        for name, scrape in zip(nodes, results):
            if scrape is None:
                self.scrapes.pop(name, None)
            else:
                before = self.scrapes.get(name)
                self.scrapes[name] = (before[1] if before else None, scrape)
        for gone in set(self.scrapes) - set(nodes):
            del self.scrapes[gone]

    async def _scrape(self, session: aiohttp.ClientSession, address: str) -> Scrape | None:
        url = f"{self.scheme}://{address}/metrics/resource"
        try:
            tls: ssl.SSLContext | bool = self.tls if self.scheme == "https" and self.tls else True
            async with session.get(url, ssl=tls) as resp:
                if resp.status != 200:
                    log.warning("scraping %s: HTTP %d", url, resp.status)
                    return None
                text = await resp.text()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            log.warning("scraping %s: %s", url, exc or type(exc).__name__)
            return None
        try:
            return await asyncio.to_thread(parse_scrape, text)
        except ValueError as exc:
            log.warning("scraping %s: unreadable metrics: %s", url, exc)
            return None

    # -- the served objects ------------------------------------------------------------

    def _simulated(self) -> dict[str, dict[tuple[str, str], dict[str, Usage]]]:
        """node -> (namespace, pod) -> container -> usage, for the running pods of simulated nodes."""
        nodes = {n["metadata"]["name"] for n in self.node_informer.list() if _simulated_node(n)}
        out: dict[str, dict[tuple[str, str], dict[str, Usage]]] = {name: {} for name in nodes}
        if not nodes:
            return out
        now = time.time()
        for pod in self.pod_informer.list():
            node = str((pod.get("spec") or {}).get("nodeName") or "")
            if node in nodes and (pod.get("status") or {}).get("phase") == "Running":
                meta = pod["metadata"]
                out[node][(meta.get("namespace", ""), meta["name"])] = {
                    c["name"]: simulated_usage(meta.get("annotations") or {}, now, self.resolution)
                    for c in (pod.get("spec") or {}).get("containers") or []}
        return out

    def node_metrics(self) -> list[Obj]:
        out: list[Obj] = []
        for name, pods in sorted(self._simulated().items()):
            node = self.node_informer.get_by(None, name)
            if node is None:
                continue
            every = [u for containers in pods.values() for u in containers.values()]
            total = Usage(sum(u.nanocores for u in every), sum(u.memory_bytes for u in every),
                          time.time(), self.resolution)
            out.append({"kind": "NodeMetrics", "apiVersion": GROUP_VERSION, "metadata": self._metadata(node, None),
                        "timestamp": _time(total.timestamp), "window": _window(total.window),
                        "usage": _usage(total)})
        for name in sorted(self.scrapes):
            older, newer = self.scrapes[name]
            node = self.node_informer.get_by(None, name)
            if newer.node is None or node is None:
                continue
            usage = rate(older.node if older else None, newer.node)
            if usage is None:
                continue
            out.append({"kind": "NodeMetrics", "apiVersion": GROUP_VERSION,
                        "metadata": self._metadata(node, None),
                        "timestamp": _time(usage.timestamp), "window": _window(usage.window),
                        "usage": _usage(usage)})
        return out

    def pod_metrics(self, namespace: str) -> list[Obj]:
        out: list[Obj] = []
        measured = [pod_usage(older, newer) for older, newer in self.scrapes.values()]
        for pods in [*measured, *self._simulated().values()]:
            for (ns, name), containers in pods.items():
                if (namespace and ns != namespace) or not containers:
                    continue
                pod = self.pod_informer.get_by(ns, name)
                if pod is None:
                    continue
                latest = max(containers.values(), key=lambda u: u.timestamp)
                out.append({"kind": "PodMetrics", "apiVersion": GROUP_VERSION,
                            "metadata": self._metadata(pod, ns),
                            "timestamp": _time(latest.timestamp), "window": _window(latest.window),
                            "containers": [{"name": c, "usage": _usage(u)}
                                           for c, u in sorted(containers.items())]})
        out.sort(key=lambda o: (str(o["metadata"]["namespace"]), str(o["metadata"]["name"])))
        return out

    @staticmethod
    def _metadata(obj: Obj, namespace: str | None) -> Obj:
        meta: Obj = {"name": obj["metadata"]["name"], "creationTimestamp": _time(time.time())}
        if namespace is not None:
            meta["namespace"] = namespace
        labels = obj["metadata"].get("labels")
        if labels:
            meta["labels"] = dict(labels)
        return meta


SIMULATED_CPU = "skiff.dev/fake-cpu-usage"
SIMULATED_MEMORY = "skiff.dev/fake-memory-usage"


def _simulated_node(node: Obj) -> bool:
    runtime = str(((node.get("status") or {}).get("nodeInfo") or {}).get("containerRuntimeVersion", ""))
    return runtime.startswith("fake://")


def simulated_usage(annotations: Obj, now: float, window: float) -> Usage:
    """A simulated container's usage: its pod's annotations (an unreadable one counts as none)."""
    def read(key: str, parse: Any) -> int:
        try:
            return int(parse(annotations[key])) if key in annotations else 0
        except (QuantityError, ValueError):
            return 0
    return Usage(read(SIMULATED_CPU, milli_value) * 1_000_000, read(SIMULATED_MEMORY, int_value), now, window)


class NodeMetricsSource:
    def __init__(self, server: MetricsServer) -> None:
        self.server = server

    async def get(self, namespace: str, name: str) -> Obj | None:
        return next((m for m in self.server.node_metrics() if m["metadata"]["name"] == name), None)

    async def list(self, namespace: str) -> list[Obj]:
        return self.server.node_metrics()


class PodMetricsSource:
    def __init__(self, server: MetricsServer) -> None:
        self.server = server

    async def get(self, namespace: str, name: str) -> Obj | None:
        return next((m for m in self.server.pod_metrics(namespace) if m["metadata"]["name"] == name), None)

    async def list(self, namespace: str) -> list[Obj]:
        return self.server.pod_metrics(namespace)
