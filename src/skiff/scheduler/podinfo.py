"""PodInfo: everything the plugins need from a pod, computed once per pod.

The scheduler looks at every existing pod many times per cycle (resource sums,
affinity, spreading), so each pod object is digested once — requests as
integers, host ports, compiled affinity terms, PVC names — when it enters the
snapshot or the queue.  Pod objects are never mutated.

Affinity terms (``podAffinity`` / ``podAntiAffinity``)::

    AffinityTerm(namespaces, namespace_selector, selector, topology_key)

A term selects pods whose namespace is listed in ``namespaces`` (the owning
pod's own namespace when both ``namespaces`` and ``namespaceSelector`` are
unset) or whose namespace's labels match ``namespaceSelector``, and whose
labels match ``selector``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .resources import Resources, pod_non_zero_requests, pod_requests
from .selectors import NOTHING, LabelMatcher, label_selector

Obj = dict[str, Any]
NamespaceLabels = Callable[[str], Mapping[str, str] | None]


@dataclass(frozen=True, slots=True)
class AffinityTerm:
    namespaces: frozenset[str]
    namespace_selector: LabelMatcher
    selector: LabelMatcher
    topology_key: str

    def matches(self, pod: PodInfo, ns_labels: NamespaceLabels) -> bool:
        if pod.namespace in self.namespaces or (
                not self.namespace_selector.nothing
                and self.namespace_selector.matches(ns_labels(pod.namespace))):
            return self.selector.matches(pod.labels)
        return False


@dataclass(frozen=True, slots=True)
class WeightedAffinityTerm:
    term: AffinityTerm
    weight: int


def _term(namespace: str, t: Obj) -> AffinityTerm:
    namespaces = t.get("namespaces") or []
    ns_selector_obj = t.get("namespaceSelector")
    if not namespaces and ns_selector_obj is None:
        names = frozenset([namespace])
    else:
        names = frozenset(namespaces)
    return AffinityTerm(
        namespaces=names,
        namespace_selector=label_selector(ns_selector_obj) if ns_selector_obj is not None else NOTHING,
        selector=label_selector(t.get("labelSelector")),
        topology_key=str(t.get("topologyKey") or ""),
    )


def _required(namespace: str, section: Obj | None) -> tuple[AffinityTerm, ...]:
    terms = (section or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []
    return tuple(_term(namespace, t) for t in terms)


def _preferred(namespace: str, section: Obj | None) -> tuple[WeightedAffinityTerm, ...]:
    terms = (section or {}).get("preferredDuringSchedulingIgnoredDuringExecution") or []
    return tuple(WeightedAffinityTerm(_term(namespace, t.get("podAffinityTerm") or {}), int(t.get("weight") or 0))
                 for t in terms)


def pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name', '')}"


HostPort = tuple[str, str, int]  # (hostIP, protocol, hostPort)


def host_ports(pod: Obj) -> tuple[HostPort, ...]:
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or ())
    containers += [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    out: list[HostPort] = []
    for c in containers:
        for p in c.get("ports") or ():
            port = int(p.get("hostPort") or 0)
            if port <= 0:
                continue
            out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", port))
    return tuple(out)


class PodInfo:
    """A digested pod.  ``pod`` is the original object (read-only)."""

    __slots__ = ("pod", "key", "uid", "namespace", "name", "labels", "priority", "node_name",
                 "requests", "non_zero_cpu", "non_zero_memory", "host_ports",
                 "required_affinity", "required_anti_affinity",
                 "preferred_affinity", "preferred_anti_affinity",
                 "pvc_names", "deleting", "start_time", "tolerations")

    def __init__(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        self.pod = pod
        self.namespace: str = meta.get("namespace") or "default"
        self.name: str = meta.get("name", "")
        self.key = f"{self.namespace}/{self.name}"
        self.uid: str = meta.get("uid", "")
        self.labels: Mapping[str, str] = meta.get("labels") or {}
        self.priority: int = int(spec.get("priority") or 0)
        self.node_name: str = spec.get("nodeName") or ""
        self.requests: Resources = pod_requests(pod)
        self.non_zero_cpu, self.non_zero_memory = pod_non_zero_requests(pod)
        self.host_ports = host_ports(pod)
        affinity = spec.get("affinity") or {}
        pa, paa = affinity.get("podAffinity"), affinity.get("podAntiAffinity")
        self.required_affinity = _required(self.namespace, pa)
        self.required_anti_affinity = _required(self.namespace, paa)
        self.preferred_affinity = _preferred(self.namespace, pa)
        self.preferred_anti_affinity = _preferred(self.namespace, paa)
        self.pvc_names: tuple[str, ...] = tuple(
            v["persistentVolumeClaim"].get("claimName", "")
            for v in spec.get("volumes") or () if v.get("persistentVolumeClaim"))
        self.deleting = bool(meta.get("deletionTimestamp"))
        status = pod.get("status") or {}
        self.start_time: str = status.get("startTime") or meta.get("creationTimestamp") or ""
        self.tolerations: tuple[Obj, ...] = tuple(spec.get("tolerations") or ())

    def same_inputs(self, pod: Obj) -> bool:
        """Would ``PodInfo(pod)`` digest to the same requests, affinity, ports ...?

        True when ``pod``'s spec and labels equal this one's (a status change, a
        new resourceVersion, the informer confirming an assumed binding).
        """
        return (((pod.get("metadata") or {}).get("labels") or {}) == self.labels
                and pod.get("spec") == self.pod.get("spec"))

    def refreshed(self, pod: Obj) -> PodInfo:
        """This digest for a newer version of the pod for which :meth:`same_inputs` holds:
        only what comes from metadata and status is read again (no requests parsed)."""
        return self._copy(pod, (pod.get("spec") or {}).get("nodeName") or "")

    def with_node(self, node_name: str) -> PodInfo:
        """This pod as if bound to ``node_name`` (what the scheduler assumes before binding)."""
        bound = dict(self.pod)
        bound["spec"] = dict(self.pod.get("spec") or {}, nodeName=node_name)
        return self._copy(bound, node_name)

    def _copy(self, pod: Obj, node_name: str) -> PodInfo:
        c = PodInfo.__new__(PodInfo)
        for slot in _DIGESTED:
            setattr(c, slot, getattr(self, slot))
        meta = pod.get("metadata") or {}
        c.pod = pod
        c.node_name = node_name
        c.uid = meta.get("uid", "")
        c.deleting = bool(meta.get("deletionTimestamp"))
        c.start_time = (pod.get("status") or {}).get("startTime") or meta.get("creationTimestamp") or ""
        return c

    @property
    def has_affinity(self) -> bool:
        return bool(self.required_affinity or self.required_anti_affinity
                    or self.preferred_affinity or self.preferred_anti_affinity)

    def __repr__(self) -> str:
        return f"PodInfo({self.key} on {self.node_name or '-'})"


# What PodInfo.refreshed keeps: everything digested from the pod's identity, spec and labels.
_DIGESTED = tuple(slot for slot in PodInfo.__slots__
                  if slot not in ("pod", "node_name", "uid", "deleting", "start_time"))
