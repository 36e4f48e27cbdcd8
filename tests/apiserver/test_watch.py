"""WATCH: replay from a list's resourceVersion, initial state, selectors, bookmarks, 410, Tables."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from apiserver_kinds import cm
from skiff.apiserver.app import CONTEXT

CMS = "/api/v1/namespaces/default/configmaps"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def next_event(r: ClientResponse, timeout: float = 5.0) -> dict[str, Any]:
    line = await asyncio.wait_for(r.content.readline(), timeout)
    assert line.endswith(b"\n"), line
    return json.loads(line)


def summary(ev: dict[str, Any]) -> tuple[str, str]:
    return ev["type"], ev["object"]["metadata"].get("name", "")


async def test_watch_replays_every_change_since_list(client: TestClient) -> None:
    await client.post(CMS, json=cm("a", v="1"))
    listed = await (await client.get(CMS)).json()
    rv = listed["metadata"]["resourceVersion"]
    await client.post(CMS, json=cm("b"))
    await client.put(f"{CMS}/a", json=cm("a", v="2"))
    await client.delete(f"{CMS}/a")
    async with client.get(f"{CMS}?watch=true&resourceVersion={rv}") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("application/json")
        events = [await next_event(r) for _ in range(3)]
        assert [summary(e) for e in events] == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "a")]
        assert events[1]["object"]["data"] == {"v": "2"}
        revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert revisions == sorted(revisions) and revisions[0] > int(rv)
        await client.post(CMS, json=cm("c"))  # then live events
        assert summary(await next_event(r)) == ("ADDED", "c")


async def test_watch_without_version_starts_with_current_state(client: TestClient) -> None:
    await client.post(CMS, json=cm("a"))
    await client.post(CMS, json=cm("b"))
    async with client.get(f"{CMS}?watch=1") as r:
        first = [summary(await next_event(r)) for _ in range(2)]
        assert first == [("ADDED", "a"), ("ADDED", "b")]
        await client.delete(f"{CMS}/b")
        assert summary(await next_event(r)) == ("DELETED", "b")


async def test_watch_from_compacted_version_is_410(client: TestClient) -> None:
    created = await (await client.post(CMS, json=cm("a"))).json()
    await client.put(f"{CMS}/a", json=cm("a", v="2"))
    await client.put(f"{CMS}/a", json=cm("a", v="3"))
    backend = client.app[CONTEXT].backend
    await backend.compact(backend.revision - 1)
    async with client.get(f"{CMS}?watch=true&resourceVersion={created['metadata']['resourceVersion']}") as r:
        assert r.status == 200
        ev = await next_event(r)
        assert ev["type"] == "ERROR"
        assert ev["object"]["code"] == 410 and ev["object"]["reason"] == "Expired"
        assert await r.content.read() == b""  # stream ended


async def test_selector_transitions_become_added_and_deleted(client: TestClient) -> None:
    listed = await (await client.get(CMS)).json()
    rv = listed["metadata"]["resourceVersion"]
    labelled = cm("a")
    labelled["metadata"]["labels"] = {"app": "web"}
    await client.post(CMS, json=cm("other"))
    await client.post(CMS, json=labelled)
    unlabelled = cm("a", v="x")
    await client.put(f"{CMS}/a", json=unlabelled)
    relabelled = cm("a", v="y")
    relabelled["metadata"]["labels"] = {"app": "web"}
    await client.put(f"{CMS}/a", json=relabelled)
    async with client.get(f"{CMS}?watch=true&labelSelector=app%3Dweb&resourceVersion={rv}") as r:
        events = [await next_event(r) for _ in range(3)]
        assert [summary(e) for e in events] == [("ADDED", "a"), ("DELETED", "a"), ("ADDED", "a")]
        # the DELETED event carries the last state that matched, at the event's revision
        assert events[1]["object"]["metadata"]["labels"] == {"app": "web"}
        assert int(events[1]["object"]["metadata"]["resourceVersion"]) > int(events[0]["object"]["metadata"]["resourceVersion"])


async def test_bookmarks_and_timeout(make_client: Any) -> None:
    client = await make_client(bookmark_interval=0.05)
    await client.post(CMS, json=cm("a"))
    head = client.app[CONTEXT].backend.revision
    async with client.get(f"{CMS}?watch=true&resourceVersion={head}&allowWatchBookmarks=true"
                          "&timeoutSeconds=1") as r:
        ev = await next_event(r)
        assert ev["type"] == "BOOKMARK"
        assert ev["object"]["kind"] == "ConfigMap" and ev["object"]["apiVersion"] == "v1"
        assert int(ev["object"]["metadata"]["resourceVersion"]) >= head
        rest = await asyncio.wait_for(r.content.read(), 5)  # ends at timeoutSeconds
        assert all(json.loads(line)["type"] == "BOOKMARK" for line in rest.splitlines())


async def test_replay_older_than_the_window_comes_from_the_store(make_client: Any) -> None:
    client = await make_client(watch_window=3)
    rv = (await (await client.get(CMS)).json())["metadata"]["resourceVersion"]
    for i in range(8):
        await client.post(CMS, json=cm(f"x{i}"))
    async with client.get(f"{CMS}?watch=true&resourceVersion={rv}") as r:
        names = [summary(await next_event(r))[1] for _ in range(8)]
        assert names == [f"x{i}" for i in range(8)]


async def test_table_watch_and_single_object_watch(client: TestClient) -> None:
    await client.post(CMS, json=cm("a", k="v"))
    async with client.get(f"{CMS}?watch=true", headers={"Accept": TABLE}) as r:
        first = await next_event(r)
        assert first["type"] == "ADDED" and first["object"]["kind"] == "Table"
        assert [c["name"] for c in first["object"]["columnDefinitions"]] == ["Name", "Data"]
        assert first["object"]["rows"][0]["cells"] == ["a", 1]
        assert first["object"]["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
        await client.post(CMS, json=cm("b"))
        second = await next_event(r)
        assert "columnDefinitions" not in second["object"]
        assert second["object"]["rows"][0]["cells"] == ["b", 0]
    async with client.get("/api/v1/watch/namespaces/default/configmaps/a") as r:
        assert summary(await next_event(r)) == ("ADDED", "a")
        await client.post(CMS, json=cm("c"))
        await client.put(f"{CMS}/a", json=cm("a", k="w"))
        assert summary(await next_event(r)) == ("MODIFIED", "a")  # c was filtered out


async def test_one_event_reaches_many_watchers(client: TestClient) -> None:
    rv = (await (await client.get(CMS)).json())["metadata"]["resourceVersion"]
    internal = client.app[CONTEXT].watch_cache.watchers  # the server's own (CustomResourceDefinitions)
    streams = [await client.get(f"{CMS}?watch=true&resourceVersion={rv}") for _ in range(50)]
    try:
        await client.post(CMS, json=cm("fan"))
        events = await asyncio.gather(*(next_event(s) for s in streams))
        assert {summary(e) for e in events} == {("ADDED", "fan")}
        assert client.app[CONTEXT].watch_cache.watchers == internal + 50
    finally:
        for s in streams:
            s.close()


async def test_server_shutdown_ends_open_watches(client: TestClient) -> None:
    rv = (await (await client.get(CMS)).json())["metadata"]["resourceVersion"]
    cache = client.app[CONTEXT].watch_cache
    internal = cache.watchers  # the server's own (CustomResourceDefinitions)
    r = await client.get(f"{CMS}?watch=true&resourceVersion={rv}")
    assert cache.watchers == internal + 1
    await cache.stop()  # what the app's on_shutdown hook does
    assert await asyncio.wait_for(r.content.read(), 5) == b""  # the stream ended cleanly
    r.close()
