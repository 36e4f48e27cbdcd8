"""The CustomResourceDefinitions in memory, and the registry they make the server serve.

::

    start():  range /registry/apiextensions.k8s.io/customresourcedefinitions/ (at revision R)
              subscribe to the watch cache after R with a synchronous sink
    each change:  definitions[name] = crd (or gone)
                  registry = built-in kinds + every served version of each CRD whose
                             names are accepted  ──▶ ctx.serve(registry, views)
                  on_change(name)  (the controller reconciles that definition)

Discovery and the OpenAPI documents follow ``ctx.registry_generation``.  A custom
kind never shadows a built-in one: a definition naming a served (group, plural)
or (group, version, kind) is left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Callable

import orjson

from ...api.kinds import Registry
from ...api.kinds.apiextensions.crd import GROUP
from ...api.resource import ResourceInfo
from ..context import ServerContext
from ..conversion import StorageView
from ..objects import REGISTRY_ROOT
from ..watchcache import CacheEvent, Subscription
from .kinds import served_resources, storage_conversions, storage_version

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PREFIX = f"{REGISTRY_ROOT}{GROUP}/customresourcedefinitions/"


def condition_true(crd: Obj, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


def is_served(crd: Obj) -> bool:
    """Kubernetes serves a definition's objects once its names are accepted."""
    return condition_true(crd, "Established") or condition_true(crd, "NamesAccepted")


class ServedDefinitions:
    """Every stored CRD by name, kept current; installs the registry they imply."""

    def __init__(self, ctx: ServerContext, on_change: Callable[[str], None]) -> None:
        self.ctx = ctx
        self.builtin = ctx.registry
        self.definitions: dict[str, Obj] = {}
        #: (group, plural) -> the CRD serving it (for the controller and the terminating check)
        self.by_resource: dict[tuple[str, str], Obj] = {}
        self.on_change = on_change
        self._task: asyncio.Task[None] | None = None

    # -- feeding ----------------------------------------------------------------------

    async def start(self) -> None:
        sub = await self._load()
        self._task = asyncio.create_task(self._follow(sub), name="skiff-crd-cache")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _load(self) -> Subscription | None:
        result = await self.ctx.backend.range(PREFIX)
        self.definitions = {}
        for kv in result.kvs:
            crd = orjson.loads(kv.value)
            self.definitions[crd["metadata"]["name"]] = crd
        self._install()
        for name in list(self.definitions):
            self.on_change(name)
        cache = self.ctx.watch_cache
        sub = cache.subscribe(PREFIX, result.revision) if cache is not None else None
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
        name = ev.key[len(PREFIX):]
        if ev.type == "DELETED":
            self.definitions.pop(name, None)
        else:
            self.definitions[name] = orjson.loads(ev.value)
        self._install()
        self.on_change(name)
        return True

    # -- the registry -------------------------------------------------------------------

    def _install(self) -> None:
        builtin_paths = {(r.group, r.plural) for r in self.builtin}
        builtin_kinds = {(r.group, r.version, r.kind) for r in self.builtin}
        custom: list[ResourceInfo] = []
        views: dict[tuple[str, str, str], StorageView] = {}
        self.by_resource = {}
        for name in sorted(self.definitions):
            crd = self.definitions[name]
            if not is_served(crd):
                continue
            infos = served_resources(crd)
            if any((i.group, i.plural) in builtin_paths or (i.group, i.version, i.kind) in builtin_kinds
                   for i in infos):
                log.warning("custom resource %s would shadow a built-in resource: not served", name)
                continue
            stored = storage_version(crd)
            storage_info = next((i for i in infos if i.version == stored), None)
            for info in infos:
                custom.append(info)
                self.by_resource[(info.group, info.plural)] = crd
                if storage_info is not None and info is not storage_info:
                    to_storage, from_storage = storage_conversions(crd, info)
                    views[(info.group, info.version, info.plural)] = StorageView(
                        info, storage_info, to_storage, from_storage)
        self.ctx.serve(Registry([*self.builtin, *custom]), views)

    def serves(self, name: str) -> bool:
        """Whether the installed registry serves the definition ``name`` (under its accepted names)."""
        return any(crd["metadata"]["name"] == name for crd in self.by_resource.values())

    def resource_info(self, crd: Obj) -> ResourceInfo | None:
        """The served record of ``crd``'s storage version (where its objects live)."""
        spec = crd.get("spec") or {}
        names = (crd.get("status") or {}).get("acceptedNames") or {}
        group, plural = str(spec.get("group", "")), str(names.get("plural", ""))
        info = self.ctx.registry.get(group, storage_version(crd), plural)
        if info is None:  # the storage version is not served: any served one reaches the objects
            info = next((r for r in self.ctx.registry if (r.group, r.plural) == (group, plural)), None)
        return info
