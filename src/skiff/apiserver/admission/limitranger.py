"""LimitRanger admission: a namespace's LimitRanges default and bound resources.

As Kubernetes' LimitRanger plugin, for every LimitRange in the namespace (by name):

* **mutating**, on Pod create: each container (and init container) without a
  request or limit for a resource the range's ``Container`` item has a
  ``defaultRequest``/``default`` for gets that value, and the pod is annotated
  ``kubernetes.io/limit-ranger: "LimitRanger plugin set: cpu, memory request for
  container app; cpu limit for container app"``;
* **validating**, on Pod create and PersistentVolumeClaim create/update (not once
  the claim is being deleted): the first range with violations refuses the write,
  403 ``pods "x" is forbidden: maximum cpu usage per Container is 1, but limit is 2``
  (several violations: ``[first, second]``, duplicates once).

Checks per item type::

    Container  each container:  min (request, and limit if set) >= min
                                max (limit, and request if set) <= max
                                limit / request                 <= maxLimitRequestRatio
    Pod        the pod's totals (pod_requests / pod_limits, without overhead), same checks
    PersistentVolumeClaim       spec.resources.requests: min and max

Amounts are compared in thousandths (whole units for amounts too large for
that), rounded up, as Kubernetes does.
"""

from __future__ import annotations

from typing import Any, Callable

from ...api.quantity import Quantity
from ...api.resourcelist import ResourceList, format_list, parse_list, pod_limits, pod_requests
from .namespaced import NamespacedObjects

Obj = dict[str, Any]

ANNOTATION = "kubernetes.io/limit-ranger"
#: Above this a milli-value would overflow Kubernetes' int64: compare whole units.
MAX_MILLI_VALUE = (2**63 - 1) // 1000


def _comparable(*amounts: Quantity) -> list[int]:
    """Integers at one precision: thousandths when every amount allows, else units."""
    if all(q.value() <= MAX_MILLI_VALUE for q in amounts):
        return [q.milli_value() for q in amounts]
    return [q.value() for q in amounts]


_ZERO = Quantity(0)


def min_violation(kind: str, name: str, enforced: Quantity, requests: ResourceList,
                  limits: ResourceList) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    r, l, e = _comparable(req or _ZERO, lim or _ZERO, enforced)
    if req is None:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified"
    if r < e:
        return f"minimum {name} usage per {kind} is {enforced}, but request is {req}"
    if lim is not None and l < e:
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {lim}"
    return None


def max_violation(kind: str, name: str, enforced: Quantity, requests: ResourceList,
                  limits: ResourceList) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    r, l, e = _comparable(req or _ZERO, lim or _ZERO, enforced)
    if lim is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"
    if l > e:
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {lim}"
    if req is not None and r > e:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return None


def max_request_violation(kind: str, name: str, enforced: Quantity,
                          requests: ResourceList) -> str | None:
    """The max check of kinds without limits (claims): the request alone."""
    req = requests.get(name)
    r, _, e = _comparable(req or _ZERO, _ZERO, enforced)
    if req is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No request is specified"
    if r > e:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return None


def ratio_violation(kind: str, name: str, enforced: Quantity, requests: ResourceList,
                    limits: ResourceList) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    r, l, _ = _comparable(req or _ZERO, lim or _ZERO, enforced)
    if req is None or r == 0:
        return (f"{name} max limit to request ratio per {kind} is {enforced}, "
                "but no request is specified or request is 0")
    if lim is None or l == 0:
        return (f"{name} max limit to request ratio per {kind} is {enforced}, "
                "but no limit is specified or limit is 0")
    observed = l / r
    allowed = float(enforced.value())
    scaled = observed
    if enforced.value() <= MAX_MILLI_VALUE:
        scaled, allowed = observed * 1000, float(enforced.milli_value())
    if scaled > allowed:
        return (f"{name} max limit to request ratio per {kind} is {enforced}, "
                f"but provided ratio is {observed:f}")
    return None


def _bounds(item: Obj, kind: str, requests: ResourceList, limits: ResourceList) -> list[str]:
    found = []
    for name, q in sorted(parse_list(item.get("min")).items()):
        found.append(min_violation(kind, name, q, requests, limits))
    for name, q in sorted(parse_list(item.get("max")).items()):
        found.append(max_violation(kind, name, q, requests, limits))
    for name, q in sorted(parse_list(item.get("maxLimitRequestRatio")).items()):
        found.append(ratio_violation(kind, name, q, requests, limits))
    return [f for f in found if f is not None]


