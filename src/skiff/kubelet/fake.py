"""Simulated nodes (``--runtime fake``, like KWOK): real API traffic, no containers.

Each :class:`~skiff.kubelet.fake_agent.FakeNodeAgent` plays the kubelet of one
node, only through the API: it registers its Node, heartbeats through its
Lease and node status, and walks the pods bound to it through their lifecycle
(see :mod:`skiff.kubelet.fake_agent` and :mod:`skiff.kubelet.fake_pods`).
Nothing is run and no packet is sent: node and pod IPs are bookkeeping only.

Many agents share one :class:`FakeNodeFleet` so that thousands of nodes fit in
one process (the scheduler benchmark runs 1,000-5,000)::

    FakeNodeFleet (one ApiClient)
     ├─ register every Node (+ Lease), 32 at a time
     ├─ ONE pod informer for all nodes (fieldSelector spec.nodeName!=, or =<node>
     │  for a single node), slimmed by a transform ──▶ work queue of pod keys
     ├─ workers: key ──▶ the agent of spec.nodeName ──▶ sync_pod():
     │      new pod          ─▶ PATCH status Running (podIP from the node's CIDR)
     │      Job-style pod    ─▶ PATCH status Succeeded/Failed when its time is up
     │      image won't pull ─▶ ErrImagePull / ImagePullBackOff (+ kubelet events)
     │      deletionTimestamp ─▶ DELETE gracePeriodSeconds=0 (containers "killed")
     ├─ ONE node informer ──▶ node worker (see "Nodes at run time" below)
     ├─ lease ticker:  each node's Lease renewed every 10 s, nodes spread evenly
     │                 over the interval (no thundering herd), 32 writes in flight
     ├─ status ticker: each node's Ready/… condition heartbeats every 5 min
     └─ event recorder (kubelet events about image pulls)

Nodes are named ``skiff-node-0``, ``skiff-node-1``, ... by :func:`run_fake_nodes`
(``name_prefix`` changes the prefix; ``specs`` gives every node's shape, as
``skiff up --node-config`` does, see :mod:`skiff.kubelet.fakeconfig`).  Node
``i`` gets pod CIDR :func:`~skiff.kubelet.node_status.pod_cidr_for` ``(i)``
(10.244.i.0/24 for the first 256) and a loopback InternalIP (127.128.0.1 + i).

Nodes at run time (all through the API, e.g. with kubectl):

* **Stop / resume a node** (node-failure demos): annotate its Node
  ``skiff.dev/fake-stopped="true"`` and its agent goes silent -- no Lease
  renewals, no status, no pod updates (its pods are not even finalized), as if
  the machine lost power; the node lifecycle controller then marks it Unknown.
  Removing the annotation (``kubectl annotate node N skiff.dev/fake-stopped-``)
  resumes it: Lease and status at once, then its pods are looked at again.
* **Not Ready -> Ready again**: whenever the agent's Node shows a Ready
  condition that is not True (the node lifecycle controller marked it Unknown
  while the agent was stopped or cut off), the agent posts its status at once
  (then at most every 5 s while that lasts), not only at the 5-minute heartbeat.
* **Add a node**: create a Node labelled ``skiff.dev/fake=true`` (with
  ``adopt=True``, which :func:`run_fake_nodes` sets); the fleet serves it like
  its own: its capacity/allocatable are the Node's ``status.capacity`` /
  ``status.allocatable`` if given (else the defaults), its labels and taints
  stay as written, it gets the next node index's pod CIDR unless it has one.
  Deleting such a Node retires its agent (nodes of the fleet's own are
  registered again instead).  For example::

      kubectl apply -f - <<EOF
      apiVersion: v1
      kind: Node
      metadata: {name: big-node, labels: {skiff.dev/fake: "true"}}
      status: {capacity: {cpu: "64", memory: 256Gi, pods: "110"}}
      EOF
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from ..client.clock import Clock, RealClock
from ..client.informer import Informer, object_key
from ..client.resources import NODES, PODS
from ..client.rest import ApiClient
from ..client.workqueue import WorkQueue
from ..controllers.events import EventRecorder
from .fake_agent import STOPPED_ANNOTATION, FakeNodeAgent
from .node_status import DEFAULT_CAPACITY, NodeSpec, pod_cidr_for

__all__ = ["FakeNodeAgent", "FakeNodeFleet", "fake_node_specs", "run_fake_nodes", "slim_pod",
           "slim_node", "spec_from_node", "FAKE_NODE_LABEL", "STOPPED_ANNOTATION"]

Obj = dict[str, Any]
log = logging.getLogger(__name__)

DEFAULT_NAME_PREFIX = "skiff-node"
LEASE_RENEW_INTERVAL = 10.0
#: Like the kubelet's nodeStatusReportFrequency (5 min): the Lease says "alive" every
#: 10 s; the condition heartbeats need not be fresher (they are written at once on a change).
STATUS_UPDATE_INTERVAL = 300.0
#: Heartbeats (Lease renewals, status reports) in flight at once, over all nodes.  A
#: tick waits for its batch, so renewals keep pace only while the API answers within
#: HEARTBEAT_CONCURRENCY / (nodes / LEASE_RENEW_INTERVAL) s: 256 ms for 5,000 nodes
#: (measured: with 32, a burst of 10,000 pods on 5,000 nodes ended with 44 pods never
#: Running and 79 gone -- evicted from nodes whose Leases went stale -- with 128, all ran).
HEARTBEAT_CONCURRENCY = 128
#: While its Node is not Ready, an agent posts its status at most this often.
NOT_READY_REPOST_INTERVAL = 5.0
#: Node label: a Node created with it is served by the fleet (``adopt=True``).
FAKE_NODE_LABEL = "skiff.dev/fake"
_NODE_INDEX = "node"


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
            **({"ephemeralContainers": [{"name": c.get("name", ""), "image": c.get("image", "")}
                                        for c in spec["ephemeralContainers"]]}
               if spec.get("ephemeralContainers") else {}),        # kubectl debug (rare: kept slim)
        },
        "status": {**{k: status[k] for k in ("phase", "podIP", "startTime", "conditions") if k in status},
                   **({"ephemeralContainerStatuses": [{"name": c.get("name", "")}
                                                      for c in status["ephemeralContainerStatuses"]]}
                      if status.get("ephemeralContainerStatuses") else {})},
    }


def slim_node(node: Obj) -> Obj:
    """Only what the fleet needs from a Node (labels, annotations, taints, capacity, Ready)."""
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    return {
        "metadata": {k: meta[k] for k in ("name", "uid", "resourceVersion", "labels", "annotations",
                                          "deletionTimestamp") if k in meta},
        "spec": {k: spec[k] for k in ("podCIDR", "taints") if k in spec},
        "status": {
            "capacity": status.get("capacity") or {},
            "allocatable": status.get("allocatable") or {},
            "conditions": [c for c in status.get("conditions") or () if c.get("type") == "Ready"],
        },
    }


def spec_from_node(node: Obj, index: int) -> NodeSpec:
    """The shape of a Node someone created for the fleet to serve (see module docstring)."""
    meta = node.get("metadata") or {}
    status = node.get("status") or {}
    capacity = {str(k): str(v) for k, v in (status.get("capacity") or {}).items()}
    allocatable = {str(k): str(v) for k, v in (status.get("allocatable") or {}).items()}
    cidr = str((node.get("spec") or {}).get("podCIDR") or "")
    return NodeSpec(name=str(meta.get("name", "")), index=index,
                    capacity={**DEFAULT_CAPACITY, **capacity},
                    allocatable={**DEFAULT_CAPACITY, **capacity, **allocatable} if allocatable else None,
                    labels=dict(meta.get("labels") or {}),
                    taints=tuple((node.get("spec") or {}).get("taints") or ()),
                    pod_cidr=cidr or pod_cidr_for(index))


def _ready(node: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or ())


def _stopped(node: Obj) -> bool:
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(STOPPED_ANNOTATION, "")).lower() == "true"


class FakeNodeFleet:
    """Runs many :class:`FakeNodeAgent` s over one pod watch (see module docstring)."""

    def __init__(self, client: ApiClient, agents: Sequence[FakeNodeAgent], *,
                 clock: Clock | None = None, lease_interval: float = LEASE_RENEW_INTERVAL,
                 status_interval: float = STATUS_UPDATE_INTERVAL, workers: int = 16,
                 concurrency: int = HEARTBEAT_CONCURRENCY, adopt: bool = False,
                 failing_images: Sequence[str] | None = None) -> None:
        if not agents and not adopt:
            raise ValueError("a fleet needs at least one node")
        self.client = client
        self.clock: Clock = clock or RealClock()
        self.recorder = EventRecorder(client, clock=self.clock)
        self.failing_images = tuple(failing_images if failing_images is not None else
                                    (agents[0].failing_images if agents else ()))
        for agent in agents:
            agent.failing_images = self.failing_images
            agent.recorder = agent.recorder or self.recorder
        self.agents = {a.name: a for a in agents}
        self.adopt = adopt
        self._next_index = max((a.spec.index for a in agents), default=-1) + 1
        self.lease_interval = lease_interval
        self.status_interval = status_interval
        self._workers = workers
        self._limit = asyncio.Semaphore(concurrency)
        selector = (f"spec.nodeName={agents[0].name}" if len(agents) == 1 and not adopt
                    else "spec.nodeName!=")
        self.pods = Informer(client, PODS, field_selector=selector, transform=slim_pod,
                             clock=self.clock)
        self.pods.add_index(_NODE_INDEX, lambda p: [(p.get("spec") or {}).get("nodeName", "")])
        self.nodes = Informer(client, NODES, transform=slim_node, clock=self.clock)
        self.queue: WorkQueue[str] = WorkQueue(clock=self.clock)
        self.node_queue: WorkQueue[str] = WorkQueue(clock=self.clock)
        self._owner: dict[str, tuple[str, str]] = {}  # pod key -> (node name, pod uid)
        self._not_ready_posts: dict[str, float] = {}  # node -> when a Not Ready node last posted
        self._tickers: dict[str, tuple[float, list[tuple[float, str]]]] = {}  # name -> (interval, heap of (due, node))
        self._stopping = asyncio.Event()
        #: Set once every node is registered and has a Lease.
        self.registered = asyncio.Event()

    async def run(self) -> None:
        """Register the nodes, then serve them until :meth:`stop` (or cancellation)."""
        self.pods.add_handler(on_add=self._on_pod, on_update=lambda old, new: self._on_pod(new),
                              on_delete=self._on_pod)
        self.nodes.add_handler(on_add=self._on_node, on_update=lambda old, new: self._on_node(new),
                               on_delete=self._on_node)
        recorder: asyncio.Task[None] | None = None
        try:
            async with asyncio.TaskGroup() as tg:
                await self._for_each(list(self.agents.values()), FakeNodeAgent.register)
                self.registered.set()
                log.info("%d fake node(s) registered", len(self.agents))
                recorder = tg.create_task(self.recorder.run(), name="fake-nodes-events")
                tg.create_task(self.pods.run(), name="fake-nodes-pods")
                tg.create_task(self.nodes.run(), name="fake-nodes-nodes")
                tg.create_task(self._tick("leases", self.lease_interval, FakeNodeAgent.renew_lease),
                               name="fake-nodes-leases")
                tg.create_task(self._tick("status", self.status_interval, FakeNodeAgent.post_status),
                               name="fake-nodes-status")
                for i in range(self._workers):
                    tg.create_task(self._worker(self.queue, self._sync), name=f"fake-nodes-worker-{i}")
                tg.create_task(self._worker(self.node_queue, self._sync_node), name="fake-nodes-node-worker")
                await self._stopping.wait()
                recorder.cancel()
        finally:
            self.stop()
            if recorder is not None:
                recorder.cancel()

    def stop(self) -> None:
        self._stopping.set()
        self.pods.stop()
        self.nodes.stop()
        self.queue.shut_down()
        self.node_queue.shut_down()

    # -- pods -----------------------------------------------------------------------

    def _on_pod(self, pod: Obj) -> None:
        key = object_key(pod)
        agent = self.agents.get((pod.get("spec") or {}).get("nodeName", ""))
        if agent is not None:
            agent.observe(pod)
        if agent is not None or key in self._owner:
            self.queue.add(key)

    def _enqueue_pods_of(self, agent: FakeNodeAgent) -> None:
        for pod in self.pods.by_index(_NODE_INDEX, agent.name):
            agent.observe(pod)
        for pod in self.pods.by_index(_NODE_INDEX, agent.name):
            self.queue.add(object_key(pod))

    async def _worker(self, queue: WorkQueue[str], sync: Callable[[str], Awaitable[float | None]]) -> None:
        while (key := await queue.get()) is not None:
            try:
                delay = await sync(key)
            except Exception as e:  # retried with back-off; the API may be briefly unavailable
                log.warning("fake nodes: syncing %s failed: %s", key, e)
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
                if delay is not None:
                    queue.add_after(key, delay)
            finally:
                queue.done(key)

    async def _sync(self, key: str) -> float | None:
        pod = self.pods.get(key)
        uid = str(((pod or {}).get("metadata") or {}).get("uid", ""))
        owner = self._owner.get(key)
        if owner is not None and (pod is None or owner[1] != uid):
            if (previous := self.agents.get(owner[0])) is not None:
                previous.forget_pod(owner[1])
            del self._owner[key]
        if pod is None:
            return None
        agent = self.agents.get((pod.get("spec") or {}).get("nodeName", ""))
        if agent is None:
            return None
        self._owner[key] = (agent.name, uid)
        return await agent.sync_pod(pod)

    # -- nodes ----------------------------------------------------------------------

    def _on_node(self, node: Obj) -> None:
        name = str((node.get("metadata") or {}).get("name", ""))
        if name in self.agents or (self.adopt and self._wants_adoption(node)):
            self.node_queue.add(name)

    @staticmethod
    def _wants_adoption(node: Obj) -> bool:
        labels = (node.get("metadata") or {}).get("labels") or {}
        return str(labels.get(FAKE_NODE_LABEL, "")).lower() == "true"

    async def _sync_node(self, name: str) -> float | None:
        """Adopt, retire, stop, resume, or re-post the status of one node."""
        node = self.nodes.get(name)
        agent = self.agents.get(name)
        if agent is None:
            if node is not None and self.adopt and self._wants_adoption(node) and \
                    not (node.get("metadata") or {}).get("deletionTimestamp"):
                await self._adopt(node)
            return None
        if node is None:
            if agent.adopted:  # its Node was deleted: the machine was removed
                log.info("fake node %s was deleted; no longer serving it", name)
                del self.agents[name]
                agent.forget_all()
            return None  # a node of the fleet's own: registered again at its next heartbeat
        stopped = _stopped(node)
        if stopped != agent.stopped:
            agent.stopped = stopped
            if stopped:
                log.info("fake node %s stopped (annotation %s)", name, STOPPED_ANNOTATION)
                return None
            log.info("fake node %s resumed", name)
            await agent.renew_lease()
            await agent.post_status()
            self._enqueue_pods_of(agent)
            return None
        if not stopped and not _ready(node):
            now = self.clock.monotonic()
            wait = self._not_ready_posts.get(name, -math.inf) + NOT_READY_REPOST_INTERVAL - now
            if wait > 0:
                return wait
            self._not_ready_posts[name] = now
            await agent.post_status()
        return None

    async def _adopt(self, node: Obj) -> None:
        index = self._next_index
        self._next_index += 1
        agent = FakeNodeAgent(self.client, spec_from_node(node, index), clock=self.clock,
                              failing_images=self.failing_images, recorder=self.recorder,
                              adopted=True)
        await agent.register()
        self.agents[agent.name] = agent
        now = self.clock.monotonic()
        for interval, heap in self._tickers.values():
            heapq.heappush(heap, (now + interval, agent.name))
        log.info("fake node %s adopted (cpu %s, memory %s)", agent.name,
                 agent.spec.capacity.get("cpu"), agent.spec.capacity.get("memory"))
        self._enqueue_pods_of(agent)

    # -- heartbeats -------------------------------------------------------------------

    async def _for_each(self, agents: Iterable[FakeNodeAgent],
                        action: Callable[[FakeNodeAgent], Awaitable[None]]) -> None:
        async def one(agent: FakeNodeAgent) -> None:
            async with self._limit:
                try:
                    await action(agent)
                except Exception as e:
                    log.warning("fake node %s: %s failed: %s", agent.name, action.__name__, e)

        await asyncio.gather(*(one(a) for a in agents))

    async def _tick(self, name: str, interval: float,
                    action: Callable[[FakeNodeAgent], Awaitable[None]]) -> None:
        """Run ``action`` for every node once per ``interval``, nodes spread evenly over it.

        Stopped nodes are skipped; nodes adopted later join the schedule.
        """
        names = list(self.agents)
        start = self.clock.monotonic()
        due: list[tuple[float, str]] = [(start + interval * (1 + i / max(1, len(names))), node)
                                        for i, node in enumerate(names)]
        heapq.heapify(due)
        self._tickers[name] = (interval, due)
        while not self._stopping.is_set():
            wait = due[0][0] - self.clock.monotonic() if due else interval
            if wait > 0 and await self._sleep(wait):
                return
            now = self.clock.monotonic()
            batch = []
            while due and due[0][0] <= now:
                when, node = heapq.heappop(due)
                agent = self.agents.get(node)
                if agent is None:
                    continue  # retired
                heapq.heappush(due, (max(when + interval, now), node))
                if not agent.stopped:
                    batch.append(agent)
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
                         specs: Sequence[NodeSpec] | None = None,
                         failing_images: Sequence[str] = (), adopt: bool = True,
                         clock: Clock | None = None, lease_interval: float = LEASE_RENEW_INTERVAL,
                         status_interval: float = STATUS_UPDATE_INTERVAL,
                         registered: asyncio.Event | None = None) -> None:
    """Run simulated nodes until cancelled (what ``skiff up`` uses).

    ``count`` nodes ``skiff-node-0`` ... shaped by ``capacity``/``labels_per_node``/
    ``taints_per_node``, or exactly ``specs`` when given (``count`` must then be
    ``len(specs)``; :mod:`skiff.kubelet.fakeconfig` builds them).  Images matching
    ``failing_images`` never pull; with ``adopt``, Nodes created later with the label
    ``skiff.dev/fake=true`` are served too (see module docstring).  ``registered`` is set
    once every node has registered (``skiff up`` announces its kubeconfig after that).
    """
    if specs is not None:
        if count != len(specs):
            raise ValueError(f"count {count} but {len(specs)} node specs")
    elif count > 0:
        specs = fake_node_specs(count, name_prefix=name_prefix, capacity=capacity,
                                labels_per_node=labels_per_node, taints_per_node=taints_per_node)
    else:
        specs = []
    if not specs and not adopt:
        if registered is not None:
            registered.set()
        return
    agents = [FakeNodeAgent(client, spec, clock=clock) for spec in specs]
    fleet = FakeNodeFleet(client, agents, clock=clock, lease_interval=lease_interval,
                          status_interval=status_interval, adopt=adopt,
                          failing_images=failing_images)
    if registered is not None:
        fleet.registered = registered
    await fleet.run()
