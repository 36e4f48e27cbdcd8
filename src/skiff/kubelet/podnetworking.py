"""The pod network as the kubelet sees it: one small interface, two implementations.

::

    PodNetworking
      setup()                         once, before any pod
      add_pod(uid, name, ns, netns_path=, host_network=, host_ports=) -> PodNetwork
      remove_pod(uid)                 idempotent
      list_pods()                     after a restart: which pods still have a network
      node_ip                         status.hostIP

:class:`~skiff.kubelet.network.NodeNetwork` (a bridge, veths, host-local IPAM) is
the real one. :class:`LoopbackNetwork` is the fallback when the node has no pod
CIDR: each pod keeps the loopback-only namespace its sandbox created, and its
podIP is the node's address (nothing is routed, nothing can leave the machine).

The runtime creates each sandbox's network namespace; the network plugs into it
(CNI style): ``add_pod(..., netns_path=sandbox_status.netns_path)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from .network import HostPort, PodNetwork


class PodNetworking(Protocol):
    @property
    def node_ip(self) -> str: ...

    async def setup(self) -> None: ...

    async def add_pod(self, pod_uid: str, pod_name: str, namespace: str, *,
                      netns_path: Path | None = None, host_network: bool = False,
                      host_ports: Sequence[HostPort] = ()) -> PodNetwork: ...

    async def remove_pod(self, pod_uid: str) -> None: ...

    def list_pods(self) -> list[PodNetwork]: ...


class LoopbackNetwork:
    """No pod network: loopback-only pod namespaces, podIP = the node's address."""

    def __init__(self, node_ip: str = "127.0.0.1") -> None:
        self._node_ip = node_ip

    @property
    def node_ip(self) -> str:
        return self._node_ip

    async def setup(self) -> None:
        return None

    async def add_pod(self, pod_uid: str, pod_name: str, namespace: str, *,
                      netns_path: Path | None = None, host_network: bool = False,
                      host_ports: Sequence[HostPort] = ()) -> PodNetwork:
        return PodNetwork(pod_uid=pod_uid, ip=self._node_ip,
                          netns_path=None if host_network else netns_path, gateway=None,
                          interface="lo", prefix_length=32, host_interface=None,
                          host_network=host_network)

    async def remove_pod(self, pod_uid: str) -> None:
        return None

    def list_pods(self) -> list[PodNetwork]:
        return []
