"""The cluster's DNS records: Services and EndpointSlices -> precomputed answers.

Every record the Kubernetes DNS specification asks for, for zone ``<zone>``
(``cluster.local``), kept as a dict ``(name, type) -> Answer`` that is updated
incrementally: a Service or slice change rebuilds only that Service's records::

    ClusterIP Service web.ns            web.ns.svc.<zone>           A/AAAA  cluster IP(s)
      (named port http/TCP)             _http._tcp.web.ns.svc.<zone> SRV 0 100 <port> web.ns.svc.<zone>
                                        <reversed IP>.in-addr.arpa   PTR     web.ns.svc.<zone>
    headless Service db.ns              db.ns.svc.<zone>             A/AAAA  every ready endpoint
      (endpoints from its slices)       <host>.db.ns.svc.<zone>      A/AAAA  that endpoint
                                        _<port>._<proto>.db.ns...    SRV     one per ready endpoint
                                        <reversed IP>.in-addr.arpa   PTR     <host>.db.ns.svc.<zone>
          <host> = the endpoint's hostname (StatefulSet pod web-0), else its IP with dashes
    ExternalName Service ext.ns         ext.ns.svc.<zone>            CNAME   spec.externalName
    any pod IP a.b.c.d                  a-b-c-d.<ns>.pod.<zone>      A       a.b.c.d (computed)
    the zone                            <zone>                       SOA, NS ns.dns.<zone>
                                        ns.dns.<zone>                A       kube-system/kube-dns IP
                                        dns-version.<zone>           TXT     "1.1.0"

Lookups (:meth:`ClusterRecords.lookup`) answer in this order: a precomputed
record; inside the zone, an ExternalName CNAME for any type, a pod record, an
empty NOERROR ("NODATA") for a name that exists with other types (e.g. AAAA of
an IPv4 Service), NXDOMAIN otherwise (both with the zone's SOA, whose minimum
TTL bounds negative caching); outside the zone ``None``: the caller forwards.
A headless Service without ready endpoints has no records, so its name is
NXDOMAIN, as the specification says.  Names match case-insensitively.
"""

from __future__ import annotations

import ipaddress
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .wire import (
    A, AAAA, ANY, CNAME, NOERROR, NS, NXDOMAIN, PTR, QNAME, SOA, SRV, TXT, Answer, WireError,
    encode_name, ip_rdata, is_subdomain, labels_of, rr, soa_rdata, srv_rdata, txt_rdata,
)

Obj = dict[str, Any]
Key = tuple[bytes, int]

DEFAULT_TTL = 5
SCHEMA_VERSION = "1.1.0"
#: The Service whose cluster IP is the zone's name server (ns.dns.<zone>).
DNS_SERVICE = "kube-system/kube-dns"
LABEL_SERVICE_NAME = "kubernetes.io/service-name"


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


def _answer(records: list[tuple[int, int, bytes]], additional: list[bytes] | None = None) -> Answer:
    """An answer whose records all belong to the question name."""
    body = b"".join(rr(QNAME, rtype, ttl, rdata) for rtype, ttl, rdata in records)
    extra = additional or []
    return Answer(NOERROR, len(records), 0, len(extra), body + b"".join(extra))


class _Build:
    """The records of one Service, before they are merged into the table."""

    def __init__(self) -> None:
        self.records: dict[Key, list[tuple[int, int, bytes]]] = {}
        self.srv_targets: dict[Key, list[bytes]] = {}
        self.ptrs: dict[bytes, list[bytes]] = {}

    def add(self, name: bytes, rtype: int, ttl: int, rdata: bytes) -> None:
        entries = self.records.setdefault((name, rtype), [])
        if (rtype, ttl, rdata) not in entries:
            entries.append((rtype, ttl, rdata))

    def add_ip(self, name: bytes, ttl: int, ip: str) -> None:
        rtype, rdata = ip_rdata(ip)
        self.add(name, rtype, ttl, rdata)


