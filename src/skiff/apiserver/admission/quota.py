"""ResourceQuota admission: charge each write to the namespace's quotas, or refuse it.

As Kubernetes' ResourceQuota plugin, on create of any quota-tracked object (and on
update of Services and PersistentVolumeClaims, whose usage can grow)::

    quotas of the namespace (in memory) ── none ──▶ admit
        │ a quota whose status does not yet cover spec.hard?
        │     calculate its usage from the store now (see below)
        ▼
    each quota the object matches (a tracked resource, every scope):
        pods and cpu/memory tracked but unset ─▶ 403 failed quota: q: must specify ...
        ▼
    delta = usage(new) - usage(old)   (zeros dropped; nothing left ─▶ admit)
        ▼
    every matching quota: used + delta <= hard ?
        no ─▶ 403 exceeded quota: q, requested: cpu=2, used: cpu=1, limited: cpu=2
        ▼ (dry run stops here)
    write status.used = used + delta, compare-and-swap on the quota's revision;
    on a conflict re-read that quota, check again and retry
        ▼
    the object is written (by the caller)

**Race safety.**  The charge is written to the quota *before* the object: two
creates can never both fit under the last free slot, because only one of their
compare-and-swaps on the quota succeeds and the other re-checks against the
new ``status.used``.  Within this server, charges to one namespace are also
taken one at a time (an asyncio lock), so a burst of creates never spins on
conflicts.  A charge whose object write then fails stays counted until the
ResourceQuota controller recalculates (as in Kubernetes); a create of a name that
already exists is refused before it is charged.

**Uncalculated quotas.**  Kubernetes ignores a quota until the controller has filled
its ``status.hard``; skiff instead calculates such a quota's usage from the store
on the spot (only once per new quota or changed ``spec.hard``), so "create a quota,
then create pods" is enforced at once.
"""

from __future__ import annotations

import asyncio
import weakref
from datetime import datetime, timezone
from typing import Any, Callable

import orjson

from ...api.errors import StatusError, already_exists, forbidden, stale_conflict
from ...api.kinds import Registry
from ...api.quotausage import (
    Evaluator, calculate_usage, evaluator_for, kind_for_name, kinds_to_list, matches,
)
from ...api.resource import ResourceInfo
from ...api.resourcelist import (
    ResourceList, add, equal, exceeded, format_list, mask, negative, parse_list, pretty,
    remove_zeros, subtract_floor,
)
from ...storage.interface import Backend, KeyNotFound, RevisionMismatch
from ..objects import ObjectStore, collection_prefix, decode, object_key
from .namespaced import NamespacedObjects

Obj = dict[str, Any]

QUOTA_PREFIX = "/registry/core/resourcequotas/"
#: Conflicts come only from other writers of the quota (the controller): few retries do.
MAX_ATTEMPTS = 10


def _copy(obj: Obj) -> Obj:
    copied: Obj = orjson.loads(orjson.dumps(obj))
    return copied


def is_calculated(quota: Obj) -> bool:
    """``status.hard`` is ``spec.hard`` and every countable resource has a ``status.used``."""
    spec_hard = parse_list((quota.get("spec") or {}).get("hard"))
    status = quota.get("status") or {}
    if not equal(spec_hard, parse_list(status.get("hard"))):
        return False
    used = status.get("used") or {}
    return all(name in used for name in spec_hard if kind_for_name(name) is not None)


