"""Helpers for the kubelet tests: a kubelet on real runc, watching pods, cleaning up.

A test gets an in-process API server (sqlite, plain HTTP on 127.0.0.1) and a
:class:`Node`: a Kubelet with a runc runtime in a temp directory (its own cgroup
parent), the busybox test image, and a pod network inside a network namespace that
stands for the node (no route out of the machine). Everything is removed at the
end, also when the test failed: containers, mounts, namespaces, cgroups.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skiff.client.resources import EVENTS, PODS
from skiff.client.rest import ApiClient
from skiff.kubelet.agent import Kubelet
from skiff.kubelet.images.store import ImageStore
from skiff.kubelet.network import NodeNetwork
from skiff.kubelet.runtime import cgroups
from skiff.kubelet.runtime.mounts import mount_points_under, unmount
from skiff.kubelet.runtime.runc import RuncRuntime

Obj = dict[str, Any]
NETNS_DIR = Path("/run/netns")
IMAGE = "busybox:test"
DEADLINE = 20.0


def add_namespace() -> Path:
    name = f"skifft-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True)
    return NETNS_DIR / name


def delete_namespace(path: Path) -> None:
    if path.exists():
        subprocess.run(["ip", "netns", "del", path.name], capture_output=True)


class Node:
    """A running Kubelet (``node-1``) and the means to tear everything down."""

    def __init__(self, client: ApiClient, root: Path, store: ImageStore, node_ns: Path, *,
                 name: str = "node-1", **options: Any) -> None:
        self.client = client
        self.root = root
        self.store = store
        self.node_ns = node_ns
        self.name = name
        self.options = options
        self.cgroup_parent = f"skiff-test-{secrets.token_hex(4)}"
        self.kubelet: Kubelet | None = None
        self.task: asyncio.Task[None] | None = None
        self.network = NodeNetwork(state_dir=root / "network", pod_cidr="10.244.0.0/24",
                                   node_netns=node_ns, node_ip="127.0.0.1")

    def runtime(self) -> RuncRuntime:
        return RuncRuntime(self.root / "runtime", cgroup_parent=self.cgroup_parent)

    async def start(self) -> Kubelet:
        options = {"backoff_base": 0.25, "backoff_cap": 2.0, **self.options}
        self.kubelet = Kubelet(self.client, node_name=self.name, data_dir=self.root / "kubelet",
                               pod_cidr="10.244.0.0/24", runtime=self.runtime(), images=self.store,
                               network=self.network, node_ip="127.0.0.1", **options)
        self.task = asyncio.create_task(self.kubelet.run())
        ready = asyncio.ensure_future(self.kubelet.ready.wait())
        done, _ = await asyncio.wait([ready, self.task], timeout=DEADLINE,
                                     return_when=asyncio.FIRST_COMPLETED)
        if self.task in done:
            ready.cancel()
            self.task.result()
        assert ready in done, "the kubelet did not get ready"
        return self.kubelet

    async def stop(self) -> None:
        """Stop the kubelet only (containers keep running, as after a crash)."""
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None

    async def destroy(self) -> None:
        await self.stop()
        runtime = self.runtime()
        try:
            for sandbox in await runtime.list_sandboxes():
                await runtime.remove_sandbox(sandbox.id)
            for container in await runtime.list():
                await runtime.remove(container.id)
        finally:
            await runtime.close()
            listing = subprocess.run(["runc", "--root", str(runtime.runc_root), "list", "-q"],
                                     capture_output=True, text=True)
            for container_id in listing.stdout.split():
                subprocess.run(["runc", "--root", str(runtime.runc_root), "delete", "--force",
                                container_id], capture_output=True)
            try:
                await self.network.teardown()
            finally:
                for point in mount_points_under(self.root):
                    unmount(point, detach=True)
                cgroups.remove(f"/{self.cgroup_parent}")

    def leftovers(self) -> list[str]:
        found = [f"mount {m}" for m in mount_points_under(self.root)]
        found += [f"cgroup {d}" for d in cgroups.existing(f"/{self.cgroup_parent}")
                  for d in d.iterdir() if d.is_dir()]
        return found


def pod(name: str, *containers: Obj, node: str = "node-1", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 5,
                     "containers": list(containers), **spec}}


def container(name: str, script: str, **fields: Any) -> Obj:
    return {"name": name, "image": IMAGE, "imagePullPolicy": "Never",
            "command": ["sh", "-c", script], **fields}


async def wait_pod(client: ApiClient, name: str, check: Callable[[Obj], bool],
                   timeout: float = DEADLINE, namespace: str = "default") -> Obj:
    """The pod once ``check`` holds (watching from now; the current state counts)."""
    async def watch() -> Obj:
        while True:
            listing = await client.list(PODS, namespace=namespace, field_selector=f"metadata.name={name}")
            for item in listing.items:
                if check(item):
                    return item
            async with client.watch(PODS, namespace=namespace, resource_version=listing.resource_version,
                                    field_selector=f"metadata.name={name}", timeout_seconds=60) as events:
                async for type_, obj in events:
                    if type_ != "DELETED" and check(obj):
                        return obj
    try:
        return await asyncio.wait_for(watch(), timeout)
    except asyncio.TimeoutError:
        current = await client.list(PODS, namespace=namespace, field_selector=f"metadata.name={name}")
        raise AssertionError(f"pod {name} never matched; last: {current.items}") from None


async def wait_gone(client: ApiClient, name: str, timeout: float = DEADLINE) -> None:
    async def watch() -> None:
        listing = await client.list(PODS, namespace="default", field_selector=f"metadata.name={name}")
        if not listing.items:
            return
        async with client.watch(PODS, namespace="default", resource_version=listing.resource_version,
                                field_selector=f"metadata.name={name}") as events:
            async for type_, _ in events:
                if type_ == "DELETED":
                    return
    await asyncio.wait_for(watch(), timeout)


def state(pod: Obj, name: str, init: bool = False) -> Obj:
    key = "initContainerStatuses" if init else "containerStatuses"
    for status in (pod.get("status") or {}).get(key) or []:
        if status["name"] == name:
            return dict(status)
    return {}


def condition(pod: Obj, type_: str) -> str:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return str(cond["status"])
    return ""


def running(name: str = "") -> Callable[[Obj], bool]:
    def check(p: Obj) -> bool:
        statuses = (p.get("status") or {}).get("containerStatuses") or []
        return p.get("status", {}).get("phase") == "Running" and all(
            "running" in s["state"] for s in statuses if not name or s["name"] == name) and bool(statuses)
    return check


async def events_of(client: ApiClient, pod_name: str) -> list[Obj]:
    listing = await client.list(EVENTS, namespace="default")
    return [e for e in listing.items if e["involvedObject"].get("name") == pod_name]


async def wait_event(client: ApiClient, pod_name: str, reason: str, timeout: float = DEADLINE,
                     contains: str = "") -> Obj:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        for event in await events_of(client, pod_name):
            if event["reason"] == reason and contains in event["message"]:
                return event
        if loop.time() > deadline:
            seen = [(e["reason"], e["message"]) for e in await events_of(client, pod_name)]
            raise AssertionError(f"no {reason} event for {pod_name}; saw {seen}")
        await asyncio.sleep(0.1)
