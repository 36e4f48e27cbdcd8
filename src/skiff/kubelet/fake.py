"""Simulated nodes (``--runtime fake``, like KWOK): real API traffic, no containers.

Each :class:`FakeNodeAgent` plays the kubelet of one node, only through the
API: it registers its Node, heartbeats through its Lease and node status, and
walks the pods bound to it through their lifecycle (see
:mod:`skiff.kubelet.fake_pods` for what a fake pod does).  Nothing is run and
no packet is sent: node and pod IPs are bookkeeping only.

Many agents share one :class:`FakeNodeFleet` so that thousands of nodes fit in
one process (the scheduler benchmark runs 1,000-5,000)::

    FakeNodeFleet (one ApiClient)
     ├─ register every Node (+ Lease), 32 at a time
     ├─ ONE pod informer for all nodes (fieldSelector spec.nodeName!=, or =<node>
     │  for a single node), slimmed by a transform ──▶ work queue of pod keys
     ├─ workers: key ──▶ the agent of spec.nodeName ──▶ sync_pod():
     │      new pod          ─▶ PATCH status Running (podIP from the node's CIDR)
     │      Job-style pod    ─▶ PATCH status Succeeded/Failed when its time is up
     │      deletionTimestamp ─▶ DELETE gracePeriodSeconds=0 (containers "killed")
     ├─ lease ticker:  each node's Lease renewed every 10 s, nodes spread evenly
     │                 over the interval (no thundering herd), 32 writes in flight
     └─ status ticker: each node's Ready/… condition heartbeats every 60 s

Nodes are named ``skiff-node-0``, ``skiff-node-1``, ... by :func:`run_fake_nodes`
(``name_prefix`` changes the prefix).  Node ``i`` gets pod CIDR
:func:`~skiff.kubelet.node_status.pod_cidr_for` ``(i)`` (10.244.i.0/24 for the
first 256) and a loopback InternalIP (127.128.0.1 + i).

The agent keeps its own record of the pods it started (as a kubelet keeps pod
workers), so a stale cache never makes it start a pod twice.  After a restart
it rebuilds that record from the API: pods already Running on its node keep
their IPs (claimed in event order, before any new pod is given an address).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..api.errors import StatusError
from ..api.kinds.meta import parse_time
from ..client.clock import Clock, RealClock
from ..client.informer import Informer, object_key
from ..client.resources import LEASES, NAMESPACES, NODES, PODS
from ..client.rest import ApiClient
from ..client.workqueue import WorkQueue
from .fake_pods import FakeBehaviour, PodIPAllocator, running_status, terminated_status
from .node_status import (
    DEFAULT_CAPACITY, NODE_LEASE_NAMESPACE, NodeSpec, micro_timestamp, node_conditions, node_lease,
    node_object, node_status,
)

Obj = dict[str, Any]
log = logging.getLogger(__name__)

DEFAULT_NAME_PREFIX = "skiff-node"
LEASE_RENEW_INTERVAL = 10.0
STATUS_UPDATE_INTERVAL = 60.0


@dataclass
class _PodRecord:
    """What this node did for one pod (keyed by pod UID)."""

    started_at: float
    ip: str
    finished: bool = False


class FakeNodeAgent:
    """The simulated kubelet of one node (see module docstring)."""

    def __init__(self, client: ApiClient, spec: NodeSpec, *, clock: Clock | None = None) -> None:
        self.client = client
        self.spec = spec
        self.clock: Clock = clock or RealClock()
        self.node: Obj | None = None  # the Node as last written
        self.lease: Obj | None = None  # the Lease as last written
        self.ips = PodIPAllocator(spec.cidr)
        self._pods: dict[str, _PodRecord] = {}

    @property
    def name(self) -> str:
        return self.spec.name

    # -- the node -------------------------------------------------------------------

    async def register(self) -> None:
        """Create the Node (or adopt an existing one), post its status, ensure its Lease."""
        now = self.clock.time()
        desired = node_object(self.spec, now)
        try:
            node = await self.client.create(NODES, desired)
        except StatusError as e:
            if e.code != 409:
                raise
            existing = await self.client.get(NODES, self.name)
            node = await self.client.patch(NODES, self.name, {
                "metadata": {"labels": desired["metadata"]["labels"]}})
            cidr = (existing.get("spec") or {}).get("podCIDR")
            if cidr and cidr != self.spec.cidr:
                self.ips = PodIPAllocator(cidr)  # keep the CIDR the node already has
        self.node = await self.client.patch(NODES, self.name, {"status": node_status(
            self.spec, now, previous=node.get("status"))}, subresource="status")
        await self.renew_lease()

    async def post_status(self) -> None:
        """Refresh the condition heartbeats (re-registering if the Node was deleted)."""
        previous = (self.node or {}).get("status") or {}
        conditions = node_conditions(self.clock.time(), previous=previous.get("conditions") or ())
        try:
            self.node = await self.client.patch(NODES, self.name, {"status": {"conditions": conditions}},
                                                subresource="status")
        except StatusError as e:
            if e.code != 404:
                raise
            log.info("node %s was deleted; registering it again", self.name)
            await self.register()

    async def renew_lease(self) -> None:
        """Write a fresh ``renewTime`` (creating the Lease, and its namespace, if missing)."""
        now = self.clock.time()
        if self.lease is not None:
            lease = dict(self.lease, spec=dict(self.lease.get("spec") or {},
                                               renewTime=micro_timestamp(now),
                                               holderIdentity=self.name))
            try:
                self.lease = await self.client.update(LEASES, lease)
                return
            except StatusError as e:
                if e.code not in (404, 409):
                    raise
                self.lease = None  # replaced or gone: start over
        uid = str(((self.node or {}).get("metadata") or {}).get("uid", ""))
        fresh = node_lease(self.name, uid, now)
        try:
            self.lease = await self._create_lease(fresh)
        except StatusError as e:
            if e.code != 409:
                raise
            current = await self.client.get(LEASES, self.name, namespace=NODE_LEASE_NAMESPACE)
            current["spec"] = dict(current.get("spec") or {}, **fresh["spec"])
            self.lease = await self.client.update(LEASES, current)

    async def _create_lease(self, lease: Obj) -> Obj:
        try:
            return await self.client.create(LEASES, lease, namespace=NODE_LEASE_NAMESPACE)
        except StatusError as e:
            if e.code != 404:
                raise
        try:  # the namespace is missing (the API server normally creates it)
            await self.client.create(NAMESPACES, {"metadata": {"name": NODE_LEASE_NAMESPACE}})
        except StatusError as e:
            if e.code != 409:
                raise
        return await self.client.create(LEASES, lease, namespace=NODE_LEASE_NAMESPACE)

    # -- pods -----------------------------------------------------------------------

    async def sync_pod(self, pod: Obj) -> float | None:
        """Move one pod bound to this node one step; seconds until it needs another look."""
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        if meta.get("deletionTimestamp"):
            await self._finalize(pod)
            return None
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            self.forget_pod(uid)
            return None
        behaviour = FakeBehaviour.of(pod)
        now = self.clock.time()
        record = self._pods.get(uid)
        if record is None:
            record = self._adopt(pod, uid) if status.get("phase") == "Running" else None
        if record is None:
            record = _PodRecord(now, self._pod_ip(pod, uid))
            self._pods[uid] = record
            if behaviour.completes and behaviour.run_seconds <= 0:
                await self._complete(pod, record, behaviour)
                return None
            await self._write_status(pod, running_status(
                pod, host_ip=self.spec.ip, pod_ip=record.ip, started_at=record.started_at))
        if behaviour.completes and not record.finished:
            remaining = record.started_at + behaviour.run_seconds - now
            if remaining > 0:
                return remaining
            await self._complete(pod, record, behaviour)
        return None

    def observe(self, pod: Obj) -> None:
        """See a pod bound here (in event order): claim the IP of one started before."""
        status = pod.get("status") or {}
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        if uid not in self._pods and status.get("phase") == "Running":
            self._adopt(pod, uid)

    def forget_pod(self, uid: str) -> None:
        """The pod is gone (or finished): free its IP and forget it."""
        if self._pods.pop(uid, None) is not None:
            self.ips.release(uid)

    @property
    def pod_count(self) -> int:
        return len(self._pods)

    def _pod_ip(self, pod: Obj, uid: str) -> str:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return self.spec.ip
        return self.ips.allocate(uid)

    def _adopt(self, pod: Obj, uid: str) -> _PodRecord | None:
        """A pod this node started in an earlier life: keep its IP and start time."""
        status = pod.get("status") or {}
        ip = str(status.get("podIP") or "")
        started = parse_time(status.get("startTime"))
        if not ip or started is None:
            return None
        if not (pod.get("spec") or {}).get("hostNetwork"):
            self.ips.adopt(uid, ip)
        record = _PodRecord(started.timestamp(), ip)
        self._pods[uid] = record
        return record

    async def _complete(self, pod: Obj, record: _PodRecord, behaviour: FakeBehaviour) -> None:
        await self._write_status(pod, terminated_status(
            pod, host_ip=self.spec.ip, pod_ip=record.ip, started_at=record.started_at,
            finished_at=self.clock.time(), exit_code=behaviour.exit_code))
        record.finished = True

    async def _write_status(self, pod: Obj, status: Obj) -> None:
        """PATCH the status, naming the pod's UID so a same-named successor is never hit."""
        meta = pod["metadata"]
        uid, ns = str(meta.get("uid", "")), meta.get("namespace")
        try:
            await self.client.patch(PODS, meta["name"], {"metadata": {"uid": uid}, "status": status},
                                    namespace=ns, subresource="status")
        except StatusError as e:
            if e.code not in (404, 409, 422):
                raise
            if e.code != 404 and await self._same_pod(meta["name"], ns, uid):
                raise  # a real conflict or a rejected status: retried with back-off
            self.forget_pod(uid)  # deleted or replaced meanwhile

    async def _same_pod(self, name: str, namespace: str | None, uid: str) -> bool:
        try:
            current = await self.client.get(PODS, name, namespace=namespace)
        except StatusError as e:
            if e.code == 404:
                return False
            raise
        return str((current.get("metadata") or {}).get("uid", "")) == uid

    async def _finalize(self, pod: Obj) -> None:
        """The kubelet's last word on a deleted pod: containers gone, remove the object."""
        meta = pod["metadata"]
        try:
            await self.client.delete(PODS, meta["name"], namespace=meta.get("namespace"),
                                     grace_period_seconds=0,
                                     preconditions={"uid": str(meta.get("uid", ""))})
        except StatusError as e:
            if e.code not in (404, 409):
                raise
        self.forget_pod(str(meta.get("uid", "")))

    async def run(self) -> None:
        """Run this node alone (a fleet of one) until cancelled."""
        await FakeNodeFleet(self.client, [self], clock=self.clock).run()


