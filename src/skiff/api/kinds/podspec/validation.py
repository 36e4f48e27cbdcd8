"""PodSpec validation (ValidatePodSpec and the Pod update rules), with Kubernetes' paths and messages."""

from __future__ import annotations

import copy
from typing import Any

from ...errors import Cause
from .. import meta as m
from .defaults import (
    DNS_POLICIES, PORT_PROTOCOLS, PULL_POLICIES, RESTART_POLICIES, TAINT_EFFECTS,
    TERMINATION_MESSAGE_POLICIES, TOLERATION_OPERATORS, URI_SCHEMES, VOLUME_SOURCES,
)

Obj = dict[str, Any]


def _enum(value: Any, path: str, allowed: tuple[str, ...], sort: bool = False) -> list[Cause]:
    if not value:
        return [m.required(path)]
    if value not in allowed:
        return [m.not_supported(path, value, sorted(allowed) if sort else allowed)]
    return []


def _port_num_or_name(port: Any, path: str) -> list[Cause]:
    if isinstance(port, int) and not isinstance(port, bool):
        return m.invalid_each(path, port, m.is_valid_port_num(port))
    if isinstance(port, str):
        if port.isdigit():
            return m.invalid_each(path, int(port), m.is_valid_port_num(int(port)))
        return m.invalid_each(path, port, m.is_valid_port_name(port))
    return [m.required(path)]


def _validate_handler(handler: Obj, path: str, kinds: tuple[str, ...]) -> list[Cause]:
    causes: list[Cause] = []
    present = [k for k in kinds if handler.get(k) is not None]
    if not present:
        return [m.required(path, "must specify a handler type")]
    for extra in present[1:]:
        causes.append(m.forbidden(m.child(path, extra), "may not specify more than 1 handler type"))
    http = handler.get("httpGet")
    if isinstance(http, dict):
        p = m.child(path, "httpGet")
        if not http.get("path"):
            causes.append(m.required(m.child(p, "path")))
        causes += _port_num_or_name(http.get("port"), m.child(p, "port"))
        if http.get("scheme") not in URI_SCHEMES:
            causes.append(m.not_supported(m.child(p, "scheme"), http.get("scheme"), URI_SCHEMES))
    tcp = handler.get("tcpSocket")
    if isinstance(tcp, dict):
        causes += _port_num_or_name(tcp.get("port"), m.child(m.child(path, "tcpSocket"), "port"))
    exec_ = handler.get("exec")
    if isinstance(exec_, dict) and not exec_.get("command"):
        causes.append(m.required(m.child(m.child(path, "exec"), "command")))
    grpc = handler.get("grpc")
    if isinstance(grpc, dict):
        port = grpc.get("port")
        causes += m.invalid_each(m.child(m.child(path, "grpc"), "port"), port,
                                 m.is_valid_port_num(port if isinstance(port, int) else 0))
    return causes


def _validate_probe(probe: Any, path: str, must_succeed_once: bool) -> list[Cause]:
    if not isinstance(probe, dict):
        return []
    causes = _validate_handler(probe, path, ("exec", "httpGet", "tcpSocket", "grpc"))
    for f in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold",
              "failureThreshold"):
        causes += m.validate_nonnegative(probe.get(f), m.child(path, f))
    if must_succeed_once and probe.get("successThreshold", 1) != 1:
        causes.append(m.invalid(m.child(path, "successThreshold"), probe.get("successThreshold"), "must be 1"))
    grace = probe.get("terminationGracePeriodSeconds")
    if grace is not None and grace <= 0:
        causes.append(m.invalid(m.child(path, "terminationGracePeriodSeconds"), grace, "must be greater than 0"))
    return causes


def _validate_ports(ports: list[Obj], path: str) -> list[Cause]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = m.index(path, i)
        name = port.get("name") or ""
        if name:
            problems = m.is_valid_port_name(name)
            if problems:
                causes += m.invalid_each(m.child(p, "name"), name, problems)
            elif name in names:
                causes.append(m.duplicate(m.child(p, "name"), name))
            else:
                names.add(name)
        container_port = port.get("containerPort") or 0
        if not container_port:
            causes.append(m.required(m.child(p, "containerPort")))
        else:
            causes += m.invalid_each(m.child(p, "containerPort"), container_port,
                                     m.is_valid_port_num(container_port))
        host_port = port.get("hostPort") or 0
        if host_port:
            causes += m.invalid_each(m.child(p, "hostPort"), host_port, m.is_valid_port_num(host_port))
        causes += _enum(port.get("protocol"), m.child(p, "protocol"), PORT_PROTOCOLS)
    return causes


