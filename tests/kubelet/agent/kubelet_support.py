"""Helpers for the kubelet tests: a kubelet on real runc, watching pods, cleaning up.

A test gets an in-process API server (sqlite, plain HTTP on 127.0.0.1) and a
:class:`Node`: a Kubelet with a runc runtime in a temp directory (its own cgroup
parent), the busybox test image, and a pod network inside a network namespace that
stands for the node (no route out of the machine). Everything is removed at the
end, also when the test failed: containers, mounts, namespaces, cgroups.

The kubelet harness, the pod builders and the waits are kubelet_node_support's.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from typing import Any

from kubelet_node_support import (IMAGE, KubeletNode, condition, container, events_of, pod,
                                  running, state, wait_event, wait_gone, wait_pod)
from skiff.client.rest import ApiClient
from skiff.kubelet.images.store import ImageStore
from skiff.kubelet.network import NodeNetwork
from skiff.kubelet.runtime import cgroups
from skiff.kubelet.runtime.interface import Runtime
from skiff.kubelet.runtime.mounts import mount_points_under, unmount
from skiff.kubelet.runtime.nskeeper import NamespaceKeeper
from skiff.kubelet.runtime.nskeeper import leftovers as keeper_leftovers
from skiff.kubelet.runtime.runc import RuncRuntime

__all__ = ["IMAGE", "Node", "condition", "container", "events_of", "pod", "running", "state",
           "wait_event", "wait_gone", "wait_pod"]

POD_CIDR = "10.244.0.0/24"


class Node(KubeletNode):
    """A Kubelet (``node-1``) on runc, its pod network in the namespace ``node_ns``."""

    network: NodeNetwork

    def __init__(self, client: ApiClient, root: Path, store: ImageStore, node_ns: Path, *,
                 name: str = "node-1", **options: Any) -> None:
        super().__init__(client, root, store, name=name, pod_cidr=POD_CIDR,
                         network=NodeNetwork(state_dir=root / "network", pod_cidr=POD_CIDR,
                                             node_netns=node_ns, node_ip="127.0.0.1"),
                         **options)
        self.node_ns = node_ns
        self.cgroup_parent = f"skiff-test-{secrets.token_hex(4)}"

    def runtime(self) -> RuncRuntime:
        return RuncRuntime(self.root / "runtime", cgroup_parent=self.cgroup_parent)

    async def clean_host(self, runtime: Runtime) -> None:
        """runc's leftovers, the pod network, mounts and the test's cgroup parent."""
        assert isinstance(runtime, RuncRuntime)
        listing = subprocess.run(["runc", "--root", str(runtime.runc_root), "list", "-q"],
                                 capture_output=True, text=True)
        for container_id in listing.stdout.split():
            subprocess.run(["runc", "--root", str(runtime.runc_root), "delete", "--force",
                            container_id], capture_output=True)
        try:
            await self.network.teardown()
        finally:
            NamespaceKeeper(self.root / "runtime").stop()
            for point in mount_points_under(self.root):
                unmount(point, detach=True)
            cgroups.remove(f"/{self.cgroup_parent}")

    def leftovers(self) -> list[str]:
        found = [f"mount {m}" for m in mount_points_under(self.root)]
        found += keeper_leftovers(self.root / "runtime")
        found += [f"cgroup {d}" for d in cgroups.existing(f"/{self.cgroup_parent}")
                  for d in d.iterdir() if d.is_dir()]
        return found
