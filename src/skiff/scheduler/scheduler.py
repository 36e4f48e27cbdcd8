"""The scheduler component: watch pods and nodes, decide, bind, explain.

::

    informers (nodes, pods, PVCs, namespaces)
        │ assigned pods, nodes ──▶ Snapshot (incremental)    ──▶ queue.on_event(...)
        │ pending pods of ours ──▶ SchedulingQueue
        ▼
    loop:  pod = await queue.pop()
           result = framework.schedule_one(snapshot, pod)           (pure, see framework.py)
           placed   ─▶ snapshot.assume(pod, node), Reserve, Permit (still in the cycle)
                       ─▶ binding task (≤ 64 at a time; the loop goes on with the next pod):
                       PreBind, Bind (POST pods/<name>/binding) ─▶ event Scheduled
                       "Successfully assigned <ns>/<pod> to <node>"; on failure: Unreserve,
                       forget the assumed pod, report, back off and retry
           not placed ─▶ victims? mark DisruptionTarget + delete them, set status.nominatedNodeName
                       ─▶ PodScheduled=False (reason Unschedulable, the FitError message)
                       ─▶ event FailedScheduling (Warning) ─▶ park in the queue

Pods are ours when ``spec.schedulerName`` names one of our profiles
(``default-scheduler`` by default), ``spec.nodeName`` is empty and they are not
terminating or finished.  ``run_scheduler(client)`` is what ``skiff up`` starts.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import datetime, timezone
from typing import Any

from ..api.errors import StatusError
from ..client.factory import InformerFactory
from ..client.resources import NAMESPACES, NODES, PERSISTENTVOLUMECLAIMS, PODS
from ..client.rest import ApiClient, TransportError
from ..controllers.events import NORMAL, WARNING, EventRecorder
from .framework import Framework, Registry
from .interface import Code, CycleState
from .podinfo import PodInfo, pod_key
from .profile import Profile, default_profile
from .queue import (ASSIGNED_POD_ADD, ASSIGNED_POD_DELETE, ASSIGNED_POD_UPDATE, NAMESPACE_CHANGE, NODE_ADD,
                    NODE_UPDATE, PVC_ADD, QueuedPod, SchedulingQueue)
from .snapshot import Snapshot

Obj = dict[str, Any]
log = logging.getLogger(__name__)

MAX_BINDINGS_IN_FLIGHT = 64
UNSCHEDULABLE_FLUSH_INTERVAL = 30.0


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_changed(old: Obj, new: Obj) -> bool:
    """Did anything the scheduler looks at change (not just status or resourceVersion)?"""
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (old.get("spec") != new.get("spec") or om.get("labels") != nm.get("labels")
            or om.get("annotations") != nm.get("annotations")
            or om.get("deletionTimestamp") != nm.get("deletionTimestamp")
            or (old.get("status") or {}).get("nominatedNodeName") != (new.get("status") or {}).get("nominatedNodeName"))


class Scheduler:
    """One scheduler process: profiles, cache, queue, and the loop that ties them together."""

    def __init__(self, client: ApiClient, *, profiles: list[Profile] | None = None,
                 factory: InformerFactory | None = None, rng: random.Random | None = None,
                 recorder: EventRecorder | None = None, registry: Registry | None = None) -> None:
        self.client = client
        self.rng = rng or random.Random()
        self._own_factory = factory is None
        self.factory = factory or InformerFactory(client)
        self.frameworks: dict[str, Framework] = {}
        for profile in profiles or [default_profile()]:
            self.frameworks[profile.scheduler_name] = Framework(
                profile, registry, rng=self.rng, binder=self._bind, client=client, informers=self.factory,
                cluster_event=lambda event: self.queue.on_event(event))
        self.snapshot = Snapshot()
        first = next(iter(self.frameworks.values()))
        less = first.queue_sort.less if first.queue_sort is not None else None
        self.queue = SchedulingQueue(clock=time.monotonic, **({"less": less} if less else {}))
        self._own_recorder = recorder is None
        self.recorder = recorder or EventRecorder(client)
        self._bindings = asyncio.Semaphore(MAX_BINDINGS_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self.scheduled = 0
        self.failed = 0
        self._wire_informers()

    # -- informers ------------------------------------------------------------------------------

    def _wire_informers(self) -> None:
        f = self.factory
        f.informer(NODES).add_handler(on_add=self._node_added, on_update=self._node_updated,
                                      on_delete=self._node_deleted)
        f.informer(PODS).add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                                     on_delete=self._pod_deleted)
        f.informer(PERSISTENTVOLUMECLAIMS).add_handler(on_add=self._pvc_changed,
                                                       on_update=lambda o, n: self._pvc_changed(n),
                                                       on_delete=self._pvc_deleted)
        f.informer(NAMESPACES).add_handler(on_add=self._ns_changed, on_update=lambda o, n: self._ns_changed(n),
                                           on_delete=self._ns_deleted)

    def _node_added(self, node: Obj) -> None:
        self.snapshot.add_node(node)
        self.queue.on_event(NODE_ADD)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        self.snapshot.update_node(new)
        if old.get("spec") != new.get("spec") or (old.get("metadata") or {}).get("labels") != \
                (new.get("metadata") or {}).get("labels") or \
                (old.get("status") or {}).get("allocatable") != (new.get("status") or {}).get("allocatable"):
            self.queue.on_event(NODE_UPDATE)

    def _node_deleted(self, node: Obj) -> None:
        self.snapshot.remove_node((node.get("metadata") or {}).get("name", ""))

    def responsible_for(self, pod: Obj) -> bool:
        spec = pod.get("spec") or {}
        if spec.get("nodeName") or (pod.get("metadata") or {}).get("deletionTimestamp"):
            return False
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return False
        return (spec.get("schedulerName") or "default-scheduler") in self.frameworks

    def _pod_added(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName"):
            self.snapshot.add_pod(pod)
            self.queue.on_event(ASSIGNED_POD_ADD)
        elif self.responsible_for(pod):
            self.queue.add(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = pod_key(new)
        if (new.get("spec") or {}).get("nodeName"):
            self.snapshot.update_pod(new)
            self.queue.delete(key)
            if (old.get("spec") or {}).get("nodeName"):
                if _spec_changed(old, new):
                    self.queue.on_event(ASSIGNED_POD_UPDATE)
            else:
                self.queue.on_event(ASSIGNED_POD_ADD)
        elif self.responsible_for(new):
            if _spec_changed(old, new):
                self.queue.update(new)
        else:
            self.queue.delete(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = pod_key(pod)
        self.queue.delete(key)
        if self.snapshot.remove_pod(key) is not None:
            self.queue.on_event(ASSIGNED_POD_DELETE)

    def _pvc_changed(self, pvc: Obj) -> None:
        self.snapshot.pvcs[pod_key(pvc)] = pvc
        self.queue.on_event(PVC_ADD)

    def _pvc_deleted(self, pvc: Obj) -> None:
        self.snapshot.pvcs.pop(pod_key(pvc), None)

    def _ns_changed(self, ns: Obj) -> None:
        meta = ns.get("metadata") or {}
        self.snapshot.namespace_labels[meta.get("name", "")] = meta.get("labels") or {}
        self.queue.on_event(NAMESPACE_CHANGE)

    def _ns_deleted(self, ns: Obj) -> None:
        self.snapshot.namespace_labels.pop((ns.get("metadata") or {}).get("name", ""), None)

    # -- running ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`stop` (or cancellation)."""
        async with asyncio.TaskGroup() as tg:
            background: list[asyncio.Task[None]] = []
            if self._own_factory:
                background.append(tg.create_task(self.factory.run(), name="scheduler-informers"))
            if self._own_recorder:
                background.append(tg.create_task(self.recorder.run(), name="scheduler-events"))
            background.append(tg.create_task(self._flusher(), name="scheduler-flush"))
            try:
                await self.factory.wait_synced()
                await self._loop()
            finally:
                self._stop.set()
                self.queue.close()
                for t in list(self._tasks):
                    t.cancel()
                if self._own_recorder:
                    try:
                        await asyncio.wait_for(self.recorder.flush(), timeout=2)
                    except (asyncio.TimeoutError, asyncio.CancelledError):
                        pass
                if self._own_factory:
                    self.factory.stop()
                for t in background:
                    t.cancel()

    def stop(self) -> None:
        self._stop.set()
        self.queue.close()

    async def _flusher(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=UNSCHEDULABLE_FLUSH_INTERVAL)
            except asyncio.TimeoutError:
                self.queue.flush_unschedulable_leftover()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            qp = await self.queue.pop()
            if qp is None:
                return
            try:
                await self.schedule_queued(qp)
            except Exception:   # a bug must not stop the scheduler: log, back off, go on
                log.exception("scheduling %s failed", qp.key)
                self.queue.add_unschedulable(qp, error=True)
            await asyncio.sleep(0)   # let informers and bindings run between pods

    async def schedule_queued(self, qp: QueuedPod) -> None:
        pod = qp.pod.pod
        cached = self.factory.informer(PODS).get(qp.key)
        if cached is None or not self.responsible_for(cached):
            self.queue.done(qp.key)
            return
        if qp.key in self.snapshot.assumed:
            self.queue.done(qp.key)   # re-queued by an update while its binding is in flight
            return
        fw = self.frameworks[(pod.get("spec") or {}).get("schedulerName") or "default-scheduler"]
        nominated = self.queue.nominated_pods()
        result = fw.schedule_one(self.snapshot, qp.pod, nominated=nominated)
        if result.node_name is not None:
            self._assume_and_bind(fw, qp, result.node_name, result.state or CycleState())
            return
        self.failed += 1
        if result.victims:
            self._spawn(self._preempt(fw, qp.pod, result.nominated_node_name, result.victims))
            self.queue.nominate(qp.pod, result.nominated_node_name)
        reason = "SchedulerError" if result.code is Code.ERROR else "Unschedulable"
        self._spawn(self._report_failure(fw, pod, reason, result.message))
        self.queue.add_unschedulable(qp, result.unschedulable_plugins, error=result.code is Code.ERROR)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- binding cycle -------------------------------------------------------------------------------

    def _assume_and_bind(self, fw: Framework, qp: QueuedPod, node: str, state: CycleState) -> None:
        """The end of the scheduling cycle: assume, Reserve, Permit -- all before the next pod's
        cycle sees the snapshot -- then the binding cycle on a task of its own."""
        pi = qp.pod
        self.snapshot.assume(pi, node)
        status = fw.run_reserve(state, pi, node)      # on failure it has un-reserved already
        wait = 0.0
        if status.is_success:
            status, wait = fw.run_permit(state, pi, node)
            if not status.is_success and status.code is not Code.WAIT:
                fw.run_unreserve(state, pi, node)
        if not status.is_success and status.code is not Code.WAIT:
            self.snapshot.forget(pi.key)
            self.failed += 1
            error = status.code is Code.ERROR
            self._spawn(self._report_failure(fw, pi.pod, "SchedulerError" if error else "Unschedulable",
                                             status.message))
            self.queue.add_unschedulable(qp, {status.plugin} if status.plugin else (), error=error)
            return
        self.queue.done(qp.key)
        self.queue.nominate(pi, "")
        self._spawn(self._binding_cycle(fw, qp, node, state, wait))

    async def _binding_cycle(self, fw: Framework, qp: QueuedPod, node: str, state: CycleState,
                             permit_wait: float = 0.0) -> None:
        """PreBind and Bind, at most MAX_BINDINGS_IN_FLIGHT at a time, while later pods are scheduled."""
        pi: PodInfo = qp.pod
        async with self._bindings:
            if permit_wait:
                await asyncio.sleep(permit_wait)    # no waiting Permit plugins in-tree
            status = await fw.run_pre_bind(state, pi, node)
            if status.is_success:
                status = await fw.run_bind(state, pi, node)
        if status.is_success:
            self.scheduled += 1
            self.recorder.event(pi.pod, NORMAL, "Scheduled",
                                f"Successfully assigned {pi.namespace}/{pi.name} to {node}",
                                component=fw.scheduler_name)
            return
        fw.run_unreserve(state, pi, node)
        self.snapshot.forget(pi.key)
        if "already assigned" in status.message or "being deleted" in status.message:
            return
        log.info("binding %s to %s failed: %s", pi.key, node, status.message)
        self.queue.add_unschedulable(qp, error=True)
        await self._report_failure(fw, pi.pod, "SchedulerError", status.message)

    async def _bind(self, pod: Obj, node: str) -> None:
        meta = pod.get("metadata") or {}
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace") or "default",
                             "uid": meta.get("uid")},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        await self.client.create(PODS, body, namespace=meta.get("namespace") or "default",
                                 name=meta.get("name"), subresource="binding")

    # -- failures and preemption ------------------------------------------------------------------------

    async def _report_failure(self, fw: Framework, pod: Obj, reason: str, message: str) -> None:
        self.recorder.event(pod, WARNING, "FailedScheduling", message, component=fw.scheduler_name)
        meta = pod.get("metadata") or {}
        condition = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
                     "lastProbeTime": None, "lastTransitionTime": _now()}
        current = self.factory.informer(PODS).get(pod_key(pod)) or pod
        for c in (current.get("status") or {}).get("conditions") or ():
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == reason \
                    and c.get("message") == message:
                return   # already says so
            if c.get("type") == "PodScheduled" and c.get("status") == "False":
                condition["lastTransitionTime"] = c.get("lastTransitionTime") or condition["lastTransitionTime"]
        patch = {"status": {"conditions": [condition]}}
        try:
            await self.client.patch(PODS, meta.get("name", ""), patch, namespace=meta.get("namespace") or "default",
                                    subresource="status", patch_type="strategic")
        except (StatusError, TransportError) as e:
            log.debug("could not update PodScheduled of %s: %s", pod_key(pod), e)

    async def _preempt(self, fw: Framework, preemptor: PodInfo, node: str, victims: list[Obj]) -> None:
        for victim in victims:
            meta = victim.get("metadata") or {}
            ns, name = meta.get("namespace") or "default", meta.get("name", "")
            condition = {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                         "message": f"{fw.scheduler_name}: preempting to accommodate a higher priority pod",
                         "lastTransitionTime": _now()}
            try:
                await self.client.patch(PODS, name, {"status": {"conditions": [condition]}}, namespace=ns,
                                        subresource="status", patch_type="strategic")
                await self.client.delete(PODS, name, namespace=ns)
            except (StatusError, TransportError) as e:
                log.info("preempting %s/%s failed: %s", ns, name, e)
                continue
            self.recorder.event(victim, NORMAL, "Preempted",
                                f"Preempted by pod {preemptor.uid} on node {node}", component=fw.scheduler_name)
        try:
            await self.client.patch(PODS, preemptor.name, {"status": {"nominatedNodeName": node}},
                                    namespace=preemptor.namespace, subresource="status", patch_type="merge")
        except (StatusError, TransportError) as e:
            log.info("nominating %s failed: %s", preemptor.key, e)


async def run_scheduler(client: ApiClient, *, profile: Profile | None = None,
                        profiles: list[Profile] | None = None,
                        factory: InformerFactory | None = None) -> None:
    """Run the scheduler until cancelled (what ``skiff up`` starts)."""
    chosen = profiles or ([profile] if profile is not None else None)
    await Scheduler(client, profiles=chosen, factory=factory).run()
