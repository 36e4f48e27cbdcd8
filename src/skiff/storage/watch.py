"""In-process watch fan-out: replay from history, then live events, per-watch queues.

A backend that commits writes in this process (the embedded SQLite store)
owns one :class:`WatchHub`.  After each commit it calls
:meth:`WatchHub.publish` with the committed :class:`Event`; the hub appends it
to the queue of every open watch whose prefix matches and wakes that watch's
reader.  Publishing never awaits, so a slow reader never slows a writer.

Starting a watch at revision ``S`` while the store is at revision ``N``::

    watch(prefix, S)  ─┬─ subscribe to the hub NOW      (live queue gets N+1, N+2, ...)
                       └─ remember replay_upto = N
    iteration:  history (S, N] in batches  ──▶  live queue  ──▶  ...
                (read_history callback)          (skip revision <= last delivered)

Subscribing before replaying means nothing committed after ``N`` can be
missed, and the bound ``N`` means nothing is delivered twice; events are
additionally deduplicated by revision, so a watch from a revision in the
future simply waits for it.

Errors end a watch: the next iteration raises once, later iterations stop.

* :class:`Compacted` -- the history the replay still needed was compacted
  away (checked before every history batch).
* :class:`WatchOverflow` -- more than ``queue_limit`` events were waiting
  unread.  The queue is dropped at once (memory is released) and the reader
  gets the error after its last delivered event; re-watching from that
  event's revision replays what was missed.

``close()`` on a watch, or :meth:`WatchHub.close_all` when the backend
closes, ends iteration (``StopAsyncIteration``) without error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable

from skiff.storage.interface import Compacted, Event, StorageError, WatchOverflow

#: ``read_history(prefix, after, upto, limit)``: at most ``limit`` events for
#: keys under ``prefix`` with ``after < revision <= upto``, in revision order.
HistoryReader = Callable[[str, int, int, int], list[Event]]

#: How many history events one replay step reads (bounds one step's work on the loop).
REPLAY_BATCH = 256


class HubWatch:
    """One open watch; async-iterate it for :class:`Event` values."""

    def __init__(
        self,
        hub: WatchHub,
        prefix: str,
        *,
        start_revision: int,
        replay_upto: int,
        read_history: HistoryReader,
        compacted_revision: Callable[[], int],
        queue_limit: int,
    ) -> None:
        self.prefix = prefix
        self._hub = hub
        self._read_history = read_history
        self._compacted_revision = compacted_revision
        self._queue_limit = queue_limit
        self._last = start_revision  # revision of the last event handed out
        self._replay_pos = start_revision  # history scanned up to here
        self._replay_upto = replay_upto
        self._replay: deque[Event] = deque()
        self._live: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: StorageError | None = None
        self._ended = False

    def __aiter__(self) -> HubWatch:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._ended:
                raise StopAsyncIteration
            if self._replay:
                event = self._replay.popleft()
                self._last = event.revision
                return event
            if self._replay_pos < self._replay_upto:
                self._read_history_batch()
                continue
            if self._live:
                event = self._live.popleft()
                if event.revision <= self._last:
                    continue
                self._last = event.revision
                return event
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def close(self) -> None:
        self.end()

    def end(self, error: StorageError | None = None) -> None:
        """Stop the watch; the reader gets ``error`` (if any) next, then the end."""
        if self._ended:
            return
        self._ended = True
        self._error = error
        self._replay.clear()
        self._live.clear()
        self._hub.remove(self)
        self._wake()

    def push(self, event: Event) -> bool:
        """Queue a live event; False when the queue overflowed and the watch ended."""
        if len(self._live) >= self._queue_limit:
            self._ended = True
            self._error = WatchOverflow(self._last, self._queue_limit)
            self._replay.clear()
            self._live.clear()
            self._wake()
            return False
        self._live.append(event)
        self._wake()
        return True

    def _read_history_batch(self) -> None:
        compacted = self._compacted_revision()
        if self._replay_pos < compacted:
            self.end(Compacted(self._replay_pos, compacted))
            return
        events = self._read_history(self.prefix, self._replay_pos, self._replay_upto, REPLAY_BATCH)
        self._replay.extend(events)
        if len(events) < REPLAY_BATCH:
            self._replay_pos = self._replay_upto
        else:
            self._replay_pos = events[-1].revision

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class WatchHub:
    """The open watches of one backend, grouped by prefix."""

    def __init__(self) -> None:
        self._by_prefix: dict[str, set[HubWatch]] = {}

    def __len__(self) -> int:
        return sum(len(watches) for watches in self._by_prefix.values())

    def add(self, watch: HubWatch) -> None:
        self._by_prefix.setdefault(watch.prefix, set()).add(watch)

    def remove(self, watch: HubWatch) -> None:
        watches = self._by_prefix.get(watch.prefix)
        if watches is None:
            return
        watches.discard(watch)
        if not watches:
            del self._by_prefix[watch.prefix]

    def publish(self, event: Event) -> None:
        """Hand a committed event to every watch whose prefix its key starts with."""
        key = event.kv.key
        overflowed: list[HubWatch] = []
        for prefix, watches in self._by_prefix.items():
            if key.startswith(prefix):
                for watch in watches:
                    if not watch.push(event):
                        overflowed.append(watch)
        for watch in overflowed:
            self.remove(watch)

    def close_all(self) -> None:
        for watches in list(self._by_prefix.values()):
            for watch in list(watches):
                watch.end()
        self._by_prefix.clear()
