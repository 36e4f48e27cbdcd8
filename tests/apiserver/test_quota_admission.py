"""ResourceQuota admission: usage charged to status.used, over-quota writes refused (403).

No controller runs here: whatever ``status`` shows was written by admission itself
(its first look at a new quota calculates the usage from the store).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from apiserver_support import http_client
from skiff.api.kinds import builtin_registry
from skiff.storage.sqlite import SqliteBackend

NS = "/api/v1/namespaces/default"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
async def client(make_client: Any) -> TestClient:
    return await make_client(registry=builtin_registry())


def pod(name: str, *, cpu: str | None = "100m", memory: str | None = None, **spec: Any) -> dict[str, Any]:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    resources = {"requests": requests} if requests else {}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "busybox", "resources": resources}], **spec}}


def quota(name: str, hard: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name},
            "spec": {"hard": hard, **spec}}


async def post(client: TestClient, plural: str, body: dict[str, Any], ns: str = NS,
               **query: str) -> tuple[int, Any]:
    r = await client.post(f"{ns}/{plural}", json=body, params=query)
    return r.status, await r.json()


async def add_quota(client: TestClient, name: str, hard: dict[str, str], **spec: Any) -> None:
    status, body = await post(client, "resourcequotas", quota(name, hard, **spec))
    assert status == 201, body


async def status_of(client: TestClient, name: str) -> dict[str, Any]:
    body = await (await client.get(f"{NS}/resourcequotas/{name}")).json()
    return dict(body.get("status") or {})


async def test_pods_over_the_count_are_refused_and_usage_is_recorded(client: TestClient) -> None:
    await add_quota(client, "q", {"pods": "2", "requests.cpu": "1"})
    for name in ("a", "b"):
        status, body = await post(client, "pods", pod(name, cpu="300m"))
        assert status == 201, body
    status, body = await post(client, "pods", pod("c", cpu="300m"))
    assert (status, body["reason"]) == (403, "Forbidden")
    assert body["message"] == ('pods "c" is forbidden: exceeded quota: q, requested: pods=1, '
                               'used: pods=2, limited: pods=2')
    assert await status_of(client, "q") == {"hard": {"pods": "2", "requests.cpu": "1"},
                                            "used": {"pods": "2", "requests.cpu": "600m"}}


async def test_every_exceeded_resource_is_named(client: TestClient) -> None:
    await add_quota(client, "compute", {"cpu": "1", "requests.memory": "1Gi", "limits.memory": "2Gi"})
    status, body = await post(client, "pods", pod("big", cpu="1500m", memory="1536Mi"))
    assert status == 403
    assert body["message"] == ('pods "big" is forbidden: failed quota: compute: must specify '
                               'limits.memory for: app')
    big = pod("big", cpu="1500m", memory="1536Mi")
    big["spec"]["containers"][0]["resources"]["limits"] = {"memory": "1536Mi"}
    status, body = await post(client, "pods", big)
    assert status == 403
    assert body["message"] == ('pods "big" is forbidden: exceeded quota: compute, requested: '
                               'cpu=1500m,requests.memory=1536Mi, used: cpu=0,requests.memory=0, '
                               'limited: cpu=1,requests.memory=1Gi')


async def test_missing_cpu_and_memory_are_listed_per_resource(client: TestClient) -> None:
    await add_quota(client, "q", {"limits.cpu": "2", "limits.memory": "1Gi", "pods": "10"})
    two = pod("two")
    two["spec"]["containers"].append({"name": "side", "image": "busybox"})
    status, body = await post(client, "pods", two)
    assert status == 403
    assert body["message"] == ('pods "two" is forbidden: failed quota: q: must specify '
                               'limits.cpu for: app,side; limits.memory for: app,side')


async def test_scopes_pick_the_pods_a_quota_counts(client: TestClient) -> None:
    await add_quota(client, "best-effort", {"pods": "1"}, scopes=["BestEffort"])
    await add_quota(client, "terminating", {"pods": "1"}, scopes=["Terminating"])
    assert (await post(client, "pods", pod("be1", cpu=None)))[0] == 201
    status, body = await post(client, "pods", pod("be2", cpu=None))
    assert body["message"] == ('pods "be2" is forbidden: exceeded quota: best-effort, requested: '
                               'pods=1, used: pods=1, limited: pods=1')
    assert (await post(client, "pods", pod("burstable")))[0] == 201  # NotBestEffort: not counted
    assert (await post(client, "pods", pod("job1", activeDeadlineSeconds=60)))[0] == 201
    status, body = await post(client, "pods", pod("job2", activeDeadlineSeconds=60))
    assert status == 403 and "exceeded quota: terminating" in body["message"]
    assert (await status_of(client, "best-effort"))["used"] == {"pods": "1"}
    assert (await status_of(client, "terminating"))["used"] == {"pods": "1"}


async def test_a_priority_class_scope_selector(client: TestClient) -> None:
    r = await client.post("/apis/scheduling.k8s.io/v1/priorityclasses",
                          json={"metadata": {"name": "high"}, "value": 1000})
    assert r.status == 201
    selector = {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In",
                                      "values": ["high"]}]}
    await add_quota(client, "high", {"pods": "1"}, scopeSelector=selector)
    assert (await post(client, "pods", pod("h1", priorityClassName="high")))[0] == 201
    status, body = await post(client, "pods", pod("h2", priorityClassName="high"))
    assert status == 403 and "exceeded quota: high" in body["message"]
    assert (await post(client, "pods", pod("plain")))[0] == 201


async def test_a_new_quota_counts_what_exists_and_skips_finished_pods(client: TestClient) -> None:
    for name in ("old1", "old2", "done"):
        assert (await post(client, "pods", pod(name, cpu="200m")))[0] == 201
    r = await client.patch(f"{NS}/pods/done/status", json={"status": {"phase": "Succeeded"}}, headers=MERGE)
    assert r.status == 200, await r.text()
    await add_quota(client, "q", {"pods": "3", "count/pods": "10", "requests.cpu": "2"})
    assert (await post(client, "pods", pod("new", cpu="200m")))[0] == 201
    status, body = await post(client, "pods", pod("over", cpu="200m"))
    assert body["message"] == ('pods "over" is forbidden: exceeded quota: q, requested: pods=1, '
                               'used: pods=3, limited: pods=3')
    assert (await status_of(client, "q"))["used"] == {"count/pods": "4", "pods": "3",
                                                      "requests.cpu": "600m"}


async def test_object_counts_legacy_names_and_quotas_themselves(client: TestClient) -> None:
    await add_quota(client, "objects", {"configmaps": "1", "count/secrets": "1",
                                        "count/deployments.apps": "1", "resourcequotas": "2"})
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}}
    assert (await post(client, "configmaps", cm))[0] == 201
    status, body = await post(client, "configmaps", {**cm, "metadata": {"name": "c2"}})
    assert body["message"] == ('configmaps "c2" is forbidden: exceeded quota: objects, requested: '
                               'configmaps=1, used: configmaps=1, limited: configmaps=1')
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"}}
    assert (await post(client, "secrets", secret))[0] == 201
    assert (await post(client, "secrets", {**secret, "metadata": {"name": "s2"}}))[0] == 403
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1"},
                  "spec": {"selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    apps = "/apis/apps/v1/namespaces/default"
    assert (await post(client, "deployments", deployment, ns=apps))[0] == 201
    status, body = await post(client, "deployments", {**deployment, "metadata": {"name": "d2"}}, ns=apps)
    assert body["message"] == ('deployments.apps "d2" is forbidden: exceeded quota: objects, '
                               'requested: count/deployments.apps=1, used: count/deployments.apps=1, '
                               'limited: count/deployments.apps=1')
    await add_quota(client, "second", {"pods": "5"})  # quotas count against resourcequotas too
    status, body = await post(client, "resourcequotas", quota("third", {"pods": "1"}))
    assert status == 403 and "resourcequotas=1, used: resourcequotas=2" in body["message"]
    assert (await status_of(client, "objects"))["used"] == {
        "configmaps": "1", "count/deployments.apps": "1", "count/secrets": "1", "resourcequotas": "2"}


async def test_services_are_charged_on_create_and_on_a_type_change(client: TestClient) -> None:
    await add_quota(client, "svc", {"services": "4", "services.nodeports": "2",
                                    "services.loadbalancers": "0"})

    def service(name: str, kind: str, ports: int = 1) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"type": kind, "selector": {"a": "b"},
                         "ports": [{"name": f"p{i}", "port": 80 + i} for i in range(ports)]}}

    assert (await post(client, "services", service("plain", "ClusterIP", ports=3)))[0] == 201
    status, body = await post(client, "services", service("lb", "LoadBalancer"))
    assert body["message"] == ('services "lb" is forbidden: exceeded quota: svc, requested: '
                               'services.loadbalancers=1, used: services.loadbalancers=0, '
                               'limited: services.loadbalancers=0')
    assert (await post(client, "services", service("np", "NodePort")))[0] == 201
    r = await client.patch(f"{NS}/services/plain", json={"spec": {"type": "NodePort"}}, headers=MERGE)
    assert r.status == 403
    assert (await r.json())["message"] == ('services "plain" is forbidden: exceeded quota: svc, '
                                           'requested: services.nodeports=3, used: services.nodeports=1, '
                                           'limited: services.nodeports=2')
    # default also holds the "kubernetes" Service, counted when the quota was first calculated
    assert (await status_of(client, "svc"))["used"] == {
        "services": "3", "services.loadbalancers": "0", "services.nodeports": "1"}


async def test_claims_count_storage_per_class(client: TestClient) -> None:
    await add_quota(client, "storage", {"requests.storage": "10Gi",
                                        "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "1"})

    def claim(name: str, size: str, storage_class: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                         "resources": {"requests": {"storage": size}}}}

    assert (await post(client, "persistentvolumeclaims", claim("a", "4Gi", "gold")))[0] == 201
    status, body = await post(client, "persistentvolumeclaims", claim("b", "1Gi", "gold"))
    assert status == 403 and "gold.storageclass.storage.k8s.io/persistentvolumeclaims=1" in body["message"]
    status, body = await post(client, "persistentvolumeclaims", claim("c", "7Gi", "silver"))
    assert body["message"] == ('persistentvolumeclaims "c" is forbidden: exceeded quota: storage, '
                               'requested: requests.storage=7Gi, used: requests.storage=4Gi, '
                               'limited: requests.storage=10Gi')
    assert (await status_of(client, "storage"))["used"] == {
        "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "1", "requests.storage": "4Gi"}


async def test_dry_runs_and_duplicate_names_are_not_charged(client: TestClient) -> None:
    await add_quota(client, "q", {"pods": "2"})
    status, body = await post(client, "pods", pod("dry"), dryRun="All")
    assert status == 201, body
    assert (await post(client, "pods", pod("a")))[0] == 201
    status, body = await post(client, "pods", pod("a"))
    assert (status, body["reason"]) == (409, "AlreadyExists")
    assert (await status_of(client, "q"))["used"] == {"pods": "1"}
    assert (await post(client, "pods", pod("b")))[0] == 201


class SlowStore(SqliteBackend):
    """A store whose reads and writes take a moment, so concurrent requests interleave."""

    async def get(self, key: str, *, revision: int = 0) -> Any:
        await asyncio.sleep(0.001)
        return await super().get(key, revision=revision)

    async def update(self, key: str, value: bytes, *, expected_mod_revision: int) -> Any:
        await asyncio.sleep(0.001)
        return await super().update(key, value, expected_mod_revision=expected_mod_revision)


async def test_concurrent_creates_never_exceed_the_quota(tmp_path: Path) -> None:
    async with http_client(tmp_path / "db", store=SlowStore, registry=builtin_registry()) as client:
        await add_quota(client, "q", {"pods": "5"})
        assert (await status_of(client, "q")) == {}  # not calculated until the first pod
        results = await asyncio.gather(*(post(client, "pods", pod(f"p{i}")) for i in range(24)))
        codes = sorted(status for status, _ in results)
        assert codes == [201] * 5 + [403] * 19
        listed = await (await client.get(f"{NS}/pods")).json()
        assert len(listed["items"]) == 5
        assert (await status_of(client, "q"))["used"] == {"pods": "5"}


async def test_namespaces_without_quotas_are_untouched(client: TestClient) -> None:
    await add_quota(client, "q", {"pods": "0"})
    r = await client.post("/api/v1/namespaces", json={"metadata": {"name": "free"}})
    assert r.status == 201
    status, _ = await post(client, "pods", pod("x"), ns="/api/v1/namespaces/free")
    assert status == 201
    assert (await post(client, "pods", pod("x")))[0] == 403


async def test_quotas_are_known_again_after_a_restart(tmp_path: Path) -> None:
    async with http_client(tmp_path / "db", registry=builtin_registry()) as first:
        await add_quota(first, "q", {"pods": "1"})
        assert (await post(first, "pods", pod("a")))[0] == 201
    async with http_client(tmp_path / "db", registry=builtin_registry()) as second:
        status, body = await post(second, "pods", pod("b"))
        assert status == 403, body
