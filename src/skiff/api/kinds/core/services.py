"""Services (a stable virtual IP and DNS name for a set of pods) and Endpoints.

Defaults follow SetDefaults_Service: type ClusterIP, sessionAffinity None, port
protocol TCP, targetPort = port, internalTrafficPolicy Cluster, and
externalTrafficPolicy Cluster for externally reachable services.  Allocating
ClusterIPs and NodePorts is the API server's job (a storage hook), not this module's;
an update that leaves them out keeps the allocated values (:func:`prepare_service_update`).

Table cells, as ``kubectl get svc`` prints them::

    NAME  TYPE          CLUSTER-IP   EXTERNAL-IP  PORT(S)         AGE  [SELECTOR]
    web   LoadBalancer  10.0.0.12    <pending>    80:30080/TCP    5m   app=web
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo, Subresource
from .. import meta as m

Obj = dict[str, Any]

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")
DEFAULT_CLIENT_IP_TIMEOUT = 10800
LOAD_BALANCER_WIDTH = 16

SERVICE_COLUMNS = (
    m.NAME_COLUMN,
    Column("Type", description="The service type."),
    Column("Cluster-IP", description="The virtual IP inside the cluster."),
    Column("External-IP", description="Addresses reachable from outside the cluster."),
    Column("Port(s)", description="Service ports (and node ports)."),
    m.AGE_COLUMN,
    Column("Selector", priority=1, description="Labels of the pods behind the service."),
)


def _load_balancer_ips(svc: Obj, wide: bool) -> str:
    found = set()
    for ingress in m.get_path(svc, "status.loadBalancer.ingress", []) or []:
        if ingress.get("ip"):
            found.add(ingress["ip"])
        elif ingress.get("hostname"):
            found.add(ingress["hostname"])
    text = ",".join(sorted(found))
    if not wide and len(text) > LOAD_BALANCER_WIDTH:
        text = text[:LOAD_BALANCER_WIDTH - 3] + "..."
    return text


def external_ip_cell(svc: Obj, wide: bool = True) -> str:
    spec = svc.get("spec") or {}
    external = spec.get("externalIPs") or []
    kind = spec.get("type") or ""
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        lb = _load_balancer_ips(svc, wide)
        if external:
            return ",".join((lb.split(",") if lb else []) + external)
        return lb or "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName") or "")
    return "<unknown>"


def port_cell(ports: list[Obj] | None) -> str:
    pieces = []
    for p in ports or []:
        if p.get("nodePort"):
            pieces.append(f"{p.get('port', 0)}:{p['nodePort']}/{p.get('protocol', '')}")
        else:
            pieces.append(f"{p.get('port', 0)}/{p.get('protocol', '')}")
    return ",".join(pieces) or "<none>"


def service_row(svc: Obj, now: datetime | None = None) -> list[Any]:
    # Tables from the server always carry the wide cells; kubectl hides them.
    spec = svc.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [m.object_name(svc), spec.get("type", ""), cluster_ips[0] if cluster_ips else "<none>",
            external_ip_cell(svc, wide=True), port_cell(spec.get("ports")), m.object_age(svc, now),
            m.format_labels(spec.get("selector"))]


def _externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))


def default_service(svc: Obj) -> None:
    spec = svc.setdefault("spec", {})
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        if m.get_path(spec, "sessionAffinityConfig.clientIP.timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_TIMEOUT}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in spec.get("ports") or []:
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if _externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    # clusterIP and clusterIPs are two views of one value.
    if spec.get("clusterIP") and not spec.get("clusterIPs"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    elif spec.get("clusterIPs") and not spec.get("clusterIP"):
        spec["clusterIP"] = spec["clusterIPs"][0]
    if spec["type"] != "ExternalName":
        headless_without_selector = spec.get("clusterIP") == "None" and not spec.get("selector")
        if not spec.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = "RequireDualStack" if headless_without_selector else "SingleStack"
        if not spec.get("ipFamilies"):
            ip = spec.get("clusterIP") or ""
            spec["ipFamilies"] = ["IPv6"] if ":" in ip else ["IPv4"]
    status = svc.setdefault("status", {})
    status.setdefault("loadBalancer", {})


def prepare_service_update(svc: Obj, old: Obj) -> None:
    """Fields the client left out keep their allocated values (clusterIP, nodePorts,
    IP families, healthCheckNodePort), as kube-apiserver does on update."""
    spec, old_spec = svc.setdefault("spec", {}), old.get("spec") or {}
    if (spec.get("type") or "ClusterIP") == "ExternalName" or old_spec.get("type") == "ExternalName":
        return
    if not spec.get("clusterIP") and not spec.get("clusterIPs") and old_spec.get("clusterIP"):
        spec["clusterIP"] = old_spec["clusterIP"]
        spec["clusterIPs"] = list(old_spec.get("clusterIPs") or [old_spec["clusterIP"]])
    for f in ("ipFamilies", "ipFamilyPolicy"):
        if not spec.get(f) and old_spec.get(f):
            spec[f] = old_spec[f]
    if spec.get("type") in ("NodePort", "LoadBalancer") or (not spec.get("type") and old_spec.get("type") in (
            "NodePort", "LoadBalancer")):
        old_ports = {(p.get("port"), p.get("protocol") or "TCP"): p.get("nodePort")
                     for p in old_spec.get("ports") or [] if p.get("nodePort")}
        for p in spec.get("ports") or []:
            if not p.get("nodePort"):
                previous = old_ports.get((p.get("port"), p.get("protocol") or "TCP"))
                if previous:
                    p["nodePort"] = previous
        if not spec.get("healthCheckNodePort") and old_spec.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = old_spec["healthCheckNodePort"]


def _go_service_port(port: Obj) -> str:
    return ('core.ServicePort{Name:"", Protocol:' + m.format_value(port.get("protocol", "")) +
            ', AppProtocol:(*string)(nil), Port:' + str(port.get("port", 0)) +
            ', TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}')


def _validate_port_num_or_name(value: Any, path: str) -> list[Cause]:
    if isinstance(value, int) and not isinstance(value, bool):
        return m.invalid_each(path, value, m.is_valid_port_num(value))
    if isinstance(value, str) and value:
        return m.invalid_each(path, value, m.is_valid_port_name(value))
    return [m.required(path)] if value is None else []


def validate_service_spec(spec: Obj) -> list[Cause]:
    causes: list[Cause] = []
    kind = spec.get("type") or ""
    ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    if kind not in SERVICE_TYPES:
        causes.append(m.not_supported("spec.type", kind, SERVICE_TYPES))
    if kind == "ExternalName":
        name = spec.get("externalName") or ""
        if not name:
            causes.append(m.required("spec.externalName"))
        else:
            causes += m.invalid_each("spec.externalName", name, m.is_dns1123_subdomain(name.rstrip(".")))
    elif not ports and not headless:
        causes.append(m.required("spec.ports"))
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        p = m.index("spec.ports", i)
        name = port.get("name") or ""
        if len(ports) > 1 and not name:
            causes.append(m.required(m.child(p, "name")))
        elif name:
            causes += m.invalid_each(m.child(p, "name"), name, m.is_dns1123_label(name))
            if name in names:
                causes.append(m.duplicate(m.child(p, "name"), name))
            names.add(name)
        causes += m.invalid_each(m.child(p, "port"), port.get("port", 0),
                                 m.is_valid_port_num(port.get("port") or 0))
        protocol = port.get("protocol") or ""
        if not protocol:
            causes.append(m.required(m.child(p, "protocol")))
        elif protocol not in PORT_PROTOCOLS:
            causes.append(m.not_supported(m.child(p, "protocol"), protocol, PORT_PROTOCOLS))
        causes += _validate_port_num_or_name(port.get("targetPort"), m.child(p, "targetPort"))
        if port.get("nodePort") and kind == "ClusterIP":
            causes.append(m.forbidden(m.child(p, "nodePort"), "may not be used when `type` is 'ClusterIP'"))
        key = (port.get("port"), protocol)
        if key in seen:
            causes.append(Cause("FieldValueDuplicate", "Duplicate value: " + _go_service_port(port), p))
        seen.add(key)
    affinity = spec.get("sessionAffinity") or ""
    if affinity not in SESSION_AFFINITIES:
        causes.append(m.not_supported("spec.sessionAffinity", affinity, SESSION_AFFINITIES))
    if kind != "ExternalName":
        causes += m.validate_labels(spec.get("selector"), "spec.selector")
    ip = spec.get("clusterIP") or ""
    if ip and ip != "None" and not m.is_valid_ip(ip):
        causes.append(m.invalid("spec.clusterIPs[0]", ip, "must be empty, 'None', or a valid IP address"))
    for i, address in enumerate(spec.get("externalIPs") or []):
        if not m.is_valid_ip(address):
            causes.append(m.invalid(m.index("spec.externalIPs", i), address,
                                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    for f, allowed in (("externalTrafficPolicy", TRAFFIC_POLICIES), ("internalTrafficPolicy", TRAFFIC_POLICIES),
                       ("ipFamilyPolicy", IP_FAMILY_POLICIES)):
        if spec.get(f) and spec[f] not in allowed:
            causes.append(m.not_supported(m.child("spec", f), spec[f], allowed))
    if spec.get("externalTrafficPolicy") and not _externally_accessible(spec):
        causes.append(m.invalid("spec.externalTrafficPolicy", spec["externalTrafficPolicy"],
                                "may only be set for externally-accessible services"))
    return causes


def validate_service(svc: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        causes = m.validate_object_meta(svc.get("metadata"), True, name_fn=m.name_is_dns1035_label)
    else:
        causes = m.validate_object_meta_update(svc.get("metadata"), old.get("metadata"))
    spec = svc.get("spec") or {}
    causes += validate_service_spec(spec)
    if old is not None:
        old_spec = old.get("spec") or {}
        old_ip, new_ip = old_spec.get("clusterIP") or "", spec.get("clusterIP") or ""
        if old_ip and spec.get("type") != "ExternalName" and old_spec.get("type") != "ExternalName" \
                and new_ip != old_ip:
            causes.append(m.invalid("spec.clusterIPs[0]", spec.get("clusterIPs") or [new_ip],
                                    "may not change once set"))
    return causes


SERVICES = ResourceInfo(
    group="", version="v1", kind="Service", plural="services", singular="service", namespaced=True,
    schema_type="io.k8s.api.core.v1.Service", short_names=("svc",), categories=("all",),
    subresources=(
        Subresource("proxy", "ServiceProxyOptions", verbs=("create", "delete", "get", "patch", "update")),
        Subresource("status", "Service"),
    ),
    has_status=True, columns=SERVICE_COLUMNS, row=service_row, default=default_service,
    validate=validate_service, prepare_update=prepare_service_update,
    field_labels={"spec.clusterIP": lambda o: m.get_path(o, "spec.clusterIP", ""),
                  "spec.type": lambda o: m.get_path(o, "spec.type", "")},
)


# --- Endpoints ------------------------------------------------------------------

ENDPOINTS_COLUMNS = (m.NAME_COLUMN, Column("Endpoints", description="Ready addresses and ports."), m.AGE_COLUMN)
MAX_SHOWN_ENDPOINTS = 3


def endpoints_cell(obj: Obj) -> str:
    subsets = obj.get("subsets") or []
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count = 0
    more = False
    for subset in subsets:
        addresses = subset.get("addresses") or []
        ports = subset.get("ports") or []
        for port in ports or [None]:
            count += len(addresses)
            for address in addresses:
                if len(shown) == MAX_SHOWN_ENDPOINTS:
                    more = True
                    break
                ip = address.get("ip", "")
                if port is None:
                    shown.append(ip)
                else:
                    host = f"[{ip}]" if ":" in ip else ip
                    shown.append(f"{host}:{port.get('port', 0)}")
    text = ",".join(shown)
    return f"{text} + {count - MAX_SHOWN_ENDPOINTS} more..." if more else text


def endpoints_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), endpoints_cell(obj), m.object_age(obj, now)]


def default_endpoints(obj: Obj) -> None:
    for subset in obj.get("subsets") or []:
        for port in subset.get("ports") or []:
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def validate_endpoints(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), True) if old is None else \
        m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    for i, subset in enumerate(obj.get("subsets") or []):
        sp = m.index("subsets", i)
        for section in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(subset.get(section) or []):
                ip = address.get("ip") or ""
                if not m.is_valid_ip(ip):
                    causes.append(m.invalid(m.child(m.index(m.child(sp, section), j), "ip"), ip,
                                            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
        ports = subset.get("ports") or []
        for j, port in enumerate(ports):
            pp = m.index(m.child(sp, "ports"), j)
            name = port.get("name") or ""
            if len(ports) > 1 and not name:
                causes.append(m.required(m.child(pp, "name")))
            elif name:
                causes += m.invalid_each(m.child(pp, "name"), name, m.is_dns1123_label(name))
            causes += m.invalid_each(m.child(pp, "port"), port.get("port", 0),
                                     m.is_valid_port_num(port.get("port") or 0))
            protocol = port.get("protocol") or ""
            if not protocol:
                causes.append(m.required(m.child(pp, "protocol")))
            elif protocol not in PORT_PROTOCOLS:
                causes.append(m.not_supported(m.child(pp, "protocol"), protocol, PORT_PROTOCOLS))
    return causes


ENDPOINTS = ResourceInfo(
    group="", version="v1", kind="Endpoints", plural="endpoints", singular="endpoints", namespaced=True,
    schema_type="io.k8s.api.core.v1.Endpoints", short_names=("ep",),
    columns=ENDPOINTS_COLUMNS, row=endpoints_row, default=default_endpoints, validate=validate_endpoints,
)
