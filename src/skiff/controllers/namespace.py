"""The namespace controller: empties a deleted namespace, then lets it go.

Deleting a Namespace only marks it (``deletionTimestamp``, ``status.phase:
Terminating``); the API server keeps it while ``spec.finalizers`` holds
``kubernetes``.  This controller does the work that finalizer stands for::

    namespace Terminating, "kubernetes" in spec.finalizers
      │
      ├─ discover every namespaced resource that can be deleted (as the API says)
      ├─ for each: DELETE the collection in the namespace (propagation Background;
      │            list + DELETE each when deletecollection is not served)
      ├─ list what is left: counts per resource, finalizers that hold objects,
      │            graceful pods still terminating
      ├─ status.conditions (as Kubernetes reports them):
      │     NamespaceDeletionDiscoveryFailure  DiscoveryFailed | ResourcesDiscovered
      │     NamespaceDeletionGroupVersionParsingFailure          ParsedGroupVersions
      │     NamespaceDeletionContentFailure    ContentDeletionFailed | ContentDeleted
      │     NamespaceContentRemaining          SomeResourcesRemain | ContentRemoved
      │     NamespaceFinalizersRemaining       SomeFinalizerRemain | ContentHasNoFinalizers
      ├─ something left? look again soon (backing off, at most ``max_recheck`` s)
      └─ empty: PUT namespaces/<ns>/finalize without "kubernetes"
               -> the API server deletes the Namespace (kubectl delete ns returns)
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timezone
from typing import Any, ClassVar

from ..api.errors import StatusError
from ..api.kinds.meta.cells import format_time, parse_time
from ..client.informer import Informer
from ..client.resources import NAMESPACES, resource_path
from ..client.rest import ApiClient, TransportError
from .discovery import ApiResource, discover
from .reconciler import Controller, ControllerContext

Obj = dict[str, Any]
log = logging.getLogger(__name__)

FINALIZER = "kubernetes"

CONDITION_TYPES = ("NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
                   "NamespaceDeletionContentFailure", "NamespaceContentRemaining",
                   "NamespaceFinalizersRemaining")
#: (reason, message) of each condition when all is well (status False).
OK: dict[str, tuple[str, str]] = {
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": ("ParsedGroupVersions",
                                                    "All legacy kube types successfully parsed"),
    "NamespaceDeletionContentFailure": ("ContentDeleted",
                                        "All content successfully deleted, may be waiting on finalization"),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


class Remaining:
    """What one pass found still in the namespace."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}  # "pods." / "deployments.apps" -> objects left
        self.finalizers: dict[str, int] = {}  # finalizer -> objects it holds
        self.errors: list[str] = []
        self.estimate = 0.0  # seconds until graceful deletions should be done

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())


