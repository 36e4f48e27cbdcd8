"""The ``discovery.k8s.io/v1`` group: EndpointSlice.

    NAME        ADDRESSTYPE   PORTS   ENDPOINTS                   AGE
    web-x7f2k   IPv4          8080    10.42.0.5,10.42.0.6 + 1 more...   5m

A slice holds up to 1000 endpoints of one address type (IPv4, IPv6 or FQDN);
each endpoint has 1 to 100 addresses.  Ports default to TCP with an empty name.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from ..errors import Cause
from ..resource import Column, ResourceInfo
from . import meta as m

Obj = dict[str, Any]

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
PROTOCOLS = ("SCTP", "TCP", "UDP")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000


def default(obj: Obj) -> None:
    """SetDefaults_EndpointPort: name "" and protocol TCP."""
    for port in obj.get("ports") or []:
        if isinstance(port, dict):
            if port.get("name") is None:
                port["name"] = ""
            if port.get("protocol") is None:
                port["protocol"] = "TCP"


def _address_problems(address: str, address_type: str) -> list[str]:
    if address_type in ("IPv4", "IPv6"):
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            parsed = None
        want = 4 if address_type == "IPv4" else 6
        if parsed is None or parsed.version != want:
            return [f"must be a valid {address_type} address"]
        return []
    name = address[:-1] if address.endswith(".") else address
    problems = m.is_dns1123_subdomain(name)
    if problems:
        return [",".join(problems)]
    if len(name.split(".")) < 2:
        return ["should be a domain with at least two segments separated by dots"]
    return []


def _validate_endpoints(endpoints: list[Obj], address_type: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if len(endpoints) > MAX_ENDPOINTS:
        return [m.too_many(path, len(endpoints), MAX_ENDPOINTS)]
    for i, endpoint in enumerate(endpoints):
        epath = m.index(path, i)
        addresses = endpoint.get("addresses") or []
        apath = m.child(epath, "addresses")
        if not addresses:
            causes.append(m.required(apath, "must contain at least 1 address"))
        elif len(addresses) > MAX_ADDRESSES:
            causes.append(m.too_many(apath, len(addresses), MAX_ADDRESSES))
        for j, address in enumerate(addresses):
            causes += m.invalid_each(m.index(apath, j), address, _address_problems(address, address_type))
        if endpoint.get("hostname"):
            causes += m.invalid_each(m.child(epath, "hostname"), endpoint["hostname"],
                                     m.is_dns1123_label(endpoint["hostname"]))
        if endpoint.get("nodeName"):
            causes += m.invalid_each(m.child(epath, "nodeName"), endpoint["nodeName"],
                                     m.name_is_dns_subdomain(endpoint["nodeName"]))
    return causes


def _validate_ports(ports: list[Obj], path: str) -> list[Cause]:
    if len(ports) > MAX_PORTS:
        return [m.too_many(path, len(ports), MAX_PORTS)]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, port in enumerate(ports):
        ppath = m.index(path, i)
        name = port.get("name") or ""
        if name:
            causes += m.invalid_each(m.child(ppath, "name"), name, m.is_dns1123_label(name))
        if name in seen:
            causes.append(m.duplicate(m.child(ppath, "name"), name))
        seen.add(name)
        protocol = port.get("protocol")
        if protocol is None:
            causes.append(m.required(m.child(ppath, "protocol")))
        elif protocol not in PROTOCOLS:
            causes.append(m.not_supported(m.child(ppath, "protocol"), protocol, PROTOCOLS))
        if port.get("port") is not None and port["port"] != 0:
            causes += m.invalid_each(m.child(ppath, "port"), port["port"], m.is_valid_port_num(port["port"]))
        if port.get("appProtocol"):
            causes += m.invalid_each(m.child(ppath, "appProtocol"), port["appProtocol"],
                                     m.is_qualified_name(port["appProtocol"]))
    return causes


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    address_type = obj.get("addressType") or ""
    if old is None:
        causes = m.validate_object_meta(obj.get("metadata"), True)
    else:
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    if not address_type:
        causes.append(m.required("addressType"))
    elif address_type not in ADDRESS_TYPES and not (old is not None and address_type == "IP"):
        causes.append(m.not_supported("addressType", address_type, ADDRESS_TYPES))
    causes += _validate_endpoints(obj.get("endpoints") or [], address_type, "endpoints")
    causes += _validate_ports(obj.get("ports") or [], "ports")
    if old is not None:
        causes += m.validate_immutable(address_type, old.get("addressType") or "", "addressType")
    return causes


def _list_with_more(items: list[str], count: int) -> str:
    text = ",".join(items[:3])
    if count > 3:
        return f"{text} + {count - 3} more..."
    return text or "<unset>"


def format_ports(ports: list[Obj]) -> str:
    shown = []
    for port in ports:
        if port.get("port") is not None:
            shown.append(str(port["port"]))
        elif port.get("name") is not None:
            shown.append(port["name"])
        else:
            shown.append("*")
    return _list_with_more(shown, len(shown))


def format_endpoints(endpoints: list[Obj]) -> str:
    addresses = [a for e in endpoints for a in (e.get("addresses") or [])]
    return _list_with_more(addresses, len(addresses))


COLUMNS = (
    m.NAME_COLUMN,
    Column("AddressType", description="Type of the addresses in this slice."),
    Column("Ports", description="Ports exposed by the endpoints."),
    Column("Endpoints", description="Addresses of the endpoints."),
    m.AGE_COLUMN,
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), obj.get("addressType", ""), format_ports(obj.get("ports") or []),
            format_endpoints(obj.get("endpoints") or []), m.object_age(obj, now)]


ENDPOINTSLICES = ResourceInfo(
    group="discovery.k8s.io", version="v1", kind="EndpointSlice", plural="endpointslices",
    singular="endpointslice", namespaced=True, schema_type="io.k8s.api.discovery.v1.EndpointSlice",
    columns=COLUMNS, row=row, default=default, validate=validate,
)

RESOURCES: tuple[ResourceInfo, ...] = (ENDPOINTSLICES,)
