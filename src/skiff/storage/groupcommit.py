"""Group commit: writes made in the same event-loop turn share one SQLite transaction.

A transaction's fixed cost (``BEGIN``, ``COMMIT``, the WAL frames of the pages
it touched) is most of a small write's cost: on the 2-core dev machine a write
alone costs ~65 µs of CPU, a write among 8 in one transaction ~18 µs.  Under
load, many requests reach the store in the same turn of the event loop, so the
first write of a turn commits at once, and the store collects the ones after
it into a batch committed on the next turn::

    turn N    write A ─ BEGIN, statements, COMMIT ─▶ visible ─▶ A returns
              write B ─ BEGIN, statements, revision R+2 ─┐ (B waits)
              write C ─ statements, revision R+3 ────────┤ (C waits)
              write D ─ CAS fails: raises at once ────────┘ (nothing staged)
    turn N+1  COMMIT ─▶ revision = R+3 ─▶ latest-value cache, watch events R+2, R+3
                      ─▶ B and C return (acknowledged)
              COMMIT fails ─▶ ROLLBACK ─▶ B and C raise StorageError; revision stays R+1

A lone writer (one write per turn: the common case when idle, and a sequential
writer such as start-up's bootstrap) never waits a turn: a turn costs little on
an idle loop, but up to the 5 ms GIL switch interval while another thread runs
Python code (start-up imports components on threads).

Nothing of a batch is visible before its ``COMMIT``: the store's revision,
its cache of latest values and its watch events move only then, and a write
returns only then, so "acknowledged" still means "in the WAL, survives kill -9".
Writes later in a batch see the earlier ones (:meth:`WriteBatch.latest`), so
compare-and-swap stays exact.  Reads that go to SQL on the store's connection
(which would see the open transaction) commit the open batch first, and so does
a read of a key with a write waiting in the batch: a read-modify-write loop that
does not yield (a patch's retries) must read what its compare-and-swap compares
with, not the committed value again and again.

:class:`WriteBatch` is the bookkeeping of one open transaction; the SQL is the
store's (:mod:`skiff.storage.sqlite`).
"""

from __future__ import annotations

import asyncio

from skiff.storage.interface import Event, KeyValue, StorageError

#: ``WriteBatch.latest`` answer for a key the batch does not touch.
UNTOUCHED = object()


class WriteBatch:
    """The writes staged in one open transaction, waiting for its ``COMMIT``."""

    __slots__ = ("deferred", "events", "pages", "_latest", "_waiters")

    def __init__(self, *, deferred: bool) -> None:
        #: committed on the next loop turn (else by its first write, at once)
        self.deferred = deferred
        self.events: list[Event] = []  # in revision order
        self.pages = 0  # WAL pages the writes will add (an estimate, for checkpoints)
        self._latest: dict[str, KeyValue | None] = {}  # key -> staged value (None: deleted)
        self._waiters: list[asyncio.Future[None]] = []

    def __len__(self) -> int:
        return len(self.events)

    def latest(self, key: str) -> KeyValue | None | object:
        """The staged state of ``key`` (None when deleted), or :data:`UNTOUCHED`."""
        return self._latest.get(key, UNTOUCHED)

    def stage(self, event: Event, pages: int) -> None:
        """Record a write whose statements ran (its writer commits the batch itself)."""
        self.events.append(event)
        self.pages += pages
        self._latest[event.kv.key] = None if event.type == "DELETE" else event.kv

    def stage_and_wait(self, event: Event, pages: int) -> asyncio.Future[None]:
        """:meth:`stage`, for a writer that waits: the future resolves at ``COMMIT``."""
        self.stage(event, pages)
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        return waiter

    def settle(self, error: BaseException | None = None) -> None:
        """Wake every writer: acknowledged (``error`` None) or failed with ``error``."""
        for waiter in self._waiters:
            if waiter.done():  # its writer was cancelled; the write itself stands or falls with the rest
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(StorageError(f"commit failed: {error}"))
        self._waiters.clear()
