"""What an object counts against a ResourceQuota: Kubernetes' quota evaluators.

Quota admission (in the API server) and the ResourceQuota controller (a client)
must agree to the byte on what an object uses, so both ask this module.  An
:class:`Evaluator` knows one kind::

    matching(names)        which quota resource names it can count
    usage(obj, now)        what one object uses   {"pods": 1, "requests.cpu": 500m, ...}
    matches_scope(sel, o)  whether ``o`` is inside a quota scope (pods only)
    handles_update         whether an update can change usage (Services, claims)
    constraints(names, o)  a reason to refuse ``o`` outright (pods: cpu/memory unset)

Kinds and what they count (names are the keys of ``spec.hard``):

    pods        pods, cpu, memory, ephemeral-storage, requests.*, limits.*,
                hugepages-*, requests.<extended>, count/pods
                (a Succeeded/Failed pod, or one stuck past its deletion grace
                period, counts only for count/pods)
    services    services, services.nodeports, services.loadbalancers, count/services
    persistentvolumeclaims
                persistentvolumeclaims, requests.storage, count/persistentvolumeclaims,
                <class>.storageclass.storage.k8s.io/{persistentvolumeclaims,requests.storage}
    configmaps, secrets, replicationcontrollers, resourcequotas
                the legacy name and count/<plural>
    anything else
                count/<plural>.<group> (count/<plural> for the core group)

Scopes (``spec.scopes`` and ``spec.scopeSelector``) only ever match pods: Terminating
(``activeDeadlineSeconds`` set), NotTerminating, BestEffort (no cpu/memory request or
limit anywhere), NotBestEffort, PriorityClass (``In``/``NotIn``/``Exists``/
``DoesNotExist`` on the pod's ``priorityClassName``) and CrossNamespacePodAffinity.
A quota with any scope never matches other kinds.

:func:`calculate_usage` totals a namespace's objects for one quota, the way the
controller fills ``status.used``; :func:`kinds_to_list` says which kinds it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from .kinds.meta.cells import parse_time
from .kinds.podspec.qos import pod_qos_class
from .quantity import Quantity
from .resourcelist import ZERO, ResourceList, add, mask, parse_list, pod_limits, pod_requests

Obj = dict[str, Any]
Selector = dict[str, Any]  # a ScopedResourceSelectorRequirement

ONE = Quantity(1)

POD_RESOURCES = frozenset({
    "count/pods", "pods", "cpu", "memory", "ephemeral-storage",
    "requests.cpu", "requests.memory", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage",
})
POD_PREFIXES = ("hugepages-", "requests.hugepages-")
#: Tracking one of these makes every container name it (a Kubernetes compatibility rule).
MUST_BE_SET = frozenset({"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu",
                         "limits.memory"})
SERVICE_RESOURCES = frozenset({"count/services", "services", "services.nodeports",
                               "services.loadbalancers"})
CLAIM_RESOURCES = ("persistentvolumeclaims", "requests.storage")
STORAGE_CLASS_INFIX = ".storageclass.storage.k8s.io/"
STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
#: Kinds whose plain name predates count/<plural>.
LEGACY_COUNTS = {"configmaps": "configmaps", "secrets": "secrets",
                 "replicationcontrollers": "replicationcontrollers",
                 "resourcequotas": "resourcequotas"}
#: Never quota-ed: not stored, or (events) never counted.
IGNORED = frozenset({
    ("", "events"), ("", "bindings"), ("", "componentstatuses"),
    ("authentication.k8s.io", "tokenreviews"), ("authentication.k8s.io", "selfsubjectreviews"),
    ("authorization.k8s.io", "subjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
    ("authorization.k8s.io", "localsubjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectrulesreviews"),
})


def count_name(group: str, plural: str) -> str:
    """``count/deployments.apps``; ``count/pods`` for the core group."""
    return f"count/{plural}.{group}" if group else f"count/{plural}"


def kind_of_count(name: str) -> tuple[str, str] | None:
    """``count/deployments.apps`` -> ``("apps", "deployments")``; None for other names."""
    if not name.startswith("count/"):
        return None
    plural, _, group = name[len("count/"):].partition(".")
    return (group, plural) if plural else None


# -- evaluators ------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluator:
    """Counts objects of one kind: each counts ``count/<plural>`` (and its legacy alias)."""

    group: str
    plural: str
    alias: str = ""
    handles_update: bool = False

    @property
    def names(self) -> frozenset[str]:
        own = {count_name(self.group, self.plural)}
        return frozenset(own | {self.alias}) if self.alias else frozenset(own)

    def matching(self, names: Iterable[str]) -> list[str]:
        return sorted(n for n in names if n in self.names)

    def usage(self, obj: Obj, now: datetime) -> ResourceList:
        return {name: ONE for name in self.names}

    def matches_scope(self, selector: Selector, obj: Obj) -> bool:
        return False

    def constraints(self, names: Iterable[str], obj: Obj) -> str | None:
        return None


class PodEvaluator(Evaluator):
    def matching(self, names: Iterable[str]) -> list[str]:
        return sorted(n for n in names
                      if n in POD_RESOURCES or n.startswith(POD_PREFIXES) or _extended_quota_name(n))

    def usage(self, obj: Obj, now: datetime) -> ResourceList:
        out: ResourceList = {"count/pods": ONE}
        if not pod_counts(obj, now):
            return out
        spec = obj.get("spec") or {}
        out.update(_compute_usage(pod_requests(spec), pod_limits(spec)))
        return out

    def matches_scope(self, selector: Selector, obj: Obj) -> bool:
        spec = obj.get("spec") or {}
        scope = str(selector.get("scopeName") or "")
        if scope in ("Terminating", "NotTerminating"):
            deadline = spec.get("activeDeadlineSeconds")
            terminating = deadline is not None and int(deadline) >= 0
            return terminating == (scope == "Terminating")
        if scope in ("BestEffort", "NotBestEffort"):
            return (pod_qos_class(spec) == "BestEffort") == (scope == "BestEffort")
        if scope == "PriorityClass":
            return _priority_class_matches(selector, spec.get("priorityClassName") or "")
        if scope == "CrossNamespacePodAffinity":
            return _cross_namespace_affinity(spec)
        return False

    def constraints(self, names: Iterable[str], obj: Obj) -> str | None:
        required = set(names) & MUST_BE_SET
        if not required:
            return None
        spec = obj.get("spec") or {}
        missing: dict[str, set[str]] = {}
        for section in ("containers", "initContainers"):
            for container in spec.get(section) or []:
                res = container.get("resources") or {}
                have = _compute_usage(parse_list(res.get("requests")), parse_list(res.get("limits")))
                for name in required - have.keys():
                    missing.setdefault(name, set()).add(str(container.get("name", "")))
        if not missing:
            return None
        parts = [f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing)]
        return "must specify " + "; ".join(parts)


class ServiceEvaluator(Evaluator):
    def matching(self, names: Iterable[str]) -> list[str]:
        return sorted(n for n in names if n in SERVICE_RESOURCES)

    def usage(self, obj: Obj, now: datetime) -> ResourceList:
        spec = obj.get("spec") or {}
        ports = spec.get("ports") or []
        out: ResourceList = {"count/services": ONE, "services": ONE,
                             "services.loadbalancers": ZERO, "services.nodeports": ZERO}
        kind = spec.get("type")
        if kind == "NodePort":
            out["services.nodeports"] = Quantity(len(ports))
        elif kind == "LoadBalancer":
            if spec.get("allocateLoadBalancerNodePorts") is False:
                out["services.nodeports"] = Quantity(sum(1 for p in ports if p.get("nodePort")))
            else:
                out["services.nodeports"] = Quantity(len(ports))
            out["services.loadbalancers"] = ONE
        return out


class ClaimEvaluator(Evaluator):
    def matching(self, names: Iterable[str]) -> list[str]:
        out = []
        for n in names:
            if n == "count/persistentvolumeclaims" or n in CLAIM_RESOURCES or any(
                    n.endswith(STORAGE_CLASS_INFIX + r) for r in CLAIM_RESOURCES):
                out.append(n)
        return sorted(out)

    def usage(self, obj: Obj, now: datetime) -> ResourceList:
        out: ResourceList = {"persistentvolumeclaims": ONE, "count/persistentvolumeclaims": ONE}
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        spec = obj.get("spec") or {}
        storage_class = annotations.get(STORAGE_CLASS_ANNOTATION, spec.get("storageClassName") or "")
        if storage_class:
            out[f"{storage_class}{STORAGE_CLASS_INFIX}persistentvolumeclaims"] = ONE
        requested = parse_list((spec.get("resources") or {}).get("requests")).get("storage")
        if requested is not None:
            whole = Quantity(requested.value(), requested.format)  # whole bytes, rounded up
            out["requests.storage"] = whole
            if storage_class:
                out[f"{storage_class}{STORAGE_CLASS_INFIX}requests.storage"] = whole
        return out


def evaluator_for(group: str, plural: str) -> Evaluator | None:
    """The evaluator of a kind (a plain object counter for most); None when never quota-ed."""
    if (group, plural) in IGNORED:
        return None
    if group == "":
        if plural == "pods":
            return PodEvaluator("", "pods")
        if plural == "services":
            return ServiceEvaluator("", "services", handles_update=True)
        if plural == "persistentvolumeclaims":
            return ClaimEvaluator("", "persistentvolumeclaims", handles_update=True)
        if plural in LEGACY_COUNTS:
            return Evaluator("", plural, alias=LEGACY_COUNTS[plural])
    return Evaluator(group, plural)


def kind_for_name(name: str) -> tuple[str, str] | None:
    """The kind whose objects a quota resource name counts (None: nothing counts it)."""
    for kind in (("", "pods"), ("", "services"), ("", "persistentvolumeclaims")):
        evaluator = evaluator_for(*kind)
        if evaluator is not None and evaluator.matching([name]):
            return kind
    for plural, alias in LEGACY_COUNTS.items():
        if name == alias:
            return ("", plural)
    counted = kind_of_count(name)
    if counted is None or counted in IGNORED:
        return None
    return counted


# -- pods ----------------------------------------------------------------------------


def pod_counts(pod: Obj, now: datetime) -> bool:
    """Whether a pod is charged for compute resources: not Succeeded/Failed, and not
    stuck in deletion past ``deletionTimestamp + deletionGracePeriodSeconds``."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    meta = pod.get("metadata") or {}
    deleting = parse_time(meta.get("deletionTimestamp"))
    grace = meta.get("deletionGracePeriodSeconds")
    if deleting is not None and grace is not None:
        if now > deleting + timedelta(seconds=int(grace)):
            return False
    return True


