"""The watch cache: one storage watch, fanned out to every HTTP watch.

Like kube-apiserver's cacher, the API server opens a *single* watch on
``/registry/`` and keeps a window of recent events in memory.  Each HTTP watch
is a :class:`Subscription` fed from that stream, so an event is decoded and
encoded once, however many clients watch (1,000 watchers cost 1,000 queue
appends, not 1,000 JSON round trips)::

    Backend.watch("/registry/") ──▶ pump ──▶ window (deque, newest N events)
                                       └──▶ subscription.push(ev)  for each matching prefix
                                                  │ (sync; wakes the reader)
                                                  ▼
                                       HTTP watch: filter, encode (cached), write

A subscription starting at revision R replays window events after R, then
gets live ones; events at or below R are dropped, so a watch from a revision
the pump has not reached yet simply waits for it.  When R is older than the
window, :func:`direct_subscription` replays from the store instead (which
raises :class:`Compacted` -> 410 once history is gone).

Events keep the stored bytes and decode lazily: a watcher without selectors
never decodes anything (``object_json`` splices the resourceVersion in).  A
watcher with selectors decodes the new state; the state before a MODIFIED event
is decoded only when the cache no longer knows how it matched (each event keeps
its selector verdicts, and the next event of its key is handed them).  Once
the live fan-out is done the decoded forms are dropped again, so the window
holds bytes only: decoded objects of 10,000 events would be millions of
containers for Python's cyclic garbage collector to walk on every full pass
(measured: 2/3 of its time in ``bench/controllers.py``).

A subscription may have a ``sink``: a synchronous writer the pump calls
directly while nothing is queued, so a live event reaches every idle watcher's
socket in one pass over the subscriptions, without waking a task per watcher.
When the sink declines (the client is slow, the socket closing) events queue
up and the watcher's own task takes over until the queue is empty again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any, Callable

from ..storage.interface import Backend, Compacted, Event, StorageError, WatchOverflow
from .objects import REGISTRY_ROOT, decode_value, with_resource_version

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class CacheEvent:
    """One committed change as watchers see it (ADDED / MODIFIED / DELETED)."""

    __slots__ = ("type", "key", "revision", "value", "prev_value", "prev_revision",
                 "_obj", "_prev", "_json", "lines", "chunks", "verdicts", "prev_verdicts")

    def __init__(self, type_: str, key: str, revision: int, value: bytes,
                 prev_value: bytes | None, prev_revision: int) -> None:
        self.type = type_
        self.key = key
        self.revision = revision
        self.value = value
        self.prev_value = prev_value
        self.prev_revision = prev_revision
        self._obj: Obj | None = None
        self._prev: Obj | None = None
        self._json: bytes | None = None
        #: wire lines already encoded for this event, by watcher encoding key (see watch.py)
        self.lines: dict[Any, bytes | None] = {}
        #: the same lines framed as HTTP chunks, for watchers written to directly
        self.chunks: dict[Any, bytes | None] = {}
        #: whether the object matches each watcher selection it was checked against
        #: (by encoding key); kept after :meth:`release`, as it never changes
        self.verdicts: dict[Any, bool] = {}
        #: the same for the state before this change, when the cache still had it
        self.prev_verdicts: dict[Any, bool] | None = None

    @classmethod
    def from_storage(cls, ev: Event) -> "CacheEvent":
        prev = ev.prev_kv
        if ev.type == "DELETE":
            kind = "DELETED"
        else:
            kind = "ADDED" if prev is None else "MODIFIED"
        return cls(kind, ev.kv.key, ev.kv.mod_revision, ev.kv.value,
                   prev.value if prev is not None else None,
                   prev.mod_revision if prev is not None else 0)

    def obj(self) -> Obj:
        """The object (for DELETED: its last state) with resourceVersion = this event's revision."""
        if self._obj is None:
            self._obj = decode_value(self.value, self.revision)
        return self._obj

    def prev(self) -> Obj | None:
        """The state before this change, with this event's revision (as Kubernetes reports it)."""
        if self._prev is None and self.prev_value is not None:
            self._prev = decode_value(self.prev_value, self.revision)
        return self._prev

    def object_json(self) -> bytes:
        if self._json is None:
            self._json = with_resource_version(self.value, self.revision)
        return self._json

    def release(self) -> None:
        """Forget the decoded and encoded forms (they are rebuilt on demand)."""
        self._obj = self._prev = None
        self._json = None
        self.lines = {}
        self.chunks = {}


