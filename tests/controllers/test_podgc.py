"""Pod GC against the real API server, on a fake clock.

Each test sets the scene first, then starts the controller, whose first pass
runs as soon as its caches are synced; later passes happen when the test moves
the clock (``advance`` waits until the pass has finished and the controller is
parked again, so nothing here sleeps).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from apiserver_support import ApiServer
from housekeeping_support import EagerFakeClock, meta, running_controllers, wait_gone, watch_until
from skiff.api.errors import StatusError
from skiff.client.clock import FakeClock
from skiff.client.resources import NODES, PODS
from skiff.controllers.podgc import PodGCController

Obj = dict[str, Any]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer(tmp_path) as server:
        yield server


def podgc(**config: Any) -> list[tuple[str, Any]]:
    return [("podgc", functools.partial(PodGCController, **config))]


async def make_node(api: ApiServer, name: str, *, ready: bool = True,
                    taints: list[Obj] | None = None) -> None:
    await api.client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
                                    "spec": {"taints": taints or []}})
    await api.client.patch(NODES, name, {"status": {"conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "reason": "Test"}]}},
        subresource="status")


async def make_pod(api: ApiServer, name: str, node: str = "", phase: str = "", reason: str = "",
                   finalizers: list[str] | None = None) -> Obj:
    body: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    if node:
        body["spec"]["nodeName"] = node
    if finalizers:
        body["metadata"]["finalizers"] = finalizers
    pod = await api.client.create(PODS, body, namespace="default")
    if phase:
        status: Obj = {"phase": phase}
        if reason:
            status["reason"] = reason
        pod = await api.client.patch(PODS, name, {"status": status}, namespace="default",
                                     subresource="status")
    return pod


async def names(api: ApiServer) -> set[str]:
    return {meta(p)["name"] for p in (await api.client.list(PODS, namespace="default")).items}


async def advance(clock: FakeClock, seconds: float) -> None:
    """Move time on and wait for the pass it triggers to finish."""
    clock.advance(seconds)
    await clock.wait_for_sleepers(1)


async def test_terminated_pods_beyond_the_threshold_go_evicted_then_oldest(api: ApiServer) -> None:
    await make_node(api, "n1")
    for name in ("a", "b", "c"):
        await make_pod(api, name, "n1", "Succeeded")
    await make_pod(api, "z-evicted", "n1", "Failed", reason="Evicted")
    await make_pod(api, "running", "n1", "Running")
    clock = EagerFakeClock()
    async with running_controllers(api.client, podgc(terminated_pod_threshold=2), clock=clock):
        await wait_gone(api.client, PODS, {"z-evicted", "a"}, namespace="default")
        await clock.wait_for_sleepers(1)
        assert await names(api) == {"b", "c", "running"}


async def test_pods_of_a_deleted_node_go_after_the_quarantine(api: ApiServer) -> None:
    await make_pod(api, "stray", "ghost", "Running")
    await make_pod(api, "patient", "late")
    clock = EagerFakeClock()
    async with running_controllers(api.client, podgc(gc_period=20, quarantine=40), clock=clock):
        await clock.wait_for_sleepers(1)  # first pass: both node names quarantined
        await advance(clock, 20)
        assert await names(api) == {"stray", "patient"}
        await make_node(api, "late")  # this one turns up in time
        since = (await api.client.list(PODS, namespace="default")).resource_version
        await advance(clock, 20)
        failed = await watch_until(api.client, PODS, lambda _t, o: meta(o)["name"] == "stray"
                                   and o["status"]["phase"] == "Failed",
                                   namespace="default", since=since)
        cond = {c["type"]: c for c in failed["status"]["conditions"]}["DisruptionTarget"]
        assert (cond["status"], cond["reason"], cond["message"]) == (
            "True", "DeletionByPodGC", "PodGC: node no longer exists")
        await wait_gone(api.client, PODS, {"stray"}, namespace="default")
        assert await names(api) == {"patient"}


async def test_terminating_pods_on_an_out_of_service_node_are_force_deleted(api: ApiServer) -> None:
    await make_node(api, "dead", ready=False, taints=[
        {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}])
    await make_node(api, "alive")
    await make_pod(api, "stuck", "dead", "Running")
    await make_pod(api, "leaving", "alive", "Running")
    for name in ("stuck", "leaving"):
        deleted = await api.client.delete(PODS, name, namespace="default")
        assert meta(deleted)["deletionTimestamp"]  # graceful: waits for a kubelet
    clock = EagerFakeClock()
    async with running_controllers(api.client, podgc(), clock=clock):
        await wait_gone(api.client, PODS, {"stuck"}, namespace="default")
        await clock.wait_for_sleepers(1)
        assert await names(api) == {"leaving"}  # its kubelet is alive and will finish it


async def test_unscheduled_terminating_pods_are_failed_and_force_deleted(api: ApiServer) -> None:
    await make_pod(api, "limbo", finalizers=["example.com/hold"])
    await api.client.delete(PODS, "limbo", namespace="default")
    clock = EagerFakeClock()
    async with running_controllers(api.client, podgc(), clock=clock):
        # only its finalizer keeps it now; without a node, nothing else would ever fail it
        pod = await watch_until(api.client, PODS, lambda _t, o: o["status"].get("phase") == "Failed",
                                namespace="default")
        assert meta(pod)["finalizers"] == ["example.com/hold"]
    await api.client.patch(PODS, "limbo", {"metadata": {"finalizers": None}}, namespace="default")
    with pytest.raises(StatusError) as gone:
        await api.client.get(PODS, "limbo", namespace="default")
    assert gone.value.code == 404
