"""The backend contract (skiff.storage.interface), run against every backend kind.

Each test gets a fresh, started backend (see conftest.py).  Watches are read
with a timeout so a missing event fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from skiff.storage.interface import (
    Compacted,
    Event,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    KeyValue,
    RevisionMismatch,
    Watch,
)

DEPLOY = "/registry/apps/deployments/"
PODS = "/registry/pods/"


async def next_event(watch: Watch) -> Event:
    return await asyncio.wait_for(watch.__aiter__().__anext__(), timeout=5)


async def take(watch: Watch, count: int) -> list[Event]:
    return [await next_event(watch) for _ in range(count)]


def summary(events: list[Event]) -> list[tuple[str, str, bytes, int]]:
    return [(e.type, e.kv.key, e.kv.value, e.revision) for e in events]


# ---------------------------------------------------------------- basic CRUD


async def test_create_then_get(backend: Any) -> None:
    assert backend.revision == 0
    kv = await backend.create(DEPLOY + "default/web", b'{"a":1}')
    assert kv == KeyValue(DEPLOY + "default/web", b'{"a":1}', 1, 1)
    assert await backend.get(DEPLOY + "default/web") == kv
    assert await backend.get(DEPLOY + "default/other") is None
    assert backend.revision == 1


async def test_create_of_live_key_raises_key_exists(backend: Any) -> None:
    await backend.create(DEPLOY + "default/web", b"1")
    with pytest.raises(KeyExists) as caught:
        await backend.create(DEPLOY + "default/web", b"2")
    assert caught.value.key == DEPLOY + "default/web"
    assert (await backend.get(DEPLOY + "default/web")).value == b"1"


async def test_update_is_compare_and_swap_on_mod_revision(backend: Any) -> None:
    key = DEPLOY + "default/web"
    created = await backend.create(key, b"v1")
    await backend.create(DEPLOY + "default/other", b"x")  # moves the global revision only
    updated = await backend.update(key, b"v2", expected_mod_revision=created.mod_revision)
    assert updated == KeyValue(key, b"v2", create_revision=1, mod_revision=3)

    with pytest.raises(RevisionMismatch) as caught:
        await backend.update(key, b"stale", expected_mod_revision=created.mod_revision)
    assert caught.value.current == updated
    assert (await backend.get(key)).value == b"v2"

    forced = await backend.update(key, b"v3", expected_mod_revision=0)
    assert (forced.value, forced.mod_revision) == (b"v3", 4)

    with pytest.raises(KeyNotFound):
        await backend.update(DEPLOY + "default/missing", b"x", expected_mod_revision=0)


async def test_delete_returns_deleted_value_at_delete_revision(backend: Any) -> None:
    key = DEPLOY + "default/web"
    created = await backend.create(key, b"v1")
    updated = await backend.update(key, b"v2", expected_mod_revision=created.mod_revision)

    with pytest.raises(RevisionMismatch):
        await backend.delete(key, expected_mod_revision=created.mod_revision)
    deleted = await backend.delete(key, expected_mod_revision=updated.mod_revision)
    assert deleted == KeyValue(key, b"v2", create_revision=1, mod_revision=3)
    assert await backend.get(key) is None

    with pytest.raises(KeyNotFound):
        await backend.delete(key)
    recreated = await backend.create(key, b"v3")
    assert (recreated.create_revision, recreated.mod_revision) == (4, 4)


async def test_every_write_advances_revision_by_exactly_one(backend: Any) -> None:
    seen = []
    kv = await backend.create(PODS + "a/p", b"1")
    seen.append(kv.mod_revision)
    for value in (b"2", b"3"):
        kv = await backend.update(kv.key, value, expected_mod_revision=kv.mod_revision)
        seen.append(kv.mod_revision)
    with pytest.raises(KeyExists):
        await backend.create(PODS + "a/p", b"again")
    with pytest.raises(RevisionMismatch):
        await backend.update(kv.key, b"x", expected_mod_revision=1)
    seen.append((await backend.delete(kv.key)).mod_revision)
    seen.append((await backend.create(PODS + "a/q", b"1")).mod_revision)
    assert seen == [1, 2, 3, 4, 5]
    assert backend.revision == 5


# ---------------------------------------------------------------- range


async def test_range_prefix_matches_exactly(backend: Any) -> None:
    keys = [
        "/registry/apps/deployments",
        DEPLOY + "default/web",
        DEPLOY + "kube-system/dns",
        "/registry/apps/deploymentsX/default/web",
        "/registry/apps/deployments0",
        "/registry/apps/deployment",
    ]
    for key in keys:
        await backend.create(key, b"v")
    got = await backend.range(DEPLOY)
    assert [kv.key for kv in got.kvs] == [DEPLOY + "default/web", DEPLOY + "kube-system/dns"]
    assert (got.count, got.more, got.revision) == (2, False, len(keys))

    no_slash = await backend.range("/registry/apps/deployments")
    assert [kv.key for kv in no_slash.kvs] == sorted(k for k in keys if k.startswith("/registry/apps/deployments"))
    assert [kv.key for kv in (await backend.range("")).kvs] == sorted(keys)
    assert (await backend.range(DEPLOY + "default/web/")).kvs == []


async def test_range_prefix_ending_in_extreme_code_points(backend: Any) -> None:
    top = "\U0010ffff"  # the last code point: the bound must carry into the previous character
    below_surrogates = "\ud7ff"  # the next storable code point is U+E000
    keys = ["/a" + top, "/a" + top + "x", "/a" + top + top, "/b", "/a\ue000", "/a" + below_surrogates + "x"]
    for key in keys:
        await backend.create(key, b"v")
    for prefix in ("/a" + top, "/a" + below_surrogates, top):
        got = await backend.range(prefix)
        assert [kv.key for kv in got.kvs] == sorted(k for k in keys if k.startswith(prefix)), prefix


async def test_range_pages_with_limit_start_after_and_count(backend: Any) -> None:
    names = [f"pod-{i:02d}" for i in range(10)]
    for name in names:
        await backend.create(PODS + "default/" + name, name.encode())
    await backend.create("/registry/pods0", b"outside")
    await backend.create("/registry/podsX/default/x", b"outside")

    first = await backend.range(PODS, limit=4)
    assert [kv.value.decode() for kv in first.kvs] == names[:4]
    assert (first.more, first.count, first.revision) == (True, 10, 12)

    # Writes between pages must not show up in later pages read at the first page's revision.
    await backend.create(PODS + "default/pod-05a", b"new")
    await backend.delete(PODS + "default/pod-06")
    await backend.update(PODS + "default/pod-07", b"changed", expected_mod_revision=0)

    pages = [first]
    while pages[-1].more:
        pages.append(
            await backend.range(PODS, revision=first.revision, start_after=pages[-1].kvs[-1].key, limit=4)
        )
    assert [kv.value.decode() for page in pages for kv in page.kvs] == names
    assert [(p.count, p.more) for p in pages] == [(10, True), (6, True), (2, False)]
    assert all(page.revision == first.revision for page in pages)

    latest = await backend.range(PODS, start_after=PODS + "default/pod-05", limit=2)
    assert [kv.key.rsplit("/", 1)[1] for kv in latest.kvs] == ["pod-05a", "pod-07"]
    assert (latest.count, latest.more, latest.revision) == (4, True, 15)
    assert (await backend.range(PODS, limit=100)).count == 10


async def test_large_ranges_are_complete_and_consistent(backend: Any) -> None:
    names = [f"p{i:05d}" for i in range(2500)]
    for name in names:
        await backend.create(PODS + "ns/" + name, name.encode())
    at = backend.revision
    for name in names[::100]:
        await backend.delete(PODS + "ns/" + name)
    await backend.create(PODS + "ns/p00000a", b"late")

    everything_then = await backend.range(PODS, revision=at)
    assert [kv.value.decode() for kv in everything_then.kvs] == names
    assert (everything_then.count, everything_then.more, everything_then.revision) == (2500, False, at)

    now = await backend.range(PODS)
    live_now = sorted([n for i, n in enumerate(names) if i % 100] + ["p00000a"])
    assert [kv.key.rsplit("/", 1)[1] for kv in now.kvs] == live_now
    assert (now.count, now.revision) == (len(live_now), backend.revision)

    big_page = await backend.range(PODS, revision=at, start_after=PODS + "ns/p00099", limit=2000)
    assert [kv.value.decode() for kv in big_page.kvs] == names[100:2100]
    assert (big_page.count, big_page.more) == (2400, True)


async def test_reads_at_a_past_revision(backend: Any) -> None:
    a, b = PODS + "ns/a", PODS + "ns/b"
    await backend.create(a, b"a1")  # 1
    await backend.create(b, b"b1")  # 2
    await backend.update(a, b"a2", expected_mod_revision=1)  # 3
    await backend.delete(b)  # 4
    await backend.create(b, b"b2")  # 5

    def values(result: Any) -> dict[str, bytes]:
        return {kv.key: kv.value for kv in result.kvs}

    assert values(await backend.range(PODS, revision=1)) == {a: b"a1"}
    assert values(await backend.range(PODS, revision=2)) == {a: b"a1", b: b"b1"}
    assert values(await backend.range(PODS, revision=3)) == {a: b"a2", b: b"b1"}
    assert values(await backend.range(PODS, revision=4)) == {a: b"a2"}
    assert values(await backend.range(PODS, revision=5)) == {a: b"a2", b: b"b2"}
    assert (await backend.range(PODS, revision=4)).count == 1

    assert await backend.get(a, revision=2) == KeyValue(a, b"a1", 1, 1)
    assert await backend.get(b, revision=3) == KeyValue(b, b"b1", 2, 2)
    assert await backend.get(b, revision=4) is None
    assert await backend.get(b, revision=5) == KeyValue(b, b"b2", 5, 5)
    with pytest.raises(FutureRevision):
        await backend.get(a, revision=6)
    with pytest.raises(FutureRevision):
        await backend.range(PODS, revision=6)


# ---------------------------------------------------------------- watch


async def test_watch_replays_history_then_streams_live_events(backend: Any) -> None:
    key = PODS + "ns/a"
    await backend.create(key, b"1")  # 1
    await backend.update(key, b"2", expected_mod_revision=1)  # 2
    await backend.create(PODS + "ns/b", b"b")  # 3
    watch = backend.watch(PODS, start_revision=1)
    try:
        replay = await take(watch, 2)
        assert summary(replay) == [("PUT", key, b"2", 2), ("PUT", PODS + "ns/b", b"b", 3)]
        assert replay[0].prev_kv == KeyValue(key, b"1", 1, 1)
        assert replay[1].is_create and replay[1].prev_kv is None

        await backend.update(key, b"3", expected_mod_revision=2)  # 4
        live = await next_event(watch)
        assert summary([live]) == [("PUT", key, b"3", 4)]
        assert live.prev_kv == KeyValue(key, b"2", 1, 2)
    finally:
        await watch.close()


async def test_watch_filters_by_prefix(backend: Any) -> None:
    watch = backend.watch(PODS + "default/", start_revision=0)
    try:
        await backend.create(PODS + "default/a", b"1")
        await backend.create(PODS + "defaultX/b", b"2")
        await backend.create("/registry/pods0", b"3")
        await backend.create(PODS + "kube-system/c", b"4")
        await backend.create(PODS + "default/d", b"5")
        events = await take(watch, 2)
        assert [(e.kv.key, e.revision) for e in events] == [(PODS + "default/a", 1), (PODS + "default/d", 5)]
    finally:
        await watch.close()


async def test_delete_events_carry_the_previous_value(backend: Any) -> None:
    key = PODS + "ns/a"
    await backend.create(key, b"1")
    await backend.update(key, b"2", expected_mod_revision=1)
    live_watch = backend.watch(PODS, start_revision=2)
    await backend.delete(key)  # 3
    replay_watch = backend.watch(PODS, start_revision=2)
    try:
        for watch in (live_watch, replay_watch):
            event = await next_event(watch)
            assert event.type == "DELETE" and event.revision == 3
            assert event.kv == KeyValue(key, b"2", 1, 3)
            assert event.prev_kv == KeyValue(key, b"2", 1, 2)
    finally:
        await live_watch.close()
        await replay_watch.close()


async def test_watch_has_no_gap_or_duplicate_while_writes_continue(backend: Any) -> None:
    for i in range(600):
        await backend.create(PODS + f"ns/p{i:04d}", b"x")
    watch = backend.watch(PODS, start_revision=0)

    async def writer() -> None:
        for i in range(300):
            await backend.update(PODS + f"ns/p{i:04d}", b"y", expected_mod_revision=0)
            await asyncio.sleep(0)  # yield so writes land while the watch replays

    task = asyncio.create_task(writer())
    try:
        revisions = []
        for _ in range(900):
            revisions.append((await next_event(watch)).revision)
            await asyncio.sleep(0)  # yield to the writer between events
        await task
        assert revisions == list(range(1, 901))
    finally:
        task.cancel()
        await watch.close()


async def test_watch_close_and_backend_close_end_iteration(open_backend: Any) -> None:
    backend = await open_backend()
    closed_by_caller = backend.watch(PODS, start_revision=0)
    ended_by_backend = backend.watch(PODS, start_revision=0)

    async def drain(watch: Watch) -> list[Event]:
        return [event async for event in watch]

    await closed_by_caller.close()
    assert await asyncio.wait_for(drain(closed_by_caller), 5) == []
    draining = asyncio.create_task(drain(ended_by_backend))
    await backend.create(PODS + "ns/a", b"1")
    await asyncio.sleep(0)  # let the drainer take the event before the store closes
    await backend.close()
    assert [e.revision for e in await asyncio.wait_for(draining, 5)] == [1]


# ---------------------------------------------------------------- compaction


async def test_compaction_forgets_history_but_keeps_live_values(backend: Any) -> None:
    a, b, c = PODS + "ns/a", PODS + "ns/b", PODS + "ns/c"
    await backend.create(a, b"a1")  # 1
    await backend.create(b, b"b1")  # 2
    await backend.update(a, b"a2", expected_mod_revision=1)  # 3
    await backend.delete(b)  # 4
    await backend.create(c, b"c1")  # 5
    await backend.update(c, b"c2", expected_mod_revision=5)  # 6
    await backend.compact(4)
    assert backend.compacted_revision == 4

    with pytest.raises(Compacted) as caught:
        await backend.get(a, revision=3)
    assert (caught.value.requested, caught.value.compacted) == (3, 4)
    with pytest.raises(Compacted):
        await backend.range(PODS, revision=2)
    with pytest.raises(Compacted):
        watch = backend.watch(PODS, start_revision=3)
        await next_event(watch)

    assert [kv.value for kv in (await backend.range(PODS, revision=4)).kvs] == [b"a2"]
    assert [kv.value for kv in (await backend.range(PODS, revision=5)).kvs] == [b"a2", b"c1"]
    assert [kv.value for kv in (await backend.range(PODS)).kvs] == [b"a2", b"c2"]
    assert await backend.get(a) == KeyValue(a, b"a2", 1, 3)

    watch = backend.watch(PODS, start_revision=4)
    try:
        events = await take(watch, 2)
        assert summary(events) == [("PUT", c, b"c1", 5), ("PUT", c, b"c2", 6)]
        assert events[1].prev_kv == KeyValue(c, b"c1", 5, 5)
    finally:
        await watch.close()

    await backend.compact(2)  # already compacted further: nothing happens
    assert backend.compacted_revision == 4
    with pytest.raises(FutureRevision):
        await backend.compact(7)


async def test_compaction_reaches_a_watch_that_still_had_to_replay(backend: Any) -> None:
    for i in range(5):
        await backend.create(PODS + f"ns/p{i}", b"x")
    watch = backend.watch(PODS, start_revision=0)
    await backend.compact(3)
    with pytest.raises(Compacted):
        await next_event(watch)
    await watch.close()


async def test_automatic_compaction_keeps_a_bounded_history(open_backend: Any) -> None:
    backend = await open_backend(retain_revisions=5, compact_interval=0.01)
    for i in range(4):
        await backend.create(PODS + f"ns/p{i}", b"0")
    for round_ in range(1, 5):
        for i in range(4):
            await backend.update(PODS + f"ns/p{i}", str(round_).encode(), expected_mod_revision=0)
    assert backend.revision == 20
    await asyncio.wait_for(backend.compactor.wait_fresh_pass(), timeout=5)
    assert backend.compacted_revision == 15

    assert len((await backend.range(PODS, revision=15)).kvs) == 4
    with pytest.raises(Compacted):
        await backend.range(PODS, revision=14)
    assert {kv.value for kv in (await backend.range(PODS)).kvs} == {b"4"}

    await asyncio.wait_for(backend.compactor.wait_fresh_pass(), timeout=5)
    assert backend.compacted_revision == 15  # nothing new to compact


async def test_restart_keeps_data_history_and_revisions(backend_kind: Any, tmp_path: Any) -> None:
    first = backend_kind.make(tmp_path, compact_interval=0)
    await first.start()
    try:
        for i in range(6):
            await first.create(PODS + f"ns/p{i}", f"v{i}".encode())
        await first.update(PODS + "ns/p1", b"changed", expected_mod_revision=2)  # 7
        await first.delete(PODS + "ns/p2")  # 8
        await first.compact(3)
        await first.delete(PODS + "ns/p5")  # 9
        before_at = {rev: await first.range(PODS, revision=rev) for rev in range(3, 10)}
        replay_watch = first.watch(PODS, start_revision=3)
        before_events = summary(await take(replay_watch, 6))
        await replay_watch.close()
    finally:
        await first.close()

    second = backend_kind.make(tmp_path, compact_interval=0)
    await second.start()
    try:
        assert (second.revision, second.compacted_revision) == (9, 3)
        for rev, before in before_at.items():
            assert await second.range(PODS, revision=rev) == before
        with pytest.raises(Compacted):
            await second.get(PODS + "ns/p0", revision=2)
        replay_watch = second.watch(PODS, start_revision=3)
        assert summary(await take(replay_watch, 6)) == before_events
        kv = await second.create(PODS + "ns/new", b"n")
        assert (kv.create_revision, kv.mod_revision) == (10, 10)
        assert summary([await next_event(replay_watch)]) == [("PUT", PODS + "ns/new", b"n", 10)]
        await replay_watch.close()
    finally:
        await second.close()
