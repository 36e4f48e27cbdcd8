"""Service ClusterIP and NodePort allocation.

State is in memory and derived from the store: :meth:`ServiceAllocators.rebuild`
reads every Service on start and marks its addresses and ports, so a restart
never hands out something twice.  Allocation happens in the write path as a
:class:`~skiff.apiserver.hooks.Reservation`: taken before the write, given
back if the write does not happen, and old values released only once the
new object is stored::

    create   ClusterIP: "" -> allocate; "None" -> headless; "a.b.c.d" -> reserve (422 when taken)
             NodePort/LoadBalancer: each port's nodePort allocated or reserved
    update   clusterIP is kept (immutable once set); nodePorts are kept per port;
             type change to ClusterIP/ExternalName clears nodePorts (released);
             to ExternalName releases the ClusterIP
    LoadBalancer: no node ports when allocateLoadBalancerNodePorts is false;
             a healthCheckNodePort when externalTrafficPolicy is Local
    delete   everything released

The first address of the service CIDR (``10.96.0.1``) is reserved for the
``kubernetes`` Service and only handed out when asked for by name; the network
and broadcast addresses are never used.  Dynamic picks are random, like
kube-apiserver's.
"""

from __future__ import annotations

import ipaddress
import random
from functools import partial
from typing import Any, Callable

from ..api.errors import Cause, invalid
from ..storage.interface import Backend
from .hooks import KindHooks, Reservation
from .objects import decode

Obj = dict[str, Any]

SERVICES_PREFIX = "/registry/core/services/"
NEEDS_NODE_PORTS = ("NodePort", "LoadBalancer")


class AllocationError(Exception):
    pass


class RangeAllocator:
    """Integers in [low, high]: reserve specific ones or pick a free one at random."""

    def __init__(self, low: int, high: int, rng: random.Random) -> None:
        self.low, self.high = low, high
        self.used: set[int] = set()
        self._rng = rng

    def __contains__(self, value: int) -> bool:
        return self.low <= value <= self.high

    def reserve(self, value: int) -> None:
        if value in self.used:
            raise AllocationError("already allocated")
        self.used.add(value)

    def pick(self) -> int:
        size = self.high - self.low + 1
        if len(self.used) >= size:
            raise AllocationError("range is full")
        for _ in range(32):
            value = self._rng.randint(self.low, self.high)
            if value not in self.used:
                self.used.add(value)
                return value
        start = self._rng.randint(self.low, self.high)
        for offset in range(size):
            value = self.low + (start - self.low + offset) % size
            if value not in self.used:
                self.used.add(value)
                return value
        raise AllocationError("range is full")

    def release(self, value: int) -> None:
        self.used.discard(value)


