"""The Endpoints controller: one core/v1 Endpoints object per Service with a selector.

For Service ``ns/web`` it keeps Endpoints ``ns/web`` equal to what the pods the
selector matches offer (the pod rules live in :mod:`.serviceendpoints`)::

    Service + matching pods ──▶ one (address, port, ready) entry per pod per port
                                 │ repack: addresses offering the same ports
                                 ▼        share one subset
    Endpoints ns/web
      metadata.labels        = the Service's labels (+ service.kubernetes.io/headless)
      metadata.annotations   endpoints.kubernetes.io/last-change-trigger-time
                             (+ endpoints.kubernetes.io/over-capacity: truncated
                              beyond 1000 addresses)
      subsets[]: addresses (ready) / notReadyAddresses, ports (targetPort
                 resolved, by name if need be)

Left alone: Services without a selector (their Endpoints are written by hand,
including the API server's ``default/kubernetes``) and ExternalName Services.
A deleted Service's Endpoints are deleted; at start, Endpoints whose Service
no longer exists are cleaned up.  Terminating pods are dropped unless the
Service has ``publishNotReadyAddresses``.

Pod and Service events enqueue the Service at once (no batching window: the
service proxy wants endpoint changes in milliseconds).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, ClassVar

from ..api.errors import StatusError
from ..client.informer import Informer, object_key, split_key
from ..client.resources import ENDPOINTS, PODS, SERVICES
from .events import WARNING
from .reconciler import Controller, ControllerContext
from .serviceendpoints import (
    ANNOTATION_TRIGGER_TIME, LABEL_HEADLESS, NAMESPACE_INDEX, TriggerTimes, WriteTracker,
    by_namespace, find_port, format_trigger_time, hostname_for, include_pod, ips_of_family,
    ip_families, is_headless, manages_endpoints, selector_of, selects, services_to_update,
)
from .podstate import is_ready

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: More addresses than this are truncated (ready ones kept first).
MAX_CAPACITY = 1000
ANNOTATION_OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
#: Endpoints carrying this annotation are leader-election locks, not a Service's.
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"


def _address(pod: Obj, ip: str, hostname: str | None) -> Obj:
    meta = pod["metadata"]
    address: Obj = {"ip": ip}
    if hostname:
        address["hostname"] = hostname
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        address["nodeName"] = node
    address["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace", ""),
                            "name": meta["name"], "uid": meta.get("uid", "")}
    return address


def _port(service_port: Obj, number: int) -> Obj:
    port: Obj = {"port": number, "protocol": service_port.get("protocol") or "TCP"}
    if service_port.get("name"):
        port = {"name": service_port["name"], **port}
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def _family(service: Obj, pod: Obj) -> str:
    """The IP family of the Endpoints address: the Service's first, else its IP's, else the pod's."""
    spec = service.get("spec") or {}
    if spec.get("ipFamilies") or not is_headless(service):
        return ip_families(service)[0]
    return "IPv6" if ":" in str((pod.get("status") or {}).get("podIP") or "") else "IPv4"


def _address_key(address: Obj) -> tuple[str, str]:
    return (str(address.get("ip", "")), str((address.get("targetRef") or {}).get("uid", "")))


def _port_key(port: Obj) -> tuple[str, int, str]:
    return (str(port.get("name") or ""), int(port.get("port") or 0), str(port.get("protocol") or ""))


