"""Nodes: the machines (or simulated machines) pods run on.

A kubelet registers its Node and then reports ``status`` (conditions, addresses,
capacity, nodeInfo) through the status subresource.  ``kubectl get nodes`` reads::

    NAME    STATUS                     ROLES           AGE  VERSION  [INTERNAL-IP ...]
    node-1  Ready,SchedulingDisabled   control-plane   3d   v1.32.0

STATUS comes from the ``Ready`` condition (``Ready`` / ``NotReady`` / ``Unknown`` when
absent) plus ``SchedulingDisabled`` for cordoned nodes; ROLES from
``node-role.kubernetes.io/<role>`` labels and the ``kubernetes.io/role`` label.
"""

from __future__ import annotations

import copy
import ipaddress
from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo, Subresource
from .. import meta as m

Obj = dict[str, Any]

ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
ROLE_LABEL = "kubernetes.io/role"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

NODE_COLUMNS = (
    m.NAME_COLUMN,
    Column("Status", description="Readiness and schedulability."),
    Column("Roles", description="Roles from node-role labels."),
    m.AGE_COLUMN,
    Column("Version", description="Kubelet version."),
    Column("Internal-IP", priority=1, description="First InternalIP address."),
    Column("External-IP", priority=1, description="First ExternalIP address."),
    Column("OS-Image", priority=1, description="Operating system image."),
    Column("Kernel-Version", priority=1, description="Kernel version."),
    Column("Container-Runtime", priority=1, description="Container runtime and version."),
)


def node_roles(node: Obj) -> list[str]:
    roles = set()
    for key, value in (m.get_path(node, "metadata.labels", {}) or {}).items():
        if key.startswith(ROLE_LABEL_PREFIX) and key[len(ROLE_LABEL_PREFIX):]:
            roles.add(key[len(ROLE_LABEL_PREFIX):])
        elif key == ROLE_LABEL and value:
            roles.add(value)
    return sorted(roles)


def node_status_cell(node: Obj) -> str:
    parts: list[str] = []
    for cond in m.get_path(node, "status.conditions", []) or []:
        if cond.get("type") == "Ready":
            parts = ["Ready" if cond.get("status") == "True" else "NotReady"]
    if not parts:
        parts = ["Unknown"]
    if m.get_path(node, "spec.unschedulable", False):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def _address(node: Obj, kind: str) -> str:
    for address in m.get_path(node, "status.addresses", []) or []:
        if address.get("type") == kind:
            return str(address.get("address", ""))
    return "<none>"


def node_row(node: Obj, now: datetime | None = None) -> list[Any]:
    info = m.get_path(node, "status.nodeInfo", {}) or {}
    return [m.object_name(node), node_status_cell(node), ",".join(node_roles(node)) or "<none>",
            m.object_age(node, now), info.get("kubeletVersion", ""),
            _address(node, "InternalIP"), _address(node, "ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def default_node(node: Obj) -> None:
    spec = node.setdefault("spec", {})
    if spec.get("podCIDR") and not spec.get("podCIDRs"):
        spec["podCIDRs"] = [spec["podCIDR"]]
    elif spec.get("podCIDRs") and not spec.get("podCIDR"):
        spec["podCIDR"] = spec["podCIDRs"][0]
    status = node.setdefault("status", {})
    if status.get("capacity") and status.get("allocatable") is None:
        status["allocatable"] = dict(status["capacity"])
    status.setdefault("daemonEndpoints", {"kubeletEndpoint": {"Port": 0}})
    status.setdefault("nodeInfo", {})


def _go_taint(t: Obj) -> str:
    return (f'core.Taint{{Key:{m.format_value(t.get("key", ""))}, Value:{m.format_value(t.get("value", ""))}, '
            f'Effect:{m.format_value(t.get("effect", ""))}, TimeAdded:<nil>}}')


def validate_taints(taints: list[Obj], path: str) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(taints):
        p = m.index(path, i)
        key = taint.get("key") or ""
        causes += m.invalid_each(m.child(p, "key"), key, m.is_qualified_name(key))
        value = taint.get("value") or ""
        problems = m.is_valid_label_value(value)
        if problems:
            causes.append(m.invalid(m.child(p, "value"), value, ";".join(problems)))
        effect = taint.get("effect") or ""
        if not effect:
            causes.append(m.required(m.child(p, "effect")))
        elif effect not in TAINT_EFFECTS:
            causes.append(m.not_supported(m.child(p, "effect"), effect, TAINT_EFFECTS))
        if (key, effect) in seen:
            causes.append(Cause("FieldValueDuplicate", f"Duplicate value: {_go_taint(taint)}: "
                                "taints must be unique by key and effect pair", p))
        seen.add((key, effect))
    return causes


def _valid_cidr(value: str) -> bool:
    if "/" not in value:
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def validate_node(node: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(node.get("metadata"), False) if old is None else \
        m.validate_object_meta_update(node.get("metadata"), old.get("metadata"))
    spec = node.get("spec") or {}
    causes += validate_taints(spec.get("taints") or [], "spec.taints")
    for i, cidr in enumerate(spec.get("podCIDRs") or []):
        if not _valid_cidr(cidr):
            causes.append(m.invalid(m.index("spec.podCIDRs", i), cidr,
                                    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    if old is not None:
        old_spec = old.get("spec") or {}
        if old_spec.get("podCIDRs") and spec.get("podCIDRs") != old_spec.get("podCIDRs"):
            causes.append(m.forbidden("spec.podCIDRs",
                                      'node updates may not change podCIDR except from "" to valid'))
        if old_spec.get("providerID") and spec.get("providerID") != old_spec.get("providerID"):
            causes.append(m.forbidden("spec.providerID",
                                      'node updates may not change providerID except from "" to valid'))
        rest_new, rest_old = copy.deepcopy(spec), copy.deepcopy(old_spec)
        for f in ("taints", "unschedulable", "configSource", "podCIDR", "podCIDRs", "providerID"):
            rest_new.pop(f, None)
            rest_old.pop(f, None)
        if rest_new != rest_old:
            causes.append(m.forbidden("", "node updates may only change labels, taints, or capacity "
                                          "(or configSource, if the DynamicKubeletConfig feature gate is enabled)"))
    return causes


NODES = ResourceInfo(
    group="", version="v1", kind="Node", plural="nodes", singular="node", namespaced=False,
    schema_type="io.k8s.api.core.v1.Node", short_names=("no",),
    subresources=(
        Subresource("proxy", "NodeProxyOptions", verbs=("create", "delete", "get", "patch", "update")),
        Subresource("status", "Node"),
    ),
    has_status=True, columns=NODE_COLUMNS, row=node_row, default=default_node, validate=validate_node,
    field_labels={"spec.unschedulable": lambda o: "true" if m.get_path(o, "spec.unschedulable") else "false"},
)
