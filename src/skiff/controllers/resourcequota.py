"""The ResourceQuota controller: keeps every quota's ``status`` true to the namespace.

Quota admission (in the API server) adds each new object's usage to
``status.used`` as it admits it; this controller is the other half: it
recalculates usage from the objects themselves, so what admission cannot see --
a pod that was deleted, finished, or got stuck terminating; a Service that
stopped being a NodePort; a charge whose write then failed -- is given back, and
``kubectl describe quota`` shows the truth::

    quota added, spec.hard changed       ──▶ enqueue the quota
    tracked object deleted, pod finished,
      Service type changed               ──▶ enqueue the namespace's quotas tracking it
    every resync_period (5 min)          ──▶ every quota again (full resync)
                │
                ▼
    reconcile(ns/name):
      kinds the quota counts ──▶ their informers ("monitors", started on first need,
                                 kept after; non-core kinds resolved by discovery)
      used := status.used with every countable resource recalculated
              (skiff.api.quotausage.calculate_usage over the informer caches)
      status := {hard: spec.hard, used: used masked to hard}
      changed? PUT resourcequotas/<name>/status with the quota's resourceVersion
              (a 409 -- admission charged meanwhile -- retries from fresh caches)

As in Kubernetes, object *additions* never trigger a recalculation: admission has
already counted them, and a recalculation racing a burst of creates could only
count fewer objects than were charged.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any, ClassVar

from ..api.errors import StatusError
from ..api.quotausage import calculate_usage, evaluator_for, kinds_to_list, pod_counts
from ..api.resourcelist import equal, format_list, mask, parse_list
from ..client.informer import Informer
from ..client.resources import Resource, ResourceLike
from .discovery import ApiResources, discover
from .reconciler import Controller, ControllerContext

Obj = dict[str, Any]

RESOURCE_QUOTAS = Resource("", "v1", "resourcequotas", kind="ResourceQuota")
NAMESPACE_INDEX = "namespace"
DEFAULT_RESYNC_PERIOD = 300.0  # kube-controller-manager's --resource-quota-sync-period
REDISCOVER_AFTER = 30.0  # seconds before an unknown count/<kind> is looked up again


def _namespace_of(obj: Obj) -> list[str]:
    return [str((obj.get("metadata") or {}).get("namespace") or "")]


def _service_type(svc: Obj) -> str:
    kind = (svc.get("spec") or {}).get("type")
    return kind if kind in ("NodePort", "LoadBalancer") else ""


class ResourceQuotaController(Controller):
    """Recalculates ResourceQuota status (see module docstring)."""

    name: ClassVar[str] = "resourcequota"
    workers: ClassVar[int] = 5  # --concurrent-resource-quota-syncs
    component: ClassVar[str] = "resourcequota-controller"

    def __init__(self, ctx: ControllerContext, *,
                 resync_period: float = DEFAULT_RESYNC_PERIOD) -> None:
        super().__init__(ctx)
        self.resync_period = resync_period
        self.quotas: Informer = self.informer(RESOURCE_QUOTAS)
        self.quotas.add_index(NAMESPACE_INDEX, _namespace_of)
        self.quotas.add_handler(on_add=self.enqueue, on_update=self._quota_changed)
        self._monitors: dict[tuple[str, str], Informer] = {}
        self._discovered: ApiResources | None = None
        self._discovered_at = 0.0

    # -- events ---------------------------------------------------------------------------

    def _quota_changed(self, old: Obj, new: Obj) -> None:
        """Only intent matters: status changes are admission's and this controller's own."""
        spec = new.get("spec") or {}
        if spec != (old.get("spec") or {}) or not equal(
                parse_list(spec.get("hard")), parse_list((new.get("status") or {}).get("hard"))):
            self.enqueue(new)

    def _replenish(self, group: str, plural: str, obj: Obj) -> None:
        """Something of ``obj``'s kind was freed: recalculate the quotas counting that kind."""
        namespace = _namespace_of(obj)[0]
        evaluator = evaluator_for(group, plural)
        if evaluator is None:
            return
        for quota in self.quotas.by_index(NAMESPACE_INDEX, namespace):
            if evaluator.matching((quota.get("status") or {}).get("hard") or {}):
                self.enqueue(quota)

    def _watch_kind(self, group: str, plural: str, informer: Informer) -> None:
        def deleted(obj: Obj) -> None:
            self._replenish(group, plural, obj)

        def updated(old: Obj, new: Obj) -> None:
            if (group, plural) == ("", "pods"):
                now = self._now()
                if pod_counts(old, now) and not pod_counts(new, now):
                    self._replenish(group, plural, new)
            elif (group, plural) == ("", "services") and _service_type(old) != _service_type(new):
                self._replenish(group, plural, new)

        informer.add_handler(on_update=updated, on_delete=deleted)

    # -- monitors -------------------------------------------------------------------------

    async def _monitor(self, group: str, plural: str) -> Informer | None:
        """The (started, synced) informer of a kind; None when the server does not serve it."""
        informer = self._monitors.get((group, plural))
        if informer is None:
            resource = await self._resolve(group, plural)
            if resource is None:
                return None
            informer = self.ctx.informers.informer(resource)
            informer.add_index(NAMESPACE_INDEX, _namespace_of)
            self._watch_kind(group, plural, informer)
            self._monitors[(group, plural)] = informer
        await informer.wait_synced()
        return informer

    async def _resolve(self, group: str, plural: str) -> ResourceLike | None:
        if group == "":
            return Resource("", "v1", plural)
        for attempt in range(2):
            stale = self.clock.monotonic() - self._discovered_at > REDISCOVER_AFTER
            if self._discovered is None or (attempt and stale):
                self._discovered = await discover(self.client)
                self._discovered_at = self.clock.monotonic()
            for res in self._discovered.preferred("list", "watch", namespaced=True):
                if (res.group, res.plural) == (group, plural):
                    return res
        return None

    # -- reconcile ------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), timezone.utc)

    async def reconcile(self, key: str) -> float | None:
        quota = self.quotas.get(key)
        if quota is None:
            return None
        namespace = _namespace_of(quota)[0]
        caches: dict[tuple[str, str], Informer] = {}
        for group, plural in kinds_to_list(quota):
            informer = await self._monitor(group, plural)
            if informer is not None:
                caches[(group, plural)] = informer

        def objects(group: str, plural: str) -> list[Obj]:
            cache = caches.get((group, plural))
            return cache.by_index(NAMESPACE_INDEX, namespace) if cache is not None else []

        hard = parse_list((quota.get("spec") or {}).get("hard"))
        status = quota.get("status") or {}
        used = parse_list(status.get("used"))
        used.update(calculate_usage(quota, objects, self._now()))
        used = mask(used, hard)
        if equal(hard, parse_list(status.get("hard"))) and equal(used, parse_list(status.get("used"))):
            return self.resync_period
        body = copy.deepcopy(quota)
        body["status"] = {"hard": format_list(hard), "used": format_list(used)}
        try:
            await self.client.update(RESOURCE_QUOTAS, body, subresource="status")
        except StatusError as err:
            if err.code == 404:
                return None
            raise
        return self.resync_period
