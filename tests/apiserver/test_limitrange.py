"""LimitRanger admission: LimitRange defaults and bounds on Pods and claims, as in Kubernetes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from apiserver_support import http_client
from skiff.api.kinds import builtin_registry

NS = "/api/v1/namespaces/default"
ANNOTATION = "kubernetes.io/limit-ranger"


@pytest.fixture
async def client(make_client: Any) -> TestClient:
    return await make_client(registry=builtin_registry())


def container(name: str = "app", **resources: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "resources": resources}


def pod(name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": list(containers) or [container()], **spec}}


def limit_range(name: str, *items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": name},
            "spec": {"limits": list(items)}}


async def create(client: TestClient, plural: str, body: dict[str, Any], **query: str) -> tuple[int, Any]:
    r = await client.post(f"{NS}/{plural}", json=body, params=query)
    return r.status, await r.json()


async def add_range(client: TestClient, *items: dict[str, Any], name: str = "limits") -> None:
    status, body = await create(client, "limitranges", limit_range(name, *items))
    assert status == 201, body


DEFAULTS = {"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "64Mi"}}


async def test_defaults_fill_missing_resources_and_annotate_the_pod(client: TestClient) -> None:
    await add_range(client, DEFAULTS)
    status, created = await create(client, "pods", pod(
        "p", container("app"), container("side", requests={"cpu": "50m"}, limits={"cpu": "200m"}),
        initContainers=[container("init", limits={"memory": "32Mi"})]))
    assert status == 201, created
    app, side = created["spec"]["containers"]
    assert app["resources"] == {"requests": {"cpu": "100m", "memory": "64Mi"},
                                "limits": {"cpu": "500m", "memory": "128Mi"}}
    assert side["resources"] == {"requests": {"cpu": "50m", "memory": "64Mi"},
                                 "limits": {"cpu": "200m", "memory": "128Mi"}}
    # the pod defaults copied the init container's limit into its request before admission
    init = created["spec"]["initContainers"][0]["resources"]
    assert init == {"requests": {"cpu": "100m", "memory": "32Mi"},
                    "limits": {"cpu": "500m", "memory": "32Mi"}}
    assert created["metadata"]["annotations"][ANNOTATION] == (
        "LimitRanger plugin set: cpu, memory request for container app; "
        "cpu, memory limit for container app; memory request for container side; "
        "memory limit for container side; cpu request for init container init; "
        "cpu limit for init container init")


async def test_a_pod_with_everything_set_is_left_alone(client: TestClient) -> None:
    await add_range(client, DEFAULTS)
    full = container(requests={"cpu": "1", "memory": "1Gi"}, limits={"cpu": "1", "memory": "1Gi"})
    status, created = await create(client, "pods", pod("full", full))
    assert status == 201
    assert ANNOTATION not in (created["metadata"].get("annotations") or {})
    assert created["spec"]["containers"][0]["resources"] == full["resources"]


async def test_container_bounds_are_refused_with_kubernetes_messages(client: TestClient) -> None:
    await add_range(client, {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "64Mi"},
                             "maxLimitRequestRatio": {"cpu": "2"}})
    status, body = await create(client, "pods", pod("x", container(
        requests={"cpu": "1", "memory": "128Mi"}, limits={"cpu": "2", "memory": "128Mi"})))
    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == 'pods "x" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
    assert body["details"] == {"name": "x", "kind": "pods"}

    status, body = await create(client, "pods", pod("y", container(
        requests={"cpu": "250m", "memory": "32Mi"}, limits={"cpu": "1", "memory": "128Mi"})))
    assert status == 403
    assert body["message"] == ('pods "y" is forbidden: [minimum memory usage per Container is 64Mi, '
                               'but request is 32Mi, cpu max limit to request ratio per Container '
                               'is 2, but provided ratio is 4.000000]')

    # the range's own defaults (default from max, defaultRequest from default and min) fill gaps
    status, body = await create(client, "pods", pod("z", container(requests={"memory": "64Mi"})))
    assert status == 201, body
    assert body["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "1", "memory": "64Mi"}, "limits": {"cpu": "1"}}

    ok = container(requests={"cpu": "500m", "memory": "64Mi"}, limits={"cpu": "1", "memory": "64Mi"})
    status, body = await create(client, "pods", pod("fits", ok))
    assert status == 201, body


async def test_identical_violations_of_several_containers_are_reported_once(client: TestClient) -> None:
    await add_range(client, {"type": "Container", "max": {"cpu": "1"}})
    big = {"limits": {"cpu": "2"}}
    status, body = await create(client, "pods", pod("two", container("a", **big), container("b", **big)))
    assert status == 403
    assert body["message"] == 'pods "two" is forbidden: maximum cpu usage per Container is 1, but limit is 2'


async def test_pod_type_limits_bound_the_sum_of_containers(client: TestClient) -> None:
    await add_range(client, {"type": "Pod", "max": {"cpu": "1"}})
    each = {"requests": {"cpu": "300m"}, "limits": {"cpu": "600m"}}
    status, body = await create(client, "pods", pod("pair", container("a", **each), container("b", **each)))
    assert status == 403
    assert body["message"] == 'pods "pair" is forbidden: maximum cpu usage per Pod is 1, but limit is 1200m'
    status, body = await create(client, "pods", pod("open", container(requests={"cpu": "100m"})))
    assert body["message"] == 'pods "open" is forbidden: maximum cpu usage per Pod is 1.  No limit is specified'
    # an ordinary init container runs alone: the pod needs the larger of it and the containers
    status, body = await create(client, "pods", pod(
        "init", container("a", **each), initContainers=[container("i", limits={"cpu": "900m"})]))
    assert status == 201, body


async def test_a_default_that_contradicts_the_pod_is_invalid(client: TestClient) -> None:
    await add_range(client, {"type": "Container", "default": {"cpu": "1"}})
    status, body = await create(client, "pods", pod("c", container(requests={"cpu": "2"})))
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["message"] == ('Pod "c" is invalid: spec.containers[0].resources.requests[cpu]: '
                               'Invalid value: "2": must be less than or equal to cpu limit of 1')


async def test_claims_are_bounded_on_create_and_update(client: TestClient) -> None:
    await add_range(client, {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"},
                             "max": {"storage": "2Gi"}})

    def claim(name: str, size: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}

    status, body = await create(client, "persistentvolumeclaims", claim("big", "5Gi"))
    assert status == 403
    assert body["message"] == ('persistentvolumeclaims "big" is forbidden: maximum storage usage per '
                               'PersistentVolumeClaim is 2Gi, but request is 5Gi')
    status, body = await create(client, "persistentvolumeclaims", claim("small", "512Mi"))
    assert body["message"] == ('persistentvolumeclaims "small" is forbidden: minimum storage usage per '
                               'PersistentVolumeClaim is 1Gi, but request is 512Mi')
    status, body = await create(client, "persistentvolumeclaims", claim("ok", "1Gi"))
    assert status == 201, body


async def test_dry_run_is_checked_and_other_namespaces_and_updates_are_not(client: TestClient) -> None:
    plain = await create(client, "pods", pod("before", container(limits={"cpu": "3"})))
    assert plain[0] == 201
    await add_range(client, {"type": "Container", "max": {"cpu": "1"}})
    status, body = await create(client, "pods", pod("dry", container(limits={"cpu": "3"})), dryRun="All")
    assert status == 403
    # an update of a pod created before the range is not re-checked (containers are immutable)
    r = await client.patch(f"{NS}/pods/before", json={"metadata": {"labels": {"a": "b"}}},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status == 200, await r.text()
    r = await client.post("/api/v1/namespaces", json={"metadata": {"name": "elsewhere"}})
    assert r.status == 201
    r = await client.post("/api/v1/namespaces/elsewhere/pods", json=pod("free", container(limits={"cpu": "3"})))
    assert r.status == 201


async def test_deleting_the_range_lifts_it(client: TestClient) -> None:
    await add_range(client, DEFAULTS)
    r = await client.delete(f"{NS}/limitranges/limits")
    assert r.status == 200
    status, created = await create(client, "pods", pod("bare"))
    assert status == 201
    assert ANNOTATION not in (created["metadata"].get("annotations") or {})


async def test_ranges_are_known_again_after_a_restart(tmp_path: Path) -> None:
    async with http_client(tmp_path / "db", registry=builtin_registry()) as first:
        await add_range(first, {"type": "Container", "max": {"cpu": "1"}})
    async with http_client(tmp_path / "db", registry=builtin_registry()) as second:
        status, body = await create(second, "pods", pod("x", container(limits={"cpu": "2"})))
        assert status == 403, body
