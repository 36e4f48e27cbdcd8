"""Objects under one store prefix, kept in the API server's memory as they change.

::

    start():  range <prefix> (at revision R) ─▶ objects = {key: object}; on_load(objects)
              subscribe to the watch cache after R with a synchronous sink:
              every committed change is applied in the same pump pass that feeds
              HTTP watchers ─▶ on_change(key, object or None)

Objects carry ``metadata.resourceVersion`` (the revision of their last change), as
the API serves them.

Used by components of the API server that must see every write of a kind, also
those made through another API server on the same store (CustomResourceDefinitions,
admission webhook configurations).  Without a watch cache it reloads every second.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Callable

import orjson

from .context import ServerContext
from .watchcache import CacheEvent, Subscription

Obj = dict[str, Any]


class PrefixFollower:
    def __init__(self, ctx: ServerContext, prefix: str, *,
                 on_load: Callable[[dict[str, Obj]], None],
                 on_change: Callable[[str, Obj | None], None]) -> None:
        self.ctx = ctx
        self.prefix = prefix
        self.on_load = on_load
        self.on_change = on_change
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load every object (on_load has run when this returns), then follow changes."""
        sub = await self._load()
        self._task = asyncio.create_task(self._follow(sub), name=f"skiff-follow-{self.prefix}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _load(self) -> Subscription | None:
        result = await self.ctx.backend.range(self.prefix)
        self.on_load({kv.key: _with_revision(orjson.loads(kv.value), kv.mod_revision) for kv in result.kvs})
        cache = self.ctx.watch_cache
        sub = cache.subscribe(self.prefix, result.revision) if cache is not None else None
        if sub is None:
            return None
        for ev in sub.drain():
            self._apply(ev)
        sub.sink = self._apply
        return sub

    async def _follow(self, sub: Subscription | None) -> None:
        while True:
            if sub is None:  # no watch cache (or it stopped): poll slowly
                await asyncio.sleep(1.0)
                sub = await self._load()
                continue
            await sub.wait(3600.0)
            for ev in sub.drain():
                self._apply(ev)
            if sub.closed:
                await sub.close()
                sub = await self._load()

    def _apply(self, ev: CacheEvent) -> bool:
        self.on_change(ev.key, None if ev.type == "DELETED" else _with_revision(orjson.loads(ev.value), ev.revision))
        return True


def _with_revision(obj: Obj, revision: int) -> Obj:
    """The stored form lacks resourceVersion (it is the store's revision): put it back."""
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return obj
