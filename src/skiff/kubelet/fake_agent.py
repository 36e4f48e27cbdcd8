"""The simulated kubelet of one node: its Node, its Lease, and the pods bound to it.

A :class:`FakeNodeAgent` talks to the API only; :class:`~skiff.kubelet.fake.FakeNodeFleet`
runs many of them over one pod watch and decides when each one acts.  What a
pod goes through on a fake node (see :mod:`skiff.kubelet.fake_pods` for the
statuses and the annotations that steer them)::

    bound ─▶ images "pull"? ── no ─▶ waiting ErrImagePull ─1 s─▶ ImagePullBackOff ─▶ retry
                 │ yes                 (10 s, 20 s ... 5 min apart; events Pulling, Failed, BackOff)
                 ▼
             Running (ready unless skiff.dev/fake-ready: "false"; flipping the annotation flips Ready)
                 │ restartPolicy Never/OnFailure, after skiff.dev/fake-run-seconds
                 ▼
             Succeeded / Failed (skiff.dev/fake-exit-code)
    deleted (deletionTimestamp) ─▶ DELETE gracePeriodSeconds=0: the containers are "killed"

A **stopped** agent (its Node annotated ``skiff.dev/fake-stopped: "true"``, see
the fleet) does nothing at all: no Lease renewals, no status, no pod updates,
as if the machine had lost power.

The agent keeps its own record of the pods it started (as a kubelet keeps pod
workers), so a stale cache never makes it start a pod twice.  After a restart
it rebuilds that record from the API: pods it already started keep their IPs
(claimed in event order, before any new pod is given an address).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ..api.errors import StatusError
from ..api.kinds.meta import parse_time
from ..client.clock import Clock, RealClock
from ..client.resources import LEASES, NAMESPACES, NODES, PODS
from ..client.rest import ApiClient
from .fake_pods import (
    FakeBehaviour, PodIPAllocator, pull_failure_status, running_status, terminated_status,
)
from .node_status import (
    NODE_LEASE_NAMESPACE, NodeSpec, micro_timestamp, node_conditions, node_lease, node_object,
    node_status,
)

if TYPE_CHECKING:
    from ..controllers.events import EventRecorder

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: Node annotation: "true" stops the node's agent (no heartbeats, no pod updates).
STOPPED_ANNOTATION = "skiff.dev/fake-stopped"
#: How long a failed pull shows ErrImagePull before ImagePullBackOff.
PULL_ERROR_SHOWN = 1.0
#: Image pull back-off: first delay and cap (the kubelet's 10 s ... 5 min).
PULL_BACKOFF_BASE = 10.0
PULL_BACKOFF_CAP = 300.0
ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
RUNNING = "Running"


@dataclass
class _PodRecord:
    """What this node did for one pod (keyed by pod UID)."""

    started_at: float
    ip: str
    state: str = ""  # "", Running, ErrImagePull, ImagePullBackOff
    ready: bool = True  # readiness last reported (Running only)
    finished: bool = False
    pull_failures: int = 0
    next_at: float = 0.0  # when the pull state moves on (wall clock)
    retry_at: float = 0.0  # when the next pull is tried (wall clock)


class FakeNodeAgent:
    """The simulated kubelet of one node (see module docstring)."""

    def __init__(self, client: ApiClient, spec: NodeSpec, *, clock: Clock | None = None,
                 failing_images: Sequence[str] = (), recorder: "EventRecorder | None" = None,
                 adopted: bool = False) -> None:
        self.client = client
        self.spec = spec
        self.clock: Clock = clock or RealClock()
        self.failing_images = tuple(failing_images)
        self.recorder = recorder  # events about pods (image pulls); None: none recorded
        self.adopted = adopted  # a Node someone else created, served at run time
        self.stopped = False
        self.node: Obj | None = None  # the Node as last written
        self.lease: Obj | None = None  # the Lease as last written
        self.ips = PodIPAllocator(spec.cidr)
        self._pods: dict[str, _PodRecord] = {}

    @property
    def name(self) -> str:
        return self.spec.name

    # -- the node -------------------------------------------------------------------

    async def register(self) -> None:
        """Create the Node (or adopt an existing one), post its status, ensure its Lease.

        An existing Node annotated ``skiff.dev/fake-stopped: "true"`` leaves the
        agent stopped: nothing is posted for it.
        """
        now = self.clock.time()
        desired = node_object(self.spec, now)
        try:
            node = await self.client.create(NODES, desired)
        except StatusError as e:
            if e.code != 409:
                raise
            existing = await self.client.get(NODES, self.name)
            meta = existing.get("metadata") or {}
            if str((meta.get("annotations") or {}).get(STOPPED_ANNOTATION, "")).lower() == "true":
                self.stopped = True
                self.node = existing
                log.info("node %s is marked stopped; not posting for it", self.name)
                return
            patch: Obj = {"metadata": {"labels": desired["metadata"]["labels"]}}
            cidr = (existing.get("spec") or {}).get("podCIDR")
            if not cidr:
                patch["spec"] = {"podCIDR": self.spec.cidr, "podCIDRs": [self.spec.cidr]}
            node = await self.client.patch(NODES, self.name, patch)
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
        if self.stopped:
            return None  # a powered-off machine; the fleet hands its pods over again on resume
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        if meta.get("deletionTimestamp"):
            await self._finalize(pod)
            return None
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            self.forget_pod(uid)
            return None
        behaviour = FakeBehaviour.of(pod, self.failing_images)
        now = self.clock.time()
        record = self._pods.get(uid) or self._adopt(pod, uid)
        if record is None:
            record = _PodRecord(now, self._pod_ip(pod, uid))
            self._pods[uid] = record
        if record.finished:
            return None
        if behaviour.pull_errors:
            return await self._pull_step(pod, record, behaviour)
        # Marked not ready by someone else (the node lifecycle controller, while this node
        # was unreachable): a kubelet reports its own view again.
        api_ready = next((c.get("status") for c in status.get("conditions") or []
                          if c.get("type") == "Ready"), None)
        drifted = record.state == RUNNING and api_ready not in (None, "True" if record.ready else "False")
        wanted = {c.get("name") for c in (pod.get("spec") or {}).get("ephemeralContainers") or []}
        drifted |= record.state == RUNNING and wanted != {c.get("name") for c in
                                                          status.get("ephemeralContainerStatuses") or []}
        if record.state != RUNNING or record.ready != behaviour.ready or drifted:
            if record.state != RUNNING and behaviour.completes and behaviour.run_seconds <= 0:
                await self._complete(pod, record, behaviour)
                return None
            await self._write_status(pod, running_status(
                pod, host_ip=self.spec.ip, pod_ip=record.ip, started_at=record.started_at,
                ready=behaviour.ready))
            record.state, record.ready = RUNNING, behaviour.ready
        if behaviour.completes:
            remaining = record.started_at + behaviour.run_seconds - now
            if remaining > 0:
                return remaining
            await self._complete(pod, record, behaviour)
        return None

    def observe(self, pod: Obj) -> None:
        """See a pod bound here (in event order): claim the IP of one started before."""
        uid = str((pod.get("metadata") or {}).get("uid", ""))
        if uid not in self._pods:
            self._adopt(pod, uid)

    def forget_pod(self, uid: str) -> None:
        """The pod is gone (or finished): free its IP and forget it."""
        if self._pods.pop(uid, None) is not None:
            self.ips.release(uid)

    def forget_all(self) -> None:
        for uid in list(self._pods):
            self.forget_pod(uid)

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
        if not ip or started is None or status.get("phase") not in ("Running", "Pending"):
            return None
        if not (pod.get("spec") or {}).get("hostNetwork"):
            self.ips.adopt(uid, ip)
        record = _PodRecord(started.timestamp(), ip)
        if status.get("phase") == "Running":
            ready = next((c.get("status") == "True" for c in status.get("conditions") or ()
                          if c.get("type") == "Ready"), True)
            record.state, record.ready = RUNNING, ready
        self._pods[uid] = record
        return record

    async def _pull_step(self, pod: Obj, record: _PodRecord, behaviour: FakeBehaviour) -> float:
        """One step of the ErrImagePull / ImagePullBackOff cycle; seconds until the next."""
        now = self.clock.time()
        if record.state in (ERR_IMAGE_PULL, IMAGE_PULL_BACKOFF) and now < record.next_at:
            return record.next_at - now
        images = {c.get("name", ""): c.get("image", "")
                  for c in [*((pod.get("spec") or {}).get("initContainers") or []),
                            *((pod.get("spec") or {}).get("containers") or [])]}
        waiting: dict[str, tuple[str, str]] = {}
        if record.state == ERR_IMAGE_PULL:  # shown long enough: now in back-off
            for name, error in behaviour.pull_errors.items():
                self._event(pod, "Normal", "BackOff", f'Back-off pulling image "{images[name]}"')
                self._event(pod, "Warning", "Failed", f"Error: {IMAGE_PULL_BACKOFF}")
                waiting[name] = (IMAGE_PULL_BACKOFF, f'Back-off pulling image "{images[name]}": '
                                                     f"{ERR_IMAGE_PULL}: {error}")
            state, record.next_at = IMAGE_PULL_BACKOFF, record.retry_at
        else:  # first attempt, or the back-off is over: "pull" again
            for name, error in behaviour.pull_errors.items():
                self._event(pod, "Normal", "Pulling", f'Pulling image "{images[name]}"')
                self._event(pod, "Warning", "Failed", f'Failed to pull image "{images[name]}": {error}')
                self._event(pod, "Warning", "Failed", f"Error: {ERR_IMAGE_PULL}")
                waiting[name] = (ERR_IMAGE_PULL, error)
            record.pull_failures += 1
            delay = min(PULL_BACKOFF_CAP, PULL_BACKOFF_BASE * 2 ** min(record.pull_failures - 1, 10))
            state, record.next_at, record.retry_at = ERR_IMAGE_PULL, now + PULL_ERROR_SHOWN, now + delay
        await self._write_status(pod, pull_failure_status(
            pod, host_ip=self.spec.ip, pod_ip=record.ip, started_at=record.started_at, waiting=waiting))
        record.state = state
        return max(0.0, record.next_at - now)

    def _event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.event({"apiVersion": "v1", "kind": "Pod", "metadata": pod.get("metadata") or {}},
                                type_, reason, message, component="kubelet")

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
        from .fake import FakeNodeFleet

        await FakeNodeFleet(self.client, [self], clock=self.clock).run()