class QuotaAdmission:
    """Checks and charges writes against ResourceQuotas (see module docstring)."""

    def __init__(self, backend: Backend, registry: Registry, quotas: NamespacedObjects,
                 clock: Callable[[], float]) -> None:
        self.backend = backend
        self.store = ObjectStore(backend)
        self.registry = registry
        self.quotas = quotas
        self.clock = clock
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, namespace: str) -> asyncio.Lock:
        lock = self._locks.get(namespace)
        if lock is None:
            lock = self._locks[namespace] = asyncio.Lock()
        return lock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)

    async def admit(self, info: ResourceInfo, obj: Obj, old: Obj | None, *, dry_run: bool) -> None:
        evaluator = evaluator_for(info.group, info.plural)
        if evaluator is None or (old is not None and not evaluator.handles_update):
            return
        namespace = obj["metadata"].get("namespace") or ""
        lock = self._lock(namespace)
        async with lock:
            await self._admit(info, evaluator, namespace, obj, old, dry_run)

    async def _admit(self, info: ResourceInfo, evaluator: Evaluator, namespace: str, obj: Obj,
                     old: Obj | None, dry_run: bool) -> None:
        now = self._now()
        for quota in self.quotas.items(namespace):
            if not is_calculated(quota):
                await self._calculate(quota, now)
        name = obj["metadata"].get("name") or ""
        matched: list[str] = []
        for quota in self.quotas.items(namespace):
            hard = parse_list((quota.get("status") or {}).get("hard"))
            if not matches(evaluator, quota, hard, obj):
                continue
            why = evaluator.constraints(evaluator.matching(hard), obj)
            if why:
                raise forbidden(info.plural, info.group, name,
                                f"failed quota: {quota['metadata']['name']}: {why}")
            matched.append(quota["metadata"]["name"])
        if not matched:
            return
        delta = evaluator.usage(obj, now)
        below_zero = negative(delta)
        if below_zero:
            raise forbidden(info.plural, info.group, name,
                            f"quota usage is negative for resource(s): {','.join(below_zero)}")
        if old is not None:
            delta = subtract_floor(delta, evaluator.usage(old, now))
        delta = remove_zeros(delta)
        if not delta:
            return
        for quota_name in matched:  # every quota must allow it before any is charged
            current = self.quotas.get(namespace, quota_name)
            if current is not None:
                self._charged(info, name, current, delta)
        if dry_run:
            return
        if old is None and not obj["metadata"].get("generateName"):
            if await self.backend.get(object_key(info, namespace, name)) is not None:
                raise already_exists(info.plural, info.group, name)
        for quota_name in matched:
            await self._charge(info, name, namespace, quota_name, delta)

    def _charged(self, info: ResourceInfo, name: str, quota: Obj, delta: ResourceList) -> Obj | None:
        """``quota`` with ``delta`` added to its used (None: it tracks none of it); 403 if over."""
        status = quota.get("status") or {}
        hard = parse_list(status.get("hard"))
        used = parse_list(status.get("used"))
        requested = mask(delta, hard)
        if not requested:
            return None
        new_used = add(used, requested)
        over = exceeded(mask(new_used, requested), hard)
        if over:
            raise forbidden(info.plural, info.group, name,
                            f"exceeded quota: {quota['metadata']['name']}, "
                            f"requested: {pretty(mask(requested, over))}, "
                            f"used: {pretty(mask(used, over))}, limited: {pretty(mask(hard, over))}")
        updated = _copy(quota)
        updated["status"] = {**status, "used": format_list(new_used)}
        return updated

    async def _charge(self, info: ResourceInfo, name: str, namespace: str, quota_name: str,
                      delta: ResourceList) -> None:
        key = f"{QUOTA_PREFIX}{namespace}/{quota_name}"
        for _ in range(MAX_ATTEMPTS):
            current = self.quotas.get(namespace, quota_name)
            if current is None:
                return  # deleted meanwhile: nothing to charge
            updated = self._charged(info, name, current, delta)
            if updated is None:
                return
            if await self._write(key, updated, current):
                return
        raise stale_conflict("resourcequotas", "", quota_name)

    async def _write(self, key: str, updated: Obj, current: Obj) -> bool:
        """CAS ``updated`` over ``current``; False (cache refreshed) when the quota moved."""
        try:
            await self.store.update(key, updated, int(current["metadata"]["resourceVersion"]))
        except RevisionMismatch:
            kv = await self.backend.get(key)
            if kv is None:
                self.quotas.drop(current)
            else:
                self.quotas.put(decode(kv))
            return False
        except KeyNotFound:
            self.quotas.drop(current)
            return True
        self.quotas.put(updated)
        return True

    # -- quotas the controller has not seen yet -------------------------------------------

    async def _calculate(self, quota: Obj, now: datetime) -> None:
        """Fill ``status`` of an uncalculated quota from the namespace's stored objects."""
        meta = quota["metadata"]
        namespace, quota_name = meta.get("namespace") or "", meta["name"]
        key = f"{QUOTA_PREFIX}{namespace}/{quota_name}"
        for _ in range(MAX_ATTEMPTS):
            current = self.quotas.get(namespace, quota_name)
            if current is None or is_calculated(current):
                return
            objects: dict[tuple[str, str], list[Obj]] = {}
            for group, plural in kinds_to_list(current):
                kind = self._resource(group, plural)
                if kind is not None:
                    listed = await self.backend.range(collection_prefix(kind, namespace))
                    objects[(group, plural)] = [decode(kv) for kv in listed.kvs]
            counted = calculate_usage(current, lambda g, p: objects.get((g, p), []), now)
            spec_hard = parse_list((current.get("spec") or {}).get("hard"))
            used = parse_list((current.get("status") or {}).get("used"))
            used.update(counted)
            updated = _copy(current)
            updated["status"] = {"hard": format_list(spec_hard),
                                 "used": format_list(mask(used, spec_hard))}
            if await self._write(key, updated, current):
                return
        raise StatusError(500, "InternalError",
                          f"Internal error occurred: unable to calculate usage of quota {quota_name}")

    def _resource(self, group: str, plural: str) -> ResourceInfo | None:
        info: ResourceInfo
        for info in self.registry:
            if info.group == group and info.plural == plural and info.namespaced:
                return info
        return None
