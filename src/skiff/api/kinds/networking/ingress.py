"""networking.k8s.io/v1 Ingress and IngressClass.

    kubectl get ingress
    NAME   CLASS   HOSTS                ADDRESS      PORTS     AGE
    web    nginx   a.example.com + 1 more...   10.0.0.5   80, 443   5m

    kubectl get ingressclass
    NAME    CONTROLLER             PARAMETERS   AGE
    nginx   k8s.io/ingress-nginx   <none>       5m

Every HTTP path needs a ``pathType`` (Exact, Prefix or ImplementationSpecific);
Exact and Prefix paths must be clean absolute paths.  A backend is a Service
(name + port name or number) or a typed resource reference, never both.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo, Subresource
from .. import meta as m
from ..apps import rollout

Obj = dict[str, Any]

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
INVALID_PATH_SUFFIXES = ("/..", "/.")
INGRESS_CLASS_ANNOTATION = "kubernetes.io/ingress.class"
MAX_CONTROLLER_LENGTH = 250

_WILDCARD_FMT = "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_WILDCARD_RE = re.compile(f"^{_WILDCARD_FMT}$")
_WILDCARD_MSG = ("a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, "
                 "which must consist of lower case alphanumeric characters, '-' or '.' and end with an "
                 "alphanumeric character")


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > m.DNS1123_SUBDOMAIN_MAX:
        errs.append(m.max_len_error(m.DNS1123_SUBDOMAIN_MAX))
    if "\n" in value or not _WILDCARD_RE.match(value):
        errs.append(m.regex_error(_WILDCARD_MSG, _WILDCARD_FMT, "*.example.com"))
    return errs


def _validate_host(host: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if m.is_valid_ip(host):
        causes.append(m.invalid(path, host, "must be a DNS name, not an IP address"))
    check = is_wildcard_dns1123_subdomain if "*" in host else m.is_dns1123_subdomain
    return causes + m.invalid_each(path, host, check(host))


def validate_backend(backend: Obj, path: str) -> list[Cause]:
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [m.invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        causes: list[Cause] = []
        rpath = m.child(path, "resource")
        if resource.get("apiGroup") is not None:
            causes += m.invalid_each(m.child(rpath, "apiGroup"), resource["apiGroup"],
                                     m.is_dns1123_subdomain(resource["apiGroup"]))
        for name in ("kind", "name"):
            value = resource.get(name) or ""
            if not value:
                causes.append(m.required(m.child(rpath, name), f"{name} is required"))
            else:
                causes += m.invalid_each(m.child(rpath, name), value, m.name_is_path_segment(value))
        return causes
    if service is not None:
        causes = []
        name = service.get("name") or ""
        spath = m.child(path, "service")
        if not name:
            causes.append(m.required(m.child(spath, "name")))
        else:
            causes += m.invalid_each(m.child(spath, "name"), name, m.name_is_dns1035_label(name))
        port = service.get("port") or {}
        port_name, port_number = port.get("name") or "", port.get("number") or 0
        if port_name and port_number:
            causes.append(m.invalid(path, "", "cannot set both port name & port number"))
        elif port_name:
            causes += m.invalid_each(m.child(spath, "port.name"), port_name, m.is_valid_port_name(port_name))
        elif port_number:
            causes += m.invalid_each(m.child(spath, "port.number"), port_number, m.is_valid_port_num(port_number))
        else:
            causes.append(m.required(path, "port name or number is required"))
        return causes
    return [m.invalid(path, "", "resource or service backend is required")]


def _validate_http_path(p: Obj, path: str) -> list[Cause]:
    path_type = p.get("pathType")
    if path_type is None:
        return [m.required(m.child(path, "pathType"), "pathType must be specified")]
    value = p.get("path") or ""
    ppath = m.child(path, "path")
    causes: list[Cause] = []
    if path_type in ("Exact", "Prefix"):
        if not value.startswith("/"):
            causes.append(m.invalid(ppath, value, "must be an absolute path"))
        if value:
            causes += [m.invalid(ppath, value, f"must not contain '{seq}'")
                       for seq in INVALID_PATH_SEQUENCES if seq in value]
            causes += [m.invalid(ppath, value, f"cannot end with '{suffix}'")
                       for suffix in INVALID_PATH_SUFFIXES if value.endswith(suffix)]
    elif path_type == "ImplementationSpecific":
        if value and not value.startswith("/"):
            causes.append(m.invalid(ppath, value, "must be an absolute path"))
    else:
        causes.append(m.not_supported(m.child(path, "pathType"), path_type, PATH_TYPES))
    return causes + validate_backend(p.get("backend") or {}, m.child(path, "backend"))


def validate_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    causes: list[Cause] = []
    rules = spec.get("rules") or []
    if not rules and spec.get("defaultBackend") is None:
        rendered = "[]networking.IngressRule(nil)" if spec.get("rules") is None else "[]networking.IngressRule{}"
        causes.append(Cause("FieldValueInvalid", f"Invalid value: {rendered}: either `defaultBackend` or "
                            "`rules` must be specified", path))
    if spec.get("defaultBackend") is not None:
        causes += validate_backend(spec["defaultBackend"], m.child(path, "defaultBackend"))
    for i, rule in enumerate(rules):
        rpath = m.index(m.child(path, "rules"), i)
        if rule.get("host"):
            causes += _validate_host(rule["host"], m.child(rpath, "host"))
        http = rule.get("http")
        if http is not None:
            hpath = m.child(rpath, "http")
            paths = http.get("paths") or []
            if not paths:
                causes.append(m.required(m.child(hpath, "paths")))
            for j, p in enumerate(paths):
                causes += _validate_http_path(p, m.index(m.child(hpath, "paths"), j))
    for i, tls in enumerate(spec.get("tls") or []):
        tpath = m.index(m.child(path, "tls"), i)
        for j, host in enumerate(tls.get("hosts") or []):
            check = is_wildcard_dns1123_subdomain if "*" in host else m.is_dns1123_subdomain
            causes += m.invalid_each(m.index(m.child(tpath, "hosts"), j), host, check(host))
        if tls.get("secretName"):
            causes += m.invalid_each(m.child(tpath, "secretName"), tls["secretName"],
                                     m.name_is_dns_subdomain(tls["secretName"]))
    if spec.get("ingressClassName") is not None:
        causes += m.invalid_each(m.child(path, "ingressClassName"), spec["ingressClassName"],
                                 m.name_is_dns_subdomain(spec["ingressClassName"]))
    return causes


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    if old is not None:
        return m.validate_object_meta_update(obj.get("metadata"), old.get("metadata")) + validate_spec(spec)
    causes = m.validate_object_meta(obj.get("metadata"), True) + validate_spec(spec)
    annotations = m.get_path(obj, "metadata.annotations", {}) or {}
    if spec.get("ingressClassName") is not None and INGRESS_CLASS_ANNOTATION in annotations:
        causes.append(m.invalid(f"annotations.{INGRESS_CLASS_ANNOTATION}", annotations[INGRESS_CLASS_ANNOTATION],
                                "can not be set when the class field is also set"))
    return causes


def format_hosts(rules: list[Obj]) -> str:
    """At most three hosts, then ``+ N more...``; ``*`` when no rule names a host."""
    shown: list[str] = []
    more = False
    for rule in rules:
        if len(shown) == 3:
            more = True
        if not more and rule.get("host"):
            shown.append(rule["host"])
    if not shown:
        return "*"
    text = ",".join(shown)
    return f"{text} + {len(rules) - 3} more..." if more else text


def format_addresses(status: Obj) -> str:
    found = {i.get("ip") or i.get("hostname") for i in m.get_path(status, "loadBalancer.ingress", []) or []}
    return ",".join(sorted(a for a in found if a))


INGRESS_COLUMNS = (
    m.NAME_COLUMN,
    Column("Class", description="The IngressClass that handles this ingress."),
    Column("Hosts", description="Hosts matched by the rules."),
    Column("Address", description="Addresses of the load balancer."),
    Column("Ports", description="Ports the ingress listens on."),
    m.AGE_COLUMN,
)


def ingress_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    spec = obj.get("spec") or {}
    class_name = spec.get("ingressClassName")
    return [m.object_name(obj), class_name if class_name is not None else "<none>",
            format_hosts(spec.get("rules") or []), format_addresses(obj.get("status") or {}),
            "80, 443" if spec.get("tls") else "80", m.object_age(obj, now)]


def _ingress_prepare_create(obj: Obj) -> None:
    rollout.start_generation(obj)


def _no_defaults(obj: Obj) -> None:
    return None


INGRESSES = ResourceInfo(
    group="networking.k8s.io", version="v1", kind="Ingress", plural="ingresses", singular="ingress",
    namespaced=True, schema_type="io.k8s.api.networking.v1.Ingress", short_names=("ing",),
    subresources=(Subresource("status", kind="Ingress"),), has_status=True,
    columns=INGRESS_COLUMNS, row=ingress_row, validate=validate,
    prepare_create=_ingress_prepare_create, prepare_update=rollout.prepare_update_with(_no_defaults),
)


# --- IngressClass ----------------------------------------------------------------------------

def default_ingress_class(obj: Obj) -> None:
    parameters = m.get_path(obj, "spec.parameters")
    if isinstance(parameters, dict) and not parameters.get("scope"):
        parameters["scope"] = "Cluster"


def _validate_controller(controller: str, path: str) -> list[Cause]:
    causes: list[Cause] = []
    if len(controller) > MAX_CONTROLLER_LENGTH:
        causes.append(m.too_long(path, MAX_CONTROLLER_LENGTH))
    if not controller:
        return causes + [m.required(path)]
    domain, slash, rest = controller.partition("/")
    if not slash or not rest:
        return causes + [m.invalid(path, controller, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    return causes + m.invalid_each(path, domain, m.is_dns1123_subdomain(domain))


def _validate_parameters(params: Obj | None, path: str) -> list[Cause]:
    if params is None:
        return []
    causes: list[Cause] = []
    if not params.get("kind"):
        causes.append(m.required(m.child(path, "kind")))
    if not params.get("name"):
        causes.append(m.required(m.child(path, "name")))
    scope = params.get("scope")
    if scope not in (None, "Cluster", "Namespace"):
        causes.append(m.not_supported(m.child(path, "scope"), scope, ["Cluster", "Namespace"]))
    if scope == "Namespace" and not params.get("namespace"):
        causes.append(m.required(m.child(path, "namespace"), "`parameters.scope` is set to 'Namespace'"))
    if scope == "Cluster" and params.get("namespace"):
        causes.append(m.forbidden(m.child(path, "namespace"), "`parameters.scope` is set to 'Cluster'"))
    return causes


def validate_ingress_class(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    if old is None:
        causes = m.validate_object_meta(obj.get("metadata"), False)
    else:
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    causes += _validate_controller(spec.get("controller") or "", "spec.controller")
    causes += _validate_parameters(spec.get("parameters"), "spec.parameters")
    if old is not None:
        causes += m.validate_immutable(spec.get("controller"), m.get_path(old, "spec.controller"),
                                       "spec.controller")
    return causes


def parameters_cell(obj: Obj) -> str:
    params = m.get_path(obj, "spec.parameters")
    if not params:
        return "<none>"
    text = params.get("kind", "")
    if params.get("apiGroup") is not None:
        text += "." + params["apiGroup"]
    return f"{text}/{params.get('name', '')}"


INGRESS_CLASS_COLUMNS = (
    m.NAME_COLUMN,
    Column("Controller", description="Controller that handles this class."),
    Column("Parameters", description="Reference to a resource with additional parameters."),
    m.AGE_COLUMN,
)


def ingress_class_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), m.get_path(obj, "spec.controller", ""), parameters_cell(obj),
            m.object_age(obj, now)]


INGRESSCLASSES = ResourceInfo(
    group="networking.k8s.io", version="v1", kind="IngressClass", plural="ingressclasses",
    singular="ingressclass", namespaced=False, schema_type="io.k8s.api.networking.v1.IngressClass",
    columns=INGRESS_CLASS_COLUMNS, row=ingress_class_row, default=default_ingress_class,
    validate=validate_ingress_class,
)
