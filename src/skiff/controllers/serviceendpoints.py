"""What the Endpoints and EndpointSlice controllers share: Service -> pods -> addresses.

Both controllers answer the same question for every Service with a selector:
*which pods back it, at which address and port, and are they ready?*  The
rules, as Kubernetes applies them::

    Service (spec.selector: map, absent/empty = "no selector": leave it alone)
      │  pods in the same namespace whose labels contain every selector pair
      ▼
    pod included?   not Succeeded/Failed, has a pod IP, and - for Endpoints
                    only - not terminating unless publishNotReadyAddresses
      │
      ├─ address    the pod IP of the Service's IP family (ipFamilies[0])
      ├─ hostname   spec.hostname, when spec.subdomain == the Service's name
      ├─ ready      Ready condition True (or publishNotReadyAddresses)
      └─ ports      per Service port: targetPort as a number, or looked up BY
                    NAME (and protocol) in the pod's container ports (and its
                    sidecar init containers); a pod lacking it gets no such port

Also here, because both controllers need them:

* :func:`services_to_update` -- which Services a pod change concerns (label
  changes concern the old and the new set, readiness/IP/deletion changes the
  pod's Services, anything else none);
* :class:`TriggerTimes` -- the ``endpoints.kubernetes.io/last-change-trigger-time``
  annotation: the earliest pod Ready transition (or Service creation) that
  changed since the previous sync;
* :class:`WriteTracker` -- "has my informer seen my own last write yet?", so a
  controller never computes a diff against a cache that predates its write
  (Kubernetes' stale-endpoints and EndpointSlice trackers).  It only compares
  resourceVersions for equality, never for order.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from ..api.kinds.meta.cells import parse_time
from ..client.informer import Informer
from .podstate import is_ready, ready_condition

Obj = dict[str, Any]

LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
LABEL_HEADLESS = "service.kubernetes.io/headless"
LABEL_ZONE = "topology.kubernetes.io/zone"
ANNOTATION_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"

#: Informer index: namespace -> objects (pods, services) of that namespace.
NAMESPACE_INDEX = "namespace"


def by_namespace(obj: Obj) -> list[str]:
    return [str((obj.get("metadata") or {}).get("namespace") or "")]


# -- services --------------------------------------------------------------------------

def selector_of(service: Obj) -> Mapping[str, str] | None:
    """The Service's selector, or ``None`` when it has none (endpoints are managed by hand)."""
    selector = (service.get("spec") or {}).get("selector")
    return selector if selector else None


def selects(selector: Mapping[str, str], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def is_headless(service: Obj) -> bool:
    """No cluster IP: ``clusterIP: None`` (or unset)."""
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    return ip in ("", "None")


def is_external_name(service: Obj) -> bool:
    return (service.get("spec") or {}).get("type") == "ExternalName"


def manages_endpoints(service: Obj) -> bool:
    """Whether the controllers compute this Service's endpoints at all."""
    return not is_external_name(service) and selector_of(service) is not None


def ip_families(service: Obj) -> list[str]:
    """``IPv4``/``IPv6`` address types the Service wants (from ipFamilies, else its IP)."""
    spec = service.get("spec") or {}
    families = [f for f in spec.get("ipFamilies") or [] if f in ("IPv4", "IPv6")]
    if families:
        return families
    if not is_headless(service):
        return ["IPv6" if ":" in str(spec.get("clusterIP")) else "IPv4"]
    return ["IPv4", "IPv6"]


def pod_ips(pod: Obj) -> list[str]:
    status = pod.get("status") or {}
    ips = [str(p.get("ip")) for p in status.get("podIPs") or [] if p.get("ip")]
    if not ips and status.get("podIP"):
        ips = [str(status["podIP"])]
    return ips


def ips_of_family(pod: Obj, family: str) -> list[str]:
    """The pod's IPs of one family, normalised (``ip_address`` round trip)."""
    out = []
    for raw in pod_ips(pod):
        try:
            ip = ipaddress.ip_address(raw)
        except ValueError:
            continue
        if (ip.version == 6) == (family == "IPv6"):
            out.append(str(ip))
    return out


# -- pods --------------------------------------------------------------------------------

def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def include_pod(pod: Obj, *, include_terminating: bool) -> bool:
    """Whether ``pod`` appears in Endpoints / EndpointSlices at all."""
    if is_terminal(pod) or not pod_ips(pod):
        return False
    return include_terminating or not is_terminating(pod)


def hostname_for(pod: Obj, service: Obj) -> str | None:
    """``spec.hostname`` when the pod's ``spec.subdomain`` names this Service."""
    spec = pod.get("spec") or {}
    pmeta, smeta = pod.get("metadata") or {}, service.get("metadata") or {}
    hostname = spec.get("hostname")
    if hostname and spec.get("subdomain") == smeta.get("name") \
            and pmeta.get("namespace") == smeta.get("namespace"):
        return str(hostname)
    return None


def find_port(pod: Obj, service_port: Mapping[str, Any]) -> int | None:
    """The pod port a Service port targets, or ``None`` when a named port is missing."""
    target = service_port.get("targetPort")
    if target is None or target == 0:
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in [*(spec.get("containers") or []), *sidecars]:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def target_ref(pod: Obj) -> Obj:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"],
            "uid": meta.get("uid", "")}


# -- which services a pod event concerns -----------------------------------------------