class NamespaceController(Controller):
    """Deletes the content of Terminating namespaces (see module docstring)."""

    name: ClassVar[str] = "namespace"
    workers: ClassVar[int] = 4
    component: ClassVar[str] = "namespace-controller"

    def __init__(self, ctx: ControllerContext, *, min_recheck: float = 0.1,
                 max_recheck: float = 5.0) -> None:
        super().__init__(ctx)
        self.min_recheck = min_recheck
        self.max_recheck = max_recheck
        self._passes: dict[str, int] = {}  # namespace -> passes that found content left
        self.namespaces: Informer = self.informer(NAMESPACES)
        self.namespaces.add_handler(on_add=self._maybe_enqueue,
                                    on_update=lambda _old, new: self._maybe_enqueue(new))

    def _maybe_enqueue(self, ns: Obj) -> None:
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.enqueue(ns)

    async def reconcile(self, key: str) -> float | None:
        cached = self.namespaces.get(key)
        if cached is None or not (cached.get("metadata") or {}).get("deletionTimestamp"):
            self._passes.pop(key, None)
            return None
        try:  # act on the latest state, not the cache's
            ns = await self.client.get(NAMESPACES, key)
        except StatusError as e:
            if e.code == 404:
                self._passes.pop(key, None)
                return None
            raise
        meta = ns.get("metadata") or {}
        if not meta.get("deletionTimestamp") or FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return None

        found = await discover(self.client)
        deletable = found.preferred("delete", namespaced=True)
        remaining = Remaining()
        policy = "Orphan" if "orphan" in (meta.get("finalizers") or []) else "Background"
        for res in deletable:
            await self._delete_content(res, key, policy, remaining)
        ns = await self._update_conditions(ns, found.failed, remaining)
        if found.failed or remaining.errors or not remaining.empty:
            passes = self._passes.get(key, 0)
            self._passes[key] = passes + 1
            delay = min(self.max_recheck, self.min_recheck * 2 ** passes)
            if remaining.estimate > 0:
                delay = min(delay, remaining.estimate)
            return float(max(delay, self.min_recheck))
        self._passes.pop(key, None)
        await self._finalize(ns)
        return None

    # -- content ----------------------------------------------------------------

    async def _delete_content(self, res: ApiResource, namespace: str, policy: str,
                              remaining: Remaining) -> None:
        label = f"{res.plural}.{res.group}"
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy}
        try:
            if res.supports("deletecollection"):
                await self.client.request("DELETE", resource_path(res, namespace=namespace),
                                          body=options)
            elif res.supports("list"):
                for item in (await self.client.list(res, namespace=namespace)).items:
                    await _delete_one(self.client, res, item, policy)
            if not res.supports("list"):
                return
            items = (await self.client.list(res, namespace=namespace)).items
        except (StatusError, TransportError) as e:
            if isinstance(e, StatusError) and e.code in (404, 405):
                return  # not really served in this namespace
            remaining.errors.append(f"{label}: {e}")
            return
        if not items:
            return
        remaining.counts[label] = len(items)
        now = self.clock.time()
        for item in items:
            item_meta = item.get("metadata") or {}
            for finalizer in item_meta.get("finalizers") or []:
                remaining.finalizers[finalizer] = remaining.finalizers.get(finalizer, 0) + 1
            deadline = parse_time(item_meta.get("deletionTimestamp"))
            if deadline is not None and deadline.timestamp() > now:
                remaining.estimate = max(remaining.estimate, deadline.timestamp() - now)

    async def _update_conditions(self, ns: Obj, failed: dict[str, str], remaining: Remaining) -> Obj:
        problems: dict[str, tuple[str, str]] = {}
        if failed:
            problems["NamespaceDeletionDiscoveryFailure"] = (
                "DiscoveryFailed", f"Discovery failed for some groups, {len(failed)} failing: "
                + ", ".join(f"{gv}: {err}" for gv, err in sorted(failed.items())))
        if remaining.errors:
            problems["NamespaceDeletionContentFailure"] = (
                "ContentDeletionFailed", f"Failed to delete all resource types, {len(remaining.errors)} "
                f"remaining: {', '.join(sorted(remaining.errors))}")
        if not remaining.empty:
            left = sorted(f"{label} has {n} resource instances" for label, n in remaining.counts.items())
            problems["NamespaceContentRemaining"] = ("SomeResourcesRemain",
                                                     f"Some resources are remaining: {', '.join(left)}")
        if remaining.finalizers:
            held = sorted(f"{f} in {n} resource instances" for f, n in remaining.finalizers.items())
            problems["NamespaceFinalizersRemaining"] = ("SomeFinalizerRemain",
                                                        f"Some finalizers are remaining: {', '.join(held)}")
        status = ns.get("status") or {}
        old = {c.get("type"): c for c in status.get("conditions") or []}
        now = format_time(datetime.fromtimestamp(self.clock.time(), timezone.utc))
        conditions = [c for c in status.get("conditions") or [] if c.get("type") not in CONDITION_TYPES]
        for ctype in CONDITION_TYPES:
            state = "True" if ctype in problems else "False"
            reason, message = problems.get(ctype) or OK[ctype]
            prev = old.get(ctype)
            since = prev.get("lastTransitionTime") if prev and prev.get("status") == state else now
            conditions.append({"type": ctype, "status": state, "lastTransitionTime": since,
                               "reason": reason, "message": message})
        if conditions == status.get("conditions") and status.get("phase") == "Terminating":
            return ns
        name = ns["metadata"]["name"]
        try:
            updated: Obj = await self.client.patch(
                NAMESPACES, name, {"status": {"phase": "Terminating", "conditions": conditions}},
                subresource="status")
        except StatusError as e:
            if e.code == 404:
                return ns
            raise
        return updated

    async def _finalize(self, ns: Obj) -> None:
        body = copy.deepcopy(ns)
        spec = body.setdefault("spec", {})
        spec["finalizers"] = [f for f in spec.get("finalizers") or [] if f != FINALIZER]
        log.info("namespace %s is empty; removing the %r finalizer", ns["metadata"]["name"], FINALIZER)
        try:
            await self.client.update(NAMESPACES, body, subresource="finalize")
        except StatusError as e:
            if e.code != 404:
                raise


async def _delete_one(client: ApiClient, res: ApiResource, item: Obj, policy: str) -> None:
    meta = item.get("metadata") or {}
    try:
        await client.delete(res, meta["name"], namespace=meta.get("namespace"),
                            propagation_policy=policy,
                            preconditions={"uid": meta["uid"]} if meta.get("uid") else None)
    except StatusError as e:
        if e.code not in (404, 409):
            raise
