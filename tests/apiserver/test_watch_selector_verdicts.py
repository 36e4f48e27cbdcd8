"""Selector watches reuse how an object's previous state matched instead of decoding it again.

A MODIFIED event seen through a selector needs to know whether the state before
the change was selected (to send ADDED / DELETED when the object moves in or
out).  The watch cache hands each event the verdicts its key's previous event got,
so the previous state is decoded only when the cache never checked it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from apiserver_kinds import cm
from skiff.apiserver import watchcache
from skiff.apiserver.app import CONTEXT

CMS = "/api/v1/namespaces/default/configmaps"
WEB = "labelSelector=app%3Dweb"


async def next_event(r: ClientResponse) -> dict[str, Any]:
    line = await asyncio.wait_for(r.content.readline(), 5)
    return json.loads(line)


def labelled(app: str, **data: str) -> dict[str, Any]:
    obj = cm("a", **data)
    obj["metadata"]["labels"] = {"app": app}
    return obj


@pytest.fixture
def decoded_before(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Revisions of the events whose previous state was asked for."""
    asked: list[int] = []
    original = watchcache.CacheEvent.prev

    def prev(self: watchcache.CacheEvent) -> Any:
        asked.append(self.revision)
        return original(self)

    monkeypatch.setattr(watchcache.CacheEvent, "prev", prev)
    return asked


async def test_moves_in_and_out_of_a_selection(client: TestClient, decoded_before: list[int]) -> None:
    created = await (await client.post(CMS, json=labelled("web"))).json()
    rv = created["metadata"]["resourceVersion"]
    async with client.get(f"{CMS}?watch=true&{WEB}&resourceVersion={rv}") as r:
        writes = [labelled("db", v="1"), labelled("web", v="2"), labelled("web", v="3"), labelled("db", v="4")]
        seen = []
        for body in writes:
            await client.put(f"{CMS}/a", json=body)
            seen.append(await next_event(r))
        assert [e["type"] for e in seen] == ["DELETED", "ADDED", "MODIFIED", "DELETED"]
        assert [e["object"]["metadata"]["labels"]["app"] for e in seen] == ["web", "web", "web", "web"]
        assert [e["object"]["data"] for e in seen] == [{}, {"v": "2"}, {"v": "3"}, {"v": "3"}]
        first, last = (int(e["object"]["metadata"]["resourceVersion"]) for e in (seen[0], seen[-1]))
        # the first change's previous state (the create) was never checked: decoded once;
        # the others were known, and the last DELETED needed the old object itself
        assert sorted(set(decoded_before)) == [first, last]


async def test_replay_agrees_with_the_live_stream(client: TestClient) -> None:
    start = (await (await client.get(CMS)).json())["metadata"]["resourceVersion"]
    url = f"{CMS}?watch=true&{WEB}&resourceVersion={start}"
    async with client.get(url) as live:
        await client.post(CMS, json=labelled("web"))
        for i, app in enumerate(["db", "web", "web", "db", "web"]):
            await client.put(f"{CMS}/a", json=labelled(app, v=str(i)))
        await client.delete(f"{CMS}/a")
        live_events = [await next_event(live) for _ in range(7)]
        assert [e["type"] for e in live_events] == ["ADDED", "DELETED", "ADDED", "MODIFIED", "DELETED",
                                                    "ADDED", "DELETED"]
    async with client.get(url) as replayed:  # from the window, verdicts known by now
        assert [await next_event(replayed) for _ in range(7)] == live_events
    both = "labelSelector=app+in+%28web%2Cdb%29"  # another selection keeps verdicts of its own
    async with client.get(f"{CMS}?watch=true&{both}&resourceVersion={start}") as other:
        kinds = [(await next_event(other))["type"] for _ in range(7)]
        assert kinds == ["ADDED"] + ["MODIFIED"] * 5 + ["DELETED"]


async def test_verdicts_are_kept_for_the_window_only(make_client: Any) -> None:
    client = await make_client(watch_window=3)
    cache = client.app[CONTEXT].watch_cache
    start = (await (await client.get(CMS)).json())["metadata"]["resourceVersion"]
    async with client.get(f"{CMS}?watch=true&{WEB}&resourceVersion={start}") as r:
        for i in range(6):
            body = labelled("web")
            body["metadata"]["name"] = f"c{i}"
            await client.post(CMS, json=body)
            assert (await next_event(r))["object"]["metadata"]["name"] == f"c{i}"
        await client.delete(f"{CMS}/c5")
        assert (await next_event(r))["type"] == "DELETED"
    # the window holds c4's creation and c5's creation and deletion: only c4 is remembered
    assert list(cache._latest) == ["/registry/core/configmaps/default/c4"]
