"""The client and the informer against skiff's real API server (in-process, sqlite, loopback)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp import web

from skiff.api.errors import StatusError
from skiff.apiserver.app import make_app
from skiff.client.clock import FakeClock
from skiff.client.informer import Informer, object_key
from skiff.client.resources import CONFIGMAPS, DEPLOYMENTS, NAMESPACES
from skiff.client.rest import ApiClient
from skiff.storage.sqlite import SqliteBackend

Obj = dict[str, Any]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[SqliteBackend, ApiClient]]:
    backend = SqliteBackend(str(tmp_path / "db"))
    await backend.start()
    # A one-event watch window makes watches from old revisions go to the store,
    # so compacting the store really expires them.
    runner = web.AppRunner(make_app(backend, watch_window=1), handle_signals=False,
                           shutdown_timeout=0.1)
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        api = ApiClient(f"http://127.0.0.1:{runner.addresses[0][1]}")
        try:
            yield backend, api
        finally:
            await api.close()
    finally:
        await runner.cleanup()
        await backend.close()


def configmap(name: str, **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def test_crud_and_kubernetes_errors(server: tuple[SqliteBackend, ApiClient]) -> None:
    _, api = server
    created = await api.create(CONFIGMAPS, configmap("c", a="1"), namespace="default")
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    with pytest.raises(StatusError) as err:
        await api.create(CONFIGMAPS, configmap("c"), namespace="default")
    assert (err.value.code, err.value.reason, err.value.message) == \
        (409, "AlreadyExists", 'configmaps "c" already exists')
    stale = dict(created)
    await api.patch(CONFIGMAPS, "c", {"data": {"a": "2"}}, namespace="default")
    with pytest.raises(StatusError) as err:
        await api.update(CONFIGMAPS, dict(stale, data={"a": "3"}))
    assert (err.value.code, err.value.reason) == (409, "Conflict")
    fresh = await api.get(CONFIGMAPS, "c", namespace="default")
    fresh["data"]["a"] = "3"
    assert (await api.update(CONFIGMAPS, fresh))["data"] == {"a": "3"}
    patched = await api.patch(CONFIGMAPS, "c", [{"op": "add", "path": "/data/b", "value": "4"}],
                              namespace="default", patch_type="json")
    assert patched["data"] == {"a": "3", "b": "4"}
    with pytest.raises(StatusError) as err:
        await api.create(DEPLOYMENTS, {"apiVersion": "apps/v1", "kind": "Deployment",
                                       "metadata": {"name": "bad"}, "spec": {}}, namespace="default")
    assert (err.value.code, err.value.reason) == (422, "Invalid") and err.value.causes
    await api.delete(CONFIGMAPS, "c", namespace="default")
    with pytest.raises(StatusError) as err:
        await api.get(CONFIGMAPS, "c", namespace="default")
    assert (err.value.code, err.value.message) == (404, 'configmaps "c" not found')


async def test_list_pages_and_watch(server: tuple[SqliteBackend, ApiClient]) -> None:
    _, api = server
    for i in range(7):
        await api.create(CONFIGMAPS, configmap(f"c{i}"), namespace="default")
    listing = await api.list(CONFIGMAPS, namespace="default", page_size=2)
    names = sorted(c["metadata"]["name"] for c in listing.items if c["metadata"]["name"].startswith("c"))
    assert names == [f"c{i}" for i in range(7)]
    assert all(c["kind"] == "ConfigMap" for c in listing.items)
    namespaces = await api.list(NAMESPACES)
    assert {"default", "kube-system"} <= {n["metadata"]["name"] for n in namespaces.items}
    async with api.watch(CONFIGMAPS, namespace="default",
                         resource_version=listing.resource_version) as events:
        await api.patch(CONFIGMAPS, "c3", {"data": {"x": "y"}}, namespace="default")
        type_, obj = await asyncio.wait_for(events.__anext__(), 5)
        assert (type_, obj["metadata"]["name"], obj["data"]) == ("MODIFIED", "c3", {"x": "y"})
        await api.delete(CONFIGMAPS, "c3", namespace="default")
        type_, obj = await asyncio.wait_for(events.__anext__(), 5)
        assert (type_, obj["metadata"]["name"]) == ("DELETED", "c3")


async def test_watch_from_compacted_revision_is_expired(server: tuple[SqliteBackend, ApiClient]) -> None:
    backend, api = server
    listing = await api.list(CONFIGMAPS, namespace="default")
    for i in range(3):
        await api.create(CONFIGMAPS, configmap(f"c{i}"), namespace="default")
    await backend.compact(backend.revision)
    with pytest.raises(StatusError) as err:
        async for _ in api.watch(CONFIGMAPS, namespace="default",
                                 resource_version=listing.resource_version):
            pass
    assert (err.value.code, err.value.reason) == (410, "Expired")


async def test_informer_relists_after_its_watch_expires(server: tuple[SqliteBackend, ApiClient]) -> None:
    backend, api = server
    informer = Informer(api, CONFIGMAPS, namespace="default", clock=FakeClock(), watch_timeout=1.0)
    seen: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    informer.add_handler(on_add=lambda o: seen.put_nowait(("add", object_key(o))),
                         on_delete=lambda o: seen.put_nowait(("delete", object_key(o))))
    await api.create(CONFIGMAPS, configmap("before"), namespace="default")
    task = asyncio.create_task(informer.run())
    try:
        assert await asyncio.wait_for(seen.get(), 5) == ("add", "default/before")
        # Move the store on without this informer noticing, then forget the history:
        # when its 1 s watch ends, watching again from its old revision gets 410.
        await api.create(CONFIGMAPS, configmap("other"), namespace="kube-system")
        await backend.compact(backend.revision)
        await asyncio.wait_for(informer.wait_for_lists(2), 10)
        await api.create(CONFIGMAPS, configmap("after"), namespace="default")
        assert await asyncio.wait_for(seen.get(), 5) == ("add", "default/after")
        assert sorted(informer.keys()) == ["default/after", "default/before"]
    finally:
        informer.stop()
        await asyncio.wait_for(task, 5)
