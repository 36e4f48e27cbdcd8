"""The EndpointSlice controller: a Service's endpoints as discovery.k8s.io/v1 slices.

For every Service with a selector it keeps a set of EndpointSlices, each
holding at most ``max_endpoints_per_slice`` (100) endpoints of one address type
that share one set of ports::

    Service ns/web ──selector──▶ pods (terminating ones too; see serviceendpoints)
       │ per IP family (ipFamilies), per distinct resolved port set:
       ▼
    EndpointSlice web-<random>                        (generateName "web-")
      labels      kubernetes.io/service-name: web
                  endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
                  + the Service's own labels (+ service.kubernetes.io/headless)
      ownerReferences: the Service (controller, blockOwnerDeletion)
      annotations endpoints.kubernetes.io/last-change-trigger-time
      addressType IPv4 | IPv6,  ports [{name, port, protocol, appProtocol}]
      endpoints[] addresses [pod IP]
                  conditions ready   = serving and not terminating (or publishNotReadyAddresses)
                             serving = pod Ready condition (or publishNotReadyAddresses)
                             terminating = deletionTimestamp set
                  hostname (pod hostname + subdomain == Service), nodeName,
                  zone (the node's topology.kubernetes.io/zone), targetRef (the pod)

Reconciling moves as few endpoints as it can (as Kubernetes does): endpoints
stay in the slice they are in and are updated there; vanished ones are
removed; new ones first fill slices that are being rewritten anyway, then an
untouched slice they fit in, then new slices.  A slice that would be deleted
while another is created is reused instead.  A Service without endpoints gets
one empty "placeholder" slice.  Pods on a Node the cache does not know are
left out (and the Service retried) unless publishNotReadyAddresses is set.

Slices not managed by this controller (no managed-by label, or another
manager) are never touched.  Services without a selector and ExternalName
Services are left alone; a deleted Service's slices are deleted at once (the
garbage collector would too, through the owner reference, but later).
"""

from __future__ import annotations

import copy
import logging
from typing import Any, ClassVar

from ..api.errors import StatusError
from ..client.informer import Informer, object_key, split_key
from ..client.resources import ENDPOINTSLICES, NODES, PODS, SERVICES
from .events import WARNING
from .ownership import owner_reference
from .podstate import is_ready
from .reconciler import Controller, ControllerContext
from .serviceendpoints import (
    ANNOTATION_TRIGGER_TIME, LABEL_HEADLESS, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, LABEL_ZONE,
    NAMESPACE_INDEX, TriggerTimes, WriteTracker, by_namespace, find_port, format_trigger_time,
    hostname_for, include_pod, ip_families, ips_of_family, is_headless, manages_endpoints,
    selector_of, selects, services_to_update, target_ref,
)

Obj = dict[str, Any]
log = logging.getLogger(__name__)

MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
RESERVED_LABELS = (LABEL_SERVICE_NAME, LABEL_MANAGED_BY, LABEL_HEADLESS)
#: Informer index: "namespace/service" -> the slices labelled with that service name.
SERVICE_INDEX = "kubernetes.io/service-name"

PortsKey = tuple[tuple[str, int, str, str], ...]


def service_of_slice(slice_: Obj) -> list[str]:
    meta = slice_.get("metadata") or {}
    name = (meta.get("labels") or {}).get(LABEL_SERVICE_NAME)
    return [f"{meta.get('namespace', '')}/{name}"] if name else []


def is_managed(slice_: Obj) -> bool:
    return ((slice_.get("metadata") or {}).get("labels") or {}).get(LABEL_MANAGED_BY) == MANAGED_BY


def slice_labels(service: Obj) -> dict[str, str]:
    meta = service["metadata"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in RESERVED_LABELS}
    if is_headless(service):
        labels[LABEL_HEADLESS] = ""
    labels[LABEL_SERVICE_NAME] = meta["name"]
    labels[LABEL_MANAGED_BY] = MANAGED_BY
    return labels


def endpoint_ports(service: Obj, pod: Obj) -> list[Obj]:
    """The slice ports for ``pod``: each Service port the pod has (targetPort resolved)."""
    out = []
    for service_port in (service.get("spec") or {}).get("ports") or []:
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: Obj = {"name": service_port.get("name") or "", "port": number,
                     "protocol": service_port.get("protocol") or "TCP"}
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        out.append(port)
    return out