class ClusterRecords:
    """The record table (see module docstring); fed with Service and slice events."""

    def __init__(self, zone: str = "cluster.local", *, ttl: int = DEFAULT_TTL,
                 serial: int | None = None) -> None:
        self.zone = zone.strip(".").lower()
        self.zone_wire = encode_name(self.zone)
        self.ttl = ttl
        self._table: dict[Key, Answer] = {}
        self._names: Counter[bytes] = Counter()
        self._owned: dict[str, tuple[list[Key], list[bytes], list[bytes]]] = {}
        self._ptr_owners: dict[bytes, dict[str, list[bytes]]] = {}
        self._services: dict[str, Obj] = {}
        self._slices: dict[str, dict[str, Obj]] = {}
        self._listeners: list[Callable[[], None]] = []
        #: Bumped on every change (tests and benchmarks wait on it).
        self.version = 0
        self._pod_suffix = encode_name(f"pod.{self.zone}")
        self._static(serial if serial is not None else int(time.time()))

    # -- static zone records -------------------------------------------------------------

    def _static(self, serial: int) -> None:
        ns_name = encode_name(f"ns.dns.{self.zone}")
        soa = rr(self.zone_wire, SOA, self.ttl, soa_rdata(
            ns_name, encode_name(f"hostmaster.{self.zone}"), serial, 7200, 1800, 86400, self.ttl))
        self.nxdomain = Answer(NXDOMAIN, 0, 1, 0, soa)
        self.nodata = Answer(NOERROR, 0, 1, 0, soa)
        self._table[(self.zone_wire, SOA)] = Answer(NOERROR, 1, 0, 0, QNAME + soa[len(self.zone_wire):])
        self._table[(self.zone_wire, NS)] = _answer([(NS, self.ttl, ns_name)])
        version = encode_name(f"dns-version.{self.zone}")
        self._table[(version, TXT)] = _answer([(TXT, self.ttl, txt_rdata(SCHEMA_VERSION))])
        self._names.update(self._ancestors(version))
        self._names[self.zone_wire] += 1

    # -- events --------------------------------------------------------------------------

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def set_service(self, service: Obj) -> None:
        key = _key(service)
        self._services[key] = service
        self._rebuild(key)

    def delete_service(self, service: Obj) -> None:
        key = _key(service)
        self._services.pop(key, None)
        self._rebuild(key)

    def set_slice(self, slice_: Obj) -> None:
        key = _service_key_of_slice(slice_)
        if key is None:
            return
        self._slices.setdefault(key, {})[slice_["metadata"]["name"]] = slice_
        if key in self._services and _is_headless(self._services[key]):
            self._rebuild(key)

    def delete_slice(self, slice_: Obj) -> None:
        key = _service_key_of_slice(slice_)
        if key is None:
            return
        slices = self._slices.get(key, {})
        slices.pop(slice_["metadata"]["name"], None)
        if not slices:
            self._slices.pop(key, None)
        if key in self._services and _is_headless(self._services[key]):
            self._rebuild(key)

    # -- lookups ----------------------------------------------------------------------------

    def lookup(self, name: bytes, qtype: int) -> Answer | None:
        """The answer for lower-cased wire ``name``; ``None`` for names to forward."""
        answer = self._table.get((name, qtype))
        if answer is not None:
            return answer
        if not is_subdomain(name, self.zone_wire):
            return None
        if qtype == ANY:
            for rtype in (A, AAAA, CNAME, SRV, PTR, TXT):
                answer = self._table.get((name, rtype))
                if answer is not None:
                    return answer
        cname = self._table.get((name, CNAME))
        if cname is not None:
            return cname
        if is_subdomain(name, self._pod_suffix):
            pod = self._pod_record(name, qtype)
            if pod is not None:
                return pod
        return self.nodata if name in self._names else self.nxdomain

    def exists(self, name: bytes) -> bool:
        return name in self._names

    def _pod_record(self, name: bytes, qtype: int) -> Answer | None:
        labels = labels_of(name)
        if len(labels) != len(labels_of(self._pod_suffix)) + 2:
            return None
        parts = labels[0].split(b"-")
        if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) <= 255
                                      for p in parts):
            return None
        if qtype not in (A, ANY):
            return self.nodata
        ip = bytes(int(p) for p in parts)
        return _answer([(A, self.ttl, ip)])

    # -- building --------------------------------------------------------------------------

    def _ancestors(self, name: bytes) -> list[bytes]:
        """``name`` and every name between it and the zone (they all "exist")."""
        out = []
        while name != self.zone_wire and len(name) > len(self.zone_wire):
            out.append(name)
            name = name[1 + name[0]:]
        return out

    def _rebuild(self, key: str) -> None:
        old_keys, old_names, old_ptrs = self._owned.pop(key, ([], [], []))
        for table_key in old_keys:
            self._table.pop(table_key, None)
        self._names.subtract(old_names)
        for name in old_names:
            if self._names[name] <= 0:
                del self._names[name]
        service = self._services.get(key)
        build = _Build()
        if service is not None:
            try:
                self._build_service(key, service, build)
            except (WireError, ValueError):
                build = _Build()  # a name DNS cannot carry: serve nothing for it
        keys, names = [], []
        for (name, rtype), records in build.records.items():
            additional = [extra for target in build.srv_targets.get((name, rtype), [])
                          for extra in self._additional(build, target)]
            answer = _answer(records, additional)
            if rtype == CNAME:
                answer = replace(answer, cname_target=records[0][2])
            self._table[(name, rtype)] = answer
            keys.append((name, rtype))
            names.extend(self._ancestors(name))
        self._names.update(names)
        touched = set(old_ptrs) | set(build.ptrs)
        for reverse in old_ptrs:
            self._ptr_owners.get(reverse, {}).pop(key, None)
        for reverse, targets in build.ptrs.items():
            self._ptr_owners.setdefault(reverse, {})[key] = targets
        for reverse in touched:
            self._refresh_ptr(reverse)
        self._owned[key] = (keys, names, list(build.ptrs))
        self.version += 1
        for listener in self._listeners:
            listener()

    def _additional(self, build: _Build, target: bytes) -> list[bytes]:
        return [rr(target, rtype, ttl, rdata)
                for rt in (A, AAAA) for rtype, ttl, rdata in build.records.get((target, rt), [])]

    def _refresh_ptr(self, reverse: bytes) -> None:
        owners = self._ptr_owners.get(reverse) or {}
        targets = [t for k in sorted(owners) for t in owners[k]]
        if targets:
            self._table[(reverse, PTR)] = _answer([(PTR, self.ttl, t) for t in targets])
        else:
            self._ptr_owners.pop(reverse, None)
            self._table.pop((reverse, PTR), None)

    def _build_service(self, key: str, service: Obj, build: _Build) -> None:
        namespace, name = key.split("/", 1)
        spec = service.get("spec") or {}
        base_text = f"{name}.{namespace}.svc.{self.zone}"
        base = encode_name(base_text.lower())
        ttl = self.ttl
        if spec.get("type") == "ExternalName":
            target = encode_name(str(spec.get("externalName") or "").lower())
            build.add(base, CNAME, ttl, target)
            return
        ports = [p for p in spec.get("ports") or [] if p.get("name")]
        if not _is_headless(service):
            ips = [ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip]
            for ip in ips:
                build.add_ip(base, ttl, ip)
                build.ptrs.setdefault(encode_name(reverse_name(ip)), []).append(base)
            for port in ports:
                srv = encode_name(f"_{port['name']}._{str(port.get('protocol') or 'TCP').lower()}"
                                  f".{base_text}".lower())
                build.add(srv, SRV, ttl, srv_rdata(0, 100, int(port["port"]), base))
                build.srv_targets[(srv, SRV)] = [base]
            if key == DNS_SERVICE:
                for ip in ips:
                    build.add_ip(encode_name(f"ns.dns.{self.zone}"), ttl, ip)
            return
        self._build_headless(key, base_text, base, build)

    def _build_headless(self, key: str, base_text: str, base: bytes, build: _Build) -> None:
        ttl = self.ttl
        seen: set[tuple[str, str]] = set()
        srv_names: dict[bytes, list[tuple[int, bytes]]] = {}
        for slice_ in (self._slices.get(key) or {}).values():
            ports = [p for p in slice_.get("ports") or [] if p.get("name") and p.get("port")]
            for endpoint in slice_.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for ip in endpoint.get("addresses") or []:
                    try:
                        parsed = ipaddress.ip_address(ip)
                    except ValueError:
                        continue
                    ip = str(parsed)
                    host = endpoint.get("hostname") or ip.replace(".", "-").replace(":", "-")
                    host_name = encode_name(f"{host}.{base_text}".lower())
                    build.add_ip(base, ttl, ip)
                    build.add_ip(host_name, ttl, ip)
                    reverse = encode_name(reverse_name(ip))
                    if host_name not in build.ptrs.get(reverse, []):
                        build.ptrs.setdefault(reverse, []).append(host_name)
                    for port in ports:
                        if (ip, str(port["name"])) in seen:
                            continue
                        seen.add((ip, str(port["name"])))
                        proto = str(port.get("protocol") or "TCP").lower()
                        srv = encode_name(f"_{port['name']}._{proto}.{base_text}".lower())
                        srv_names.setdefault(srv, []).append((int(port["port"]), host_name))
        for srv, targets in srv_names.items():
            weight = max(1, 100 // len(targets))
            for port, target in targets:
                build.add(srv, SRV, ttl, srv_rdata(0, weight, port, target))
            build.srv_targets[(srv, SRV)] = list(dict.fromkeys(t for _, t in targets))


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _service_key_of_slice(slice_: Obj) -> str | None:
    meta = slice_.get("metadata") or {}
    name = (meta.get("labels") or {}).get(LABEL_SERVICE_NAME)
    return f"{meta.get('namespace', '')}/{name}" if name else None


def _is_headless(service: Obj) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") != "ExternalName" and (spec.get("clusterIP") or "None") == "None"
