"""Group commit in the SQLite store: the first write of a loop turn commits at once,
the later ones share a transaction committed on the next turn, nothing of a batch is
visible before its COMMIT, and a failed COMMIT fails every write in it (durability
under kill -9 is in test_durability.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from skiff.storage.interface import KeyExists, RevisionMismatch, StorageError
from skiff.storage.sqlite import SqliteBackend

PODS = "/registry/pods/ns/"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteBackend]:
    s = SqliteBackend(str(tmp_path / "s.db"), compact_interval=0)
    await s.start()
    try:
        yield s
    finally:
        await s.close()


async def test_a_lone_write_commits_without_waiting_a_turn(store: SqliteBackend) -> None:
    write = store.create(PODS + "p", b"x")
    with pytest.raises(StopIteration) as finished:  # ran to the end without suspending
        write.send(None)
    assert finished.value.value.mod_revision == 1
    assert store.revision == 1 and store.transactions == 1
    for i in range(3):  # a sequential writer: one write per turn, each on its own
        await store.create(PODS + f"q{i}", b"x")
    assert store.transactions == 4


async def test_concurrent_writes_share_one_commit(store: SqliteBackend) -> None:
    kvs = await asyncio.gather(*(store.create(PODS + f"p{i}", b"v%d" % i) for i in range(20)))
    assert sorted(kv.mod_revision for kv in kvs) == list(range(1, 21))
    assert store.transactions == 2  # the turn's first write at once, the other 19 together
    assert store.revision == 20


async def test_later_writes_of_a_batch_see_the_earlier_ones(store: SqliteBackend) -> None:
    base = await store.create(PODS + "a", b"0")
    create = asyncio.ensure_future(store.create(PODS + "b", b"1"))
    update = asyncio.ensure_future(store.update(PODS + "a", b"1", expected_mod_revision=base.mod_revision))
    stale = asyncio.ensure_future(store.update(PODS + "a", b"2", expected_mod_revision=base.mod_revision))
    again = asyncio.ensure_future(store.create(PODS + "b", b"2"))
    delete = asyncio.ensure_future(store.delete(PODS + "b", expected_mod_revision=2))
    recreate = asyncio.ensure_future(store.create(PODS + "b", b"3"))
    results = await asyncio.gather(create, update, stale, again, delete, recreate, return_exceptions=True)
    assert store.transactions == 3  # the base create; "b" at once; one batch for the rest
    assert isinstance(results[2], RevisionMismatch) and results[2].current.mod_revision == 3
    assert isinstance(results[3], KeyExists)
    assert [kv.mod_revision for kv in (results[0], results[1], results[4], results[5])] == [2, 3, 4, 5]
    assert (await store.get(PODS + "a")).value == b"1"  # type: ignore[union-attr]
    b = await store.get(PODS + "b")
    assert b is not None and (b.value, b.create_revision, b.mod_revision) == (b"3", 5, 5)


async def test_nothing_is_visible_before_the_commit(store: SqliteBackend) -> None:
    watch = store.watch("/registry/", start_revision=0)
    writes = [asyncio.ensure_future(store.create(PODS + f"p{i}", b"x")) for i in range(3)]
    await asyncio.sleep(0)  # the writes ran: the first committed, the others wait for the next turn
    assert [w.done() for w in writes] == [True, False, False]
    assert store.revision == 1
    assert [ev.revision for ev in watch._live] == [1]  # published: the committed write only
    # A read that goes to SQL commits the open batch first, so it sees a committed state.
    listed = await store.range("/registry/")
    assert [kv.mod_revision for kv in listed.kvs] == [1, 2, 3] and listed.revision == 3
    assert [(await asyncio.wait_for(watch.__anext__(), 5)).revision for _ in range(3)] == [1, 2, 3]
    assert [kv.mod_revision for kv in await asyncio.gather(*writes)] == [1, 2, 3]
    await watch.close()


class _FailingCommit:
    """The store's connection, except that COMMIT fails as a full disk would."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT":
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


async def test_a_failed_commit_fails_every_write_of_the_batch(store: SqliteBackend) -> None:
    first = await store.create(PODS + "kept", b"x")
    watch = store.watch("/registry/", start_revision=first.mod_revision)
    real = store._db
    assert real is not None
    store._db = _FailingCommit(real)  # type: ignore[assignment]
    try:
        results = await asyncio.gather(store.create(PODS + "a", b"1"),  # commits at once: fails
                                       store.create(PODS + "b", b"1"),  # these two share a commit
                                       store.update(PODS + "kept", b"y", expected_mod_revision=1),
                                       return_exceptions=True)
    finally:
        store._db = real
    assert all(isinstance(r, StorageError) and "disk is full" in str(r) for r in results)
    assert store.revision == 1
    assert [kv.key for kv in (await store.range("/registry/")).kvs] == [PODS + "kept"]
    assert (await store.get(PODS + "kept")).value == b"x"  # type: ignore[union-attr]
    again = await store.create(PODS + "a", b"2")  # the revision the failed batch had is reused
    assert again.mod_revision == 2
    assert (await asyncio.wait_for(watch.__anext__(), 5)).kv == again  # no event of the failed batch
    await watch.close()


async def test_close_commits_the_open_batch(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    store = SqliteBackend(path, compact_interval=0)
    await store.start()
    writes = [asyncio.ensure_future(store.create(PODS + f"p{i}", b"x")) for i in range(2)]
    await asyncio.sleep(0)  # the second write's statements ran, its COMMIT is pending
    assert not writes[1].done()
    await store.close()
    assert [(await w).mod_revision for w in writes] == [1, 2]
    reopened = SqliteBackend(path, compact_interval=0)
    await reopened.start()
    try:
        assert (await reopened.get(PODS + "p1")) is not None
    finally:
        await reopened.close()


async def test_a_read_modify_write_loop_sees_a_staged_write_of_its_key(store: SqliteBackend) -> None:
    """A compare-and-swap loop that does not yield (as the API server's patch retries)
    must read what it compares with: a write waiting in the open batch is committed
    by a read of its key, never a stale value over and over."""
    base = await store.create(PODS + "a", b"0")
    first = asyncio.ensure_future(store.create(PODS + "b", b"0"))  # the turn's first write: at once
    other = asyncio.ensure_future(store.update(PODS + "a", b"1", expected_mod_revision=base.mod_revision))
    await asyncio.sleep(0)  # `other` is staged, its COMMIT not yet run
    assert first.done() and not other.done()
    for _attempt in range(3):  # no await that yields in between: the loop cannot commit it
        current = await store.get(PODS + "a")
        assert current is not None
        try:
            await store.update(PODS + "a", current.value + b"+", expected_mod_revision=current.mod_revision)
            break
        except RevisionMismatch:
            continue
    else:
        pytest.fail("every attempt compared against a stale read")
    assert (await other).value == b"1"
    final = await store.get(PODS + "a")
    assert final is not None and final.value == b"1+"
