"""ApiClient against the stub server: verbs, paging, watch, errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from apistub import StubApi
from skiff.api.errors import StatusError
from skiff.client.resources import DEPLOYMENTS, NODES, PODS, Resource, resource_path
from skiff.client.rest import ApiClient, TransportError, status_error_from_body


def pod(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def test_paths() -> None:
    assert resource_path(PODS) == "/api/v1/pods"
    assert resource_path(PODS, namespace="ns") == "/api/v1/namespaces/ns/pods"
    assert resource_path(PODS, namespace="ns", name="p", subresource="status") == \
        "/api/v1/namespaces/ns/pods/p/status"
    assert resource_path(NODES, namespace="ignored", name="n1") == "/api/v1/nodes/n1"
    assert resource_path(DEPLOYMENTS, namespace="d", name="web", subresource="scale") == \
        "/apis/apps/v1/namespaces/d/deployments/web/scale"
    with pytest.raises(ValueError):
        resource_path(PODS, subresource="status")


async def test_crud_round_trip(client: ApiClient) -> None:
    created = await client.create(PODS, pod("a", app="web"), namespace="default")
    assert created["metadata"]["uid"]
    got = await client.get(PODS, "a", namespace="default")
    assert got == created
    got["metadata"]["labels"]["tier"] = "front"
    updated = await client.update(PODS, got)  # namespace taken from the body
    assert updated["metadata"]["labels"] == {"app": "web", "tier": "front"}
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    patched = await client.patch(PODS, "a", {"metadata": {"labels": {"tier": None}}},
                                 namespace="default")
    assert patched["metadata"]["labels"] == {"app": "web"}
    status = await client.patch(PODS, "a", {"status": {"phase": "Running"}},
                                namespace="default", subresource="status")
    assert status["status"]["phase"] == "Running"
    await client.delete(PODS, "a", namespace="default", grace_period_seconds=0)
    with pytest.raises(StatusError) as err:
        await client.get(PODS, "a", namespace="default")
    assert err.value.code == 404 and err.value.reason == "NotFound"
    assert err.value.message == 'pods "a" not found' and err.value.name == "a"


async def test_server_status_becomes_status_error(client: ApiClient) -> None:
    await client.create(PODS, pod("dup"), namespace="default")
    with pytest.raises(StatusError) as err:
        await client.create(PODS, pod("dup"), namespace="default")
    assert (err.value.code, err.value.reason) == (409, "AlreadyExists")
    assert err.value.message == 'pods "dup" already exists'
    stale = await client.get(PODS, "dup", namespace="default")
    await client.patch(PODS, "dup", {"metadata": {"labels": {"x": "1"}}}, namespace="default")
    with pytest.raises(StatusError) as err:
        await client.update(PODS, stale)
    assert (err.value.code, err.value.reason) == (409, "Conflict")


def test_status_error_from_body_keeps_details() -> None:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
            "reason": "Invalid", "message": 'Pod "p" is invalid: spec.x: Required value',
            "details": {"name": "p", "kind": "Pod", "retryAfterSeconds": 3,
                        "causes": [{"reason": "FieldValueRequired", "message": "Required value",
                                    "field": "spec.x"}]}}
    err = status_error_from_body(422, body)
    assert (err.code, err.reason, err.name, err.kind, err.retry_after_seconds) == \
        (422, "Invalid", "p", "Pod", 3)
    assert err.causes[0].field == "spec.x"
    assert err.to_status()["details"]["causes"] == body["details"]["causes"]
    plain = status_error_from_body(503, "upstream down", "upstream down")
    assert (plain.code, plain.reason, plain.message) == (503, "ServiceUnavailable", "upstream down")


async def test_list_follows_continue_and_fills_kind(stub: tuple[StubApi, str],
                                                    client: ApiClient) -> None:
    for i in range(7):
        await client.create(PODS, pod(f"p{i}", app="web" if i % 2 else "db"), namespace="ns")
    listing = await client.list(PODS, namespace="ns", page_size=3)
    assert [p["metadata"]["name"] for p in listing.items] == [f"p{i}" for i in range(7)]
    assert all(p["kind"] == "Pod" and p["apiVersion"] == "v1" for p in listing.items)
    assert listing.resource_version == str(stub[0].rv)
    pages = [path for method, path in stub[0].requests if method == "GET" and "limit=3" in path]
    assert len(pages) == 3
    web = await client.list(PODS, label_selector="app=web")
    assert sorted(p["metadata"]["name"] for p in web.items) == ["p1", "p3", "p5"]


async def test_watch_streams_changes_after_resource_version(client: ApiClient) -> None:
    await client.create(PODS, pod("before"), namespace="default")
    listing = await client.list(PODS, namespace="default")
    await client.create(PODS, pod("after"), namespace="default")
    async with client.watch(PODS, namespace="default",
                            resource_version=listing.resource_version) as events:
        type_, obj = await events.__anext__()
        assert (type_, obj["metadata"]["name"]) == ("ADDED", "after")
        await client.patch(PODS, "after", {"metadata": {"labels": {"a": "b"}}}, namespace="default")
        type_, obj = await events.__anext__()
        assert type_ == "MODIFIED" and obj["metadata"]["labels"] == {"a": "b"}
        assert events.resource_version == obj["metadata"]["resourceVersion"]
        await client.delete(PODS, "after", namespace="default", grace_period_seconds=0)
        type_, obj = await events.__anext__()
        assert type_ == "DELETED"


async def test_watch_field_selector_and_bookmarks(stub: tuple[StubApi, str],
                                                  client: ApiClient) -> None:
    listing = await client.list(PODS)
    stream = client.watch(PODS, resource_version=listing.resource_version,
                          field_selector="spec.nodeName=n1", bookmarks=True)
    async with stream:
        other = pod("elsewhere")
        other["spec"]["nodeName"] = "n2"
        await client.create(PODS, other, namespace="default")
        mine = pod("here")
        mine["spec"]["nodeName"] = "n1"
        await client.create(PODS, mine, namespace="default")
        type_, obj = await stream.__anext__()
        assert obj["metadata"]["name"] == "here"
        stub[0].bookmark()
        type_, obj = await stream.__anext__()
        assert type_ == "BOOKMARK" and stream.resource_version == str(stub[0].rv)


async def test_watch_expired_raises_410(stub: tuple[StubApi, str], client: ApiClient) -> None:
    listing = await client.list(PODS)
    await client.create(PODS, pod("x"), namespace="default")
    stub[0].compact()
    with pytest.raises(StatusError) as err:
        async for _ in client.watch(PODS, resource_version=listing.resource_version):
            pass
    assert (err.value.code, err.value.reason) == (410, "Expired")


async def test_watch_ends_when_server_closes(stub: tuple[StubApi, str], client: ApiClient) -> None:
    listing = await client.list(PODS)
    seen = []
    async with client.watch(PODS, resource_version=listing.resource_version) as events:
        await client.create(PODS, pod("one"), namespace="default")
        async for type_, obj in events:
            seen.append(obj["metadata"]["name"])
            stub[0].break_watches()
    assert seen == ["one"]


async def test_unreachable_server_is_a_transport_error() -> None:
    async with ApiClient("http://127.0.0.1:9", timeout=2.0) as api:
        with pytest.raises(TransportError):
            await api.get(PODS, "x", namespace="default")
        with pytest.raises(TransportError):
            async for _ in api.watch(PODS):
                pass


async def test_closed_client_refuses_requests(client: ApiClient) -> None:
    await client.close()
    with pytest.raises(TransportError):
        await client.list(Resource("", "v1", "pods"))


def _kubeconfig(tmp_path: Path, server: str, **user: str) -> Path:
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
           "clusters": [{"name": "k", "cluster": {"server": server}}],
           "users": [{"name": "u", "user": user}],
           "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "team"}}]}
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    return path


async def test_from_kubeconfig_sends_bearer_token(tmp_path: Path, stub: tuple[StubApi, str]) -> None:
    path = _kubeconfig(tmp_path, stub[1], token="s3cret")
    async with ApiClient.from_kubeconfig(path) as api:
        assert api.namespace == "team"
        await api.list(PODS)
    assert stub[0].authorization[-1] == "Bearer s3cret"


async def test_a_connection_idle_past_aiohttps_default_is_still_reused() -> None:
    """aiohttp closes an idle client connection after 15 s; the client keeps it minutes
    (KEEPALIVE_SECONDS), so the scheduler's and node agent's first requests after a quiet
    spell do not each start with a new connection (over TLS: a handshake on both sides)."""
    from aiohttp import web

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"port": request.transport.get_extra_info("peername")[1]})

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    client = ApiClient(f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        first = await client.request("GET", "/whoami")
        await asyncio.sleep(16)        # what is tested is a quiet spell: nothing to await
        second = await client.request("GET", "/whoami")
        assert second["port"] == first["port"]
    finally:
        await client.close()
        await runner.cleanup()


def test_idle_connections_are_kept_for_minutes_and_the_server_keeps_them_longer() -> None:
    # A client reusing a connection the server has just closed gets "Server disconnected"
    # instead of its answer: the server's idle limit must outlast the client's.
    from skiff.apiserver.server import IDLE_CONNECTION_SECONDS
    from skiff.client.rest import KEEPALIVE_SECONDS
    assert 60 < KEEPALIVE_SECONDS < IDLE_CONNECTION_SECONDS