def _validate_env(env: list[Obj], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, var in enumerate(env):
        p = m.index(path, i)
        name = var.get("name") or ""
        if not name:
            causes.append(m.required(m.child(p, "name")))
        elif any(c == "=" or not (32 <= ord(c) <= 126) for c in name):
            causes.append(m.invalid(m.child(p, "name"), name, "a valid environment variable name must "
                                    "consist only of printable ASCII characters other than '='"))
        source = var.get("valueFrom")
        if isinstance(source, dict):
            kinds = [k for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
                     if source.get(k) is not None]
            vf = m.child(p, "valueFrom")
            if var.get("value"):
                causes.append(m.invalid(vf, "", "may not be specified when `value` is not empty"))
            if not kinds:
                causes.append(m.invalid(vf, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                        "`configMapKeyRef` or `secretKeyRef`"))
            elif len(kinds) > 1:
                causes.append(m.invalid(vf, "", "may not have more than one field specified at a time"))
            for ref in ("configMapKeyRef", "secretKeyRef"):
                if isinstance(source.get(ref), dict) and not source[ref].get("key"):
                    causes.append(m.required(m.child(m.child(vf, ref), "key")))
    return causes


def _validate_resources(resources: Obj, path: str) -> list[Cause]:
    causes: list[Cause] = []
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    for section, values in (("limits", limits), ("requests", requests)):
        for name in sorted(values):
            p = m.key(m.child(path, section), name)
            amount = m.parse_quantity(values[name])
            if amount is None:
                causes.append(m.invalid(p, values[name], "must be a valid resource quantity"))
            elif amount < 0:
                causes.append(m.invalid(p, m.canonical_quantity(values[name]), m.IS_NEGATIVE))
    for name in sorted(requests):
        req, lim = m.parse_quantity(requests[name]), m.parse_quantity(limits.get(name))
        if req is not None and lim is not None and req > lim:
            limit = m.canonical_quantity(limits[name])
            causes.append(m.invalid(m.key(m.child(path, "requests"), name), m.canonical_quantity(requests[name]),
                                    f"must be less than or equal to {name} limit of {limit}"))
    return causes


def _validate_container(c: Obj, path: str, volumes: set[str], regular: bool) -> list[Cause]:
    causes: list[Cause] = []
    name = c.get("name") or ""
    if not name:
        causes.append(m.required(m.child(path, "name")))
    else:
        causes += m.invalid_each(m.child(path, "name"), name, m.is_dns1123_label(name))
    if not c.get("image"):
        causes.append(m.required(m.child(path, "image")))
    causes += _enum(c.get("terminationMessagePolicy"), m.child(path, "terminationMessagePolicy"),
                    TERMINATION_MESSAGE_POLICIES)
    causes += _validate_ports(c.get("ports") or [], m.child(path, "ports"))
    causes += _validate_env(c.get("env") or [], m.child(path, "env"))
    mount_paths: set[str] = set()
    for i, mount in enumerate(c.get("volumeMounts") or []):
        p = m.index(m.child(path, "volumeMounts"), i)
        mount_name = mount.get("name") or ""
        if not mount_name:
            causes.append(m.required(m.child(p, "name")))
        elif mount_name not in volumes:
            causes.append(m.not_found(m.child(p, "name"), mount_name))
        mount_path = mount.get("mountPath") or ""
        if not mount_path:
            causes.append(m.required(m.child(p, "mountPath")))
        elif mount_path in mount_paths:
            causes.append(m.invalid(m.child(p, "mountPath"), mount_path, "must be unique"))
        mount_paths.add(mount_path)
    causes += _enum(c.get("imagePullPolicy"), m.child(path, "imagePullPolicy"), PULL_POLICIES)
    causes += _validate_resources(c.get("resources") or {}, m.child(path, "resources"))
    if regular:
        causes += _validate_probe(c.get("livenessProbe"), m.child(path, "livenessProbe"), True)
        causes += _validate_probe(c.get("readinessProbe"), m.child(path, "readinessProbe"), False)
        causes += _validate_probe(c.get("startupProbe"), m.child(path, "startupProbe"), True)
        if c.get("restartPolicy") is not None:
            causes.append(m.forbidden(m.child(path, "restartPolicy"), "may not be set for non-init containers"))
    return causes


def _validate_volumes(volumes: list[Obj], path: str) -> tuple[list[Cause], set[str]]:
    causes: list[Cause] = []
    names: set[str] = set()
    for i, volume in enumerate(volumes):
        p = m.index(path, i)
        name = volume.get("name") or ""
        if not name:
            causes.append(m.required(m.child(p, "name")))
        else:
            causes += m.invalid_each(m.child(p, "name"), name, m.is_dns1123_label(name))
            if name in names:
                causes.append(m.duplicate(m.child(p, "name"), name))
            names.add(name)
        sources = [s for s in VOLUME_SOURCES if volume.get(s) is not None]
        if not sources:
            causes.append(m.required(p, "must specify a volume type"))
        for extra in sources[1:]:
            causes.append(m.forbidden(m.child(p, extra), "may not specify more than 1 volume type"))
        claim = volume.get("persistentVolumeClaim")
        if isinstance(claim, dict) and not claim.get("claimName"):
            causes.append(m.required(m.child(m.child(p, "persistentVolumeClaim"), "claimName")))
        host_path = volume.get("hostPath")
        if isinstance(host_path, dict) and not host_path.get("path"):
            causes.append(m.required(m.child(m.child(p, "hostPath"), "path")))
    return causes, names


def _validate_tolerations(tolerations: list[Obj], path: str) -> list[Cause]:
    causes: list[Cause] = []
    for i, t in enumerate(tolerations):
        p = m.index(path, i)
        key = t.get("key") or ""
        operator = t.get("operator") or ""
        if key:
            causes += m.invalid_each(m.child(p, "key"), key, m.is_qualified_name(key))
        elif operator != "Exists":
            causes.append(m.invalid(m.child(p, "operator"), operator, "operator must be Exists when `key` is "
                                    'empty, which means "match all values and all keys"'))
        if t.get("tolerationSeconds") is not None and t.get("effect") != "NoExecute":
            causes.append(m.invalid(m.child(p, "effect"), t.get("effect") or "",
                                    "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if operator in ("", "Equal"):
            causes += m.invalid_each(m.child(p, "value"), t.get("value") or "",
                                     m.is_valid_label_value(t.get("value") or ""))
        elif operator == "Exists":
            if t.get("value"):
                causes.append(m.invalid(m.child(p, "operator"), t["value"],
                                        "value must be empty when `operator` is 'Exists'"))
        else:
            causes.append(m.not_supported(m.child(p, "operator"), operator, TOLERATION_OPERATORS))
        if t.get("effect") and t["effect"] not in TAINT_EFFECTS:
            causes.append(m.not_supported(m.child(p, "effect"), t["effect"], TAINT_EFFECTS))
    return causes


def validate_pod_spec(spec: Obj | None, path: str = "spec") -> list[Cause]:
    """ValidatePodSpec: containers, volumes, policies, names, tolerations."""
    s = spec or {}
    causes, volume_names = _validate_volumes(s.get("volumes") or [], m.child(path, "volumes"))
    containers = s.get("containers") or []
    seen: set[str] = set()
    init_path = m.child(path, "initContainers")
    for i, c in enumerate(s.get("initContainers") or []):
        causes += _validate_container(c, m.index(init_path, i), volume_names, regular=False)
        if c.get("name") and c["name"] in seen:
            causes.append(m.duplicate(m.child(m.index(init_path, i), "name"), c["name"]))
        seen.add(c.get("name") or "")
    if not containers:
        causes.append(m.required(m.child(path, "containers")))
    regular: set[str] = set()
    for i, c in enumerate(containers):
        p = m.index(m.child(path, "containers"), i)
        causes += _validate_container(c, p, volume_names, regular=True)
        name = c.get("name") or ""
        if name and (name in regular or name in seen):
            causes.append(m.duplicate(m.child(p, "name"), name))
        regular.add(name)
    causes += _enum(s.get("restartPolicy"), m.child(path, "restartPolicy"), RESTART_POLICIES)
    causes += _enum(s.get("dnsPolicy"), m.child(path, "dnsPolicy"), DNS_POLICIES)
    if s.get("dnsPolicy") == "None" and not s.get("dnsConfig"):
        causes.append(m.required(m.child(path, "dnsConfig"), "must provide `dnsConfig` when `dnsPolicy` is None"))
    causes += m.validate_labels(s.get("nodeSelector"), m.child(path, "nodeSelector"))
    for f, check in (("serviceAccountName", m.is_dns1123_subdomain), ("nodeName", m.is_dns1123_subdomain),
                     ("priorityClassName", m.is_dns1123_subdomain), ("hostname", m.is_dns1123_label),
                     ("subdomain", m.is_dns1123_label)):
        if s.get(f):
            causes += m.invalid_each(m.child(path, f), s[f], check(s[f]))
    deadline = s.get("activeDeadlineSeconds")
    if deadline is not None and not 1 <= deadline <= 2**32 - 1:
        causes.append(m.invalid(m.child(path, "activeDeadlineSeconds"), deadline,
                                m.inclusive_range_error(1, 2**32 - 1)))
    causes += m.validate_nonnegative(s.get("terminationGracePeriodSeconds"),
                                     m.child(path, "terminationGracePeriodSeconds"))
    causes += _validate_tolerations(s.get("tolerations") or [], m.child(path, "tolerations"))
    for i, secret in enumerate(s.get("imagePullSecrets") or []):
        if not secret.get("name"):
            causes.append(m.required(m.child(m.index(m.child(path, "imagePullSecrets"), i), "name")))
    return causes


def validate_pod_template(template: Obj | None, path: str = "spec.template") -> list[Cause]:
    """ValidatePodTemplateSpec: template labels/annotations and the spec."""
    t = template or {}
    md = t.get("metadata") or {}
    causes = m.validate_labels(md.get("labels"), m.child(m.child(path, "metadata"), "labels"))
    causes += m.validate_annotations(md.get("annotations"), m.child(m.child(path, "metadata"), "annotations"))
    causes += validate_pod_spec(t.get("spec"), m.child(path, "spec"))
    return causes


UPDATE_FORBIDDEN_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def validate_pod_spec_update(new: Obj, old: Obj, path: str = "spec") -> list[Cause]:
    """A running Pod's spec may change only its images, activeDeadlineSeconds (shorter),
    tolerations (additions) and scheduling gates (removals)."""
    for name in ("containers", "initContainers"):
        if len(new.get(name) or []) != len(old.get(name) or []):
            return [m.forbidden(m.child(path, name), "pod updates may not add or remove containers")]
    causes: list[Cause] = []
    deadline_path = m.child(path, "activeDeadlineSeconds")
    new_deadline, old_deadline = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    if new_deadline is not None:
        if not 0 <= new_deadline <= 2**31 - 1:
            return [m.invalid(deadline_path, new_deadline, m.inclusive_range_error(0, 2**31 - 1))]
        if old_deadline is not None and old_deadline < new_deadline:
            return [m.invalid(deadline_path, new_deadline, "must be less than or equal to previous value")]
    elif old_deadline is not None:
        causes.append(m.invalid(deadline_path, None, "must not update from a positive integer to nil value"))
    new_tolerations = new.get("tolerations") or []
    for t in old.get("tolerations") or []:
        if t not in new_tolerations:
            causes.append(m.forbidden(m.child(path, "tolerations"),
                                      "existing toleration can not be modified except its tolerationSeconds"))
            break
    old_gates = [g.get("name") for g in old.get("schedulingGates") or []]
    added_gates = [g.get("name") for g in new.get("schedulingGates") or [] if g.get("name") not in old_gates]
    if added_gates:
        causes.append(m.forbidden(m.child(path, "schedulingGates"),
                                  f"only deletion is allowed, but found new scheduling gate '{added_gates[0]}'"))
    # ``new`` with everything an update may change set back to ``old``'s: copies only
    # of what is set (the spec and its containers), the rest is shared, never written.
    munged = dict(new)
    for name in ("containers", "initContainers"):
        value = munged.get(name) or []
        if not isinstance(value, list):  # malformed: compared as a private copy
            value = munged[name] = copy.deepcopy(value)
            for mc, oc in zip(value, old.get(name) or []):
                mc["image"] = oc.get("image")
            continue
        containers = list(value)
        for i, (mc, oc) in enumerate(zip(containers, old.get(name) or [])):
            containers[i] = mc = copy.copy(mc)
            mc["image"] = oc.get("image")
        if containers:
            munged[name] = containers
    for f in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        munged.pop(f, None)
        if f in old:
            munged[f] = old[f]
    if (old.get("terminationGracePeriodSeconds") or 0) < 0 and new.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old["terminationGracePeriodSeconds"]
    if munged != old:
        causes.append(m.forbidden(path, UPDATE_FORBIDDEN_MESSAGE + "\n" + m.spec_diff(old, munged, "core.PodSpec")))
    return causes
