"""Informers: a local, always-current cache of one resource, fed by list + watch.

A controller never polls.  It lists once, then watches from the list's
resourceVersion, keeping a cache keyed ``namespace/name`` (``name`` for
cluster-scoped kinds) and calling its handlers on every change::

         ┌──────── list (paged) ────────┐
         ▼                              │ 410 Expired, server error,
    replace cache ─▶ synced             │ or watch from a too-old RV
         │                              │
         ▼                              │
    watch from RV ──events──▶ cache ──▶ on_add / on_update / on_delete
         │   ▲
         │   └── stream ended (timeoutSeconds) or broke: watch again from
         │       the last RV seen (bookmarks keep it fresh) at once; back off
         └────── 0.8 s .. 30 s on repeated failures (errors, or watches the
                 server closes within 0.5 s without a single event)

Rules for users:

* **Cached objects are shared and must not be mutated.**  Handlers and
  ``get()``/``list()`` hand out the cache's own dicts, for speed; copy
  (``copy.deepcopy``) before changing one, e.g. to send an update.
* Handlers run on the informer's task, in event order; keep them short
  (typically: put a key on a :class:`~skiff.client.workqueue.WorkQueue`).
  An exception in a handler is logged and does not stop the informer.
* After a re-list, objects that vanished meanwhile are reported through
  ``on_delete`` with their last known state; objects whose resourceVersion
  changed through ``on_update``.
* ``run()`` runs until ``stop()``; run it in a TaskGroup next to its users.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..api.errors import StatusError
from .clock import Clock, RealClock
from .resources import ResourceLike
from .rest import ApiClient, TransportError, WatchStream

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: A watch that ends sooner than this (real seconds) without any news counts as a failure.
SHORT_WATCH = 0.5


def object_key(obj: Obj) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects (client-go's key format)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def split_key(key: str) -> tuple[str, str]:
    """``"ns/name"`` -> ``("ns", "name")``; ``"name"`` -> ``("", "name")``."""
    ns, _, name = key.rpartition("/")
    return ns, name


@dataclass(frozen=True)
class Handler:
    on_add: Callable[[Obj], None] | None = None
    on_update: Callable[[Obj, Obj], None] | None = None
    on_delete: Callable[[Obj], None] | None = None


IndexFunc = Callable[[Obj], Iterable[str]]


class Informer:
    """List + watch cache of one resource (see module docstring)."""

    def __init__(self, client: ApiClient, resource: ResourceLike, *,
                 namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, page_size: int = 500,
                 transform: Callable[[Obj], Obj] | None = None, clock: Clock | None = None,
                 min_backoff: float = 0.8, max_backoff: float = 30.0,
                 watch_timeout: float = 300.0) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self._page_size = page_size
        self._transform = transform
        self._clock: Clock = clock or RealClock()
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._watch_timeout = watch_timeout
        self._store: dict[str, Obj] = {}
        self._handlers: list[Handler] = []
        self._indexers: dict[str, IndexFunc] = {}
        self._indices: dict[str, dict[str, set[str]]] = {}
        self._synced = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stream: WatchStream | None = None
        self.resource_version = ""
        #: How many times the cache was (re)filled from a full list.
        self.list_count = 0
        self._listed = asyncio.Condition()

    # -- configuration ------------------------------------------------------------

    def add_handler(self, *, on_add: Callable[[Obj], None] | None = None,
                    on_update: Callable[[Obj, Obj], None] | None = None,
                    on_delete: Callable[[Obj], None] | None = None) -> None:
        """Register callbacks; objects already cached are delivered to ``on_add`` now."""
        handler = Handler(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if on_add is not None:
            for obj in list(self._store.values()):
                self._call(on_add, obj)

    def add_index(self, name: str, func: IndexFunc) -> None:
        """Maintain a secondary index, e.g. pods by ``spec.nodeName``; query with :meth:`by_index`."""
        self._indexers[name] = func
        index: dict[str, set[str]] = {}
        for key, obj in self._store.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        self._indices[name] = index

    # -- reading the cache ----------------------------------------------------------

    @property
    def synced(self) -> bool:
        """True once the first list has filled the cache."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def wait_for_lists(self, count: int) -> None:
        """Wait until the cache has been filled from a full list ``count`` times."""
        async with self._listed:
            await self._listed.wait_for(lambda: self.list_count >= count)

    def get(self, key: str) -> Obj | None:
        """The cached object for ``namespace/name`` (or ``name``). Do not mutate it."""
        return self._store.get(key)

    def get_by(self, namespace: str | None, name: str) -> Obj | None:
        return self._store.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[Obj]:
        """Every cached object. Do not mutate them."""
        return list(self._store.values())

    def keys(self) -> builtins.list[str]:
        return [*self._store]

    def __len__(self) -> int:
        return len(self._store)

    def by_index(self, name: str, value: str) -> builtins.list[Obj]:
        keys = self._indices[name].get(value, ())
        return [self._store[k] for k in keys]

    # -- running --------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to return; an open watch is closed at once."""
        self._stopping.set()
        if self._stream is not None:
            self._stream.abort()

    async def run(self) -> None:
        """List, then watch, until :meth:`stop`; recover from every failure by itself."""
        need_list = True
        failures = 0  # consecutive attempts that made no progress
        while not self._stopping.is_set():
            try:
                if need_list:
                    await self._list_and_replace()
                    need_list = False
                    self._synced.set()
                opened = time.monotonic()
                if await self._watch_once() or time.monotonic() - opened >= SHORT_WATCH:
                    failures = 0
                    continue
                failures += 1  # closed at once without telling us anything: do not spin
            except StatusError as e:
                need_list = True
                failures += 1
                if e.code == 410:
                    log.info("%s: watch expired (%s); re-listing", self._what, e.message)
                    if failures == 1:
                        continue  # the normal case: re-list at once
                else:
                    log.warning("%s: %s %s; re-listing after back-off", self._what, e.code, e.message)
            except TransportError as e:
                log.warning("%s: %s", self._what, e)
                failures += 1
            if not self._stopping.is_set():
                await self._sleep(min(self._max_backoff,
                                      self._min_backoff * 2 ** min(failures - 1, 16)))

    @property
    def _what(self) -> str:
        return f"informer {self.resource.plural}"

    async def _list_and_replace(self) -> None:
        listing = await self.client.list(
            self.resource, namespace=self.namespace, label_selector=self.label_selector,
            field_selector=self.field_selector, page_size=self._page_size)
        self.list_count += 1
        fresh: dict[str, Obj] = {}
        for item in listing.items:
            obj = self._transform(item) if self._transform else item
            fresh[object_key(obj)] = obj
        for key in [k for k in self._store if k not in fresh]:
            self._delete(key, self._store[key])
        for key, obj in fresh.items():
            old = self._store.get(key)
            if old is None or _rv(old) != _rv(obj):
                self._put(key, obj)
        self.resource_version = listing.resource_version
        async with self._listed:
            self._listed.notify_all()

    async def _watch_once(self) -> bool:
        """Watch from the last resourceVersion until the stream ends; True if it delivered."""
        timeout = int(self._watch_timeout * (1.0 + random.random()))
        stream = self.client.watch(
            self.resource, namespace=self.namespace, resource_version=self.resource_version,
            label_selector=self.label_selector, field_selector=self.field_selector,
            timeout_seconds=timeout, allow_bookmarks=True)
        self._stream = stream
        started_at = self.resource_version
        try:
            if self._stopping.is_set():
                return False
            async for type_, raw in stream:
                obj = self._transform(raw) if self._transform else raw
                key = object_key(obj)
                if type_ == "DELETED":
                    self._delete(key, obj)
                elif type_ in ("ADDED", "MODIFIED"):
                    self._put(key, obj)
                self.resource_version = stream.resource_version
            # A clean end (timeoutSeconds); bookmarks may have moved the RV on.
            if stream.resource_version:
                self.resource_version = stream.resource_version
            return self.resource_version != started_at
        finally:
            self._stream = None
            await stream.close()

    # -- cache updates --------------------------------------------------------------

    def _put(self, key: str, obj: Obj) -> None:
        old = self._store.get(key)
        self._store[key] = obj
        self._reindex(key, old, obj)
        for h in self._handlers:
            if old is None:
                if h.on_add is not None:
                    self._call(h.on_add, obj)
            elif h.on_update is not None:
                self._call(h.on_update, old, obj)

    def _delete(self, key: str, last: Obj) -> None:
        old = self._store.pop(key, None)
        self._reindex(key, old, None)
        for h in self._handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, last)

    def _reindex(self, key: str, old: Obj | None, new: Obj | None) -> None:
        for name, func in self._indexers.items():
            index = self._indices[name]
            if old is not None:
                for value in func(old):
                    keys = index.get(value)
                    if keys is not None:
                        keys.discard(key)
                        if not keys:
                            del index[value]
            if new is not None:
                for value in func(new):
                    index.setdefault(value, set()).add(key)

    def _call(self, fn: Callable[..., None], *args: Obj) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s: event handler failed", self._what)

    async def _sleep(self, delay: float) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        timer = asyncio.ensure_future(self._clock.sleep(delay))
        try:
            await asyncio.wait((stop, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            timer.cancel()


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))
