"""A real Kubelet under test, and the pods it runs (shared by tests/kubelet/agent on
runc and tests/kubelet/process on the process runtime).

* :class:`KubeletNode` -- a Kubelet (``node-1``) in-process against the test's API
  server: :meth:`~KubeletNode.start` waits until it is ready, :meth:`~KubeletNode.stop`
  ends it as a crash would (containers keep running), :meth:`~KubeletNode.destroy`
  removes every container and sandbox.  A subclass names the runtime
  (:meth:`~KubeletNode.runtime`) and the pod network, and may clean up the host
  after the runtime (:meth:`~KubeletNode.clean_host`);
* :func:`pod` / :func:`container` -- a pod bound to the node, running busybox shell scripts;
* :func:`wait_pod`, :func:`wait_gone`, :func:`wait_event` -- watch until something holds;
* :func:`state`, :func:`condition`, :func:`running` -- read a pod's status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skiff.client.resources import EVENTS, PODS
from skiff.client.rest import ApiClient
from skiff.kubelet.agent import Kubelet
from skiff.kubelet.images.store import ImageStore
from skiff.kubelet.podnetworking import PodNetworking
from skiff.kubelet.runtime.interface import Runtime

Obj = dict[str, Any]
IMAGE = "busybox:test"
DEADLINE = 20.0


class KubeletNode:
    """A Kubelet named ``name`` with its data under ``root``; ``options`` go to the Kubelet
    (restart back-off 0.25 s doubling to 2 s unless given)."""

    def __init__(self, client: ApiClient, root: Path, store: ImageStore, *,
                 pod_cidr: str | None, network: PodNetworking, name: str = "node-1",
                 **options: Any) -> None:
        self.client, self.root, self.store, self.name = client, root, store, name
        self.pod_cidr, self.network, self.options = pod_cidr, network, options
        self.kubelet: Kubelet | None = None
        self.task: asyncio.Task[None] | None = None

    def runtime(self) -> Runtime:
        """A runtime on this node's state (a new one each call: it finds what is there)."""
        raise NotImplementedError

    async def clean_host(self, runtime: Runtime) -> None:
        """What :meth:`destroy` removes after the runtime has been closed (nothing here)."""

    async def start(self) -> Kubelet:
        options = {"backoff_base": 0.25, "backoff_cap": 2.0, **self.options}
        self.kubelet = Kubelet(self.client, node_name=self.name, data_dir=self.root / "kubelet",
                               pod_cidr=self.pod_cidr, runtime=self.runtime(), images=self.store,
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
        """Stop the kubelet, remove every container and sandbox, then :meth:`clean_host`."""
        await self.stop()
        runtime = self.runtime()
        try:
            for instance in await runtime.list():
                await runtime.remove(instance.id)
            for sandbox in await runtime.list_sandboxes():
                await runtime.remove_sandbox(sandbox.id)
        finally:
            await runtime.close()
            await self.clean_host(runtime)


def pod(name: str, *containers: Obj, node: str = "node-1", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 5,
                     "containers": list(containers), **spec}}


def container(name: str, script: str, **fields: Any) -> Obj:
    return {"name": name, "image": IMAGE, "imagePullPolicy": "Never",
            "command": ["sh", "-c", script], **fields}


async def wait_pod(client: ApiClient, name: str, check: Callable[[Obj], bool],
                   timeout: float = DEADLINE, namespace: str = "default") -> Obj:
    """The pod once ``check`` holds (the current state counts, then every watch event)."""
    selector = f"metadata.name={name}"

    async def watch() -> Obj:
        while True:
            listing = await client.list(PODS, namespace=namespace, field_selector=selector)
            for item in listing.items:
                if check(item):
                    return item
            async with client.watch(PODS, namespace=namespace, resource_version=listing.resource_version,
                                    field_selector=selector, timeout_seconds=60) as events:
                async for type_, obj in events:
                    if type_ != "DELETED" and check(obj):
                        return obj
    try:
        return await asyncio.wait_for(watch(), timeout)
    except asyncio.TimeoutError:
        current = await client.list(PODS, namespace=namespace, field_selector=selector)
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


async def events_of(client: ApiClient, pod_name: str) -> list[Obj]:
    listing = await client.list(EVENTS, namespace="default")
    return [e for e in listing.items if e["involvedObject"].get("name") == pod_name]


async def wait_event(client: ApiClient, pod_name: str, reason: str, *, contains: str = "",
                     timeout: float = DEADLINE) -> Obj:
    """The first Event about ``pod_name`` with this reason and ``contains`` in its message
    (those already there count, then every watch event)."""
    def wanted(event: Obj) -> bool:
        return (event["involvedObject"].get("name") == pod_name and event["reason"] == reason
                and contains in event["message"])

    async def look() -> Obj:
        while True:
            listing = await client.list(EVENTS, namespace="default")
            for event in listing.items:
                if wanted(event):
                    return dict(event)
            async with client.watch(EVENTS, namespace="default", resource_version=listing.resource_version,
                                    timeout_seconds=60) as events:
                async for _, event in events:
                    if wanted(event):
                        return dict(event)
    try:
        return await asyncio.wait_for(look(), timeout)
    except asyncio.TimeoutError:
        seen = [(e["reason"], e["message"]) for e in await events_of(client, pod_name)]
        raise AssertionError(f"no {reason} event for {pod_name}; saw {seen}") from None


def state(pod: Obj, name: str, init: bool = False) -> Obj:
    """The status of container ``name`` (of the init containers with ``init``); {} if none."""
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
    """A check: the pod is Running with its containers (or just ``name``) running."""
    def check(p: Obj) -> bool:
        statuses = (p.get("status") or {}).get("containerStatuses") or []
        return (p.get("status") or {}).get("phase") == "Running" and bool(statuses) and all(
            "running" in s["state"] for s in statuses if not name or s["name"] == name)
    return check
