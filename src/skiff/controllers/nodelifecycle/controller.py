"""The node lifecycle controller: notices silent nodes and taints them.

A kubelet proves it is alive by renewing its Lease ``kube-node-lease/<node>``
(every 10 s) and by posting node status.  The controller records *when it
last heard* from each node, on its own clock (so clock skew between machines
does not matter)::

    Lease renewTime changed, or Ready.lastHeartbeatTime changed
        -> heard from <node> now

    reconcile(node), scheduled for "last heard + grace":
      silent for longer than grace_period (startup_grace_period before its
      first Ready condition)?
         -> Ready/MemoryPressure/DiskPressure/PIDPressure := Unknown
            (NodeStatusUnknown, "Kubelet stopped posting node status.")
         -> its pods' Ready condition := False, events NodeNotReady
      taints := from the conditions (see :mod:`.health`):
         unreachable / not-ready :NoSchedule   always
         unreachable / not-ready :NoExecute    unless the zone is disrupted
    kubelet posts Ready=True again -> taints removed

Disruption (as Kubernetes): a zone (``topology.kubernetes.io/region`` +
``zone`` labels; unlabelled nodes share one) in which no node is healthy is
*fully disrupted*; one with more than 2 and at least 55 % unhealthy nodes is
*partially disrupted* (and small, <= 50 nodes).  No new NoExecute taint is
added there -- mass eviction would not help.  When every zone is fully
disrupted (say the controller's own network failed, or the whole machine was
suspended) existing NoExecute taints are removed as well.

The NoExecute taints are what evicts pods (see
:class:`~.eviction.TaintEvictionController`); ``grace_period`` and the pods'
``tolerationSeconds`` together decide how fast a dead node's pods move::

                        Kubernetes       skiff (small clusters)
    Lease renewal       10 s             10 s (kubelet)
    grace_period        50 s             22 s  one missed renewal (a 20 s gap) is no failure
    tolerationSeconds   300 s            5 s   (the DefaultTolerationSeconds admission's
                                               default; pods may set their own)
    dead node -> pods   ~5 min 50 s      <= 27 s worst case (bench/node_failure.py: 26.7 s
    running elsewhere                            when the node died right after renewing)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar

from ...api.errors import StatusError
from ...api.kinds.meta.cells import format_time
from ...client.informer import Informer
from ...client.resources import LEASES, NODES, PODS
from ..events import NORMAL, WARNING
from ..reconciler import Controller, ControllerContext
from .health import (
    NO_EXECUTE, NOT_READY, UNREACHABLE, condition, desired_taints, ready_status, silenced_conditions,
)

Obj = dict[str, Any]
log = logging.getLogger(__name__)

NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_NAME_INDEX = "spec.nodeName"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_SIZE_THRESHOLD = 50


@dataclass(frozen=True)
class NodeLifecycleConfig:
    """Timings (kube-controller-manager flag in brackets, with Kubernetes' default).

    skiff's defaults are for small clusters: with kubelets renewing their Lease
    every 10 s, ``grace_period`` 22 s rides out one missed renewal (a 20 s gap)
    without flapping; plus the pods' ``tolerationSeconds`` for the unreachable
    taint, that bounds how long a dead node's pods stay there.
    """

    #: [--node-monitor-grace-period, 50 s] silence after which a node is Unknown.
    grace_period: float = 22.0
    #: [--node-startup-grace-period, 60 s] the same, before the kubelet's first Ready.
    startup_grace_period: float = 60.0


@dataclass
class _Heard:
    """What the controller last heard from one node's kubelet."""

    at: float  # clock.monotonic() when it was heard
    heartbeat: str = ""  # Ready.lastHeartbeatTime seen
    renewed: str = ""  # Lease renewTime seen
    ready: str = ""  # Ready status at the last reconcile


def _now(clock_time: float) -> str:
    return format_time(datetime.fromtimestamp(clock_time, timezone.utc))


def zone_of(node: Obj) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return f"{labels.get(REGION_LABEL, '')}:\x00:{labels.get(ZONE_LABEL, '')}"


def _pods_by_node(pod: Obj) -> list[str]:
    name = (pod.get("spec") or {}).get("nodeName")
    return [name] if name else []


class NodeLifecycleController(Controller):
    """Marks silent nodes Unknown and keeps the node.kubernetes.io taints in sync."""

    name: ClassVar[str] = "nodelifecycle"
    workers: ClassVar[int] = 4
    component: ClassVar[str] = "node-controller"

    def __init__(self, ctx: ControllerContext, *, config: NodeLifecycleConfig | None = None) -> None:
        super().__init__(ctx)
        self.config = config or NodeLifecycleConfig()
        self._heard: dict[str, _Heard] = {}
        self._all_disrupted = False
        self.nodes: Informer = self.informer(NODES)
        self.leases: Informer = self.informer(LEASES, namespace=NODE_LEASE_NAMESPACE)
        self.pods: Informer = self.informer(PODS)
        self.pods.add_index(NODE_NAME_INDEX, _pods_by_node)
        self.nodes.add_handler(on_add=self._node_seen, on_update=lambda _old, new: self._node_seen(new),
                               on_delete=self._node_gone)
        self.leases.add_handler(on_add=self._lease_seen, on_update=lambda _old, new: self._lease_seen(new))

    # -- hearing from kubelets ------------------------------------------------------

    def _heard_of(self, name: str) -> _Heard:
        heard = self._heard.get(name)
        if heard is None:  # first sight (or a restart): give it a full grace period
            heard = self._heard[name] = _Heard(self.clock.monotonic())
        return heard

    def _node_seen(self, node: Obj) -> None:
        name = str((node.get("metadata") or {}).get("name", ""))
        heard = self._heard_of(name)
        ready = condition(node, "Ready")
        beat = str((ready or {}).get("lastHeartbeatTime") or "")
        if beat and beat != heard.heartbeat:
            heard.heartbeat = beat
            heard.at = self.clock.monotonic()
        self.enqueue_key(name)

    def _node_gone(self, node: Obj) -> None:
        name = str((node.get("metadata") or {}).get("name", ""))
        self._heard.pop(name, None)
        self.enqueue_key(name)

    def _lease_seen(self, lease: Obj) -> None:
        name = str((lease.get("metadata") or {}).get("name", ""))
        renewed = str((lease.get("spec") or {}).get("renewTime") or "")
        if self.nodes.get(name) is None:
            return  # a Lease without its Node: the Node's first sight starts its clock
        heard = self._heard_of(name)
        if renewed and renewed != heard.renewed:
            heard.renewed = renewed
            heard.at = self.clock.monotonic()
        # no enqueue: the node's own timer (last heard + grace) looks at it in time

    def _grace(self, node: Obj) -> float:
        if condition(node, "Ready") is None:
            return self.config.startup_grace_period
        return self.config.grace_period

    def _silent_for(self, name: str) -> float:
        return self.clock.monotonic() - self._heard_of(name).at

    def healthy(self, node: Obj) -> bool:
        """Ready, and heard from within its grace period."""
        name = str((node.get("metadata") or {}).get("name", ""))
        return ready_status(node) == "True" and self._silent_for(name) <= self._grace(node)

    # -- reconcile -------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None:
            self._heard.pop(key, None)
            return None
        heard = self._heard_of(key)
        grace = self._grace(node)
        silent_for = self._silent_for(key)
        now = _now(self.clock.time())
        next_look: float | None = None
        if silent_for > grace:
            conditions = silenced_conditions(node, now)
            if conditions is not None:
                log.info("node %s: no word from its kubelet for %.1f s; marking it Unknown",
                         key, silent_for)
                node = await self.client.patch(NODES, key, {
                    "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                    "status": {"conditions": conditions}}, subresource="status")
        else:
            next_look = grace - silent_for + 0.001  # just after it would turn silent

        ready = ready_status(node)
        if ready != "True" and heard.ready in ("True", ""):
            self.record_event(node, NORMAL, "NodeNotReady", f"Node {key} status is now: NodeNotReady")
            await self._mark_pods_not_ready(key)
        elif ready == "True" and heard.ready not in ("True", ""):
            self.record_event(node, NORMAL, "NodeReady", f"Node {key} status is now: NodeReady")
        heard.ready = ready
        self._check_all_disrupted(healthy_now=ready == "True" and silent_for <= grace)

        taints = desired_taints(node, no_execute=self._no_execute_mode(node), now=now)
        if taints != ((node.get("spec") or {}).get("taints") or []):
            await self.client.patch(NODES, key, {
                "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]},
                "spec": {"taints": taints or None}})
        return next_look

    # -- disruption ------------------------------------------------------------------

    def _no_execute_mode(self, node: Obj) -> str:
        """``taint`` (add/keep NoExecute taints), ``hold`` (keep, add none) or ``clear``."""
        if ready_status(node) == "True":
            return "taint"  # nothing to add; stale ones go
        if self._all_disrupted:
            return "clear"
        key = NOT_READY if ready_status(node) == "False" else UNREACHABLE
        if any(t.get("key") == key and t.get("effect") == NO_EXECUTE
               for t in (node.get("spec") or {}).get("taints") or []):
            return "taint"  # already tainted: keep it
        return "taint" if self._zone_allows_eviction(zone_of(node)) else "hold"

    def _zone_allows_eviction(self, zone: str) -> bool:
        members = [n for n in self.nodes.list() if zone_of(n) == zone]
        unhealthy = sum(1 for n in members if not self.healthy(n))
        if unhealthy == len(members):
            log.info("zone %r: no healthy node; not evicting", zone.replace(":\x00:", "/"))
            return False
        if unhealthy > 2 and unhealthy / len(members) >= UNHEALTHY_ZONE_THRESHOLD \
                and len(members) <= LARGE_CLUSTER_SIZE_THRESHOLD:
            log.info("zone %r: %d of %d nodes unhealthy; not evicting", zone.replace(":\x00:", "/"),
                     unhealthy, len(members))
            return False
        return True

    def _check_all_disrupted(self, *, healthy_now: bool) -> None:
        """Enter/leave "every node is unhealthy" mode; re-look at every node on a change."""
        if healthy_now:
            if not self._all_disrupted:
                return
            disrupted = False
        elif self._all_disrupted:
            return
        else:
            nodes = self.nodes.list()
            disrupted = bool(nodes) and not any(self.healthy(n) for n in nodes)
            if not disrupted:
                return
        self._all_disrupted = disrupted
        if disrupted:
            log.warning("no node is healthy: assuming a control-plane or network problem; "
                        "not evicting any pods")
        else:
            log.info("a node is healthy again: leaving full-disruption mode")
        for name in self.nodes.keys():
            self.enqueue_key(name)

    # -- pods ------------------------------------------------------------------------

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        now = _now(self.clock.time())
        for pod in self.pods.by_index(NODE_NAME_INDEX, node_name):
            meta = pod.get("metadata") or {}
            conditions = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                continue
            updated = [dict(c, status="False", lastTransitionTime=now) if c.get("type") == "Ready"
                       else c for c in conditions]
            try:
                await self.client.patch(PODS, meta["name"], {
                    "metadata": {"uid": meta.get("uid")}, "status": {"conditions": updated}},
                    namespace=meta.get("namespace"), subresource="status")
            except StatusError as e:
                if e.code not in (404, 409, 422):
                    raise
                continue
            self.record_event(pod, WARNING, "NodeNotReady", "Node is not ready")
