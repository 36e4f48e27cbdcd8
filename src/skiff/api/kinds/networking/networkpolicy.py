"""networking.k8s.io/v1 NetworkPolicy: defaults, validation and the ``kubectl get netpol`` table.

    NAME        POD-SELECTOR   AGE
    deny-all    <none>         5m
    api-allow   app=api        5m

Without ``policyTypes`` a policy is an Ingress policy, plus Egress when it has
egress rules.  Ports default to TCP.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo
from .. import meta as m
from ..apps import rollout
from ..apps import selector as sel

Obj = dict[str, Any]

PROTOCOLS = ("TCP", "UDP", "SCTP")
POLICY_TYPES = ("Ingress", "Egress")
CIDR_MESSAGE = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


def default(obj: Obj) -> None:
    spec = obj.setdefault("spec", {})
    if not isinstance(spec.get("podSelector"), dict):
        spec["podSelector"] = {}
    for direction in ("ingress", "egress"):
        for rule in spec.get(direction) or []:
            for port in rule.get("ports") or []:
                if isinstance(port, dict) and not port.get("protocol"):
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _validate_port(port: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    protocol = port.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        causes.append(m.not_supported(m.child(path, "protocol"), protocol, PROTOCOLS))
    number, end = port.get("port"), port.get("endPort")
    if number is None:
        if end is not None:
            causes.append(m.invalid(m.child(path, "endPort"), end, "may not be specified when `port` is not specified"))
    elif isinstance(number, int):
        causes += m.invalid_each(m.child(path, "port"), number, m.is_valid_port_num(number))
        if end is not None:
            if end < number:
                causes.append(m.invalid(m.child(path, "endPort"), number, "must be greater than or equal to `port`"))
            causes += m.invalid_each(m.child(path, "endPort"), end, m.is_valid_port_num(end))
    else:
        if end is not None:
            causes.append(m.invalid(m.child(path, "endPort"), end, "may not be specified when `port` is non-numeric"))
        causes += m.invalid_each(m.child(path, "port"), number, m.is_valid_port_name(str(number)))
    return causes


def _validate_ip_block(block: Obj, path: str) -> list[Cause]:
    cidr = block.get("cidr") or ""
    if not cidr:
        return [m.required(m.child(path, "cidr"))]
    network = _parse_cidr(cidr)
    if network is None or "/" not in cidr:
        return [m.invalid(m.child(path, "cidr"), cidr, CIDR_MESSAGE)]
    causes: list[Cause] = []
    for i, text in enumerate(block.get("except") or []):
        epath = m.index(m.child(path, "except"), i)
        excluded = _parse_cidr(text)
        if excluded is None or "/" not in text:
            causes.append(m.invalid(epath, text, CIDR_MESSAGE))
            continue
        if (excluded.version != network.version or excluded.network_address not in network
                or network.prefixlen >= excluded.prefixlen):
            causes.append(m.invalid(epath, text, "must be a strict subset of `cidr`"))
    return causes


def _validate_peer(peer: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    count = 0
    for name in ("podSelector", "namespaceSelector"):
        if peer.get(name) is not None:
            count += 1
            causes += sel.validate_label_selector(peer[name], m.child(path, name))
    if peer.get("ipBlock") is not None:
        count += 1
        causes += _validate_ip_block(peer["ipBlock"], m.child(path, "ipBlock"))
    if count == 0:
        causes.append(m.required(path, "must specify a peer"))
    elif count > 1 and peer.get("ipBlock") is not None:
        causes.append(m.forbidden(path, "may not specify both ipBlock and another peer"))
    return causes


def validate_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    causes = sel.validate_label_selector(spec.get("podSelector"), m.child(path, "podSelector"))
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            rpath = m.index(m.child(path, direction), i)
            for j, port in enumerate(rule.get("ports") or []):
                causes += _validate_port(port, m.index(m.child(rpath, "ports"), j))
            for j, peer in enumerate(rule.get(peers) or []):
                causes += _validate_peer(peer, m.index(m.child(rpath, peers), j))
    types = spec.get("policyTypes") or []
    if len(types) > len(POLICY_TYPES):
        return causes + [m.invalid(m.child(path, "policyTypes"), types, "may not specify more than two policyTypes")]
    for i, kind in enumerate(types):
        if kind not in POLICY_TYPES:
            causes.append(m.not_supported(m.index(m.child(path, "policyTypes"), i), kind, POLICY_TYPES))
    return causes


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        causes = m.validate_object_meta(obj.get("metadata"), True)
    else:
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    return causes + validate_spec(obj.get("spec") or {})


COLUMNS = (
    m.NAME_COLUMN,
    Column("Pod-Selector", description="Pods the policy applies to."),
    m.AGE_COLUMN,
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), m.format_selector(m.get_path(obj, "spec.podSelector")), m.object_age(obj, now)]


def prepare_create(obj: Obj) -> None:
    rollout.start_generation(obj, clear_status=False)


def _prepare_update(obj: Obj, old: Obj) -> None:
    rollout.next_generation(obj, old, default)


NETWORKPOLICIES = ResourceInfo(
    group="networking.k8s.io", version="v1", kind="NetworkPolicy", plural="networkpolicies",
    singular="networkpolicy", namespaced=True, schema_type="io.k8s.api.networking.v1.NetworkPolicy",
    short_names=("netpol",), columns=COLUMNS, row=row, default=default, validate=validate,
    prepare_create=prepare_create, prepare_update=_prepare_update,
)
