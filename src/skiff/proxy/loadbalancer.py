"""The built-in load-balancer controller (like k3s's ServiceLB): each
LoadBalancer Service gets the nodes' own addresses as its ingress, and the
service proxy on every node answers on them (see .rules: ``ext-`` chains).

::

    Service type LoadBalancer (without spec.loadBalancerClass)
       │  its (protocol, port)s free on those addresses?   oldest Service first
       ├─ yes ─▶ status.loadBalancer.ingress = [{ip: a, ipMode: VIP} for a in addresses]
       └─ no  ─▶ no ingress (kubectl shows <pending>) until the other Service lets go;
                 a Warning event SyncLoadBalancerFailed on it says which Service holds the port
    any other Service type still carrying an ingress ─▶ ingress cleared

    addresses: given (``skiff up`` on a laptop passes the host's own), or else
               every Node's ExternalIP, or its InternalIP when it has none
               (skipping Nodes whose Ready condition is False)

Two Services can not both take 80/TCP: on the same addresses they would claim
the same ``ip . proto . port`` in every node's proxy. Like ServiceLB, the later
one waits. Services with a ``loadBalancerClass`` belong to another
implementation and are never touched. The controller is level-triggered: every
change re-evaluates all LoadBalancer Services (there are few) and writes only
the statuses that differ.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..api.errors import StatusError
from ..client.factory import InformerFactory
from ..client.informer import Informer, object_key
from ..client.resources import NODES, SERVICES
from ..client.rest import ApiClient, TransportError
from ..controllers.events import EventRecorder

Obj = dict[str, Any]
log = logging.getLogger(__name__)


def node_addresses(nodes: Iterable[Obj]) -> list[str]:
    """Each Node's IPv4 ExternalIPs, else its InternalIPs (Nodes not Ready=False)."""
    found: list[str] = []
    for node in sorted(nodes, key=object_key):
        status = node.get("status") or {}
        if any(c.get("type") == "Ready" and c.get("status") == "False"
               for c in status.get("conditions") or []):
            continue
        by_type: dict[str, list[str]] = {}
        for entry in status.get("addresses") or []:
            if _is_ipv4(entry.get("address")):
                by_type.setdefault(str(entry.get("type")), []).append(str(entry["address"]))
        found += by_type.get("ExternalIP") or by_type.get("InternalIP") or []
    return list(dict.fromkeys(found))


def is_ours(service: Obj) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def assign(services: Iterable[Obj], addresses: Sequence[str]) -> dict[str, list[str]]:
    """The ingress IPs each LoadBalancer Service should have (``[]``: pending)."""
    return assignment(services, addresses)[0]


def assignment(services: Iterable[Obj], addresses: Sequence[str]
               ) -> tuple[dict[str, list[str]], dict[str, str]]:
    """:func:`assign`, and why each waiting Service waits (key -> message)."""
    claimed: dict[tuple[str, int], str] = {}
    wanted: dict[str, list[str]] = {}
    waiting: dict[str, str] = {}
    for service in sorted((s for s in services if is_ours(s)), key=_age):
        key = object_key(service)
        ports = {(str(p.get("protocol") or "TCP"), int(p.get("port") or 0))
                 for p in (service.get("spec") or {}).get("ports") or []}
        taken = sorted(port for port in ports if port in claimed)
        if taken or not addresses:
            if taken:
                waiting[key] = (f"port {taken[0][1]}/{taken[0][0]} is already taken by Service "
                                f"{claimed[taken[0]]}; waiting for it to be released")
                log.info("load balancer: %s waits for %s/%s, held by %s", key, taken[0][1],
                         taken[0][0], claimed[taken[0]])
            wanted[key] = []
            continue
        for port in ports:
            claimed[port] = key
        wanted[key] = list(addresses)
    return wanted, waiting


def ingress_ips(service: Obj) -> list[str]:
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [str(entry.get("ip")) for entry in ingress if entry.get("ip")]


