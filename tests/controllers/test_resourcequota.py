"""The ResourceQuota controller against the real API server: status follows the objects."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from apiserver_support import ApiServer
from housekeeping_support import running_controllers, watch_until
from skiff.api.errors import StatusError
from skiff.client.resources import CONFIGMAPS, PODS, SERVICES
from skiff.controllers.resourcequota import RESOURCE_QUOTAS, ResourceQuotaController

Obj = dict[str, Any]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with ApiServer(tmp_path) as server:
        yield server


def controller(**config: Any) -> list[tuple[str, Any]]:
    return [("resourcequota", functools.partial(ResourceQuotaController, **config))]


def pod(name: str, cpu: str = "100m") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "busybox",
                                     "resources": {"requests": {"cpu": cpu}}}]}}


async def make_quota(api: ApiServer, name: str, hard: dict[str, str], **spec: Any) -> Obj:
    body = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name},
            "spec": {"hard": hard, **spec}}
    created: Obj = await api.client.create(RESOURCE_QUOTAS, body, namespace="default")
    return created


async def used_becomes(api: ApiServer, name: str, used: dict[str, str]) -> Obj:
    """Watch the quota until ``status.used`` is exactly ``used`` (and hard is spec.hard)."""
    def done(_: str, q: Obj) -> bool:
        status = q.get("status") or {}
        return (q["metadata"]["name"] == name and status.get("used") == used
                and status.get("hard") == q["spec"]["hard"])
    return await watch_until(api.client, RESOURCE_QUOTAS, done, namespace="default")


async def test_a_new_quota_gets_hard_and_used_from_the_namespace(api: ApiServer) -> None:
    await api.client.create(PODS, pod("a", "250m"), namespace="default")
    await api.client.create(PODS, pod("b", "250m"), namespace="default")
    await api.client.create(CONFIGMAPS, {"metadata": {"name": "c"}}, namespace="default")
    async with running_controllers(api.client, controller()):
        await make_quota(api, "q", {"pods": "10", "requests.cpu": "2", "configmaps": "5",
                                    "services": "3", "count/deployments.apps": "2", "foo": "1"})
        quota = await used_becomes(api, "q", {
            "configmaps": "1", "count/deployments.apps": "0", "pods": "2", "requests.cpu": "500m",
            "services": "1"})  # the "kubernetes" Service lives in default
        assert quota["status"]["hard"]["foo"] == "1"  # tracked by nothing: hard only


async def test_deleted_and_finished_pods_give_their_usage_back(api: ApiServer) -> None:
    async with running_controllers(api.client, controller()):
        await make_quota(api, "q", {"pods": "2", "count/pods": "5", "requests.cpu": "1"})
        await used_becomes(api, "q", {"count/pods": "0", "pods": "0", "requests.cpu": "0"})
        for name in ("a", "b"):
            await api.client.create(PODS, pod(name), namespace="default")
        with pytest.raises(StatusError) as refused:
            await api.client.create(PODS, pod("c"), namespace="default")
        assert refused.value.code == 403
        await api.client.delete(PODS, "a", namespace="default")
        await used_becomes(api, "q", {"count/pods": "1", "pods": "1", "requests.cpu": "100m"})
        await api.client.create(PODS, pod("c"), namespace="default")
        await api.client.patch(PODS, "b", {"status": {"phase": "Succeeded"}}, namespace="default",
                               subresource="status")
        # a finished pod still exists (count/pods) but uses no compute resources
        await used_becomes(api, "q", {"count/pods": "2", "pods": "1", "requests.cpu": "100m"})


async def test_a_service_that_stops_being_a_node_port_frees_its_ports(api: ApiServer) -> None:
    async with running_controllers(api.client, controller()):
        await make_quota(api, "svc", {"services.nodeports": "2"})
        await used_becomes(api, "svc", {"services.nodeports": "0"})
        body = {"metadata": {"name": "web"},
                "spec": {"type": "NodePort", "selector": {"a": "b"},
                         "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}}
        await api.client.create(SERVICES, body, namespace="default")
        await used_becomes(api, "svc", {"services.nodeports": "2"})
        await api.client.patch(SERVICES, "web", [
            {"op": "replace", "path": "/spec/type", "value": "ClusterIP"},
            {"op": "remove", "path": "/spec/ports/0/nodePort"},
            {"op": "remove", "path": "/spec/ports/1/nodePort"},
            {"op": "remove", "path": "/spec/externalTrafficPolicy"}],
            namespace="default", patch_type="json")
        await used_becomes(api, "svc", {"services.nodeports": "0"})


async def test_changing_spec_hard_recalculates_and_watches_new_kinds(api: ApiServer) -> None:
    async with running_controllers(api.client, controller()):
        await make_quota(api, "q", {"pods": "4"})
        await used_becomes(api, "q", {"pods": "0"})
        await api.client.create(CONFIGMAPS, {"metadata": {"name": "one"}}, namespace="default")
        await api.client.patch(RESOURCE_QUOTAS, "q",
                               {"spec": {"hard": {"pods": "4", "count/configmaps": "3"}}},
                               namespace="default")
        await used_becomes(api, "q", {"count/configmaps": "1", "pods": "0"})
        await api.client.delete(CONFIGMAPS, "one", namespace="default")
        await used_becomes(api, "q", {"count/configmaps": "0", "pods": "0"})


async def test_a_periodic_resync_repairs_a_drifted_status(api: ApiServer) -> None:
    await api.client.create(PODS, pod("a"), namespace="default")
    async with running_controllers(api.client, controller(resync_period=0.2)):
        quota = await make_quota(api, "q", {"pods": "3"})
        quota = await used_becomes(api, "q", {"pods": "1"})
        quota["status"]["used"] = {"pods": "3"}  # as if a failed write had been charged
        await api.client.update(RESOURCE_QUOTAS, quota, subresource="status")
        await used_becomes(api, "q", {"pods": "1"})