def slim_pod(pod: Obj) -> Obj:
    """Only what a fake node needs from a pod (keeps 10^5 cached pods affordable)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    return {
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                          "deletionTimestamp", "annotations") if k in meta},
        "spec": {
            "nodeName": spec.get("nodeName", ""),
            "restartPolicy": spec.get("restartPolicy", "Always"),
            "hostNetwork": spec.get("hostNetwork", False),
            "containers": [{"name": c.get("name", ""), "image": c.get("image", "")}
                           for c in spec.get("containers") or []],
            "initContainers": [{"name": c.get("name", ""), "image": c.get("image", ""),
                                "restartPolicy": c.get("restartPolicy", "")}
                               for c in spec.get("initContainers") or []],
        },
        "status": {k: status[k] for k in ("phase", "podIP", "startTime", "conditions") if k in status},
    }


class FakeNodeFleet:
    """Runs many :class:`FakeNodeAgent` s over one pod watch (see module docstring)."""

    def __init__(self, client: ApiClient, agents: Sequence[FakeNodeAgent], *,
                 clock: Clock | None = None, lease_interval: float = LEASE_RENEW_INTERVAL,
                 status_interval: float = STATUS_UPDATE_INTERVAL, workers: int = 16,
                 concurrency: int = 32) -> None:
        if not agents:
            raise ValueError("a fleet needs at least one node")
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.agents = {a.name: a for a in agents}
        self.lease_interval = lease_interval
        self.status_interval = status_interval
        self._workers = workers
        self._limit = asyncio.Semaphore(concurrency)
        selector = f"spec.nodeName={agents[0].name}" if len(agents) == 1 else "spec.nodeName!="
        self.pods = Informer(client, PODS, field_selector=selector, transform=slim_pod,
                             clock=self.clock)
        self.queue: WorkQueue[str] = WorkQueue(clock=self.clock)
        self._owner: dict[str, tuple[str, str]] = {}  # pod key -> (node name, pod uid)
        self._stopping = asyncio.Event()
        #: Set once every node is registered and has a Lease.
        self.registered = asyncio.Event()

    async def run(self) -> None:
        """Register the nodes, then serve them until :meth:`stop` (or cancellation)."""
        self.pods.add_handler(on_add=self._on_pod, on_update=lambda old, new: self._on_pod(new),
                              on_delete=self._on_pod)
        try:
            async with asyncio.TaskGroup() as tg:
                await self._for_each(list(self.agents.values()), FakeNodeAgent.register)
                self.registered.set()
                log.info("%d fake node(s) registered", len(self.agents))
                tg.create_task(self.pods.run(), name="fake-nodes-pods")
                tg.create_task(self._tick(self.lease_interval, FakeNodeAgent.renew_lease),
                               name="fake-nodes-leases")
                tg.create_task(self._tick(self.status_interval, FakeNodeAgent.post_status),
                               name="fake-nodes-status")
                for i in range(self._workers):
                    tg.create_task(self._worker(), name=f"fake-nodes-worker-{i}")
        finally:
            self.stop()

    def stop(self) -> None:
        self._stopping.set()
        self.pods.stop()
        self.queue.shut_down()

    def _on_pod(self, pod: Obj) -> None:
        key = object_key(pod)
        agent = self.agents.get((pod.get("spec") or {}).get("nodeName", ""))
        if agent is not None:
            agent.observe(pod)
        if agent is not None or key in self._owner:
            self.queue.add(key)

    async def _worker(self) -> None:
        while (key := await self.queue.get()) is not None:
            try:
                delay = await self._sync(key)
            except Exception as e:  # retried with back-off; the API may be briefly unavailable
                log.warning("fake node: syncing pod %s failed: %s", key, e)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if delay is not None:
                    self.queue.add_after(key, delay)
            finally:
                self.queue.done(key)

    async def _sync(self, key: str) -> float | None:
        pod = self.pods.get(key)
        uid = str(((pod or {}).get("metadata") or {}).get("uid", ""))
        owner = self._owner.get(key)
        if owner is not None and (pod is None or owner[1] != uid):
            self.agents[owner[0]].forget_pod(owner[1])
            del self._owner[key]
        if pod is None:
            return None
        agent = self.agents.get((pod.get("spec") or {}).get("nodeName", ""))
        if agent is None:
            return None
        self._owner[key] = (agent.name, uid)
        return await agent.sync_pod(pod)

    async def _for_each(self, agents: Iterable[FakeNodeAgent],
                        action: Callable[[FakeNodeAgent], Awaitable[None]]) -> None:
        async def one(agent: FakeNodeAgent) -> None:
            async with self._limit:
                try:
                    await action(agent)
                except Exception as e:
                    log.warning("fake node %s: %s failed: %s", agent.name, action.__name__, e)

        await asyncio.gather(*(one(a) for a in agents))

    async def _tick(self, interval: float, action: Callable[[FakeNodeAgent], Awaitable[None]]) -> None:
        """Run ``action`` for every node once per ``interval``, nodes spread evenly over it."""
        agents = list(self.agents.values())
        start = self.clock.monotonic()
        due: list[tuple[float, int]] = [(start + interval * (1 + i / len(agents)), i)
                                        for i in range(len(agents))]
        heapq.heapify(due)
        while not self._stopping.is_set():
            wait = due[0][0] - self.clock.monotonic()
            if wait > 0 and await self._sleep(wait):
                return
            now = self.clock.monotonic()
            batch = []
            while due and due[0][0] <= now:
                when, i = heapq.heappop(due)
                batch.append(agents[i])
                heapq.heappush(due, (max(when + interval, now), i))
            await self._for_each(batch, action)

    async def _sleep(self, delay: float) -> bool:
        """Sleep on the clock; True when woken by :meth:`stop` instead."""
        stop = asyncio.ensure_future(self._stopping.wait())
        timer = asyncio.ensure_future(self.clock.sleep(delay))
        try:
            await asyncio.wait((stop, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            timer.cancel()
        return self._stopping.is_set()


def _per_node(value: Sequence[Any] | Callable[[int], Any] | None, index: int, default: Any) -> Any:
    if value is None:
        return default
    if callable(value):
        return value(index)
    return value[index] if index < len(value) else default


def fake_node_specs(count: int, *, name_prefix: str = DEFAULT_NAME_PREFIX,
                    capacity: Mapping[str, str] | None = None,
                    labels_per_node: Sequence[Mapping[str, str]] | Callable[[int], Mapping[str, str]] | None = None,
                    taints_per_node: Sequence[Sequence[Mapping[str, Any]]] | Callable[[int], Sequence[Mapping[str, Any]]] | None = None,
                    ) -> list[NodeSpec]:
    """``count`` node specs named ``<prefix>-0`` ... with per-node labels/taints (list or function)."""
    return [NodeSpec(name=f"{name_prefix}-{i}", index=i,
                     capacity=dict(capacity or DEFAULT_CAPACITY),
                     labels=dict(_per_node(labels_per_node, i, {})),
                     taints=tuple(_per_node(taints_per_node, i, ())))
            for i in range(count)]


async def run_fake_nodes(client: ApiClient, count: int, *, name_prefix: str = DEFAULT_NAME_PREFIX,
                         capacity: Mapping[str, str] | None = None,
                         labels_per_node: Sequence[Mapping[str, str]] | Callable[[int], Mapping[str, str]] | None = None,
                         taints_per_node: Sequence[Sequence[Mapping[str, Any]]] | Callable[[int], Sequence[Mapping[str, Any]]] | None = None,
                         clock: Clock | None = None, lease_interval: float = LEASE_RENEW_INTERVAL,
                         status_interval: float = STATUS_UPDATE_INTERVAL) -> None:
    """Run ``count`` simulated nodes ``skiff-node-0`` ... until cancelled (what ``skiff up`` uses)."""
    if count <= 0:
        return
    specs = fake_node_specs(count, name_prefix=name_prefix, capacity=capacity,
                            labels_per_node=labels_per_node, taints_per_node=taints_per_node)
    agents = [FakeNodeAgent(client, spec, clock=clock) for spec in specs]
    await FakeNodeFleet(client, agents, clock=clock, lease_interval=lease_interval,
                        status_interval=status_interval).run()
