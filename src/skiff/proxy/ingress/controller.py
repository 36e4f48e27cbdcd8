"""The ingress controller: watches the API, feeds the proxy, reports status.

::

    start: default certificate ─▶ listen (HTTP, HTTPS) ─▶ informers synced
           ─▶ IngressClass "skiff" exists (created, marked default, when missing)
           ─▶ first pass ─▶ ready

    Ingress / IngressClass / TLS Secret changed ──▶ pass:
        served = Ingresses of our classes (classes.py)
        proxy.table  = build_table(served)                     (routes.py)
        certificates = spec.tls hosts → their Secrets           (certs.py)
        status.loadBalancer.ingress = [{ip: status address}]    on every served Ingress
                                      (cleared from one we no longer serve)
        Event "Sync" on each served Ingress whose generation is new to us
    Service / EndpointSlice changed ──▶ nothing to do: the proxy reads the
        cached Services and slices on every request (backends.py) and dials
        only addresses this host routes itself (reach.py)

A pass that fails to write (API errors) is retried with back-off. The status
address is the one given, else ``host`` when it is a concrete address, else
127.0.0.1 (a laptop's own address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from typing import Any

from ...api.errors import StatusError
from ...client.factory import InformerFactory
from ...client.informer import Informer, object_key
from ...client.resources import ENDPOINTSLICES, SECRETS, SERVICES, Resource
from ...client.rest import ApiClient, TransportError
from ...controllers.events import NORMAL, EventRecorder
from .backends import Address, ready_endpoints
from .canary import Roll
from .certs import CertificateStore, SecretPair, secret_pair
from .classes import CLASS_NAME, CONTROLLER_NAME, OurClasses, our_classes, skiff_ingress_class
from .routes import BackendRef, RouteTable, build_table, ingress_age
from .reach import LocalRoutes
from .server import DialGuard, IngressProxy

Obj = dict[str, Any]
log = logging.getLogger(__name__)

INGRESSES = Resource("networking.k8s.io", "v1", "ingresses", kind="Ingress")
INGRESSCLASSES = Resource("networking.k8s.io", "v1", "ingressclasses", namespaced=False,
                          kind="IngressClass")
COMPONENT = "skiff-ingress-controller"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
TLS_SECRET_TYPE = "kubernetes.io/tls"

#: Called once listening, with the bound HTTP and HTTPS ports (useful with port 0).
OnListening = Callable[[int, int], None]


def status_entries(address: str) -> list[Obj]:
    """``status.loadBalancer.ingress`` for one address (an IP, or else a host name)."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return [{"hostname": address}]
    return [{"ip": address}]


def default_status_address(host: str) -> str:
    try:
        return "127.0.0.1" if ipaddress.ip_address(host).is_unspecified else host
    except ValueError:
        return "127.0.0.1"


def _shown_status(ingress: Obj) -> list[Obj]:
    current = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [{k: entry[k] for k in ("ip", "hostname") if entry.get(k)} for entry in current]