def services_for_labels(services: Informer, namespace: str,
                        labels: Mapping[str, str] | None) -> set[str]:
    """Keys of the Services in ``namespace`` whose selector matches ``labels``."""
    keys = set()
    for svc in services.by_index(NAMESPACE_INDEX, namespace):
        selector = selector_of(svc)
        if selector is not None and selects(selector, labels):
            keys.add(f"{namespace}/{svc['metadata']['name']}")
    return keys


def _endpoint_fields_changed(old: Obj, new: Obj) -> bool:
    if (old.get("metadata") or {}).get("deletionTimestamp") != \
            (new.get("metadata") or {}).get("deletionTimestamp"):
        return True
    if is_ready(old) != is_ready(new):
        return True
    if (old.get("status") or {}).get("phase") != (new.get("status") or {}).get("phase"):
        return True
    return pod_ips(old) != pod_ips(new)


def _membership_changed(old: Obj, new: Obj) -> bool:
    o, n = old.get("metadata") or {}, new.get("metadata") or {}
    os_, ns_ = old.get("spec") or {}, new.get("spec") or {}
    return (o.get("labels") or {}) != (n.get("labels") or {}) \
        or os_.get("hostname") != ns_.get("hostname") or os_.get("subdomain") != ns_.get("subdomain")


def services_to_update(services: Informer, old: Obj | None, new: Obj | None) -> set[str]:
    """The Service keys to re-sync after a pod was added (old None), deleted (new None) or updated."""
    pod = new if new is not None else old
    if pod is None:
        return set()
    namespace = str(pod["metadata"].get("namespace") or "")
    if old is None or new is None:
        return services_for_labels(services, namespace, pod["metadata"].get("labels"))
    if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
        return set()
    changed, membership = _endpoint_fields_changed(old, new), _membership_changed(old, new)
    if not changed and not membership:
        return set()
    now = services_for_labels(services, namespace, new["metadata"].get("labels"))
    if not membership:
        return now
    before = services_for_labels(services, namespace, old["metadata"].get("labels"))
    return now | before if changed else now ^ before


# -- last-change-trigger-time ------------------------------------------------------------

def format_trigger_time(when: datetime) -> str:
    """RFC 3339 with nanosecond precision, trailing zeros dropped (Go's RFC3339Nano)."""
    when = when.astimezone(timezone.utc)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += "." + f"{when.microsecond:06d}".rstrip("0")
    return text + "Z"


@dataclass
class _ServiceTimes:
    service: datetime | None = None
    pods: dict[str, datetime] = field(default_factory=dict)


class TriggerTimes:
    """Per Service, the trigger times seen at the previous sync (see module docstring)."""

    def __init__(self) -> None:
        self._known: dict[str, _ServiceTimes] = {}

    def compute(self, key: str, service: Obj, pods: Iterable[Obj]) -> datetime | None:
        """The time to export now (``None``: remove the annotation); remembers this sync."""
        state = self._known.get(key)
        created = parse_time((service.get("metadata") or {}).get("creationTimestamp"))
        earliest: datetime | None = None
        now_pods: dict[str, datetime] = {}
        last_pods = state.pods if state is not None else {}
        for pod in pods:
            cond = ready_condition(pod)
            when = parse_time(cond.get("lastTransitionTime")) if cond is not None else None
            if when is None:
                continue
            name = pod["metadata"]["name"]
            now_pods[name] = when
            previous = last_pods.get(name)
            if previous is None or when > previous:
                earliest = when if earliest is None or when < earliest else earliest
        if created is not None and (state is None or state.service is None or created > state.service):
            earliest = created if earliest is None or created < earliest else earliest
        self._known[key] = _ServiceTimes(created, now_pods)
        if state is None:
            return created
        return earliest

    def forget(self, key: str) -> None:
        self._known.pop(key, None)


# -- "has the cache seen my write yet?" ------------------------------------------------

@dataclass
class _Pending:
    #: name -> resourceVersion the cache must move past (our update replaced it)
    superseded: dict[str, str] = field(default_factory=dict)
    #: names we created that the cache has not shown yet
    created: set[str] = field(default_factory=set)
    #: names we deleted that the cache still shows
    deleted: set[str] = field(default_factory=set)


class WriteTracker:
    """Remembers a controller's own writes per controller key until its informer shows them.

    ``fresh(key, cached)`` is False while any of them is missing from
    ``cached`` (name -> cached object): then the controller waits for the
    informer instead of diffing against an outdated view.
    """

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}

    def _entry(self, key: str) -> _Pending:
        return self._pending.setdefault(key, _Pending())

    def updated(self, key: str, name: str, old_rv: str, new_rv: str) -> None:
        if old_rv and old_rv != new_rv:
            self._entry(key).superseded[name] = old_rv

    def created(self, key: str, name: str) -> None:
        self._entry(key).created.add(name)

    def deleted(self, key: str, name: str) -> None:
        entry = self._entry(key)
        entry.deleted.add(name)
        entry.created.discard(name)
        entry.superseded.pop(name, None)

    def waiting(self, key: str) -> bool:
        """Whether ``key`` has writes the informer has not delivered yet."""
        return key in self._pending

    def fresh(self, key: str, cached: Mapping[str, Obj]) -> bool:
        entry = self._pending.get(key)
        if entry is None:
            return True
        for name, rv in list(entry.superseded.items()):
            obj = cached.get(name)
            if obj is None or obj["metadata"].get("resourceVersion") != rv:
                del entry.superseded[name]
        entry.created = {n for n in entry.created if n not in cached}
        entry.deleted = {n for n in entry.deleted if n in cached}
        if entry.superseded or entry.created or entry.deleted:
            return False
        del self._pending[key]
        return True

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)