class LoadBalancerController:
    """Writes status.loadBalancer.ingress (see module docstring)."""

    def __init__(self, client: ApiClient, *, addresses: Sequence[str] | None = None) -> None:
        self.client = client
        self.addresses = list(addresses) if addresses is not None else None
        self._services: Informer | None = None
        self._nodes: Informer | None = None
        self._wake = asyncio.Event()
        self._done = asyncio.Condition()
        self.recorder = EventRecorder(client)
        self._reported: dict[str, str] = {}     # Service -> why it waits, as last reported

    def service(self, key: str) -> Obj | None:
        """The cached Service ``ns/name`` (do not mutate it)."""
        return self._services.get(key) if self._services is not None else None

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, checked after every pass."""
        async with self._done:
            await self._done.wait_for(predicate)

    async def run(self, *, informers: InformerFactory | None = None,
                  started: asyncio.Event | None = None) -> None:
        """Run until cancelled (``informers``: a shared factory the caller runs)."""
        factory = informers if informers is not None else InformerFactory(self.client)
        self._services = factory.informer(SERVICES)
        wake = lambda *_: self._wake.set()  # noqa: E731
        self._services.add_handler(on_add=wake, on_update=wake, on_delete=wake)
        if self.addresses is None:
            self._nodes = factory.informer(NODES)
            # Heartbeats rewrite a Node every few seconds; only what node_addresses reads matters.
            self._nodes.add_handler(on_add=wake, on_delete=wake,
                                    on_update=lambda old, new: (node_addresses([old]) != node_addresses([new])
                                                                and self._wake.set()))
        async with asyncio.TaskGroup() as group:
            group.create_task(self.recorder.run(), name="loadbalancer-events")
            if informers is None:
                group.create_task(factory.run(), name="loadbalancer-informers")
            try:
                await self._services.wait_synced()
                if self._nodes is not None:
                    await self._nodes.wait_synced()
                if started is not None:
                    started.set()
                await self._loop()
            finally:
                if informers is None:
                    factory.stop()

    async def _loop(self) -> None:
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._pass()
                failures = 0
            except (StatusError, TransportError) as error:
                failures += 1
                delay = min(30.0, 0.2 * 2 ** min(failures, 8))
                log.warning("load balancer: %s; again in %.1f s", error, delay)
                await asyncio.sleep(delay)
                self._wake.set()
            async with self._done:
                self._done.notify_all()

    async def _pass(self) -> None:
        assert self._services is not None
        services = self._services.list()
        if not any(is_ours(s) or ingress_ips(s) for s in services):
            return                              # no LoadBalancer Service: the nodes do not matter
        addresses = (self.addresses if self.addresses is not None
                     else node_addresses(self._nodes.list() if self._nodes else []))
        wanted, waiting = assignment(services, addresses)
        for service in services:
            key = object_key(service)
            current = ingress_ips(service)
            target = wanted.get(key, [])
            self._report(service, waiting.get(key, ""), assigned=bool(target) and current != target)
            if key not in wanted and (not current or (service.get("spec") or {}).get("loadBalancerClass")):
                continue                         # not ours and nothing to clear
            if current == target:
                continue
            status = ({"ingress": [{"ip": ip, "ipMode": "VIP"} for ip in target]} if target else {})
            meta = service.get("metadata") or {}
            try:
                await self.client.patch(SERVICES, str(meta.get("name")),
                                        {"status": {"loadBalancer": status or {"ingress": None}}},
                                        namespace=str(meta.get("namespace")), subresource="status")
            except StatusError as error:
                if error.code != 404:            # deleted meanwhile: nothing to do
                    raise


    def _report(self, service: Obj, waits: str, *, assigned: bool) -> None:
        """Events on the Service, as Kubernetes' service controller records them: why it
        waits (once per reason), and that it got its load balancer."""
        key = object_key(service)
        if waits and self._reported.get(key) != waits:
            self.recorder.event(service, "Warning", "SyncLoadBalancerFailed",
                                f"Error syncing load balancer: {waits}", component="service-controller")
            self._reported[key] = waits
        elif assigned:
            self.recorder.event(service, "Normal", "EnsuredLoadBalancer", "Ensured load balancer",
                                component="service-controller")
            self._reported.pop(key, None)


async def run_load_balancer_controller(client: ApiClient, *, addresses: Sequence[str] | None = None,
                                       informers: InformerFactory | None = None,
                                       started: asyncio.Event | None = None) -> None:
    """Run the load-balancer controller until cancelled (see module docstring)."""
    await LoadBalancerController(client, addresses=addresses).run(informers=informers, started=started)


def _age(service: Obj) -> tuple[str, str]:
    meta = service.get("metadata") or {}
    return (str(meta.get("creationTimestamp", "")), object_key(service))


def _is_ipv4(value: Any) -> bool:
    try:
        return isinstance(ipaddress.ip_address(str(value)), ipaddress.IPv4Address)
    except ValueError:
        return False