def _limits_of(limit_range: Obj) -> list[Obj]:
    return list((limit_range.get("spec") or {}).get("limits") or [])


# -- pods ------------------------------------------------------------------------------


def default_pod(pod: Obj, limit_range: Obj) -> bool:
    """Fill in the range's container defaults; True when something was set."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for item in _limits_of(limit_range):
        if item.get("type") == "Container":
            requests.update(format_list(parse_list(item.get("defaultRequest"))))
            limits.update(format_list(parse_list(item.get("default"))))
    if not requests and not limits:
        return False
    notes: list[str] = []
    spec = pod.get("spec") or {}
    for section, label in (("containers", "container"), ("initContainers", "init container")):
        for container in spec.get(section) or []:
            notes += _default_container(container, requests, limits, label)
    if not notes:
        return False
    annotations = pod["metadata"].get("annotations") or {}
    annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
    pod["metadata"]["annotations"] = annotations
    return True


def _default_container(container: Obj, requests: dict[str, Any], limits: dict[str, Any],
                       label: str) -> list[str]:
    resources = container.get("resources") or {}
    notes = []
    set_limits = sorted(k for k in limits if k not in (resources.get("limits") or {}))
    set_requests = sorted(k for k in requests if k not in (resources.get("requests") or {}))
    if set_limits:
        resources["limits"] = {**(resources.get("limits") or {}), **{k: limits[k] for k in set_limits}}
    if set_requests:
        resources["requests"] = {**(resources.get("requests") or {}),
                                 **{k: requests[k] for k in set_requests}}
    if set_requests:
        notes.append(f"{', '.join(set_requests)} request for {label} {container.get('name', '')}")
    if set_limits:
        notes.append(f"{', '.join(set_limits)} limit for {label} {container.get('name', '')}")
    if resources:
        container["resources"] = resources
    return notes


def pod_violations(pod: Obj, limit_range: Obj) -> list[str]:
    spec = pod.get("spec") or {}
    found: list[str] = []
    for item in _limits_of(limit_range):
        kind = item.get("type")
        if kind == "Container":
            for section in ("containers", "initContainers"):
                for container in spec.get(section) or []:
                    res = container.get("resources") or {}
                    found += _bounds(item, "Container", parse_list(res.get("requests")),
                                     parse_list(res.get("limits")))
        elif kind == "Pod":
            found += _bounds(item, "Pod", pod_requests(spec, overhead=False),
                             pod_limits(spec, overhead=False))
    return found


def claim_violations(claim: Obj, limit_range: Obj) -> list[str]:
    requests = parse_list(((claim.get("spec") or {}).get("resources") or {}).get("requests"))
    found: list[str | None] = []
    for item in _limits_of(limit_range):
        if item.get("type") != "PersistentVolumeClaim":
            continue
        for name, q in sorted(parse_list(item.get("min")).items()):
            found.append(min_violation("PersistentVolumeClaim", name, q, requests, {}))
        for name, q in sorted(parse_list(item.get("max")).items()):
            found.append(max_request_violation("PersistentVolumeClaim", name, q, requests))
    return [f for f in found if f is not None]


def aggregate(messages: list[str]) -> str:
    """One message, or ``[a, b]`` for several (each text once), as Kubernetes joins errors."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


class LimitRanger:
    """Runs the namespace's LimitRanges over Pods and PersistentVolumeClaims."""

    def __init__(self, ranges: NamespacedObjects) -> None:
        self.ranges = ranges

    def default(self, plural: str, obj: Obj, old: Obj | None) -> bool:
        """The mutating half (Pod create only); True when the pod changed."""
        if plural != "pods" or old is not None:
            return False
        changed = False
        for limit_range in self.ranges.items(obj["metadata"].get("namespace") or ""):
            changed = default_pod(obj, limit_range) or changed
        return changed

    def violations(self, plural: str, obj: Obj, old: Obj | None) -> str | None:
        """The validating half: why the write is refused, or None."""
        check: Callable[[Obj, Obj], list[str]]
        if plural == "pods":
            if old is not None:
                return None
            check = pod_violations
        elif plural == "persistentvolumeclaims":
            if old is not None and (old.get("metadata") or {}).get("deletionTimestamp"):
                return None
            check = claim_violations
        else:
            return None
        for limit_range in self.ranges.items(obj["metadata"].get("namespace") or ""):
            found = check(obj, limit_range)
            if found:
                return aggregate(found)
        return None
