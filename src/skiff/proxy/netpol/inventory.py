"""What the agent needs to know about pods and namespaces, read from API objects.

A pod takes part in policy (as a pod the rules are about, or as a peer) when it
has an IPv4 pod address of its own::

    status.podIPs / podIP   set                 (not yet: nothing to match on)
    spec.hostNetwork        false               (the node's address: policy does not
                                                 apply to the node's own traffic)
    status.phase            not Succeeded/Failed (its address may already be reused)

:func:`pod_info` keeps only the fields policy reads, so two versions of a pod that
give the same :class:`PodInfo` make no difference to the rules: the agent compares
them to skip the many status updates that change nothing here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

Obj = dict[str, Any]
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class ContainerPort:
    name: str
    protocol: str      # TCP | UDP | SCTP
    number: int


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    ip: str
    node: str
    labels: tuple[tuple[str, str], ...]
    ports: tuple[ContainerPort, ...]      # the named container ports
    created: str = ""                     # creationTimestamp (the newest pod owns a reused IP)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @cached_property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @cached_property
    def address(self) -> int:
        """The IP as a number (for interval arithmetic)."""
        return int(ipaddress.IPv4Address(self.ip))

    def named_port(self, name: str, protocol: str) -> int | None:
        """The number of the container port called ``name`` with ``protocol``, if any."""
        for port in self.ports:
            if port.name == name and port.protocol == protocol:
                return port.number
        return None


def pod_ipv4(status: Obj) -> str | None:
    """The pod's IPv4 address from status.podIPs (or status.podIP)."""
    candidates = [entry.get("ip") for entry in status.get("podIPs") or [] if isinstance(entry, dict)]
    candidates.append(status.get("podIP"))
    for text in candidates:
        if not text:
            continue
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            continue
        if isinstance(address, ipaddress.IPv4Address):
            return str(address)
    return None


def pod_info(pod: Obj) -> PodInfo | None:
    """The policy-relevant view of a pod; None when it takes no part (module docstring)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if spec.get("hostNetwork") or status.get("phase") in TERMINAL_PHASES:
        return None
    ip = pod_ipv4(status)
    if ip is None:
        return None
    ports = []
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") and isinstance(port.get("containerPort"), int):
                ports.append(ContainerPort(str(port["name"]), str(port.get("protocol") or "TCP"),
                                           int(port["containerPort"])))
    labels = meta.get("labels") or {}
    return PodInfo(namespace=str(meta.get("namespace") or "default"), name=str(meta.get("name", "")),
                   ip=ip, node=str(spec.get("nodeName") or ""),
                   labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
                   ports=tuple(ports), created=str(meta.get("creationTimestamp") or ""))


def namespace_labels(namespace: Obj) -> dict[str, str]:
    """A namespace's labels, with the name label every namespace carries in Kubernetes."""
    meta = namespace.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    labels.setdefault(NAMESPACE_NAME_LABEL, str(meta.get("name", "")))
    return labels


def labels_of_namespace(namespaces: Mapping[str, Mapping[str, str]], name: str) -> Mapping[str, str]:
    """Labels of namespace ``name`` (just its name label when the object is not known)."""
    return namespaces.get(name) or {NAMESPACE_NAME_LABEL: name}