def ports_key(ports: list[Obj] | None) -> PortsKey:
    return tuple(sorted((str(p.get("name") or ""), int(p.get("port") or 0),
                         str(p.get("protocol") or "TCP"), str(p.get("appProtocol") or ""))
                        for p in ports or []))


def pod_endpoint(pod: Obj, node: Obj | None, service: Obj, address_type: str) -> Obj:
    """One slice endpoint for ``pod`` (its addresses may be empty: no IP of that family)."""
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    serving = is_ready(pod)
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    endpoint: Obj = {
        "addresses": ips_of_family(pod, address_type),
        "conditions": {"ready": publish or (serving and not terminating),
                       "serving": serving, "terminating": terminating},
    }
    hostname = hostname_for(pod, service)
    if hostname:
        endpoint["hostname"] = hostname
    endpoint["targetRef"] = target_ref(pod)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if node_name:
        endpoint["nodeName"] = node_name
    zone = ((node or {}).get("metadata", {}).get("labels") or {}).get(LABEL_ZONE)
    if zone:
        endpoint["zone"] = zone
    return endpoint


def endpoint_key(endpoint: Obj) -> tuple[str, ...]:
    ref = endpoint.get("targetRef") or {}
    return (str(ref.get("uid") or ref.get("name") or ""), *sorted(endpoint.get("addresses") or []))


def _same_endpoint(a: Obj, b: Obj) -> bool:
    def clean(e: Obj) -> Obj:
        ref = {k: v for k, v in (e.get("targetRef") or {}).items() if k != "resourceVersion"}
        return {**{k: v for k, v in e.items() if k != "hints"}, "targetRef": ref}
    return clean(a) == clean(b)


def _new_slice(service: Obj, ports: list[Obj], address_type: str) -> Obj:
    meta = service["metadata"]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"],
                         "labels": slice_labels(service),
                         "ownerReferences": [owner_reference(service, api_version="v1",
                                                             kind="Service")]},
            "addressType": address_type, "endpoints": [], "ports": list(ports)}


def _owned_by(slice_: Obj, service: Obj) -> bool:
    uid = service["metadata"].get("uid")
    return any(r.get("uid") == uid and r.get("kind") == "Service" and r.get("apiVersion") == "v1"
               for r in slice_["metadata"].get("ownerReferences") or [])


class _Plan:
    """Slices to create, update and delete for one Service."""

    def __init__(self) -> None:
        self.create: list[Obj] = []
        self.update: list[Obj] = []
        self.delete: list[Obj] = []


