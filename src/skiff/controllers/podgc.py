"""Pod garbage collection: the pods nobody else will ever delete.

Every ``gc_period`` seconds (20 s, as kube-controller-manager) one pass over
the pod and node caches force-deletes (grace 0):

1. **terminated pods beyond a threshold** -- when more than
   ``terminated_pod_threshold`` pods are Succeeded/Failed (12500 by default),
   the surplus goes: evicted pods first (Failed, reason Evicted), then the
   oldest by creationTimestamp (name breaks ties);
2. **terminating pods on out-of-service nodes** -- a pod being deleted on a
   node that is not Ready and carries the ``node.kubernetes.io/out-of-service``
   taint (its kubelet is known to be gone for good);
3. **orphaned pods** -- bound to a node that does not exist.  The node name is
   quarantined first (``quarantine``, 40 s): only if it is still missing from
   the cache afterwards *and* a live GET says 404 are its pods deleted, with a
   ``DisruptionTarget`` condition (``DeletionByPodGC``);
4. **unscheduled terminating pods** -- being deleted, never bound to a node.

A pod not yet Succeeded/Failed is first patched to ``Failed`` (a pod whose node
is gone would otherwise stay Running forever), then deleted::

    pass ──▶ terminated > threshold? ──▶ delete surplus
         ├─▶ terminating on out-of-service NotReady node ──▶ delete
         ├─▶ bound to unknown node ──▶ quarantine since t ──(t + 40 s, live 404)──▶ delete
         └─▶ terminating and unbound ──▶ delete
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, ClassVar

from ..api.errors import StatusError
from ..api.kinds.meta.cells import format_time
from ..client.informer import Informer
from ..client.resources import NODES, PODS
from .reconciler import Controller, ControllerContext

Obj = dict[str, Any]
log = logging.getLogger(__name__)

DEFAULT_TERMINATED_POD_THRESHOLD = 12500
DEFAULT_GC_PERIOD = 20.0
DEFAULT_QUARANTINE = 40.0
OUT_OF_SERVICE_TAINT = "node.kubernetes.io/out-of-service"
KEY = "podgc"


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_terminated(pod: Obj) -> bool:
    return _phase(pod) in ("Succeeded", "Failed")


def _evicted(pod: Obj) -> bool:
    return _phase(pod) == "Failed" and (pod.get("status") or {}).get("reason") == "Evicted"


def _node_ready(node: Obj) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def deletion_order(pod: Obj) -> tuple[bool, str, str]:
    """Sort key: evicted pods first, then oldest, then by name."""
    meta = pod.get("metadata") or {}
    return (not _evicted(pod), str(meta.get("creationTimestamp") or ""), str(meta.get("name", "")))


class PodGCController(Controller):
    """Deletes terminated-surplus, orphaned and stuck terminating pods (see module docstring)."""

    name: ClassVar[str] = "podgc"
    workers: ClassVar[int] = 1
    component: ClassVar[str] = "pod-garbage-collector"

    def __init__(self, ctx: ControllerContext, *,
                 terminated_pod_threshold: int = DEFAULT_TERMINATED_POD_THRESHOLD,
                 gc_period: float = DEFAULT_GC_PERIOD, quarantine: float = DEFAULT_QUARANTINE) -> None:
        super().__init__(ctx)
        self.terminated_pod_threshold = terminated_pod_threshold
        self.gc_period = gc_period
        self.quarantine = quarantine
        self.pods: Informer = self.informer(PODS)
        self.nodes: Informer = self.informer(NODES)
        self._missing_since: dict[str, float] = {}  # node name -> when first seen missing
        self.enqueue_key(KEY)

    async def reconcile(self, key: str) -> float | None:
        pods = self.pods.list()
        if self.terminated_pod_threshold > 0:
            await self._gc_terminated(pods)
        await self._gc_out_of_service(pods)
        await self._gc_orphaned(pods)
        await self._gc_unscheduled_terminating(pods)
        return self.gc_period

    async def _gc_terminated(self, pods: list[Obj]) -> None:
        terminated = [p for p in pods if is_terminated(p)]
        surplus = len(terminated) - self.terminated_pod_threshold
        if surplus <= 0:
            return
        log.info("pod gc: %d terminated pods, over the threshold of %d; deleting %d",
                 len(terminated), self.terminated_pod_threshold, surplus)
        for pod in sorted(terminated, key=deletion_order)[:surplus]:
            await self._fail_and_delete(pod)

    async def _gc_out_of_service(self, pods: list[Obj]) -> None:
        for pod in pods:
            if not (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            node = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
            if node is None or _node_ready(node):
                continue
            if any(t.get("key") == OUT_OF_SERVICE_TAINT for t in (node.get("spec") or {}).get("taints") or []):
                await self._fail_and_delete(pod)

    async def _gc_orphaned(self, pods: list[Obj]) -> None:
        now = self.clock.monotonic()
        missing = {n for p in pods if (n := (p.get("spec") or {}).get("nodeName"))
                   and self.nodes.get(n) is None}
        for name in [n for n in self._missing_since if n not in missing]:
            del self._missing_since[name]  # it came back, or its pods are gone
        gone: set[str] = set()
        for name in missing:
            since = self._missing_since.setdefault(name, now)
            if now - since >= self.quarantine and not await self._node_exists(name):
                gone.add(name)
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") in gone:
                log.info("pod gc: deleting pod %s/%s of deleted node %s",
                         pod["metadata"].get("namespace"), pod["metadata"]["name"],
                         pod["spec"]["nodeName"])
                await self._fail_and_delete(pod, {"type": "DisruptionTarget", "status": "True",
                                                  "reason": "DeletionByPodGC",
                                                  "message": "PodGC: node no longer exists"})

    async def _gc_unscheduled_terminating(self, pods: list[Obj]) -> None:
        for pod in pods:
            if (pod.get("metadata") or {}).get("deletionTimestamp") and \
                    not (pod.get("spec") or {}).get("nodeName"):
                await self._fail_and_delete(pod)

    async def _node_exists(self, name: str) -> bool:
        try:
            await self.client.get(NODES, name)
        except StatusError as e:
            if e.code == 404:
                return False
            raise
        return True

    async def _fail_and_delete(self, pod: Obj, condition: Obj | None = None) -> None:
        meta = pod["metadata"]
        ns, name, uid = meta.get("namespace"), meta["name"], str(meta.get("uid", ""))
        try:
            if not is_terminated(pod):
                status = pod.get("status") or {}
                conditions = [c for c in status.get("conditions") or []
                              if condition is None or c.get("type") != condition["type"]]
                if condition is not None:
                    conditions.append(dict(condition, lastTransitionTime=_now(self.clock.time())))
                await self.client.patch(PODS, name, {"metadata": {"uid": uid}, "status": {
                    "phase": "Failed", "conditions": conditions}}, namespace=ns, subresource="status")
            await self.client.delete(PODS, name, namespace=ns, grace_period_seconds=0,
                                     preconditions={"uid": uid})
        except StatusError as e:
            if e.code not in (404, 409):
                raise


def _now(epoch: float) -> str:
    return format_time(datetime.fromtimestamp(epoch, timezone.utc))
