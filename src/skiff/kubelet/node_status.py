"""What a kubelet says about its node: the Node object, its status, its Lease.

Pure functions, shared by the simulated node agent and (later) the real
kubelet.  A node reports itself in two ways, as in Kubernetes:

* the **Node** object: labels (hostname, os, arch), ``spec.podCIDR``, and a
  status with capacity/allocatable, addresses, ``nodeInfo`` and four
  conditions::

      MemoryPressure False  KubeletHasSufficientMemory
      DiskPressure   False  KubeletHasNoDiskPressure
      PIDPressure    False  KubeletHasSufficientPID
      Ready          True   KubeletReady  "kubelet is posting ready status"

  posted at registration and refreshed periodically (``lastHeartbeatTime``);
* a **Lease** ``kube-node-lease/<node>`` renewed every 10 s (``renewTime``),
  the cheap heartbeat the node lifecycle controller watches.

Simulated nodes get addresses that can never leave the machine: node ``i``'s
InternalIP is in 127.128.0.0/9 (loopback; see :func:`fake_node_ip`), and its
pod CIDR is the ``i``-th /24 counted upward from 10.244.0.0/24 (see
:func:`pod_cidr_for`); nothing ever sends traffic to either.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..api.kinds.meta import format_micro_time, format_time

Obj = dict[str, Any]

KUBELET_VERSION = "v1.32.4"
NODE_LEASE_NAMESPACE = "kube-node-lease"
LEASE_DURATION_SECONDS = 40
DEFAULT_KUBELET_PORT = 10250

DEFAULT_CAPACITY: Mapping[str, str] = {
    "cpu": "4",
    "memory": "8Gi",
    "pods": "110",
    "ephemeral-storage": "100Gi",
    "hugepages-1Gi": "0",
    "hugepages-2Mi": "0",
}

#: The /24 of node 0; node i gets the i-th /24 after it, wrapping inside 10.0.0.0/8.
_FIRST_POD_SUBNET = int(ipaddress.IPv4Address("10.244.0.0")) >> 8
_TEN_SLASH_EIGHT = int(ipaddress.IPv4Address("10.0.0.0")) >> 8
#: Node indexes whose pod CIDR stays clear of the default service range 10.96.0.0/12.
MAX_FAKE_NODES = (1 << 16) - (244 << 8) + (96 << 8)


def pod_cidr_for(index: int) -> str:
    """``10.244.<index>.0/24`` for the first 256 nodes, then onward (10.245.0.0/24 ...).

    After 10.255.255.0/24 the count wraps to 10.0.0.0/24; indexes up to
    :data:`MAX_FAKE_NODES` never reach the service range 10.96.0.0/12.
    """
    if not 0 <= index < MAX_FAKE_NODES:
        raise ValueError(f"node index {index} out of range (0..{MAX_FAKE_NODES - 1})")
    subnet = _TEN_SLASH_EIGHT + ((_FIRST_POD_SUBNET - _TEN_SLASH_EIGHT + index) % (1 << 16))
    return f"{ipaddress.IPv4Address(subnet << 8)}/24"


def fake_node_ip(index: int) -> str:
    """A loopback address for simulated node ``index``: 127.128.0.1, 127.128.0.2, ...

    Linux routes all of 127.0.0.0/8 to ``lo``, so nothing can leave the machine.
    """
    if not 0 <= index < (1 << 23) - 2:
        raise ValueError(f"node index {index} out of range")
    return str(ipaddress.IPv4Address("127.128.0.1") + index)


def timestamp(epoch: float) -> str:
    """metav1.Time (whole seconds) for an epoch time."""
    return format_time(datetime.fromtimestamp(epoch, timezone.utc))


def micro_timestamp(epoch: float) -> str:
    """metav1.MicroTime for an epoch time."""
    return format_micro_time(datetime.fromtimestamp(epoch, timezone.utc))


@dataclass(frozen=True)
class NodeSpec:
    """Everything that shapes one node's object (all but ``name`` have defaults)."""

    name: str
    index: int = 0
    capacity: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    allocatable: Mapping[str, str] | None = None  # default: same as capacity
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: Sequence[Mapping[str, Any]] = ()
    internal_ip: str = ""  # default: fake_node_ip(index)
    pod_cidr: str = ""  # default: pod_cidr_for(index)
    kubelet_port: int = DEFAULT_KUBELET_PORT
    container_runtime_version: str = "fake://0.1"
    os_image: str = "skiff simulated node"
    kernel_version: str = "0.0.0-fake"

    @property
    def ip(self) -> str:
        return self.internal_ip or fake_node_ip(self.index)

    @property
    def cidr(self) -> str:
        return self.pod_cidr or pod_cidr_for(self.index)


def node_labels(spec: NodeSpec) -> dict[str, str]:
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
    }
    labels.update(spec.labels)
    return labels


def node_conditions(now: float, *, ready: bool = True,
                    previous: Sequence[Mapping[str, Any]] = ()) -> list[Obj]:
    """The four kubelet conditions; ``lastTransitionTime`` kept unless the status flips."""
    before = {c.get("type"): c for c in previous}
    stamp = timestamp(now)
    out = []
    for type_, status, reason, message in (
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        ("Ready", "True" if ready else "False", "KubeletReady" if ready else "KubeletNotReady",
         "kubelet is posting ready status" if ready else "container runtime is down"),
    ):
        old = before.get(type_)
        transition = old.get("lastTransitionTime") if old and old.get("status") == status else None
        out.append({"type": type_, "status": status, "lastHeartbeatTime": stamp,
                    "lastTransitionTime": transition or stamp, "reason": reason, "message": message})
    return out


def node_status(spec: NodeSpec, now: float, *, previous: Mapping[str, Any] | None = None) -> Obj:
    """``Node.status`` as a kubelet posts it."""
    prev = previous or {}
    node_info = dict(prev.get("nodeInfo") or {})
    for key in ("machineID", "systemUUID", "bootID"):
        node_info.setdefault(key, str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{key}.{spec.name}.skiff")))
    node_info.update({
        "kernelVersion": spec.kernel_version,
        "osImage": spec.os_image,
        "containerRuntimeVersion": spec.container_runtime_version,
        "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": "",
        "operatingSystem": "linux",
        "architecture": "amd64",
    })
    return {
        "capacity": dict(spec.capacity),
        "allocatable": dict(spec.allocatable if spec.allocatable is not None else spec.capacity),
        "conditions": node_conditions(now, previous=prev.get("conditions") or ()),
        "addresses": [{"type": "InternalIP", "address": spec.ip},
                      {"type": "Hostname", "address": spec.name}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": spec.kubelet_port}},
        "nodeInfo": node_info,
    }


def node_object(spec: NodeSpec, now: float) -> Obj:
    """The Node a kubelet registers (status included)."""
    node_spec: Obj = {"podCIDR": spec.cidr, "podCIDRs": [spec.cidr]}
    if spec.taints:
        node_spec["taints"] = [dict(t) for t in spec.taints]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": node_labels(spec),
            "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": node_spec,
        "status": node_status(spec, now),
    }


def node_lease(node_name: str, node_uid: str, now: float) -> Obj:
    """The node's Lease in ``kube-node-lease``, owned by its Node (so it goes with it)."""
    meta: Obj = {"name": node_name, "namespace": NODE_LEASE_NAMESPACE}
    if node_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": node_name,
                                    "uid": node_uid}]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {"holderIdentity": node_name, "leaseDurationSeconds": LEASE_DURATION_SECONDS,
                 "renewTime": micro_timestamp(now)},
    }
