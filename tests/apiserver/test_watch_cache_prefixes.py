"""Each watch-cache subscription gets exactly the events under its prefix.

The cache finds the subscriptions of an event by the key's ancestors
(``/registry/``, ``/registry/core/``, ``/registry/core/pods/`` ...); a prefix
that does not end at a ``/`` matches as a plain string prefix.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from skiff.apiserver.watchcache import Subscription, WatchCache
from skiff.storage.sqlite import SqliteBackend

KEYS = ["/registry/core/pods/a/web", "/registry/core/pods/ab/db", "/registry/core/pods/b/web",
        "/registry/core/configmaps/a/cfg", "/registry/apps/deployments/a/web"]


async def settled(cache: WatchCache, revision: int) -> None:
    async def caught_up() -> None:
        while cache.revision < revision:
            await asyncio.sleep(0)  # the pump is a task of this loop: give it its turns
    await asyncio.wait_for(caught_up(), 5)


def keys(sub: Subscription) -> list[str]:
    return [ev.key for ev in sub.drain()]


async def test_prefixes(tmp_path: Path) -> None:
    backend = SqliteBackend(str(tmp_path / "store.db"))
    await backend.start()
    cache = WatchCache(backend)
    await cache.start()
    try:
        prefixes = ["/registry/", "/registry/core/", "/registry/core/pods/", "/registry/core/pods/a/",
                    "/registry/core/pods/a", "/registry/apps/deployments/", "/registry/batch/"]
        subs = {p: cache.subscribe(p, backend.revision) for p in prefixes}
        for key in KEYS:
            await backend.create(key, b'{"metadata":{}}')
        await settled(cache, backend.revision)
        got = {p: keys(sub) for p, sub in subs.items() if sub is not None}
        assert got == {p: [k for k in KEYS if k.startswith(p)] for p in prefixes}
        assert got["/registry/core/pods/a"] == ["/registry/core/pods/a/web", "/registry/core/pods/ab/db"]

        closed = subs["/registry/core/pods/"]
        assert closed is not None
        await closed.close()
        await backend.create("/registry/core/pods/c/new", b'{"metadata":{}}')
        await settled(cache, backend.revision)
        assert keys(closed) == []
        assert [keys(sub) for p, sub in subs.items() if sub is not None and sub is not closed] == \
            [["/registry/core/pods/c/new"], ["/registry/core/pods/c/new"], [], [], [], []]
        assert cache.watchers == len(prefixes) - 1
    finally:
        await cache.stop()
        await backend.close()
