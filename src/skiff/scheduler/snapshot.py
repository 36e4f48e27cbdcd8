"""The scheduler's view of the cluster: one NodeInfo per node, kept up to date incrementally.

::

    informer events ──▶ Snapshot.add_pod / remove_pod / update_node / ...   (cheap, O(pod))
                                   │
    schedule_one(snapshot, pod) ───┘  reads NodeInfos; never mutates them
                                      (preemption simulates on NodeInfo.clone())

A :class:`NodeInfo` aggregates what is on a node: its pods, the sum of their
requests (and of the non-zero requests used for scoring), the host ports in
use, PVC reference counts and the images the node reports.  A pod bound to a
node the snapshot has not seen yet lands on a placeholder NodeInfo whose
``node`` is ``None``; placeholders are not offered to the scheduler.

*Assumed* pods are pods the scheduler placed but whose binding the informer has
not confirmed yet: :meth:`Snapshot.assume` adds them like bound pods; the
informer's update (now with ``spec.nodeName``) replaces them;
:meth:`Snapshot.forget` drops them if binding fails.

Outside data some plugins need (PVCs, namespace labels, PodDisruptionBudgets)
is held here too, set by the component from its informers.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from .podinfo import PodInfo, pod_key
from .resources import Resources
from .selectors import LabelMatcher

Obj = dict[str, Any]


def normalize_image(name: str) -> str:
    """``nginx`` -> ``nginx:latest``; digests and explicit tags are kept."""
    if "@" in name:
        return name
    if ":" in name.rsplit("/", 1)[-1]:
        return name
    return name + ":latest"


_FILTER_EFFECTS = ("NoSchedule", "NoExecute")


def _mark(names: set[str], name: str, on: bool) -> None:
    if on:
        names.add(name)
    else:
        names.discard(name)


def _same_scheduling_inputs(old: Obj, new: Obj) -> bool:
    """Do two versions of a Node agree on everything NodeInfo.set_node reads?"""
    if old.get("spec") != new.get("spec") or \
            (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
        return False
    os, ns = old.get("status") or {}, new.get("status") or {}
    return (os.get("allocatable") == ns.get("allocatable") and os.get("capacity") == ns.get("capacity")
            and os.get("images") == ns.get("images"))


class NodeInfo:
    """A node and the pods on it, with running sums."""

    __slots__ = ("node", "name", "labels", "taints", "unschedulable", "allocatable",
                 "requested", "non_zero_cpu", "non_zero_memory", "pods",
                 "pods_with_affinity", "pods_with_required_anti_affinity",
                 "used_ports", "images", "pvc_refs", "generation")

    def __init__(self, name: str, node: Obj | None = None) -> None:
        self.name = name
        self.node: Obj | None = None
        self.labels: Mapping[str, str] = {}
        self.taints: tuple[Obj, ...] = ()
        self.unschedulable = False
        self.allocatable = Resources()
        self.images: dict[str, int] = {}
        self.requested = Resources()
        self.non_zero_cpu = 0
        self.non_zero_memory = 0
        self.pods: dict[str, PodInfo] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, PodInfo] = {}
        self.used_ports: dict[tuple[str, int], dict[str, int]] = {}
        self.pvc_refs: dict[str, int] = {}
        self.generation = 0
        if node is not None:
            self.set_node(node)

    # -- node -----------------------------------------------------------------------

    def set_node(self, node: Obj) -> None:
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.node = node
        self.labels = meta.get("labels") or {}
        self.taints = tuple(spec.get("taints") or ())
        self.unschedulable = bool(spec.get("unschedulable"))
        self.allocatable = Resources.from_list(status.get("allocatable") or status.get("capacity") or {})
        images: dict[str, int] = {}
        for image in status.get("images") or ():
            size = int(image.get("sizeBytes") or 0)
            for n in image.get("names") or ():
                images[normalize_image(n)] = size
        self.images = images
        self.generation += 1

    # -- pods -----------------------------------------------------------------------

    def add_pod(self, pi: PodInfo) -> None:
        if pi.key in self.pods:
            self.remove_pod(pi.key)
        self.pods[pi.key] = pi
        self._account(pi, 1)
        if pi.has_affinity:
            self.pods_with_affinity[pi.key] = pi
        if pi.required_anti_affinity:
            self.pods_with_required_anti_affinity[pi.key] = pi
        self.generation += 1

    def remove_pod(self, key: str) -> PodInfo | None:
        pi = self.pods.pop(key, None)
        if pi is None:
            return None
        self._account(pi, -1)
        self.pods_with_affinity.pop(key, None)
        self.pods_with_required_anti_affinity.pop(key, None)
        self.generation += 1
        return pi

    def _account(self, pi: PodInfo, sign: int) -> None:
        self.requested.add(pi.requests, sign)
        self.non_zero_cpu += sign * pi.non_zero_cpu
        self.non_zero_memory += sign * pi.non_zero_memory
        for ip, proto, port in pi.host_ports:
            slot = self.used_ports.setdefault((proto, port), {})
            n = slot.get(ip, 0) + sign
            if n > 0:
                slot[ip] = n
            else:
                slot.pop(ip, None)
                if not slot:
                    del self.used_ports[(proto, port)]
        for claim in pi.pvc_names:
            key = f"{pi.namespace}/{claim}"
            n = self.pvc_refs.get(key, 0) + sign
            if n > 0:
                self.pvc_refs[key] = n
            else:
                self.pvc_refs.pop(key, None)

    def port_in_use(self, ip: str, proto: str, port: int) -> bool:
        """0.0.0.0 conflicts with every address on the same protocol and port."""
        slot = self.used_ports.get((proto, port))
        if not slot:
            return False
        if ip == "0.0.0.0":
            return True
        return ip in slot or "0.0.0.0" in slot

    @property
    def pod_count(self) -> int:
        return len(self.pods)

    def clone(self) -> NodeInfo:
        """An independent copy for what-if simulation (preemption)."""
        c = NodeInfo(self.name)
        c.node, c.labels, c.taints, c.unschedulable = self.node, self.labels, self.taints, self.unschedulable
        c.allocatable, c.images = self.allocatable, self.images
        c.requested = self.requested.clone()
        c.non_zero_cpu, c.non_zero_memory = self.non_zero_cpu, self.non_zero_memory
        c.pods = dict(self.pods)
        c.pods_with_affinity = dict(self.pods_with_affinity)
        c.pods_with_required_anti_affinity = dict(self.pods_with_required_anti_affinity)
        c.used_ports = {k: dict(v) for k, v in self.used_ports.items()}
        c.pvc_refs = dict(self.pvc_refs)
        c.generation = self.generation
        return c

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, pods={len(self.pods)}, requested={self.requested!r})"


class Snapshot:
    """All NodeInfos plus the cluster data plugins look up.  Mutated only between cycles."""

    def __init__(self, nodes: list[Obj] | None = None, pods: list[Obj] | None = None) -> None:
        self._infos: dict[str, NodeInfo] = {}
        self._order: list[str] = []          # names of real nodes, in arrival order
        self._list_cache: list[NodeInfo] | None = None
        self._pods: dict[str, PodInfo] = {}  # bound and assumed pods by key
        self.assumed: set[str] = set()
        self.pvcs: dict[str, Obj] = {}               # "ns/name" -> PersistentVolumeClaim
        self.namespace_labels: dict[str, Mapping[str, str]] = {}
        self.pdbs: list[Obj] = []                    # PodDisruptionBudgets (optional)
        # The selector of the Services/ReplicaSets/StatefulSets that select a pod, for
        # PodTopologySpread's system default constraints (None: no default spreading).
        self.default_spread_selector: Callable[[PodInfo], LabelMatcher | None] | None = None
        self.image_nodes: dict[str, int] = {}        # image -> number of nodes reporting it
        # Cluster-wide facts that let plugins skip per-node work for a whole cycle:
        self.cordoned: set[str] = set()              # nodes with spec.unschedulable
        self.tainted: set[str] = set()               # nodes with a NoSchedule/NoExecute taint
        self.affinity_pods = 0                       # assigned pods with pod (anti-)affinity terms
        self.anti_affinity_pods = 0                  # ... with required anti-affinity terms
        self.generation = 0
        for n in nodes or ():
            self.add_node(n)
        for p in pods or ():
            self.add_pod(p)

    # -- nodes ------------------------------------------------------------------------

    def add_node(self, node: Obj) -> NodeInfo:
        return self.update_node(node)

    def update_node(self, node: Obj) -> NodeInfo:
        name = (node.get("metadata") or {}).get("name", "")
        info = self._infos.get(name)
        if info is None:
            info = self._infos[name] = NodeInfo(name)
        elif info.node is not None and _same_scheduling_inputs(info.node, node):
            info.node = node    # a heartbeat: nothing the plugins read has changed
            return info
        if info.node is None:
            self._order.append(name)
            self._list_cache = None
        self._count_images(info, -1)
        info.set_node(node)
        self._count_images(info, 1)
        _mark(self.cordoned, name, info.unschedulable)
        _mark(self.tainted, name, any(t.get("effect") in _FILTER_EFFECTS for t in info.taints))
        self.generation += 1
        return info

    def remove_node(self, name: str) -> None:
        info = self._infos.get(name)
        if info is None or info.node is None:
            return
        self._count_images(info, -1)
        self.cordoned.discard(name)
        self.tainted.discard(name)
        self._order.remove(name)
        self._list_cache = None
        if info.pods:
            info.node = None       # keep the pods until their deletions arrive
            info.labels, info.taints, info.images = {}, (), {}
        else:
            del self._infos[name]
        self.generation += 1

    def _count_images(self, info: NodeInfo, sign: int) -> None:
        if info.node is None:
            return
        for image in info.images:
            n = self.image_nodes.get(image, 0) + sign
            if n > 0:
                self.image_nodes[image] = n
            else:
                self.image_nodes.pop(image, None)

    def get(self, name: str) -> NodeInfo | None:
        info = self._infos.get(name)
        return info if info is not None and info.node is not None else None

    def node_infos(self) -> list[NodeInfo]:
        """Real nodes in a stable order (the list is cached until nodes come or go)."""
        if self._list_cache is None:
            self._list_cache = [self._infos[n] for n in self._order]
        return self._list_cache

    @property
    def num_nodes(self) -> int:
        return len(self._order)

    # -- pods -------------------------------------------------------------------------

    def add_pod(self, pod: Obj | PodInfo) -> PodInfo | None:
        """Account a pod bound to a node (``spec.nodeName``); unbound pods are ignored.

        A newer version of a pod already here whose spec and labels did not change
        (status updates, the confirmation of an assumed binding) reuses its digest.
        """
        if isinstance(pod, PodInfo):
            pi = pod
        else:
            known = self._pods.get(pod_key(pod))
            pi = known.refreshed(pod) if known is not None and known.same_inputs(pod) else PodInfo(pod)
        if not pi.node_name:
            self.remove_pod(pi.key)
            return None
        old = self._pods.get(pi.key)
        if old is not None:
            self._detach(old)
        self.assumed.discard(pi.key)
        info = self._infos.get(pi.node_name)
        if info is None:
            info = self._infos[pi.node_name] = NodeInfo(pi.node_name)
        info.add_pod(pi)
        self._pods[pi.key] = pi
        if pi.has_affinity:
            self.affinity_pods += 1
        if pi.required_anti_affinity:
            self.anti_affinity_pods += 1
        self.generation += 1
        return pi

    update_pod = add_pod

    def remove_pod(self, key_or_pod: str | Obj) -> PodInfo | None:
        key = key_or_pod if isinstance(key_or_pod, str) else PodInfo(key_or_pod).key
        pi = self._pods.pop(key, None)
        self.assumed.discard(key)
        if pi is None:
            return None
        self._detach(pi)
        self.generation += 1
        return pi

    def _detach(self, pi: PodInfo) -> None:
        if pi.has_affinity:
            self.affinity_pods -= 1
        if pi.required_anti_affinity:
            self.anti_affinity_pods -= 1
        info = self._infos.get(pi.node_name)
        if info is None:
            return
        info.remove_pod(pi.key)
        if info.node is None and not info.pods:
            del self._infos[pi.node_name]

    def assume(self, pod: Obj | PodInfo, node_name: str) -> PodInfo:
        """Place a pod the scheduler just chose, ahead of the informer's confirmation."""
        pi = (pod if isinstance(pod, PodInfo) else PodInfo(pod)).with_node(node_name)
        self.add_pod(pi)
        self.assumed.add(pi.key)
        return pi

    def forget(self, key: str) -> None:
        """Drop an assumed pod whose binding failed."""
        if key in self.assumed:
            self.remove_pod(key)

    def pod(self, key: str) -> PodInfo | None:
        return self._pods.get(key)

    def pods(self) -> Iterator[PodInfo]:
        return iter(self._pods.values())

    @property
    def num_pods(self) -> int:
        return len(self._pods)

    def nodes_with_affinity_pods(self) -> list[NodeInfo]:
        if not self.affinity_pods:
            return []
        return [i for i in self.node_infos() if i.pods_with_affinity]

    def nodes_with_required_anti_affinity_pods(self) -> list[NodeInfo]:
        if not self.anti_affinity_pods:
            return []
        return [i for i in self.node_infos() if i.pods_with_required_anti_affinity]

    # -- other cluster data ---------------------------------------------------------------

    def ns_labels(self, namespace: str) -> Mapping[str, str] | None:
        return self.namespace_labels.get(namespace)

    def pvc(self, namespace: str, name: str) -> Obj | None:
        return self.pvcs.get(f"{namespace}/{name}")

    def pvc_in_use(self, key: str) -> bool:
        for info in self._infos.values():
            if info.pvc_refs.get(key):
                return True
        return False