def _extended_quota_name(name: str) -> bool:
    """``requests.example.com/gpu``: an extended resource, quota-ed by its requests only."""
    return name.startswith("requests.") and "/" in name and "kubernetes.io/" not in name


def _extended_resource(name: str) -> bool:
    return "/" in name and "kubernetes.io/" not in name and not name.startswith("requests.")


def _compute_usage(requests: ResourceList, limits: ResourceList) -> ResourceList:
    out: ResourceList = {"pods": ONE}
    for resource in ("cpu", "memory", "ephemeral-storage"):
        if resource in requests:
            out[resource] = out[f"requests.{resource}"] = requests[resource]
        if resource in limits:
            out[f"limits.{resource}"] = limits[resource]
    for name, amount in requests.items():
        if name.startswith("hugepages-"):
            out[name] = out[f"requests.{name}"] = amount
        elif _extended_resource(name):
            out[f"requests.{name}"] = amount
    return out


def _priority_class_matches(selector: Selector, name: str) -> bool:
    op = selector.get("operator")
    values = selector.get("values") or []
    if op == "Exists":
        return bool(name)
    if op == "DoesNotExist":
        return not name
    if op == "In":
        return bool(name) and name in values
    if op == "NotIn":
        return not name or name not in values
    return False


def _cross_namespace_affinity(spec: Obj) -> bool:
    affinity = spec.get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        rules = affinity.get(kind) or {}
        terms = list(rules.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        terms += [w.get("podAffinityTerm") or {}
                  for w in rules.get("preferredDuringSchedulingIgnoredDuringExecution") or []]
        if any(t.get("namespaces") or t.get("namespaceSelector") is not None for t in terms):
            return True
    return False


# -- quotas ----------------------------------------------------------------------------


def scope_selectors(quota: Obj) -> list[Selector]:
    """``spec.scopes`` (as ``Exists`` requirements) followed by ``spec.scopeSelector``."""
    spec = quota.get("spec") or {}
    out: list[Selector] = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    out += list((spec.get("scopeSelector") or {}).get("matchExpressions") or [])
    return out


def matches(evaluator: Evaluator, quota: Obj, hard: ResourceList, obj: Obj) -> bool:
    """The quota tracks something of ``obj``'s kind and ``obj`` is inside every scope."""
    if not evaluator.matching(hard):
        return False
    return all(evaluator.matches_scope(sel, obj) for sel in scope_selectors(quota))


def kinds_to_list(quota: Obj) -> list[tuple[str, str]]:
    """The kinds whose objects :func:`calculate_usage` needs for ``quota``."""
    kinds = {kind_for_name(name) for name in (quota.get("spec") or {}).get("hard") or {}}
    return sorted(k for k in kinds if k is not None)


def calculate_usage(quota: Obj, list_objects: Callable[[str, str], Iterable[Obj]],
                    now: datetime) -> ResourceList:
    """What the namespace's objects use of everything ``spec.hard`` names that can be counted.

    ``list_objects(group, plural)`` returns the quota's namespace's objects of a kind
    (only the kinds :func:`kinds_to_list` names are asked for).  Counted resources
    nothing uses are present with zero.
    """
    hard_names = list((quota.get("spec") or {}).get("hard") or {})
    selectors = scope_selectors(quota)
    used: ResourceList = {}
    for group, plural in kinds_to_list(quota):
        evaluator = evaluator_for(group, plural)
        if evaluator is None:
            continue
        names = evaluator.matching(hard_names)
        total: ResourceList = {name: ZERO for name in names}
        for obj in list_objects(group, plural):
            if all(evaluator.matches_scope(sel, obj) for sel in selectors):
                total = add(total, mask(evaluator.usage(obj, now), names))
        used.update(total)
    return used
