"""Taint eviction: pods leave nodes with NoExecute taints they do not tolerate.

Keyed by pod (``namespace/name``); a node whose NoExecute taints change
re-queues every pod bound to it::

    pod on a node with NoExecute taints
      ├─ a taint no toleration matches, or tolerationSeconds <= 0  -> evict now
      ├─ matching tolerations without tolerationSeconds           -> stays forever
      └─ otherwise: evict min(tolerationSeconds) after the taint was added (its
         ``timeAdded``; when it has none, when this controller first saw the pod
         on the tainted node), via the work queue's delay; taints gone
         meanwhile -> cancelled (event "Cancelling deletion of Pod ns/name")

(Kubernetes counts from when its controller noticed the taint; counting from
``timeAdded`` is what the toleration documentation promises and survives a
controller restart.)

    evict = status condition DisruptionTarget (DeletionByTaintManager), then a
            normal DELETE (the pod's grace period; its controller replaces it)

Every pod gets tolerations for ``node.kubernetes.io/not-ready`` and
``unreachable`` from the DefaultTolerationSeconds admission, so after a node
dies its pods go ``tolerationSeconds`` after the node lifecycle controller
tainted it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, ClassVar

from ...api.errors import StatusError
from ...api.kinds.meta.cells import format_time, parse_time
from ...client.informer import Informer, object_key
from ...client.resources import NODES, PODS
from ..events import NORMAL
from ..reconciler import Controller, ControllerContext
from .controller import NODE_NAME_INDEX, _pods_by_node
from .health import no_execute_taints, toleration_window

Obj = dict[str, Any]
log = logging.getLogger(__name__)

DISRUPTION_REASON = "DeletionByTaintManager"
DISRUPTION_MESSAGE = "Taint manager: deleting due to NoExecute taint"


class TaintEvictionController(Controller):
    """Deletes pods from nodes whose NoExecute taints they do not (or no longer) tolerate."""

    name: ClassVar[str] = "taint-eviction-controller"
    workers: ClassVar[int] = 4
    component: ClassVar[str] = "taint-eviction-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self._since: dict[str, tuple[str, float]] = {}  # pod key -> (node, first seen tainted, wall)
        self.nodes: Informer = self.informer(NODES)
        self.pods: Informer = self.informer(PODS)
        self.pods.add_index(NODE_NAME_INDEX, _pods_by_node)
        self.nodes.add_handler(on_add=lambda n: self._node_changed(None, n),
                               on_update=self._node_changed)
        self.pods.add_handler(on_add=self._pod_changed,
                              on_update=lambda _old, new: self._pod_changed(new),
                              on_delete=self._pod_gone)

    def _node_changed(self, old: Obj | None, new: Obj) -> None:
        if old is not None and no_execute_taints(old) == no_execute_taints(new):
            return
        for pod in self.pods.by_index(NODE_NAME_INDEX, str(new["metadata"]["name"])):
            self.enqueue(pod)

    def _pod_changed(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        key = object_key(pod)
        if key in self._since or (node and no_execute_taints(self.nodes.get(node))):
            self.enqueue_key(key)

    def _pod_gone(self, pod: Obj) -> None:
        self._since.pop(object_key(pod), None)

    async def reconcile(self, key: str) -> float | None:
        pod = self.pods.get(key)
        if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
            self._since.pop(key, None)
            return None
        node_name = str((pod.get("spec") or {}).get("nodeName") or "")
        taints = no_execute_taints(self.nodes.get(node_name)) if node_name else []
        window = toleration_window(taints, (pod.get("spec") or {}).get("tolerations") or []) \
            if taints else None
        if window is None:
            if self._since.pop(key, None) is not None:
                self.record_event(pod, NORMAL, "TaintManagerEviction", f"Cancelling deletion of Pod {key}")
            return None
        now = self.clock.time()
        since = self._since.get(key)
        if since is None or since[0] != node_name:
            since = self._since[key] = (node_name, now)
        added = [t.timestamp() for t in (parse_time(x.get("timeAdded")) for x in taints) if t]
        start = min(added) if added else since[1]
        left = start + window - now
        if left > 0:
            return left
        await self._evict(pod)
        self._since.pop(key, None)
        return None

    async def _evict(self, pod: Obj) -> None:
        meta = pod["metadata"]
        key = object_key(pod)
        log.info("evicting pod %s from tainted node %s", key, pod["spec"].get("nodeName"))
        self.record_event(pod, NORMAL, "TaintManagerEviction", f"Marking for deletion Pod {key}")
        status = pod.get("status") or {}
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
        conditions.append({"type": "DisruptionTarget", "status": "True", "reason": DISRUPTION_REASON,
                           "message": DISRUPTION_MESSAGE, "lastTransitionTime": format_time(
                               datetime.fromtimestamp(self.clock.time(), timezone.utc))})
        try:
            await self.client.patch(PODS, meta["name"], {
                "metadata": {"uid": meta.get("uid")}, "status": {"conditions": conditions}},
                namespace=meta.get("namespace"), subresource="status")
            await self.client.delete(PODS, meta["name"], namespace=meta.get("namespace"),
                                     preconditions={"uid": str(meta.get("uid", ""))})
        except StatusError as e:
            if e.code not in (404, 409):
                raise
