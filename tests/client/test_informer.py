"""The informer against the stub server: sync, events, resume, re-list, back-off, stop."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

import pytest

from apistub import StubApi
from skiff.client.clock import FakeClock
from skiff.client.informer import Informer, object_key, split_key
from skiff.client.resources import NODES, PODS
from skiff.client.rest import ApiClient

Obj = dict[str, Any]


def pod(name: str, node: str = "", ns: str = "default") -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}}


class Recorder:
    """Handlers that put ("add"|"update"|"delete", key) on a queue tests can await."""

    def __init__(self, informer: Informer) -> None:
        self.events: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        informer.add_handler(
            on_add=lambda o: self.events.put_nowait(("add", object_key(o))),
            on_update=lambda old, new: self.events.put_nowait(("update", object_key(new))),
            on_delete=lambda o: self.events.put_nowait(("delete", object_key(o))))

    async def next(self) -> tuple[str, str]:
        return await asyncio.wait_for(self.events.get(), 5)

    async def take(self, n: int) -> set[tuple[str, str]]:
        return {await self.next() for _ in range(n)}


@pytest.fixture
async def running(client: ApiClient) -> AsyncIterator[tuple[Informer, Recorder, FakeClock]]:
    clock = FakeClock()
    informer = Informer(client, PODS, clock=clock, page_size=2)
    recorder = Recorder(informer)
    task = asyncio.create_task(informer.run())
    try:
        yield informer, recorder, clock
    finally:
        informer.stop()
        await asyncio.wait_for(task, 5)


def test_keys() -> None:
    assert object_key(pod("a", ns="x")) == "x/a"
    assert object_key({"metadata": {"name": "node-1"}}) == "node-1"
    assert split_key("x/a") == ("x", "a") and split_key("node-1") == ("", "node-1")


async def test_initial_list_fills_cache_then_watch_delivers_changes(
        client: ApiClient, stub: tuple[StubApi, str]) -> None:
    for i in range(5):
        await client.create(PODS, pod(f"p{i}"), namespace="default")
    informer = Informer(client, PODS, clock=FakeClock(), page_size=2)
    rec = Recorder(informer)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(informer.wait_synced(), 5)
        assert informer.synced and len(informer) == 5
        assert await rec.take(5) == {("add", f"default/p{i}") for i in range(5)}
        assert informer.get("default/p3")["metadata"]["name"] == "p3"  # type: ignore[index]

        await stub[0].watch_opened.wait()
        await client.create(PODS, pod("new"), namespace="default")
        assert await rec.next() == ("add", "default/new")
        await client.patch(PODS, "p0", {"metadata": {"labels": {"x": "y"}}}, namespace="default")
        assert await rec.next() == ("update", "default/p0")
        assert informer.get_by("default", "p0")["metadata"]["labels"] == {"x": "y"}  # type: ignore[index]
        await client.delete(PODS, "p1", namespace="default", grace_period_seconds=0)
        assert await rec.next() == ("delete", "default/p1")
        assert informer.get("default/p1") is None
        assert informer.resource_version == str(stub[0].rv)
        assert informer.list_count == 1
    finally:
        informer.stop()
        await asyncio.wait_for(task, 5)


async def test_late_handler_gets_existing_objects(client: ApiClient,
                                                  running: tuple[Informer, Recorder, FakeClock]) -> None:
    informer, rec, _ = running
    await client.create(PODS, pod("a"), namespace="default")
    assert await rec.next() == ("add", "default/a")
    late: list[str] = []
    informer.add_handler(on_add=lambda o: late.append(object_key(o)))
    assert late == ["default/a"]


async def test_broken_watch_resumes_from_last_resource_version_without_relist(
        client: ApiClient, stub: tuple[StubApi, str],
        running: tuple[Informer, Recorder, FakeClock]) -> None:
    informer, rec, _ = running
    await client.create(PODS, pod("a"), namespace="default")
    assert await rec.next() == ("add", "default/a")
    stub[0].drop_events = True  # changes made while "disconnected" ...
    await client.create(PODS, pod("missed"), namespace="default")
    stub[0].drop_events = False
    stub[0].watch_opened.clear()
    stub[0].break_watches()
    assert await rec.next() == ("add", "default/missed")  # ... are replayed from the RV
    assert informer.list_count == 1


async def test_expired_watch_relists_and_reports_the_difference(
        client: ApiClient, stub: tuple[StubApi, str],
        running: tuple[Informer, Recorder, FakeClock]) -> None:
    informer, rec, _ = running
    for name in ("keep", "change", "vanish"):
        await client.create(PODS, pod(name), namespace="default")
    assert await rec.take(3) == {("add", "default/keep"), ("add", "default/change"),
                                 ("add", "default/vanish")}
    stub[0].drop_events = True
    await client.delete(PODS, "vanish", namespace="default", grace_period_seconds=0)
    await client.patch(PODS, "change", {"metadata": {"labels": {"v": "2"}}}, namespace="default")
    await client.create(PODS, pod("appear"), namespace="default")
    stub[0].compact()  # the informer's RV is now too old: the re-watch gets 410
    stub[0].drop_events = False
    stub[0].break_watches()
    assert await rec.take(3) == {("delete", "default/vanish"), ("update", "default/change"),
                                 ("add", "default/appear")}
    await asyncio.wait_for(informer.wait_for_lists(2), 5)
    assert sorted(informer.keys()) == ["default/appear", "default/change", "default/keep"]
    assert rec.events.empty()  # "keep" did not change, so no spurious update


async def test_failed_list_is_retried_after_back_off(client: ApiClient,
                                                     stub: tuple[StubApi, str]) -> None:
    stub[0].fail_lists = 2
    clock = FakeClock()
    informer = Informer(client, NODES, clock=clock, min_backoff=1.0)
    task = asyncio.create_task(informer.run())
    try:
        await asyncio.wait_for(clock.wait_for_sleepers(1), 5)
        assert clock.next_deadline() == clock.monotonic() + 1.0
        clock.advance(1.0)
        await asyncio.wait_for(clock.wait_for_sleepers(1), 5)
        assert clock.next_deadline() == clock.monotonic() + 2.0  # doubled
        assert not informer.synced
        clock.advance(2.0)
        await asyncio.wait_for(informer.wait_synced(), 5)
        assert stub[0].fail_lists == 0
    finally:
        informer.stop()
        await asyncio.wait_for(task, 5)


async def test_bookmarks_advance_the_resource_version(
        client: ApiClient, stub: tuple[StubApi, str],
        running: tuple[Informer, Recorder, FakeClock]) -> None:
    informer, rec, _ = running
    await stub[0].watch_opened.wait()
    await client.create(NODES, {"metadata": {"name": "n"}})  # another resource moves the RV
    stub[0].bookmark()
    stub[0].watch_opened.clear()
    stub[0].break_watches()
    await stub[0].watch_opened.wait()  # re-watched, from the bookmark's RV
    last_watch = [p for m, p in stub[0].requests if "watch=true" in p][-1]
    assert f"resourceVersion={stub[0].rv}" in last_watch
    assert informer.resource_version == str(stub[0].rv)


async def test_index_and_transform(client: ApiClient) -> None:
    def slim(obj: Obj) -> Obj:
        return {"metadata": obj["metadata"], "spec": {"nodeName": obj["spec"].get("nodeName", "")}}

    informer = Informer(client, PODS, clock=FakeClock(), transform=slim)
    informer.add_index("node", lambda o: [o["spec"]["nodeName"]] if o["spec"]["nodeName"] else [])
    rec = Recorder(informer)
    await client.create(PODS, pod("a", node="n1"), namespace="default")
    await client.create(PODS, pod("b", node="n2"), namespace="default")
    task = asyncio.create_task(informer.run())
    try:
        await rec.take(2)
        assert [o["metadata"]["name"] for o in informer.by_index("node", "n1")] == ["a"]
        assert "containers" not in informer.get("default/a")["spec"]  # type: ignore[index]
        await client.patch(PODS, "b", {"spec": {"nodeName": "n1"}}, namespace="default")
        assert await rec.next() == ("update", "default/b")
        assert sorted(o["metadata"]["name"] for o in informer.by_index("node", "n1")) == ["a", "b"]
        assert informer.by_index("node", "n2") == []
    finally:
        informer.stop()
        await asyncio.wait_for(task, 5)


async def test_handler_errors_do_not_stop_the_informer(client: ApiClient) -> None:
    informer = Informer(client, PODS, clock=FakeClock())
    informer.add_handler(on_add=lambda o: 1 / 0)  # type: ignore[func-returns-value]
    rec = Recorder(informer)
    task = asyncio.create_task(informer.run())
    try:
        await client.create(PODS, pod("a"), namespace="default")
        assert await rec.next() == ("add", "default/a")
        await client.create(PODS, pod("b"), namespace="default")
        assert await rec.next() == ("add", "default/b")
    finally:
        informer.stop()
        await asyncio.wait_for(task, 5)


async def test_factory_shares_one_informer_per_resource(client: ApiClient,
                                                        stub: tuple[StubApi, str]) -> None:
    from skiff.client.factory import InformerFactory

    factory = InformerFactory(client, clock=FakeClock())
    pods = factory.informer(PODS)
    assert factory.informer(PODS) is pods
    assert factory.informer(PODS, namespace="x") is not pods
    task = asyncio.create_task(factory.run())
    try:
        await asyncio.wait_for(factory.wait_synced(), 5)
        nodes = factory.informer(NODES)  # created while running: started too
        await asyncio.wait_for(nodes.wait_synced(), 5)
        lists = [p for m, p in stub[0].requests if m == "GET" and p.startswith("/api/v1/pods?")
                 and "watch=true" not in p]
        assert len(lists) == 1  # one list for everyone asking for all pods
    finally:
        factory.stop()
        await asyncio.wait_for(task, 5)