class ServiceAllocators(KindHooks):
    """The Service hooks: ClusterIPs from ``service_cidr``, NodePorts from ``node_port_range``."""

    def __init__(self, service_cidr: str, node_port_range: tuple[int, int],
                 rng: random.Random | None = None) -> None:
        self.network = ipaddress.ip_network(service_cidr)
        rng = rng or random.Random()
        base = int(self.network.network_address)
        last = base + self.network.num_addresses - 1
        self._base = base
        # network address and broadcast are never used; base+1 is the kubernetes Service's
        self.ips = RangeAllocator(base + 2, max(base + 2, last - 1), rng)
        self.reserved_first = base + 1
        self._first_used = False
        self.ports = RangeAllocator(node_port_range[0], node_port_range[1], rng)

    @property
    def kubernetes_ip(self) -> str:
        return str(ipaddress.ip_address(self.reserved_first))

    async def rebuild(self, backend: Backend) -> None:
        r = await backend.range(SERVICES_PREFIX)
        for kv in r.kvs:
            spec = decode(kv).get("spec") or {}
            ip = spec.get("clusterIP")
            if ip and ip != "None":
                try:
                    self._reserve_ip(ip)
                except (AllocationError, ValueError):
                    pass
            for port in spec.get("ports") or []:
                np = port.get("nodePort")
                if isinstance(np, int) and np in self.ports:
                    self.ports.used.add(np)
            hc = spec.get("healthCheckNodePort")
            if isinstance(hc, int) and hc in self.ports:
                self.ports.used.add(hc)

    # -- addresses ---------------------------------------------------------------------

    def _reserve_ip(self, ip: str) -> None:
        value = int(ipaddress.ip_address(ip))
        if value == self.reserved_first:
            if self._first_used:
                raise AllocationError("provided IP is already allocated")
            self._first_used = True
            return
        if value not in self.ips:
            raise AllocationError(
                f"the provided IP ({ip}) is not in the valid range. The range of valid IPs is {self.network}")
        try:
            self.ips.reserve(value)
        except AllocationError:
            raise AllocationError("provided IP is already allocated") from None

    def _release_ip(self, ip: str) -> None:
        try:
            value = int(ipaddress.ip_address(ip))
        except ValueError:
            return
        if value == self.reserved_first:
            self._first_used = False
        else:
            self.ips.release(value)

    # -- hooks ---------------------------------------------------------------------------

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        name = obj["metadata"].get("name", "")
        spec = obj.setdefault("spec", {})
        old_spec = (old or {}).get("spec") or {}
        taken: list[Callable[[], None]] = []  # undo on abort
        freed: list[Callable[[], None]] = []  # do on commit
        try:
            self._admit_ip(name, spec, old_spec, old is not None, taken, freed)
            self._admit_ports(name, spec, old_spec, taken, freed)
        except BaseException:
            for undo in taken:
                undo()
            raise

        def commit() -> None:
            for release in freed:
                release()

        def abort() -> None:
            for undo in taken:
                undo()

        return Reservation(commit=commit, abort=abort)

    def _admit_ip(self, name: str, spec: Obj, old_spec: Obj, updating: bool,
                  taken: list[Callable[[], None]], freed: list[Callable[[], None]]) -> None:
        kind = spec.get("type") or "ClusterIP"
        old_ip = old_spec.get("clusterIP") or ""
        has_old = updating and old_ip and old_ip != "None"
        if kind == "ExternalName":
            if has_old:
                freed.append(lambda: self._release_ip(old_ip))
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
            return
        wanted = spec.get("clusterIP") or ((spec.get("clusterIPs") or [""])[0]) or ""
        if updating and old_ip:
            if wanted and wanted != old_ip:
                raise invalid("Service", "", name, [Cause(
                    "FieldValueInvalid", f'Invalid value: []string{{"{wanted}"}}: may not change once set',
                    "spec.clusterIPs[0]")])
            spec["clusterIP"] = old_ip
            spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_ip]
            return
        if wanted == "None":
            spec["clusterIPs"] = ["None"]
            return
        if wanted:
            try:
                self._reserve_ip(wanted)
            except ValueError:
                raise invalid("Service", "", name, [Cause(
                    "FieldValueInvalid", f'Invalid value: "{wanted}": must be a valid IP address, '
                    '(e.g. 10.9.8.7 or 2001:db8::ffff)', "spec.clusterIPs[0]")]) from None
            except AllocationError as exc:
                raise invalid("Service", "", name, [Cause(
                    "FieldValueInvalid",
                    f'Invalid value: []string{{"{wanted}"}}: failed to allocate IP {wanted}: {exc}',
                    "spec.clusterIPs")]) from None
            taken.append(lambda: self._release_ip(wanted))
        else:
            try:
                value = self.ips.pick()
            except AllocationError:
                raise invalid("Service", "", name, [Cause(
                    "FieldValueInvalid", "Invalid value: []string(nil): failed to allocate a serviceIP: "
                    "range is full", "spec.clusterIPs")]) from None
            wanted = str(ipaddress.ip_address(value))
            taken.append(lambda: self.ips.release(value))
        spec["clusterIP"] = wanted
        spec["clusterIPs"] = [wanted]

    def _admit_ports(self, name: str, spec: Obj, old_spec: Obj,
                     taken: list[Callable[[], None]], freed: list[Callable[[], None]]) -> None:
        kind = spec.get("type") or "ClusterIP"
        old_ports: dict[tuple[Any, Any], int] = {}
        if (old_spec.get("type") or "ClusterIP") in NEEDS_NODE_PORTS:
            for p in old_spec.get("ports") or []:
                if p.get("nodePort"):
                    old_ports[(p.get("port"), p.get("protocol") or "TCP")] = p["nodePort"]
        old_values = set(old_ports.values())
        kept: set[int] = set()
        ports = spec.get("ports") or []
        if kind in NEEDS_NODE_PORTS:
            allocate = not (kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False)
            for i, port in enumerate(ports):
                field = f"spec.ports[{i}].nodePort"
                wanted = port.get("nodePort")
                if not wanted:
                    reuse = old_ports.get((port.get("port"), port.get("protocol") or "TCP"))
                    if reuse is not None and reuse not in kept:
                        port["nodePort"] = wanted = reuse
                if wanted in old_values:
                    kept.add(wanted)
                elif wanted or allocate:
                    port["nodePort"] = self._take_port(name, wanted, field, taken)
        elif old_ports:
            for port in ports:  # a ClusterIP/ExternalName Service has no node ports
                port.pop("nodePort", None)
        for value in old_values - kept:
            freed.append(partial(self.ports.release, value))
        self._admit_health_check_port(name, spec, old_spec, taken, freed)

    def _admit_health_check_port(self, name: str, spec: Obj, old_spec: Obj,
                                 taken: list[Callable[[], None]], freed: list[Callable[[], None]]) -> None:
        """LoadBalancer Services with externalTrafficPolicy Local get a healthCheckNodePort."""
        old = old_spec.get("healthCheckNodePort") if _needs_health_check(old_spec) else None
        if _needs_health_check(spec):
            wanted = spec.get("healthCheckNodePort") or old
            if wanted and wanted == old:
                spec["healthCheckNodePort"] = old
                return
            spec["healthCheckNodePort"] = self._take_port(name, wanted, "spec.healthCheckNodePort", taken)
        else:
            spec.pop("healthCheckNodePort", None)
        if old:
            freed.append(partial(self.ports.release, old))

    def _take_port(self, name: str, wanted: Any, field: str, taken: list[Callable[[], None]]) -> int:
        """Reserve ``wanted`` (or pick a free port when it is 0/None); 422 when impossible."""
        if wanted:
            if not isinstance(wanted, int) or wanted not in self.ports:
                raise invalid("Service", "", name, [Cause(
                    "FieldValueInvalid", f"Invalid value: {wanted}: provided port is not in the valid "
                    f"range. The range of valid ports is {self.ports.low}-{self.ports.high}", field)])
            try:
                self.ports.reserve(wanted)
            except AllocationError:
                raise invalid("Service", "", name, [Cause(
                    "FieldValueInvalid", f"Invalid value: {wanted}: provided port is already allocated",
                    field)]) from None
            value = wanted
        else:
            try:
                value = self.ports.pick()
            except AllocationError:
                raise invalid("Service", "", name, [Cause(
                    "FieldValueInvalid", "Invalid value: 0: range is full", field)]) from None
        taken.append(partial(self.ports.release, value))
        return value

    def removed(self, obj: Obj) -> None:
        spec = obj.get("spec") or {}
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            self._release_ip(ip)
        if (spec.get("type") or "ClusterIP") in NEEDS_NODE_PORTS:
            for port in spec.get("ports") or []:
                if isinstance(port.get("nodePort"), int):
                    self.ports.release(port["nodePort"])
        if _needs_health_check(spec) and isinstance(spec.get("healthCheckNodePort"), int):
            self.ports.release(spec["healthCheckNodePort"])


def _needs_health_check(spec: Obj) -> bool:
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"
