"""The garbage collector: deletes objects whose owners are gone, as Kubernetes does.

It watches every resource the server serves (found through discovery, again
every ``resync_period`` so new kinds are picked up, and soon after an ownerReference
names a kind it has not discovered), keeps the ownership
:class:`~.graph.DependencyGraph` up to date from those informers, and works
on two kinds of keys:

``delete/<uid>`` -- *attempt to delete*::

    owner virtual (never observed)? GET it: gone -> forget it, look at its dependents
    object being deleted (not foreground)? nothing to do
    object in foreground deletion? ── its blocking dependents gone?
    │                                   yes: remove the foregroundDeletion finalizer
    │                                   no:  attempt to delete each of them
    classify its ownerReferences by a live GET of each owner:
        solid    the owner exists and is not waiting for its dependents
        dangling 404, or another object with that name (UID mismatch)
        waiting  the owner is in foreground deletion
    some solid      -> drop the dangling/waiting references (object survives)
    only waiting    -> delete it in the Foreground (its own dependents go first)
    only dangling   -> delete it: Background, or as its own finalizers ask

``orphan/<uid>`` -- an owner deleted with ``propagationPolicy: Orphan``:
remove its ownerReference from every dependent, then its ``orphan`` finalizer.

All writes name the object's UID (delete preconditions; JSON patches that
``test`` the list they replace), so a same-named successor is never touched.
Events of ``events`` (core and events.k8s.io) are not watched: nothing owns them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any, ClassVar

from ...api.errors import StatusError
from ...client.rest import TransportError
from ..discovery import ApiResource, ApiResources, discover, resource_names
from ..reconciler import Controller, ControllerContext
from .graph import FOREGROUND, ORPHAN, DependencyGraph, GraphNode, Identity, Work

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: (group, plural) the collector never watches (kube-controller-manager's default).
IGNORED_RESOURCES = frozenset({("", "events"), ("events.k8s.io", "events")})
#: How many owners verified absent are remembered (saves a GET per dependent).
ABSENT_CACHE_SIZE = 500
#: Seconds before looking again at an object whose owner's kind is not served (yet).
UNKNOWN_KIND_RETRY = 5.0
#: Seconds between an unknown owner kind being met and the discovery it prompts.
MISSING_KIND_REDISCOVERY = 1.0


class UnknownKind(Exception):
    """An ownerReference names a kind the server does not serve (yet)."""


class GarbageCollector(Controller):
    """Kubernetes' garbage collector (see module docstring)."""

    name: ClassVar[str] = "garbagecollector"
    workers: ClassVar[int] = 8
    component: ClassVar[str] = "garbage-collector-controller"

    def __init__(self, ctx: ControllerContext, *, resync_period: float = 30.0,
                 ignored: frozenset[tuple[str, str]] = IGNORED_RESOURCES) -> None:
        super().__init__(ctx)
        self.resync_period = resync_period
        self.ignored = ignored
        self.resources = ApiResources()
        self.graph = DependencyGraph(self._scope_of)
        self._monitored: set[tuple[str, str]] = set()
        self._absent: OrderedDict[str, None] = OrderedDict()
        self._discovered = asyncio.Event()
        #: set when an ownerReference names a kind discovery did not list (a new CRD's)
        self._kinds_missing = asyncio.Event()

    # -- monitors -------------------------------------------------------------------

    async def run(self) -> None:
        await self._discover_until_done()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(super().run(), name="garbagecollector-workers")
            tg.create_task(self._rediscover(), name="garbagecollector-discovery")

    async def wait_synced(self) -> None:
        await self._discovered.wait()
        await super().wait_synced()

    async def _discover_until_done(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.sync_monitors()
                self._discovered.set()
                return
            except (StatusError, TransportError) as e:
                log.warning("garbage collector: discovery failed (%s); retrying", e)
                await self.clock.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _rediscover(self) -> None:
        """Every ``resync_period``, and soon after an object names an owner of a kind not
        discovered yet (a CustomResourceDefinition's, created since), at most once a second."""
        while True:
            sleep = asyncio.ensure_future(self.clock.sleep(self.resync_period))
            missing = asyncio.ensure_future(self._kinds_missing.wait())
            try:
                await asyncio.wait({sleep, missing}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleep.cancel()
                missing.cancel()
            if self._kinds_missing.is_set():
                await self.clock.sleep(MISSING_KIND_REDISCOVERY)
                self._kinds_missing.clear()
            try:
                await self.sync_monitors()
            except (StatusError, TransportError) as e:
                log.warning("garbage collector: re-discovery failed: %s", e)

    async def sync_monitors(self) -> None:
        """Discover the served resources and watch every new deletable one."""
        found = await discover(self.client)
        if found.failed:
            log.warning("garbage collector: discovery failed for %s", ", ".join(sorted(found.failed)))
            # keep what we knew about the failing groups
            known = {(r.group, r.version) for r in found.resources}
            found.resources.extend(r for r in self.resources.resources
                                   if (r.group, r.version) not in known)
        self.resources = found
        new = [r for r in found.preferred("list", "watch", "delete")
               if (r.group, r.plural) not in self.ignored | self._monitored]
        for res in new:
            self._monitored.add((res.group, res.plural))
            informer = self.informer(res)
            informer.add_handler(on_add=self._observe, on_update=lambda _old, new: self._observe(new),
                                 on_delete=self._forget)
        if new:
            log.info("garbage collector: monitoring %s", ", ".join(resource_names(new)))

    def _scope_of(self, api_version: str, kind: str) -> bool | None:
        res = self.resources.for_kind(api_version, kind)
        return None if res is None else res.namespaced

    # -- graph events ---------------------------------------------------------------

    def _observe(self, obj: Obj) -> None:
        self._schedule(self.graph.observe(obj))

    def _forget(self, obj: Obj) -> None:
        uid = str((obj.get("metadata") or {}).get("uid", ""))
        node = self.graph.get(uid)
        if node is not None and node.dependents:
            self._remember_absent(uid)
        self._schedule(self.graph.forget(obj))

    def _schedule(self, work: Work) -> None:
        for uid in work.attempt_delete:
            self.queue.add(f"delete/{uid}")
        for uid in work.attempt_orphan:
            self.queue.add(f"orphan/{uid}")

    def _remember_absent(self, uid: str) -> None:
        self._absent[uid] = None
        self._absent.move_to_end(uid)
        while len(self._absent) > ABSENT_CACHE_SIZE:
            self._absent.popitem(last=False)

    # -- reconcile ------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        action, _, uid = key.partition("/")
        node = self.graph.get(uid)
        if node is None:
            return None
        try:
            if action == "orphan":
                await self._orphan_dependents(node)
                return None
            return await self._attempt_delete(node)
        except UnknownKind as e:
            log.debug("garbage collector: %s; looking again in %.0f s", e, UNKNOWN_KIND_RETRY)
            self._kinds_missing.set()
            return UNKNOWN_KIND_RETRY

    def _resource(self, ident: Identity) -> ApiResource:
        res = self.resources.for_kind(ident.api_version, ident.kind)
        if res is None:
            raise UnknownKind(f"no resource serves {ident.kind} in {ident.api_version} ({ident})")
        return res

    async def _get_live(self, ident: Identity) -> Obj | None:
        """The object as the server has it now; None when gone or replaced (other UID)."""
        res = self._resource(ident)
        try:
            obj = await self.client.get(res, ident.name,
                                        namespace=ident.namespace if res.namespaced else None)
        except StatusError as e:
            if e.code == 404:
                return None
            raise
        return obj if (obj.get("metadata") or {}).get("uid") == ident.uid else None

    async def _attempt_delete(self, node: GraphNode) -> float | None:
        ident = node.identity
        if node.being_deleted and not node.deleting_dependents:
            return None  # already on its way out
        latest = await self._get_live(ident)
        if latest is None:
            # the object is gone: forget it, and look at whoever it owned
            self._remember_absent(ident.uid)
            self._schedule(self.graph.remove(ident.uid))
            return None
        if not node.observed:
            res = self._resource(ident)
            if (res.group, res.plural) in self._monitored:
                return 1.0  # it exists; our informer will report it soon
            return None  # it exists and is not watched: a solid owner, nothing to do
        if node.deleting_dependents:
            await self._process_deleting_dependents(node, latest)
            return None
        refs = [r for r in (latest.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid")]
        if not refs:
            return None
        solid, dangling, waiting = await self._classify(ident, refs)
        if solid:
            gone = {str(r["uid"]) for r in dangling + waiting}
            if gone:
                log.info("garbage collector: removing references to %s owner(s) from %s",
                         len(gone), ident)
                await self._patch_owner_refs(ident, refs,
                                             [r for r in refs if str(r["uid"]) not in gone])
            return None
        if waiting and any(d in self.graph.nodes for d in node.dependents):
            for uid in node.dependents:
                dep = self.graph.get(uid)
                if dep is not None and dep.deleting_dependents:
                    # a dependent waits for us while we wait for our owner: unblock the cycle
                    waiting_uids = {str(r["uid"]) for r in waiting}
                    await self._patch_owner_refs(ident, refs, [
                        dict(r, blockOwnerDeletion=False) if str(r["uid"]) in waiting_uids else r
                        for r in refs])
                    break
            await self._delete(ident, "Foreground")
            return None
        finalizers = (latest.get("metadata") or {}).get("finalizers") or []
        policy = "Orphan" if ORPHAN in finalizers else "Foreground" if FOREGROUND in finalizers \
            else "Background"
        log.info("garbage collector: deleting %s (its owners are gone; propagation %s)",
                 ident, policy)
        await self._delete(ident, policy)
        return None

    async def _classify(self, ident: Identity, refs: list[Obj]
                        ) -> tuple[list[Obj], list[Obj], list[Obj]]:
        """(solid, dangling, waiting-for-dependents) owner references of ``ident``."""
        solid: list[Obj] = []
        dangling: list[Obj] = []
        waiting: list[Obj] = []
        for ref in refs:
            uid = str(ref["uid"])
            if uid in self._absent:
                dangling.append(ref)
                continue
            res = self.resources.for_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
            if res is None:
                raise UnknownKind(f"{ident} names an owner of unknown kind "
                                  f"{ref.get('kind')} in {ref.get('apiVersion')}")
            if res.namespaced and not ident.namespace:
                # a cluster-scoped object cannot be owned by a namespaced one: unresolvable,
                # and never a reason to collect it
                solid.append(ref)
                continue
            owner = Identity(str(ref.get("apiVersion", "")), str(ref.get("kind", "")),
                             ident.namespace if res.namespaced else "", str(ref.get("name", "")), uid)
            live = await self._get_live(owner)
            if live is None:
                self._remember_absent(uid)
                dangling.append(ref)
                continue
            meta = live.get("metadata") or {}
            if meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or []):
                waiting.append(ref)
            else:
                solid.append(ref)
        return solid, dangling, waiting

    async def _process_deleting_dependents(self, node: GraphNode, latest: Obj) -> None:
        blocking = self.graph.blocking_dependents(node)
        if not blocking:
            log.info("garbage collector: %s has no blocking dependents left; finishing its "
                     "foreground deletion", node.identity)
            await self._remove_finalizer(node.identity, latest, FOREGROUND)
            return
        for dep in blocking:
            if not dep.deleting_dependents:
                self.queue.add(f"delete/{dep.identity.uid}")

    async def _orphan_dependents(self, owner: GraphNode) -> None:
        for uid in list(owner.dependents):
            dep = self.graph.get(uid)
            if dep is None or not dep.observed:
                continue
            kept = [r for r in dep.owners if str(r["uid"]) != owner.identity.uid]
            if len(kept) != len(dep.owners):
                await self._patch_owner_refs(dep.identity, dep.owners, kept)
        latest = await self._get_live(owner.identity)
        if latest is not None:
            await self._remove_finalizer(owner.identity, latest, ORPHAN)

    # -- writes ---------------------------------------------------------------------

    async def _delete(self, ident: Identity, policy: str) -> None:
        res = self._resource(ident)
        try:
            await self.client.delete(res, ident.name,
                                     namespace=ident.namespace if res.namespaced else None,
                                     propagation_policy=policy, preconditions={"uid": ident.uid})
        except StatusError as e:
            if e.code not in (404, 409):  # 409: a successor with another UID; ours is gone
                raise

    async def _json_patch(self, ident: Identity, ops: list[Obj]) -> None:
        res = self._resource(ident)
        patch = [{"op": "test", "path": "/metadata/uid", "value": ident.uid}, *ops]
        try:
            await self.client.patch(res, ident.name, patch, patch_type="json",
                                    namespace=ident.namespace if res.namespaced else None)
        except StatusError as e:
            if e.code != 404:
                raise

    async def _patch_owner_refs(self, ident: Identity, current: list[Obj], wanted: list[Obj]) -> None:
        path = "/metadata/ownerReferences"
        change: Obj = ({"op": "replace", "path": path, "value": wanted} if wanted
                       else {"op": "remove", "path": path})
        await self._json_patch(ident, [{"op": "test", "path": path, "value": current}, change])

    async def _remove_finalizer(self, ident: Identity, latest: Obj, finalizer: str) -> None:
        current = list((latest.get("metadata") or {}).get("finalizers") or [])
        if finalizer not in current:
            return
        wanted = [f for f in current if f != finalizer]
        path = "/metadata/finalizers"
        change: Obj = ({"op": "replace", "path": path, "value": wanted} if wanted
                       else {"op": "remove", "path": path})
        await self._json_patch(ident, [{"op": "test", "path": path, "value": current}, change])
