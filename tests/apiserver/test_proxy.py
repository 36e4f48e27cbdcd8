"""pods/proxy, services/proxy, nodes/proxy against a real API server on SQLite, with a
real HTTP server on loopback standing for the pod or kubelet (skiff.apiserver.proxy).

The end-to-end version on real containers (and `kubectl proxy`) is in
tests/e2e/test_runc_services.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from skiff.apiserver.app import make_app
from skiff.apiserver.proxy import install_proxy, split_name
from skiff.storage.sqlite import SqliteBackend

Obj = dict[str, Any]
NS = "/api/v1/namespaces/default"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[TestClient]:
    backend = SqliteBackend(str(tmp_path / "db"), compact_interval=0)
    app = make_app(backend)
    install_proxy(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await backend.close()


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[int, list[Obj]]]:
    """An HTTP server on 127.0.0.1 that answers what it was asked (and remembers it)."""
    seen: list[Obj] = []

    async def echo(request: web.Request) -> web.Response:
        body = await request.text()
        seen.append({"method": request.method, "path": request.path, "query": request.query_string,
                     "body": body, "authorization": request.headers.get("Authorization")})
        return web.Response(status=201 if request.method == "POST" else 200,
                            text=f"{request.method} {request.path_qs} {body}", headers={"X-Upstream": "yes"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1], seen
    finally:
        await runner.cleanup()


async def create(api: TestClient, path: str, obj: Obj) -> Obj:
    r = await api.post(path, json=obj)
    assert r.status == 201, await r.text()
    return dict(await r.json())


async def pod_with_ip(api: TestClient, name: str, ip: str, node: str = "") -> None:
    spec: Obj = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    await create(api, f"{NS}/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    r = await api.patch(f"{NS}/pods/{name}/status", json={"status": {"podIP": ip, "phase": "Running"}},
                        headers={"Content-Type": "application/merge-patch+json"})
    assert r.status == 200, await r.text()


def test_split_name_reads_scheme_name_and_port() -> None:
    assert split_name("web") == ("", "web", "")
    assert split_name("web:8080") == ("", "web", "8080")
    assert split_name("https:web:443") == ("https", "web", "443")
    assert split_name("http:web:") == ("http", "web", "")


async def test_a_pod_on_loopback_gets_method_path_query_and_body(api: TestClient,
                                                                 upstream: tuple[int, list[Obj]]) -> None:
    port, seen = upstream
    await pod_with_ip(api, "local", "127.0.0.1")
    r = await api.post(f"{NS}/pods/local:{port}/proxy/some/where?x=1&y=2", data=b"payload",
                       headers={"Authorization": "Bearer secret-of-the-api-server"})
    assert r.status == 201 and r.headers["X-Upstream"] == "yes"
    assert await r.text() == "POST /some/where?x=1&y=2 payload"
    assert seen[-1]["authorization"] is None        # the caller's credentials stay here


async def test_a_service_proxies_to_a_ready_endpoint_by_port_name_or_number(
        api: TestClient, upstream: tuple[int, list[Obj]]) -> None:
    port, _ = upstream
    await pod_with_ip(api, "backend", "127.0.0.1")
    await create(api, f"{NS}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
                                         "spec": {"ports": [{"name": "web", "port": 80, "targetPort": port}]}})
    await create(api, f"{NS}/endpoints", {
        "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "svc"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1", "targetRef": {"kind": "Pod", "name": "backend",
                                                                      "namespace": "default"}}],
                     "ports": [{"name": "web", "port": port}]}]})
    for name in ("svc:web", "svc:80", "svc"):
        r = await api.get(f"{NS}/services/{name}/proxy/index.html")
        assert (r.status, await r.text()) == (200, "GET /index.html "), name
    r = await api.get(f"{NS}/services/svc:81/proxy/")
    assert r.status == 503
    assert (await r.json())["message"] == 'no endpoints available for service "svc"'


async def test_addresses_outside_the_cluster_are_refused(api: TestClient) -> None:
    await create(api, f"{NS}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "outside"},
                                         "spec": {"ports": [{"port": 80}]}})
    await create(api, f"{NS}/endpoints", {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "outside"},
                                          "subsets": [{"addresses": [{"ip": "203.0.113.5"}], "ports": [{"port": 80}]}]})
    r = await api.get(f"{NS}/services/outside/proxy/")
    assert r.status == 400 and "address not allowed" in (await r.json())["message"]

    await create(api, "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                                        "spec": {"podCIDR": "10.244.0.0/24"}})
    await pod_with_ip(api, "liar", "203.0.113.7", node="n1")     # a status claiming an outside address
    r = await api.get(f"{NS}/pods/liar:80/proxy/")
    assert r.status == 400 and (await r.json())["message"] == "address not allowed: 203.0.113.7"


async def test_a_node_proxies_to_its_kubelet(api: TestClient, upstream: tuple[int, list[Obj]]) -> None:
    port, _ = upstream
    await create(api, "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "real"}})
    r = await api.patch("/api/v1/nodes/real/status", headers={"Content-Type": "application/merge-patch+json"},
                        json={"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                                         "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                                         "nodeInfo": {"containerRuntimeVersion": "runc://1.1"}}})
    assert r.status == 200, await r.text()
    r = await api.get("/api/v1/nodes/real/proxy/metrics/resource")
    assert (r.status, await r.text()) == (200, "GET /metrics/resource ")
    await create(api, "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "none"}})
    r = await api.get("/api/v1/nodes/none/proxy/healthz")
    assert r.status == 503 and (await r.json())["message"] == "node none has no kubelet to proxy to"


async def test_a_pod_without_an_ip_or_a_missing_one(api: TestClient) -> None:
    await create(api, f"{NS}/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pending"},
                                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    r = await api.get(f"{NS}/pods/pending/proxy/")
    assert r.status == 503 and (await r.json())["reason"] == "ServiceUnavailable"
    r = await api.get(f"{NS}/pods/nobody/proxy/")
    assert r.status == 404 and (await r.json())["message"] == 'pods "nobody" not found'
