"""The CustomResourceDefinitions in memory, and the registry they make the server serve.

::

    start():  every stored CRD, then each change as the watch cache commits it
              (:class:`~skiff.apiserver.following.PrefixFollower`)
    each change:  definitions[name] = crd (or gone)
                  registry = built-in kinds + every served version of each CRD whose
                             names are accepted  ──▶ ctx.serve(registry, views)
                  on_change(name)  (the controller reconciles that definition)

Discovery and the OpenAPI documents follow ``ctx.registry_generation``.  A custom
kind never shadows a built-in one: a definition naming a served (group, plural)
or (group, version, kind) is left out.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from ...api.kinds import Registry
from ...api.kinds.apiextensions.crd import GROUP
from ...api.resource import ResourceInfo
from ..context import ServerContext
from ..conversion import StorageView
from ..following import PrefixFollower
from ..objects import REGISTRY_ROOT
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
        self._built: dict[str, tuple[str, list[ResourceInfo]]] = {}
        self._follower = PrefixFollower(ctx, PREFIX, on_load=self._loaded, on_change=self._changed)

    # -- feeding ----------------------------------------------------------------------

    async def start(self) -> None:
        await self._follower.start()

    async def stop(self) -> None:
        await self._follower.stop()

    def _loaded(self, objects: dict[str, Obj]) -> None:
        self.definitions = {crd["metadata"]["name"]: crd for crd in objects.values()}
        self._install()
        for name in list(self.definitions):
            self.on_change(name)

    def apply(self, crd: Obj, *, deleted: bool = False) -> None:
        """A definition this server has just written (or deleted): serve it now."""
        self._changed(PREFIX + crd["metadata"]["name"], None if deleted else crd)

    def _changed(self, key: str, crd: Obj | None) -> None:
        name = key[len(PREFIX):]
        if crd is None:
            self.definitions.pop(name, None)
            self._built.pop(name, None)
        else:
            self.definitions[name] = crd
        self._install()
        self.on_change(name)

    # -- the registry -------------------------------------------------------------------

    def _install(self) -> None:
        builtin_paths = {(r.group, r.plural) for r in self.builtin}
        builtin_kinds = {(r.group, r.version, r.kind) for r in self.builtin}
        custom: list[ResourceInfo] = []
        views: dict[tuple[str, str, str], StorageView] = {}
        served_before, self.by_resource = self.by_resource, {}
        for name in sorted(self.definitions):
            crd = self.definitions[name]
            if not is_served(crd):
                continue
            infos = self._records(crd)
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
        for group, plural in served_before.keys() - self.by_resource.keys():
            if self.ctx.watch_cache is not None:  # as Kubernetes: the kind's open watches end
                self.ctx.watch_cache.end_watches(f"{REGISTRY_ROOT}{group}/{plural}/")

    def _records(self, crd: Obj) -> list[ResourceInfo]:
        """``served_resources(crd)``, rebuilt only when the definition changed (every change of
        any definition reinstalls the registry; schemas and columns are compiled once)."""
        name, revision = crd["metadata"]["name"], crd["metadata"].get("resourceVersion", "")
        cached = self._built.get(name)
        if cached is None or cached[0] != revision:
            cached = self._built[name] = (revision, served_resources(crd))
        return cached[1]

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