class Subscription:
    """The event queue of one HTTP watch."""

    def __init__(self, prefix: str, after: int, limit: int) -> None:
        self.prefix = prefix
        self.after = after
        self.limit = limit
        self.events: deque[CacheEvent] = deque()
        self.error: Exception | None = None  # Compacted: the watch must end with 410
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None
        self._on_close: list[Any] = []
        self._source_revision: Any = None  # () -> int: how far the feeding stream has got
        #: ``sink(ev) -> bool``: deliver at once, synchronously (False = queue it instead).
        self.sink: Callable[[CacheEvent], bool] | None = None

    def progress(self) -> int:
        """A revision every event up to which has been queued (for BOOKMARK events).

        Valid when the queue is empty: the feed has published everything up to it.
        """
        if self._source_revision is None:
            return self.after
        return max(self.after, int(self._source_revision()))

    def push(self, ev: CacheEvent) -> None:
        if self.closed or ev.revision <= self.after:
            return
        if self.sink is not None and not self.events and self.sink(ev):
            self.after = ev.revision
            return
        if len(self.events) >= self.limit:
            self.fail(WatchOverflow(self.after, self.limit))
            return
        self.events.append(ev)
        self.after = ev.revision
        self._wake()

    def fail(self, err: Exception | None) -> None:
        """End the subscription (with an error the watcher reports, if any)."""
        if not self.closed:
            self.error = err
            self.closed = True
            if isinstance(err, WatchOverflow):
                self.events.clear()  # the watcher restarts anyway; free the memory now
            self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Return when events are queued, the subscription ends, or ``timeout`` passes."""
        if self.events or self.closed:
            return
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        try:
            await asyncio.wait_for(self._waiter, timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiter = None

    def drain(self) -> list[CacheEvent]:
        out = list(self.events)
        self.events.clear()
        return out

    async def close(self) -> None:
        self.closed = True
        for callback in self._on_close:
            result = callback()
            if asyncio.iscoroutine(result):
                await result
        self._on_close.clear()


class WatchCache:
    """One backend watch, a window of recent events, and the open subscriptions."""

    def __init__(self, backend: Backend, *, window: int = 10000, queue_limit: int = 10000) -> None:
        self.backend = backend
        self.queue_limit = queue_limit
        self._window: deque[CacheEvent] = deque(maxlen=window)
        self._floor = 0  # every event after this revision is in the window
        self.revision = 0  # the newest revision the pump has seen (progress for bookmarks)
        self._subs: set[Subscription] = set()
        #: the same subscriptions by prefix: an event goes to those of its key's ancestors
        #: (``/registry/``, ``/registry/core/``, ``/registry/core/pods/`` ...), found in a
        #: few lookups however many kinds are watched; prefixes that do not end in "/" are
        #: under "" and matched one by one
        self._by_prefix: dict[str, set[Subscription]] = {}
        self._others: set[Subscription] = set()  # direct (store-fed) watches, for stop()
        #: key -> (revision, verdicts) of its newest event in the window: so the next
        #: event of the key knows how its previous state fared against each selection
        #: without decoding it again
        self._latest: dict[str, tuple[int, dict[Any, bool]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._floor = self.revision = self.backend.revision
        self._task = asyncio.create_task(self._pump(self._floor), name="skiff-watch-cache")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in list(self._subs) + list(self._others):
            sub.fail(None)
        self._subs.clear()
        self._by_prefix.clear()

    def end_watches(self, prefix: str) -> None:
        """End, cleanly, every watch of keys under ``prefix`` (a resource no longer served)."""
        for sub in list(self._subs):
            if sub.prefix.startswith(prefix):
                sub.fail(None)

    @property
    def watchers(self) -> int:
        return len(self._subs)

    def track(self, sub: Subscription) -> None:
        """End ``sub`` (fed from elsewhere) when the cache stops; forget it when it closes."""
        self._others.add(sub)
        sub._on_close.append(lambda: self._others.discard(sub))

    async def _pump(self, start: int) -> None:
        after = start
        while True:
            watch = self.backend.watch(REGISTRY_ROOT, start_revision=after)
            try:
                async for ev in watch:
                    self._publish(CacheEvent.from_storage(ev))
                    after = ev.kv.mod_revision
                return  # the backend closed
            except WatchOverflow:
                continue  # fell behind: re-watch from the last event seen (replays history)
            except Compacted:
                log.warning("watch cache fell behind compaction; restarting its window")
                after = self.backend.revision
                self._window.clear()
                self._latest.clear()
                self._floor = self.revision = after
                for sub in list(self._subs):
                    sub.fail(Compacted(sub.after, self.backend.compacted_revision))
            except StorageError:
                log.exception("watch cache: storage watch failed; restarting")
                await asyncio.sleep(0.1)
            finally:
                with contextlib.suppress(Exception):
                    await watch.close()

    def _publish(self, ev: CacheEvent) -> None:
        window = self._window
        latest = self._latest
        if window.maxlen is not None and len(window) == window.maxlen:
            dropped = window[0]
            self._floor = dropped.revision
            newest = latest.get(dropped.key)
            if newest is not None and newest[0] == dropped.revision:
                del latest[dropped.key]  # the key's newest event leaves the window
        window.append(ev)
        self.revision = ev.revision
        key = ev.key
        if ev.type == "MODIFIED":
            before = latest.get(key)
            if before is not None and before[0] == ev.prev_revision:
                ev.prev_verdicts = before[1]  # the previous event's: its state is this one's before
        if ev.type == "DELETED":
            latest.pop(key, None)
        else:
            latest[key] = (ev.revision, ev.verdicts)
        by_prefix = self._by_prefix
        odd = by_prefix.get("")
        if odd:
            for sub in odd:
                if key.startswith(sub.prefix):
                    sub.push(ev)
        end = key.find("/")
        while end >= 0:
            subs = by_prefix.get(key[:end + 1])
            if subs:
                for sub in subs:
                    sub.push(ev)
            end = key.find("/", end + 1)
        ev.release()  # the window keeps bytes only: little memory, nothing for the GC to walk

    def subscribe(self, prefix: str, after: int) -> Subscription | None:
        """Events under ``prefix`` after revision ``after``; None when older than the window."""
        if after < self._floor or self._task is None:
            return None
        sub = Subscription(prefix, after, self.queue_limit)
        if after < self.revision:
            replay = []
            for ev in reversed(self._window):
                if ev.revision <= after:
                    break
                if ev.key.startswith(prefix):
                    replay.append(ev)
            for ev in reversed(replay):
                sub.push(ev)
        sub._source_revision = lambda: self.revision
        self._subs.add(sub)
        slot = prefix if prefix.endswith("/") else ""
        self._by_prefix.setdefault(slot, set()).add(sub)

        def forget() -> None:
            self._subs.discard(sub)
            subs = self._by_prefix.get(slot)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_prefix[slot]
        sub._on_close.append(forget)
        return sub


def direct_subscription(backend: Backend, prefix: str, after: int, limit: int) -> Subscription:
    """A subscription replaying from the store itself (for revisions older than the window).

    Raises :class:`Compacted` when the history after ``after`` is gone.
    """
    if after < backend.compacted_revision:
        raise Compacted(after, backend.compacted_revision)
    sub = Subscription(prefix, after, limit)
    watch = backend.watch(prefix, start_revision=after)

    async def pump() -> None:
        try:
            async for ev in watch:
                sub.push(CacheEvent.from_storage(ev))
                if sub.closed:
                    return
            sub.fail(None)
        except Compacted as exc:
            sub.fail(exc)
        except WatchOverflow as exc:
            sub.fail(exc)
        finally:
            with contextlib.suppress(Exception):
                await watch.close()

    task = asyncio.create_task(pump(), name="skiff-direct-watch")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    sub._on_close.append(stop)
    return sub
