"""Behaviour specific to the SQLite backend (the contract itself is in test_contract.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from skiff.storage.interface import StorageError, WatchOverflow
from skiff.storage.sqlite import CHECKPOINT_PAGES, PAGE_SIZE, SqliteBackend
from skiff.storage.sqlite_queries import prefix_upper_bound

PODS = "/registry/pods/"


@pytest.mark.parametrize(
    ("prefix", "bound"),
    [
        ("/registry/pods/", "/registry/pods0"),
        ("a", "b"),
        ("", None),
        ("\U0010ffff", None),
        ("a\U0010ffff\U0010ffff", "b"),
        ("x\ud7ff", "x\ue000"),
    ],
)
def test_prefix_upper_bound(prefix: str, bound: str | None) -> None:
    assert prefix_upper_bound(prefix) == bound


async def test_slow_watcher_is_ended_without_blocking_writers(tmp_path: Path) -> None:
    store = SqliteBackend(str(tmp_path / "s.db"), compact_interval=0, watch_queue_limit=5)
    await store.start()
    try:
        slow = store.watch(PODS, start_revision=0)
        other_prefix = store.watch("/registry/services/", start_revision=0)
        for i in range(8):  # nobody reads `slow`; writes must still all go through
            await store.create(PODS + f"ns/p{i}", b"x")
        assert store.revision == 8
        assert store.open_watches == 1  # `slow` was dropped, its queue released
        with pytest.raises(WatchOverflow) as caught:
            await asyncio.wait_for(slow.__anext__(), 5)
        assert (caught.value.last_revision, caught.value.limit) == (0, 5)
        with pytest.raises(StopAsyncIteration):
            await slow.__anext__()

        # Re-watching from the last revision seen replays what was missed.
        again = store.watch(PODS, start_revision=caught.value.last_revision)
        assert [(await asyncio.wait_for(again.__anext__(), 5)).revision for _ in range(8)] == list(range(1, 9))
        await again.close()
        await other_prefix.close()
    finally:
        await store.close()


async def test_only_one_store_may_open_a_file(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    first = SqliteBackend(path, compact_interval=0)
    await first.start()
    second = SqliteBackend(path, compact_interval=0)
    try:
        with pytest.raises(StorageError, match="in use"):
            await second.start()
    finally:
        await first.close()
    await second.start()  # free again once the first one closed
    await second.close()


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    store = SqliteBackend(str(tmp_path / "s.db"), compact_interval=0)
    with pytest.raises(StorageError, match="not open"):
        await store.get(PODS + "a")
    await store.start()
    await store.close()
    with pytest.raises(StorageError, match="not open"):
        await store.create(PODS + "a", b"x")
    with pytest.raises(StorageError, match="not open"):
        store.watch(PODS, start_revision=0)


async def test_wal_is_checkpointed_into_the_database_file_while_open(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteBackend(str(path), compact_interval=0)
    await store.start()
    try:
        empty_size = path.stat().st_size
        value = os.urandom(8 * PAGE_SIZE)
        writes = CHECKPOINT_PAGES // 8 + 1
        for i in range(writes):
            await store.create(PODS + f"ns/p{i}", value)
        await store.create(PODS + "ns/last", b"x")  # waits for the checkpoint the others triggered
        assert path.stat().st_size - empty_size > writes * len(value) // 2
        assert (await store.get(PODS + "ns/p0")) is not None
    finally:
        await store.close()
    assert not (tmp_path / "s.db-wal").exists() or (tmp_path / "s.db-wal").stat().st_size == 0


def test_write_right_after_a_checkpoint_finishes_does_not_spin(tmp_path: Path) -> None:
    """A checkpoint future can be done while its done-callback (which clears it) has not
    run yet; a write arriving in that window must go ahead instead of spinning forever
    without yielding.  Run in a thread so a regression fails the test instead of hanging it."""
    import threading

    outcome: list[object] = []

    async def scenario() -> None:
        store = SqliteBackend(str(tmp_path / "s.db"), compact_interval=0)
        await store.start()
        try:
            finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            finished.set_result(None)
            store._checkpoint = finished  # done, callback not yet run
            outcome.append(await store.create(PODS + "ns/after-checkpoint", b"x"))
        finally:
            store._checkpoint = None
            await store.close()

    thread = threading.Thread(target=lambda: asyncio.run(scenario()), daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive(), "create() spun on a finished checkpoint"
    assert outcome and outcome[0].key == PODS + "ns/after-checkpoint"  # type: ignore[attr-defined]
