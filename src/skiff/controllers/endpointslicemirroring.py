"""The EndpointSlice mirroring controller: hand-written Endpoints -> EndpointSlices.

A Service without a selector gets its endpoints from an Endpoints object that
someone writes by hand (or an operator, or the API server for
``default/kubernetes``).  Consumers of EndpointSlices - the service proxy, the
DNS - would never see those, so this controller copies them::

    Endpoints ns/db  (Service ns/db exists and has no selector;
                      no label endpointslice.kubernetes.io/skip-mirror=true;
                      not a leader-election lock)
      │ every address -> one endpoint: ready = listed under addresses (true) or
      │ notReadyAddresses (false); hostname, nodeName, targetRef kept
      │ grouped by (address type, ports); at most 1000 addresses per subset
      ▼
    EndpointSlice db-<random>
      labels      the Endpoints' labels + kubernetes.io/service-name: db
                  + endpointslice.kubernetes.io/managed-by: endpointslicemirroring-controller.k8s.io
      annotations the Endpoints' (without last-change-trigger-time and last-applied-configuration)
      ownerReferences: the Endpoints (controller)

When mirroring stops applying (Endpoints or Service deleted, a selector added,
skip-mirror set) the mirrored slices are deleted.  Existing slices are
rewritten in place where possible; only this controller's slices are touched.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
from typing import Any, ClassVar

from ..api.errors import StatusError
from ..client.informer import Informer, object_key, split_key
from ..client.resources import ENDPOINTS, ENDPOINTSLICES, SERVICES
from .endpointslice import SERVICE_INDEX, ports_key, service_of_slice
from .ownership import owner_reference
from .reconciler import Controller, ControllerContext
from .serviceendpoints import (
    ANNOTATION_TRIGGER_TIME, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, WriteTracker, selector_of,
)

Obj = dict[str, Any]
log = logging.getLogger(__name__)

MANAGED_BY = "endpointslicemirroring-controller.k8s.io"
LABEL_SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: Addresses mirrored per Endpoints subset, and endpoints per mirrored slice.
MAX_PER_SUBSET = 1000
MAX_PER_SLICE = 1000


def should_mirror(endpoints: Obj) -> bool:
    meta = endpoints.get("metadata") or {}
    return (meta.get("labels") or {}).get(LABEL_SKIP_MIRROR) != "true" \
        and LEADER_ANNOTATION not in (meta.get("annotations") or {})


def is_mirrored(slice_: Obj) -> bool:
    return ((slice_.get("metadata") or {}).get("labels") or {}).get(LABEL_MANAGED_BY) == MANAGED_BY


def _endpoint(address: Obj, ready: bool) -> tuple[str, Obj] | None:
    try:
        ip = ipaddress.ip_address(str(address.get("ip", "")))
    except ValueError:
        return None
    endpoint: Obj = {"addresses": [str(ip)], "conditions": {"ready": ready}}
    if address.get("hostname"):
        endpoint["hostname"] = address["hostname"]
    if address.get("targetRef"):
        endpoint["targetRef"] = address["targetRef"]
    if address.get("nodeName"):
        endpoint["nodeName"] = address["nodeName"]
    return ("IPv6" if ip.version == 6 else "IPv4"), endpoint


def _ports(subset: Obj) -> list[Obj]:
    out = []
    for port in subset.get("ports") or []:
        converted: Obj = {"name": port.get("name") or "", "port": port.get("port"),
                          "protocol": port.get("protocol") or "TCP"}
        if port.get("appProtocol"):
            converted["appProtocol"] = port["appProtocol"]
        out.append(converted)
    return out


def desired_slices(endpoints: Obj) -> list[Obj]:
    """The mirrored slices for ``endpoints`` (no names yet), in a stable order."""
    meta = endpoints["metadata"]
    labels = dict(meta.get("labels") or {})
    labels[LABEL_SERVICE_NAME] = meta["name"]
    labels[LABEL_MANAGED_BY] = MANAGED_BY
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k not in (ANNOTATION_TRIGGER_TIME, LAST_APPLIED)}
    groups: dict[tuple[str, Any], tuple[list[Obj], dict[str, Obj]]] = {}
    for subset in endpoints.get("subsets") or []:
        ports = _ports(subset)
        listed = [(a, True) for a in subset.get("addresses") or []] + \
                 [(a, False) for a in subset.get("notReadyAddresses") or []]
        for address, ready in listed[:MAX_PER_SUBSET]:
            converted = _endpoint(address, ready)
            if converted is None:
                continue
            family, endpoint = converted
            _, members = groups.setdefault((family, ports_key(ports)), (ports, {}))
            members.setdefault(endpoint["addresses"][0], endpoint)
    out = []
    for (family, _), (ports, members) in sorted(groups.items(), key=lambda kv: kv[0]):
        listed_eps = list(members.values())
        for start in range(0, len(listed_eps), MAX_PER_SLICE):
            body: Obj = {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"],
                             "labels": labels, "ownerReferences": [owner_reference(
                                 endpoints, api_version="v1", kind="Endpoints")]},
                "addressType": family, "ports": ports,
                "endpoints": listed_eps[start:start + MAX_PER_SLICE]}
            if annotations:
                body["metadata"]["annotations"] = annotations
            out.append(body)
    return out


def _same(have: Obj, want: Obj) -> bool:
    hm, wm = have["metadata"], want["metadata"]
    return (have.get("addressType") == want["addressType"]
            and ports_key(have.get("ports")) == ports_key(want["ports"])
            and (have.get("endpoints") or []) == want["endpoints"]
            and (hm.get("labels") or {}) == wm["labels"]
            and (hm.get("annotations") or {}) == wm.get("annotations", {})
            and hm.get("ownerReferences") == wm["ownerReferences"])


class EndpointSliceMirroringController(Controller):
    """Mirrors selector-less Services' Endpoints into EndpointSlices (see module docstring)."""

    name: ClassVar[str] = "endpointslicemirroring"
    component: ClassVar[str] = "endpointslice-mirroring-controller"
    workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.endpoints: Informer = self.informer(ENDPOINTS)
        self.services: Informer = self.informer(SERVICES)
        self.slices: Informer = self.informer(ENDPOINTSLICES)
        self.slices.add_index(SERVICE_INDEX, service_of_slice)
        self.writes = WriteTracker()
        self._written: dict[str, str] = {}
        self.endpoints.add_handler(on_add=self.enqueue,
                                   on_update=lambda _old, new: self.enqueue(new),
                                   on_delete=self.enqueue)
        self.services.add_handler(on_add=self._service_changed,
                                  on_update=lambda _old, new: self._service_changed(new),
                                  on_delete=self._service_changed)
        self.slices.add_handler(on_add=self._slice_changed,
                                on_update=lambda _old, new: self._slice_changed(new),
                                on_delete=self._slice_changed)

    def _service_changed(self, service: Obj) -> None:
        if self.endpoints.get(object_key(service)) is not None:
            self.enqueue(service)

    def _slice_changed(self, slice_: Obj) -> None:
        if not is_mirrored(slice_):
            return
        for key in service_of_slice(slice_):
            if self._written.get(object_key(slice_)) != slice_["metadata"].get("resourceVersion") \
                    or self.writes.waiting(key):
                self.enqueue_key(key)

    async def reconcile(self, key: str) -> float | None:
        namespace, _ = split_key(key)
        existing = [s for s in self.slices.by_index(SERVICE_INDEX, key) if is_mirrored(s)]
        if not self.writes.fresh(key, {s["metadata"]["name"]: s for s in existing}):
            return 1.0
        endpoints = self.endpoints.get(key)
        service = self.services.get(key)
        wanted: list[Obj] = []
        if endpoints is not None and service is not None and should_mirror(endpoints) \
                and selector_of(service) is None:
            wanted = desired_slices(endpoints)
        leftovers = list(existing)
        creates: list[Obj] = []
        updates: list[Obj] = []
        for body in wanted:
            match = next((s for s in leftovers if s.get("addressType") == body["addressType"]
                          and ports_key(s.get("ports")) == ports_key(body["ports"])), None)
            if match is None:
                creates.append(body)
                continue
            leftovers.remove(match)
            if not _same(match, body):
                updates.append(self._rewrite(match, body))
        while creates and leftovers:  # reuse a slice instead of delete + create
            updates.append(self._rewrite(leftovers.pop(), creates.pop()))
        for body in creates:
            created = await self.client.create(ENDPOINTSLICES, body, namespace=namespace)
            self.writes.created(key, created["metadata"]["name"])
            self._written[object_key(created)] = created["metadata"]["resourceVersion"]
        for body in updates:
            written = await self.client.update(ENDPOINTSLICES, body, namespace=namespace)
            self.writes.updated(key, body["metadata"]["name"],
                                str(body["metadata"].get("resourceVersion") or ""),
                                written["metadata"]["resourceVersion"])
            self._written[object_key(written)] = written["metadata"]["resourceVersion"]
        for slice_ in leftovers:
            try:
                await self.client.delete(ENDPOINTSLICES, slice_["metadata"]["name"],
                                         namespace=namespace)
            except StatusError as e:
                if e.code != 404:
                    raise
            self.writes.deleted(key, slice_["metadata"]["name"])
            self._written.pop(object_key(slice_), None)
        return None

    @staticmethod
    def _rewrite(existing: Obj, body: Obj) -> Obj:
        out = copy.deepcopy(body)
        meta = out["metadata"]
        meta.pop("generateName", None)
        meta["name"] = existing["metadata"]["name"]
        meta["resourceVersion"] = existing["metadata"].get("resourceVersion")
        return out
