"""The StatefulSet controller: stable, ordered members with their own storage.

One reconcile of ``namespace/name``::

    StatefulSet gone ─▶ forget expectations, done
    our pod creations/deletions not yet seen by the pod cache ─▶ wait (their events requeue)
    claim pods (adopt orphans named <set>-<n> matching the selector, release strays)
    claim ControllerRevisions the same way
    current / update revision (creates or renumbers one after a template change)
    one pass of the algorithm (control.py): create, repair, scale down, roll
    status (status.py), written when it changed
    history beyond revisionHistoryLimit deleted (never a revision in use)
    ready pods still inside minReadySeconds ─▶ look again when the first turns available

Handlers map pods and ControllerRevisions to the StatefulSet controlling them
(or, for orphans, to the StatefulSets whose selector and name pattern they
match), and a PersistentVolumeClaim to the StatefulSets whose claim names it
has (a member may wait for an old claim to go).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ...api.errors import StatusError
from ...api.selectors import LabelSelector, SelectorError, label_selector_from_object
from ...client.informer import object_key
from ...client.resources import CONTROLLERREVISIONS, PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS
from .. import history, podstate
from ..ownership import Claimer, candidates, controller_ref, ensure_controller_index, is_controlled_by
from ..reconciler import Controller, ControllerContext
from . import identity as ident
from . import status as st
from .control import MemberSync
from .podcontrol import StatefulPodControl
from .revisions import resolve

Obj = dict[str, Any]
log = logging.getLogger(__name__)


def _selector(sts: Obj) -> LabelSelector:
    return label_selector_from_object((sts.get("spec") or {}).get("selector"))


class StatefulSetController(Controller):
    """Reconciles StatefulSets (see module docstring)."""

    name = "statefulset"
    component = "statefulset-controller"
    workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.sets = self.informer(STATEFULSETS)
        self.pods = self.informer(PODS)
        self.revisions = self.informer(CONTROLLERREVISIONS)
        self.claims = self.informer(PERSISTENTVOLUMECLAIMS)
        ensure_controller_index(self.pods)
        ensure_controller_index(self.revisions)
        self.pod_control = StatefulPodControl(self.client, self.claims, self.record_event)
        self.sets.add_handler(on_add=self.enqueue, on_update=lambda _, new: self.enqueue(new),
                              on_delete=self._set_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_deleted)
        self.revisions.add_handler(on_add=self._revision_changed,
                                   on_update=lambda _, new: self._revision_changed(new),
                                   on_delete=self._revision_changed)
        self.claims.add_handler(on_add=self._claim_changed, on_delete=self._claim_changed)

    # -- handlers: only compute keys ---------------------------------------------------------

    def _set_deleted(self, sts: Obj) -> None:
        key = object_key(sts)
        self.expectations.forget(key)
        self.enqueue_key(key)

    def _owner_key(self, obj: Obj) -> str | None:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != "StatefulSet":
            return None
        sts = self.sets.get_by((obj.get("metadata") or {}).get("namespace"), str(ref.get("name", "")))
        if sts is None or sts["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(sts)

    def _matching_sets(self, obj: Obj, *, member_name: bool) -> list[str]:
        ns = (obj.get("metadata") or {}).get("namespace")
        keys = []
        for sts in self.sets.list():
            if sts["metadata"].get("namespace") != ns:
                continue
            if member_name and not ident.is_member(sts, obj):
                continue
            try:
                if _selector(sts).matches_object(obj):
                    keys.append(object_key(sts))
            except SelectorError:
                continue
        return keys

    def _pod_added(self, pod: Obj) -> None:
        if podstate.is_terminating(pod):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue_key(key)
        elif controller_ref(pod) is None:
            for key in self._matching_sets(pod, member_name=True):
                self.enqueue_key(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        if podstate.is_terminating(new) and not podstate.is_terminating(old):
            self._pod_deleted(new)
            return
        keys = {k for k in (self._owner_key(old), self._owner_key(new)) if k is not None}
        if controller_ref(new) is None:
            keys.update(self._matching_sets(new, member_name=True))
        for key in keys:
            self.enqueue_key(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is None:
            return
        self.expectations.deletion_observed(key, str(pod["metadata"].get("uid", "")))
        self.enqueue_key(key)

    def _revision_changed(self, revision: Obj) -> None:
        key = self._owner_key(revision)
        if key is not None:
            self.enqueue_key(key)
        elif controller_ref(revision) is None:
            for key in self._matching_sets(revision, member_name=False):
                self.enqueue_key(key)

    def _claim_changed(self, claim: Obj) -> None:
        meta = claim.get("metadata") or {}
        name = str(meta.get("name", ""))
        for sts in self.sets.list():
            if sts["metadata"].get("namespace") != meta.get("namespace"):
                continue
            for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
                prefix = f"{(template.get('metadata') or {}).get('name', '')}-{sts['metadata']['name']}-"
                if name.startswith(prefix):
                    self.enqueue(sts)
                    break

    # -- reconcile ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        sts = self.sets.get(key)
        if sts is None:
            self.expectations.forget(key)
            return None
        if not self.expectations.satisfied(key):
            return None
        try:
            selector = _selector(sts)
        except SelectorError as e:
            log.warning("statefulset %s has an invalid selector: %s", key, e)
            return None
        pods = await self._claim(sts, selector, PODS, self.pods, members_only=True)
        pods = [p for p in pods if ident.is_member(sts, p)]
        revisions = history.sort_revisions(
            await self._claim(sts, selector, CONTROLLERREVISIONS, self.revisions, members_only=False))
        resolved = await resolve(self.client, sts, revisions)
        now = self.clock.time()
        status = st.compute(sts, pods, resolved, now)
        try:
            await MemberSync(self.pod_control, self.expectations, key, sts, resolved, pods, now).run()
        finally:
            await self._write_status(sts, status)
        live = {resolved.current_name, resolved.update_name} | {ident.revision_of(p) for p in pods}
        for revision in history.to_truncate(revisions, live, (sts.get("spec") or {}).get("revisionHistoryLimit")):
            await history.delete_revision(self.client, revision)
        return self._next_availability(sts, pods, now)

    async def _claim(self, sts: Obj, selector: LabelSelector, resource: Any, informer: Any, *,
                     members_only: bool) -> list[Obj]:
        """Owned objects plus matching orphans, after adopting/releasing (ownership.py)."""
        objs = [o for o in candidates(informer, sts)
                if is_controlled_by(o, sts) or not members_only or ident.is_member(sts, o)]
        if resource is PODS:
            objs = [o for o in objs if is_controlled_by(o, sts) or podstate.is_active(o)]
        claimer = Claimer(self.client, resource, sts, api_version="apps/v1", kind="StatefulSet",
                          selector=selector, refetch_owner=lambda: self._fetch(sts))
        return await claimer.claim(objs)

    async def _fetch(self, sts: Obj) -> Obj | None:
        meta = sts["metadata"]
        try:
            fresh: Obj = await self.client.get(STATEFULSETS, meta["name"], namespace=meta["namespace"])
            return fresh
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    async def _write_status(self, sts: Obj, status: Obj) -> None:
        """A merge patch of the status when it changed: no conflicts with our own earlier
        writes the cache has not shown yet, and a no-op on the server when they are equal."""
        if not st.differs(sts.get("status") or {}, status):
            return
        meta = sts["metadata"]
        try:
            await self.client.patch(STATEFULSETS, meta["name"], {"status": status},
                                    namespace=meta["namespace"], subresource="status")
        except StatusError as e:
            if e.code != 404:
                raise

    def _next_availability(self, sts: Obj, pods: list[Obj], now: float) -> float | None:
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        waits = [w for p in pods
                 if (w := podstate.seconds_until_available(p, min_ready, now)) is not None]
        return min(waits) + 0.05 if waits else None
