"""Admission that needs the namespace's policy objects: LimitRanger and ResourceQuota.

The write path (:mod:`skiff.apiserver.writes`) calls :meth:`Admission.admit` once
per create and update, after the kind's own hooks (Priority for pods, ClusterIP
allocation for Services) and before the object is stored::

    admit(info, obj, old)
      subresource write, cluster-scoped kind ─▶ nothing to do
      namespace has no LimitRange and no ResourceQuota ─▶ nothing to do  (two dict lookups)
      LimitRanger: fill defaults (Pod create) ─▶ re-validate the pod if it changed (422)
                   ─▶ check min/max/ratio (403)
      ResourceQuota: check and charge the namespace's quotas (403) ─▶ see quota.py

It also owns the in-memory LimitRanges and ResourceQuotas both read
(:class:`~.namespaced.NamespacedObjects`), registered as those kinds' hooks by
:meth:`Admission.install` and rebuilt from the store at start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ...api.errors import forbidden, invalid
from ...api.kinds import Registry
from ...api.resource import ResourceInfo
from ...storage.interface import Backend
from .limitranger import LimitRanger
from .namespaced import NamespacedObjects
from .quota import QUOTA_PREFIX, QuotaAdmission

if TYPE_CHECKING:
    from ..context import ServerContext

Obj = dict[str, Any]

LIMIT_RANGE_PREFIX = "/registry/core/limitranges/"

__all__ = ["Admission"]


class Admission:
    """LimitRanger and ResourceQuota admission over one store."""

    def __init__(self, backend: Backend, registry: Registry, clock: Callable[[], float]) -> None:
        self.limit_ranges = NamespacedObjects(LIMIT_RANGE_PREFIX)
        self.quotas = NamespacedObjects(QUOTA_PREFIX)
        self.limit_ranger = LimitRanger(self.limit_ranges)
        self.quota = QuotaAdmission(backend, registry, self.quotas, clock)

    def install(self, ctx: "ServerContext") -> None:
        """Run on ``ctx``'s writes; keep the in-memory objects current through kind hooks."""
        ctx.admission = self
        ctx.hooks[("", "limitranges")] = self.limit_ranges
        ctx.hooks[("", "resourcequotas")] = self.quotas

    async def rebuild(self, backend: Backend) -> None:
        await self.limit_ranges.rebuild(backend)
        await self.quotas.rebuild(backend)

    async def admit(self, info: ResourceInfo, obj: Obj, old: Obj | None, *,
                    dry_run: bool = False, subresource: str = "") -> None:
        """Complete or refuse a write of ``obj`` (``old``: the stored object, on updates)."""
        if subresource or not info.namespaced:
            return
        namespace = obj["metadata"].get("namespace") or ""
        if namespace in self.limit_ranges and info.group == "":
            self._limit(info, obj, old)
        if namespace in self.quotas:
            await self.quota.admit(info, obj, old, dry_run=dry_run)

    def _limit(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        if self.limit_ranger.default(info.plural, obj, old):
            causes = info.validate(obj, old)
            if causes:  # a default that contradicts the pod's own values
                raise invalid(info.kind, info.group, obj["metadata"].get("name", ""), causes)
        why = self.limit_ranger.violations(info.plural, obj, old)
        if why:
            raise forbidden(info.plural, info.group, obj["metadata"].get("name", ""), why)