def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The repacked, sorted subsets the Endpoints of ``service`` should have."""
    spec = service.get("spec") or {}
    tolerate = bool(spec.get("publishNotReadyAddresses"))
    ports = spec.get("ports") or []
    # address key -> (address, ready, frozenset of port keys), plus the port objects
    offers: dict[tuple[str, str], tuple[Obj, bool, set[tuple[str, int, str]]]] = {}
    port_objects: dict[tuple[str, int, str], Obj] = {}
    for pod in pods:
        if not include_pod(pod, include_terminating=tolerate):
            continue
        ips = ips_of_family(pod, _family(service, pod))
        if not ips:
            continue
        address = _address(pod, ips[0], hostname_for(pod, service))
        ready = tolerate or is_ready(pod)
        wanted: set[tuple[str, int, str]] = set()
        if not ports:
            if not is_headless(service):
                continue
        else:
            for service_port in ports:
                number = find_port(pod, service_port)
                if number is None:
                    continue
                port = _port(service_port, number)
                port_objects[_port_key(port)] = port
                wanted.add(_port_key(port))
            if not wanted:
                continue
        offers[_address_key(address)] = (address, ready, wanted)
    groups: dict[frozenset[tuple[str, int, str]], tuple[list[Obj], list[Obj]]] = {}
    for address, ready, wanted in offers.values():
        ready_list, not_ready = groups.setdefault(frozenset(wanted), ([], []))
        (ready_list if ready else not_ready).append(address)
    subsets = []
    for port_keys, (ready_list, not_ready) in groups.items():
        subset: Obj = {}
        if ready_list:
            subset["addresses"] = sorted(ready_list, key=_address_key)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_key)
        if port_keys:
            subset["ports"] = [port_objects[k] for k in sorted(port_keys)]
        subsets.append(subset)
    return sort_subsets(subsets)


def sort_subsets(subsets: list[Obj]) -> list[Obj]:
    """A canonical order (subsets by their ports, addresses by IP and UID) for comparing."""
    out = []
    for subset in subsets:
        subset = dict(subset)
        for section in ("addresses", "notReadyAddresses"):
            if subset.get(section):
                subset[section] = sorted(subset[section], key=_address_key)
            else:
                subset.pop(section, None)
        if subset.get("ports"):
            subset["ports"] = sorted(subset["ports"], key=_port_key)
        else:
            subset.pop("ports", None)
        out.append(subset)
    return sorted(out, key=lambda s: ([_port_key(p) for p in s.get("ports") or []],
                                      [_address_key(a) for a in
                                       (s.get("addresses") or s.get("notReadyAddresses") or [])]))


def _comparable(subsets: list[Obj]) -> list[Obj]:
    """Subsets without the fields the controller never sets (e.g. targetRef.resourceVersion)."""
    out = []
    for subset in sort_subsets(subsets):
        clean = dict(subset)
        for section in ("addresses", "notReadyAddresses"):
            if section in clean:
                clean[section] = [
                    {**a, "targetRef": {k: v for k, v in (a.get("targetRef") or {}).items()
                                        if k != "resourceVersion"}} if a.get("targetRef") else a
                    for a in clean[section]]
        out.append(clean)
    return out


def truncate(subsets: list[Obj], capacity: int = MAX_CAPACITY) -> bool:
    """Cut ``subsets`` (in place) to ``capacity`` addresses, ready ones first; True if cut."""
    ready = sum(len(s.get("addresses") or []) for s in subsets)
    not_ready = sum(len(s.get("notReadyAddresses") or []) for s in subsets)
    if ready + not_ready <= capacity:
        return False
    cut_ready = ready > capacity
    budget = capacity if cut_ready else capacity - ready
    total = ready if cut_ready else not_ready
    left = budget
    for subset in subsets:
        section = "addresses" if cut_ready else "notReadyAddresses"
        have = subset.get(section) or []
        share = min(left, -(-len(have) * budget // total)) if total else 0
        subset[section] = have[:share]
        if cut_ready:
            subset["notReadyAddresses"] = []
        left -= len(subset[section])
        for s in ("addresses", "notReadyAddresses"):
            if not subset.get(s):
                subset.pop(s, None)
    return True


class EndpointsController(Controller):
    """Keeps each selector Service's Endpoints object current (see module docstring)."""

    name: ClassVar[str] = "endpoint"
    component: ClassVar[str] = "endpoint-controller"
    workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.services: Informer = self.informer(SERVICES)
        self.pods: Informer = self.informer(PODS)
        self.endpoints: Informer = self.informer(ENDPOINTS)
        self.services.add_index(NAMESPACE_INDEX, by_namespace)
        self.pods.add_index(NAMESPACE_INDEX, by_namespace)
        self.trigger_times = TriggerTimes()
        self.writes = WriteTracker()
        self.services.add_handler(on_add=self.enqueue,
                                  on_update=lambda _old, new: self.enqueue(new),
                                  on_delete=self.enqueue)
        self.pods.add_handler(on_add=lambda p: self._pod_changed(None, p),
                              on_update=self._pod_changed,
                              on_delete=lambda p: self._pod_changed(p, None))
        self.endpoints.add_handler(on_add=self._endpoints_seen,
                                   on_update=lambda _old, new: self._endpoints_seen(new),
                                   on_delete=self._endpoints_deleted)

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        for key in services_to_update(self.services, old, new):
            self.enqueue_key(key)

    def _endpoints_seen(self, endpoints: Obj) -> None:
        key = object_key(endpoints)
        if self.writes.waiting(key):
            self.enqueue_key(key)

    def _endpoints_deleted(self, endpoints: Obj) -> None:
        self.enqueue_key(object_key(endpoints))

    async def run(self) -> None:
        await self.wait_synced()
        # Endpoints left behind by Services deleted while we were not running.
        for endpoints in self.endpoints.list():
            annotations = (endpoints.get("metadata") or {}).get("annotations") or {}
            if LEADER_ANNOTATION not in annotations:
                self.enqueue(endpoints)
        await super().run()

    def _pods_of(self, service: Obj, namespace: str) -> list[Obj]:
        selector = selector_of(service) or {}
        return [p for p in self.pods.by_index(NAMESPACE_INDEX, namespace)
                if selects(selector, (p.get("metadata") or {}).get("labels"))]

    async def reconcile(self, key: str) -> float | None:
        namespace, name = split_key(key)
        service = self.services.get(key)
        if service is None:
            self.trigger_times.forget(key)
            self.writes.forget(key)
            try:
                await self.client.delete(ENDPOINTS, name, namespace=namespace)
            except StatusError as e:
                if e.code != 404:
                    raise
            return None
        if not manages_endpoints(service):
            return None
        current = self.endpoints.get(key)
        if not self.writes.fresh(key, {name: current} if current is not None else {}):
            return 1.0  # our last write is on its way to the cache; its event wakes us sooner
        pods = self._pods_of(service, namespace)
        trigger = self.trigger_times.compute(key, service, pods)
        subsets = desired_subsets(service, pods)
        labels = dict((service.get("metadata") or {}).get("labels") or {})
        if current is not None:
            have_labels = dict((current.get("metadata") or {}).get("labels") or {})
            have_labels.pop(LABEL_HEADLESS, None)
            annotations = (current.get("metadata") or {}).get("annotations") or {}
            over = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or [])
                       for s in current.get("subsets") or []) > MAX_CAPACITY
            capacity_ok = not over and ANNOTATION_OVER_CAPACITY not in annotations
            if capacity_ok and have_labels == labels \
                    and _comparable(current.get("subsets") or []) == _comparable(subsets):
                return None
        await self._write(service, current, subsets, labels, trigger)
        return None

    async def _write(self, service: Obj, current: Obj | None, subsets: list[Obj],
                     labels: dict[str, str], trigger: Any) -> None:
        meta = service["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        key = f"{namespace}/{name}"
        if current is None:
            body: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                         "metadata": {"name": name, "namespace": namespace}}
        else:
            body = copy.deepcopy(current)
        new_meta = body["metadata"]
        annotations = dict(new_meta.get("annotations") or {})
        if trigger is not None:
            annotations[ANNOTATION_TRIGGER_TIME] = format_trigger_time(trigger)
        else:
            annotations.pop(ANNOTATION_TRIGGER_TIME, None)
        if truncate(subsets):
            annotations[ANNOTATION_OVER_CAPACITY] = "truncated"
        else:
            annotations.pop(ANNOTATION_OVER_CAPACITY, None)
        if is_headless(service):
            labels[LABEL_HEADLESS] = ""
        new_meta["labels"] = labels
        new_meta["annotations"] = annotations
        body["subsets"] = subsets
        try:
            if current is None:
                await self.client.create(ENDPOINTS, body, namespace=namespace)
                self.writes.created(key, name)
            else:
                written = await self.client.update(ENDPOINTS, body, namespace=namespace)
                self.writes.updated(key, name, str(current["metadata"].get("resourceVersion", "")),
                                    str(written["metadata"].get("resourceVersion", "")))
        except StatusError as e:
            if current is None and e.code == 403 and "terminat" in e.message:
                return  # the namespace is going away: creates will keep failing
            if current is None and e.code == 409:
                raise  # created meanwhile by someone else: the cache will show it
            verb = "create" if current is None else "update"
            reason = "FailedToCreateEndpoint" if current is None else "FailedToUpdateEndpoint"
            self.record_event(body, WARNING, reason,
                              f"Failed to {verb} endpoint {namespace}/{name}: {e.message}")
            raise