class EndpointSliceController(Controller):
    """Keeps each selector Service's EndpointSlices current (see module docstring)."""

    name: ClassVar[str] = "endpointslice"
    component: ClassVar[str] = "endpointslice-controller"
    workers = 5

    def __init__(self, ctx: ControllerContext, *,
                 max_endpoints_per_slice: int = MAX_ENDPOINTS_PER_SLICE) -> None:
        super().__init__(ctx)
        self.max_endpoints = max_endpoints_per_slice
        self.services: Informer = self.informer(SERVICES)
        self.pods: Informer = self.informer(PODS)
        self.nodes: Informer = self.informer(NODES)
        self.slices: Informer = self.informer(ENDPOINTSLICES)
        self.services.add_index(NAMESPACE_INDEX, by_namespace)
        self.pods.add_index(NAMESPACE_INDEX, by_namespace)
        self.slices.add_index(SERVICE_INDEX, service_of_slice)
        self.trigger_times = TriggerTimes()
        self.writes = WriteTracker()
        #: "ns/slice" -> resourceVersion of our last write (to tell our changes from others')
        self._written: dict[str, str] = {}
        self.services.add_handler(on_add=self.enqueue,
                                  on_update=lambda _old, new: self.enqueue(new),
                                  on_delete=self.enqueue)
        self.pods.add_handler(on_add=lambda p: self._pod_changed(None, p),
                              on_update=self._pod_changed,
                              on_delete=lambda p: self._pod_changed(p, None))
        self.slices.add_handler(on_add=self._slice_changed,
                                on_update=lambda _old, new: self._slice_changed(new),
                                on_delete=self._slice_deleted)

    # -- event handlers (keys only) ---------------------------------------------------

    def _pod_changed(self, old: Obj | None, new: Obj | None) -> None:
        for key in services_to_update(self.services, old, new):
            self.enqueue_key(key)

    def _slice_changed(self, slice_: Obj) -> None:
        if not is_managed(slice_):
            return
        for key in service_of_slice(slice_):
            ours = self._written.get(object_key(slice_)) == slice_["metadata"].get("resourceVersion")
            if not ours or self.writes.waiting(key):
                self.enqueue_key(key)

    def _slice_deleted(self, slice_: Obj) -> None:
        if not is_managed(slice_):
            return
        self._written.pop(object_key(slice_), None)
        for key in service_of_slice(slice_):
            self.enqueue_key(key)

    # -- reconcile ----------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        namespace, _ = split_key(key)
        service = self.services.get(key)
        existing = [s for s in self.slices.by_index(SERVICE_INDEX, key) if is_managed(s)]
        if not self.writes.fresh(key, {s["metadata"]["name"]: s for s in existing}):
            return 1.0  # our last writes are on their way to the cache; their events wake us
        if service is None:
            self.trigger_times.forget(key)
            plan = _Plan()
            plan.delete = existing
            await self._apply(key, namespace, plan, None, None)
            return None
        if not manages_endpoints(service):
            return None
        selector = selector_of(service) or {}
        pods = [p for p in self.pods.by_index(NAMESPACE_INDEX, namespace)
                if selects(selector, (p.get("metadata") or {}).get("labels"))]
        trigger = self.trigger_times.compute(key, service, pods)
        families = ip_families(service)
        plan = _Plan()
        plan.delete = [s for s in existing if s.get("addressType") not in families]
        missing_node = False
        for family in families:
            of_family = [s for s in existing if s.get("addressType") == family]
            missing_node |= self._plan_address_type(service, pods, of_family, family, plan)
        self._reuse_deleted(service, plan)
        await self._apply(key, namespace, plan, service, format_trigger_time(trigger)
                          if trigger is not None else None)
        return 1.0 if missing_node else None

    def _plan_address_type(self, service: Obj, pods: list[Obj], existing: list[Obj],
                           family: str, plan: _Plan) -> bool:
        """Add this family's changes to ``plan``; True if some pod's Node was unknown."""
        publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
        existing_by_ports: dict[PortsKey, list[Obj]] = {}
        deletions_before = len(plan.delete)
        for slice_ in existing:
            if _owned_by(slice_, service):
                existing_by_ports.setdefault(ports_key(slice_.get("ports")), []).append(slice_)
            else:
                plan.delete.append(slice_)
        desired: dict[PortsKey, dict[tuple[str, ...], Obj]] = {}
        desired_ports: dict[PortsKey, list[Obj]] = {}
        missing_node = False
        headless_without_ports = is_headless(service) and not (service.get("spec") or {}).get("ports")
        for pod in pods:
            if not include_pod(pod, include_terminating=True):
                continue
            ports = [] if headless_without_ports else endpoint_ports(service, pod)
            node_name = (pod.get("spec") or {}).get("nodeName") or ""
            node = self.nodes.get(node_name) if node_name else None
            if node is None and not publish:
                missing_node = True
                continue
            endpoint = pod_endpoint(pod, node, service, family)
            if not endpoint["addresses"]:
                continue
            pk = ports_key(ports)
            desired.setdefault(pk, {})[endpoint_key(endpoint)] = endpoint
            desired_ports.setdefault(pk, ports)
        labels = slice_labels(service)
        for pk, endpoints in desired.items():
            self._plan_port_mapping(service, existing_by_ports.get(pk, []), endpoints,
                                    desired_ports[pk], family, labels, plan)
        for pk, slices in existing_by_ports.items():
            if pk not in desired:
                plan.delete.extend(slices)
        deleted_here = len(plan.delete) - deletions_before
        creates_here = [s for s in plan.create if s["addressType"] == family]
        if len(existing) == deleted_here and not creates_here:
            placeholder = _new_slice(service, [], family)
            ours = plan.delete[deletions_before:]
            if len(ours) == 1 and not ours[0].get("endpoints") and not ours[0].get("ports") \
                    and ours[0]["metadata"].get("labels") == labels and _owned_by(ours[0], service):
                del plan.delete[deletions_before:]  # the placeholder we want is there already
            else:
                plan.create.append(placeholder)
        return missing_node

    def _plan_port_mapping(self, service: Obj, existing: list[Obj],
                           desired: dict[tuple[str, ...], Obj], ports: list[Obj], family: str,
                           labels: dict[str, str], plan: _Plan) -> None:
        remaining = dict(desired)
        to_update: list[Obj] = []
        unchanged: list[Obj] = []
        for slice_ in existing:
            kept: list[Obj] = []
            changed = False
            for endpoint in slice_.get("endpoints") or []:
                want = remaining.pop(endpoint_key(endpoint), None)
                if want is None:
                    changed = True
                    continue
                changed |= not _same_endpoint(want, endpoint)
                kept.append(want)
            if changed or slice_["metadata"].get("labels") != labels:
                if kept:
                    updated = copy.deepcopy(slice_)
                    updated["metadata"]["labels"] = dict(labels)
                    updated["endpoints"] = kept
                    to_update.append(updated)
                else:
                    plan.delete.append(slice_)
            else:
                unchanged.append(slice_)
        left = list(remaining.values())
        for updated in sorted(to_update, key=lambda s: -len(s["endpoints"])):
            room = self.max_endpoints - len(updated["endpoints"])
            if room > 0 and left:
                updated["endpoints"].extend(left[:room])
                left = left[room:]
        while left:
            target: Obj | None = None
            if len(left) < self.max_endpoints and unchanged:
                fits = [s for s in unchanged
                        if len(s.get("endpoints") or []) + len(left) <= self.max_endpoints]
                if fits:
                    chosen = max(fits, key=lambda s: len(s.get("endpoints") or []))
                    unchanged.remove(chosen)
                    target = copy.deepcopy(chosen)
                    target["endpoints"] = list(target.get("endpoints") or [])
                    to_update.append(target)
            if target is None:
                target = _new_slice(service, ports, family)
                plan.create.append(target)
            room = self.max_endpoints - len(target["endpoints"])
            target["endpoints"].extend(left[:room])
            left = left[room:]
        plan.update.extend(to_update)

    def _reuse_deleted(self, service: Obj, plan: _Plan) -> None:
        """Turn (delete A, create B) pairs into "rewrite A as B": less churn for watchers."""
        i = 0
        while i < len(plan.delete) and plan.create:
            old = plan.delete[i]
            new = plan.create[-1]
            if _owned_by(old, service) and old.get("addressType") == new["addressType"]:
                plan.create.pop()
                reused = copy.deepcopy(new)
                meta = reused["metadata"]
                meta.pop("generateName", None)
                meta["name"] = old["metadata"]["name"]
                meta["resourceVersion"] = old["metadata"].get("resourceVersion")
                meta["annotations"] = dict(old["metadata"].get("annotations") or {})
                plan.update.append(reused)
                plan.delete.pop(i)
            else:
                i += 1

    async def _apply(self, key: str, namespace: str, plan: _Plan, service: Obj | None,
                     trigger: str | None) -> None:
        try:
            for slice_ in plan.create:
                self._annotate(slice_, trigger)
                created = await self.client.create(ENDPOINTSLICES, slice_, namespace=namespace)
                name = created["metadata"]["name"]
                self.writes.created(key, name)
                self._written[f"{namespace}/{name}"] = created["metadata"]["resourceVersion"]
            for slice_ in plan.update:
                self._annotate(slice_, trigger)
                name = slice_["metadata"]["name"]
                old_rv = str(slice_["metadata"].get("resourceVersion") or "")
                written = await self.client.update(ENDPOINTSLICES, slice_, namespace=namespace)
                new_rv = written["metadata"]["resourceVersion"]
                self.writes.updated(key, name, old_rv, new_rv)
                self._written[f"{namespace}/{name}"] = new_rv
            for slice_ in plan.delete:
                name = slice_["metadata"]["name"]
                try:
                    await self.client.delete(ENDPOINTSLICES, name, namespace=namespace)
                except StatusError as e:
                    if e.code != 404:
                        raise
                self.writes.deleted(key, name)
                self._written.pop(f"{namespace}/{name}", None)
        except StatusError as e:
            if service is not None and e.code != 409:
                self.record_event(service, WARNING, "FailedToUpdateEndpointSlices",
                                  f"Error updating Endpoint Slices for Service {key}: {e.message}")
            raise

    @staticmethod
    def _annotate(slice_: Obj, trigger: str | None) -> None:
        meta = slice_["metadata"]
        annotations = dict(meta.get("annotations") or {})
        if trigger is not None:
            annotations[ANNOTATION_TRIGGER_TIME] = trigger
        else:
            annotations.pop(ANNOTATION_TRIGGER_TIME, None)
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations", None)
