"""The built-in kinds, assembled into one immutable :class:`Registry`.

Each group lives in its own module (``core``, ``apps``, ``batch`` ...) and
exposes ``RESOURCES: tuple[ResourceInfo, ...]``.  :func:`builtin_registry`
collects them.  The API server, discovery and OpenAPI all read from a
``Registry``; nothing else keeps a list of kinds.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Iterable

from ..resource import ResourceInfo

#: Modules under ``skiff.api.kinds`` that define ``RESOURCES`` (missing ones are skipped
#: while the project grows; every listed module that exists must import cleanly).
GROUP_MODULES: tuple[str, ...] = (
    "core", "apps", "batch", "networking", "discovery", "coordination", "events",
    "storage", "autoscaling", "policy", "rbac", "scheduling", "authorization", "metrics",
    "apiextensions", "admissionregistration",
)


class Registry:
    """Lookup of served resources by group/version/plural, kind and short name."""

    def __init__(self, resources: Iterable[ResourceInfo]) -> None:
        self._all = tuple(resources)
        self._by_path = {(r.group, r.version, r.plural): r for r in self._all}
        self._by_kind = {(r.group, r.version, r.kind): r for r in self._all}

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._all)

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        return self._by_kind.get((group, version, kind))

    def group_versions(self) -> list[tuple[str, str]]:
        """(group, version) pairs in a stable order: core first, then groups by name,
        versions of a group newest-preferred first (v2 before v1 before v1beta1)."""
        seen: dict[tuple[str, str], None] = {}
        for r in self._all:
            seen[(r.group, r.version)] = None
        return sorted(seen, key=lambda gv: (gv[0] != "", gv[0], _version_rank(gv[1])))

    def resources(self, group: str, version: str) -> list[ResourceInfo]:
        return [r for r in self._all if r.group == group and r.version == version]

    def preferred_version(self, group: str) -> str:
        versions = [v for g, v in self.group_versions() if g == group]
        return versions[0] if versions else ""


def _version_rank(version: str) -> tuple[int, int, int]:
    """Kubernetes version priority: GA > beta > alpha, then higher numbers first."""
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    stage_rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (stage_rank, -major, -minor)


@lru_cache(maxsize=1)
def builtin_registry() -> Registry:
    resources: list[ResourceInfo] = []
    for name in GROUP_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        resources.extend(module.RESOURCES)
    return Registry(resources)