class IngressController:
    """Runs the proxy and keeps it in line with the API (see module docstring)."""

    def __init__(self, client: ApiClient, *, host: str = "127.0.0.1", http_port: int = 80,
                 https_port: int = 443, status_address: str | None = None,
                 class_name: str = CLASS_NAME, roll: Roll | None = None,
                 dial_guard: DialGuard | None = None) -> None:
        self.client = client
        self.host = host
        self.status_address = status_address or default_status_address(host)
        self.class_name = class_name
        self._ports = (http_port, https_port)
        self._roll = roll
        self._dial_guard: DialGuard = dial_guard or LocalRoutes().allows
        self.proxy: IngressProxy | None = None
        self.classes = OurClasses(frozenset(), False)
        self.served: set[str] = set()               # keys of the Ingresses we serve
        self._ingresses: Informer | None = None
        self._classes: Informer | None = None
        self._services: Informer | None = None
        self._slices: Informer | None = None
        self._secrets: Informer | None = None
        self._recorder = EventRecorder(client)
        self._seen_generation: dict[str, int] = {}
        self._wake = asyncio.Event()                # a pass is needed
        self._changed = asyncio.Event()             # something changed (for wait_for)

    # -- what others read --------------------------------------------------------

    @property
    def http_port(self) -> int:
        return self.proxy.http_port if self.proxy is not None else 0

    @property
    def https_port(self) -> int:
        return self.proxy.https_port if self.proxy is not None else 0

    @property
    def table(self) -> RouteTable:
        return self.proxy.table if self.proxy is not None else RouteTable()

    def endpoints(self, backend: BackendRef) -> list[Address]:
        """The ready endpoints of a backend, from the cached Service and EndpointSlices."""
        if self._services is None or self._slices is None:
            return []
        service = self._services.get_by(backend.namespace, backend.service)
        slices = self._slices.by_index("service", f"{backend.namespace}/{backend.service}")
        return ready_endpoints(service, slices, backend.port)

    def ingress(self, key: str) -> Obj | None:
        """The cached Ingress ``namespace/name`` (do not mutate it)."""
        return self._ingresses.get(key) if self._ingresses is not None else None

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds; checked after every pass and cache change."""
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    # -- running -------------------------------------------------------------------

    async def run(self, *, ready: asyncio.Event | None = None,
                  on_listening: OnListening | None = None) -> None:
        """Serve until cancelled; the listeners are closed on the way out."""
        certificates = await CertificateStore.create()
        self.proxy = IngressProxy(self, certificates, dial_guard=self._dial_guard, roll=self._roll)
        factory = InformerFactory(self.client)
        self._watch(factory)
        try:
            await self.proxy.start(self.host, *self._ports)
            log.info("ingress controller listening on %s: HTTP %d, HTTPS %d", self.host,
                     self.proxy.http_port, self.proxy.https_port)
            if on_listening is not None:
                on_listening(self.proxy.http_port, self.proxy.https_port)
            async with asyncio.TaskGroup() as group:
                group.create_task(factory.run(), name="ingress-informers")
                group.create_task(self._recorder.run(), name="ingress-events")
                try:
                    await factory.wait_synced()
                    await self._retrying(self._ensure_class)
                    assert self._classes is not None
                    classes = self._classes
                    await self.wait_for(lambda: classes.get(self.class_name) is not None)
                    await self._retrying(self._pass)
                    if ready is not None:
                        ready.set()
                    await self._loop()
                finally:
                    factory.stop()
        finally:
            await self.proxy.close()

    def _watch(self, factory: InformerFactory) -> None:
        def wake(*_: Obj) -> None:
            self._wake.set()
            self._changed.set()

        def changed(*_: Obj) -> None:
            self._changed.set()

        self._ingresses = factory.informer(INGRESSES)
        self._classes = factory.informer(INGRESSCLASSES)
        self._secrets = factory.informer(SECRETS, field_selector=f"type={TLS_SECRET_TYPE}")
        self._services = factory.informer(SERVICES)
        self._slices = factory.informer(ENDPOINTSLICES, label_selector=SERVICE_NAME_LABEL)
        self._slices.add_index("service", _slice_service)
        for informer in (self._ingresses, self._classes, self._secrets):
            informer.add_handler(on_add=wake, on_update=wake, on_delete=wake)
        for informer in (self._services, self._slices):
            informer.add_handler(on_add=changed, on_update=changed, on_delete=changed)

    async def _retrying(self, step: Callable[[], Any]) -> None:
        failures = 0
        while True:
            try:
                await step()
                return
            except (StatusError, TransportError) as error:
                failures += 1
                delay = min(30.0, 0.2 * 2 ** min(failures, 8))
                log.warning("ingress controller: %s; again in %.1f s", error, delay)
                await asyncio.sleep(delay)

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._retrying(self._pass)

    async def _ensure_class(self) -> None:
        try:
            existing = await self.client.get(INGRESSCLASSES, self.class_name)
        except StatusError as error:
            if error.code != 404:
                raise
            try:
                await self.client.create(INGRESSCLASSES, skiff_ingress_class(self.class_name))
                log.info("ingress controller: created IngressClass %s (the default class)", self.class_name)
            except StatusError as create_error:
                if create_error.code != 409:
                    raise
            return
        if (existing.get("spec") or {}).get("controller") != CONTROLLER_NAME:
            log.warning("ingress controller: IngressClass %s belongs to controller %s, not %s",
                        self.class_name, (existing.get("spec") or {}).get("controller"), CONTROLLER_NAME)

    # -- one pass ----------------------------------------------------------------

    async def _pass(self) -> None:
        assert self.proxy is not None and self._ingresses is not None and self._classes is not None
        self.classes = our_classes(self._classes.list())
        served = sorted((i for i in self._ingresses.list() if self.classes.serves(i)), key=ingress_age)
        table = build_table(served)
        for conflict in table.conflicts:
            log.warning("ingress %s: %s", conflict.ingress, conflict)
        self.proxy.table = table
        self.proxy.balancer.forget_all_but(
            ref for server in table.servers()
            for route in [*server.routes, *([server.fallback] if server.fallback else [])]
            for ref in ([route.backend, route.canary.backend] if route.canary else [route.backend]))
        for error in await self.proxy.certificates.update(self._tls_pairs(served)):
            log.warning("ingress controller: TLS secret %s", error)
        self.served = {object_key(i) for i in served}
        self._record_syncs(served)
        await self._write_statuses()
        self._changed.set()

    def _tls_pairs(self, served: list[Obj]) -> dict[str, SecretPair]:
        """Each TLS host's certificate: the first (oldest) Ingress naming the host wins."""
        assert self._secrets is not None
        pairs: dict[str, SecretPair] = {}
        for ingress in served:
            namespace = str((ingress.get("metadata") or {}).get("namespace", ""))
            for tls in (ingress.get("spec") or {}).get("tls") or []:
                secret = self._secrets.get_by(namespace, str(tls.get("secretName") or "")) \
                    if tls.get("secretName") else None
                pair = secret_pair(secret) if secret is not None else None
                if pair is None:
                    continue                    # those hosts get the default certificate
                for host in tls.get("hosts") or []:
                    pairs.setdefault(str(host).lower(), pair)
        return pairs

    def _record_syncs(self, served: list[Obj]) -> None:
        keys = set()
        for ingress in served:
            key = object_key(ingress)
            keys.add(key)
            generation = int((ingress.get("metadata") or {}).get("generation") or 0)
            if self._seen_generation.get(key) != generation:
                self._seen_generation[key] = generation
                self._recorder.event(ingress, NORMAL, "Sync", "Scheduled for sync", component=COMPONENT)
        for key in [k for k in self._seen_generation if k not in keys]:
            del self._seen_generation[key]

    async def _write_statuses(self) -> None:
        assert self._ingresses is not None
        wanted = status_entries(self.status_address)
        for ingress in self._ingresses.list():
            key = object_key(ingress)
            shown = _shown_status(ingress)
            if key in self.served:
                if shown == wanted:
                    continue
                body: Obj = {"status": {"loadBalancer": {"ingress": wanted}}}
            elif shown == wanted:               # ours once, not any more: take our address back
                body = {"status": {"loadBalancer": {"ingress": None}}}
            else:
                continue
            meta = ingress.get("metadata") or {}
            try:
                await self.client.patch(INGRESSES, str(meta.get("name")), body,
                                        namespace=str(meta.get("namespace")), subresource="status")
            except StatusError as error:
                if error.code != 404:           # deleted meanwhile: nothing to report
                    raise


def _slice_service(endpoint_slice: Obj) -> list[str]:
    meta = endpoint_slice.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return [f"{meta.get('namespace', '')}/{name}"] if name else []


async def run_ingress_controller(client: ApiClient, *, host: str = "127.0.0.1", http_port: int = 80,
                                 https_port: int = 443, status_address: str | None = None,
                                 ready: asyncio.Event | None = None,
                                 on_listening: OnListening | None = None) -> None:
    """Run skiff's built-in ingress controller until cancelled (see module docstring).

    ``ready`` is set once both ports listen and the first pass has served every
    existing Ingress; ``on_listening(http_port, https_port)`` is called with the
    bound ports as soon as they listen (pass 0 to let the system pick them).
    """
    controller = IngressController(client, host=host, http_port=http_port, https_port=https_port,
                                   status_address=status_address)
    await controller.run(ready=ready, on_listening=on_listening)
