"""Builders and fixtures shared by the Endpoints and EndpointSlice controller tests.

Pods here are run "by hand": created already bound to a Node object (which no
agent serves) and given a status by the test, so readiness, IPs and
termination are exactly what each test says.  ``test_endpoints.py`` also runs
a flow through the fake kubelet (real binding, real pod IPs).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

from controller_cluster import Observed
from housekeeping_support import ApiServer, running_controllers
from skiff.client.resources import NODES, PODS, ResourceLike, SERVICES
from skiff.client.rest import ApiClient
from skiff.controllers.endpoints import EndpointsController
from skiff.controllers.endpointslice import EndpointSliceController

Obj = dict[str, Any]
DEADLINE = 15.0
#: Small, so splitting into several slices is cheap to test.
MAX_PER_SLICE = 3
NOW = "2025-03-01T10:00:00Z"


def controllers() -> list[tuple[str, Any]]:
    return [("endpoint", EndpointsController),
            ("endpointslice", functools.partial(EndpointSliceController,
                                                max_endpoints_per_slice=MAX_PER_SLICE))]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer(tmp_path) as server:
        await server.client.create(NODES, node("node-a", zone="zone-1"))
        await server.client.create(NODES, node("node-b"))
        async with running_controllers(server.client, controllers()):
            yield server


def node(name: str, *, zone: str | None = None) -> Obj:
    labels = {"kubernetes.io/hostname": name}
    if zone:
        labels["topology.kubernetes.io/zone"] = zone
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def service(name: str, selector: dict[str, str] | None, ports: list[Obj] | None = None, *,
            headless: bool = False, publish: bool = False,
            labels: dict[str, str] | None = None, namespace: str = "default") -> Obj:
    spec: Obj = {"ports": ports if ports is not None else [{"name": "http", "port": 80,
                                                            "targetPort": 8080}]}
    if selector is not None:
        spec["selector"] = selector
    if headless:
        spec["clusterIP"] = "None"
    if publish:
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": spec}


def pod(name: str, labels: dict[str, str], *, node_name: str = "node-a",
        ports: list[Obj] | None = None, hostname: str | None = None,
        subdomain: str | None = None, finalizer: bool = False, namespace: str = "default") -> Obj:
    container: Obj = {"name": "app", "image": "nginx:1.27"}
    if ports:
        container["ports"] = ports
    spec: Obj = {"nodeName": node_name, "containers": [container]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    meta: Obj = {"name": name, "namespace": namespace, "labels": labels}
    if finalizer:
        meta["finalizers"] = ["skiff.test/hold"]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def running(ip: str, *, ready: bool = True, since: str = NOW) -> Obj:
    status = "True" if ready else "False"
    return {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "conditions": [{"type": "Ready", "status": status, "lastTransitionTime": since},
                           {"type": "ContainersReady", "status": status,
                            "lastTransitionTime": since}]}


async def start_pod(client: ApiClient, body: Obj, ip: str, *, ready: bool = True) -> Obj:
    """Create ``body`` and give it a Running status with ``ip``."""
    created = await client.create(PODS, body)
    meta = created["metadata"]
    return await set_status(client, meta["name"], running(ip, ready=ready),
                            namespace=meta["namespace"])


async def set_status(client: ApiClient, name: str, status: Obj, *,
                     namespace: str = "default") -> Obj:
    return await client.patch(PODS, name, {"status": status}, namespace=namespace,
                              subresource="status")


async def release(client: ApiClient, name: str, namespace: str = "default") -> None:
    """Drop the test finalizer and delete at once (no kubelet here to finish a graceful delete)."""
    with contextlib.suppress(Exception):
        await client.patch(PODS, name, {"metadata": {"finalizers": None}}, namespace=namespace)
    with contextlib.suppress(Exception):
        await client.delete(PODS, name, namespace=namespace, grace_period_seconds=0)


@contextlib.asynccontextmanager
async def observing(client: ApiClient, resource: ResourceLike, namespace: str | None = "default",
                    label_selector: str | None = None) -> AsyncIterator[Observed]:
    """A watched collection (``await obs.wait_for(predicate)``) for the block's duration."""
    obs = Observed(client, resource, namespace, label_selector)
    task = asyncio.create_task(obs.informer.run())
    try:
        await asyncio.wait_for(obs.informer.wait_synced(), DEADLINE)
        yield obs
    finally:
        obs.informer.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def named(name: str) -> Callable[[list[Obj]], Obj | None]:
    def find(items: list[Obj]) -> Obj | None:
        return next((o for o in items if o["metadata"]["name"] == name), None)
    return find


__all__ = ["api", "controllers", "node", "service", "pod", "running", "start_pod", "set_status",
           "release", "observing", "named", "SERVICES", "MAX_PER_SLICE", "NOW"]
