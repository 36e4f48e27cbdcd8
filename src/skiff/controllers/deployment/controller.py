"""The Deployment controller: declarative rollouts on top of ReplicaSets.

One reconcile of ``namespace/name``::

    Deployment gone ─▶ done
    our own writes not yet in the caches ─▶ wait (their events requeue us)
    empty selector ─▶ Warning SelectingAll, nothing else
    claim ReplicaSets (adopt matching orphans, release non-matching)
    being deleted ─▶ status only
    Progressing=Unknown DeploymentPaused / DeploymentResumed on pause changes
    paused, or only spec.replicas changed ─▶ scale (proportionally), status
    strategy Recreate ─▶ recreate.rollout;  RollingUpdate ─▶ rolling.rollout
    a progress deadline is running ─▶ look again when it expires

Events: ``ScalingReplicaSet`` ("Scaled up replica set web-6b7f9c8d4 from 0 to 3"),
``SelectingAll``, ``FailedRSCreate``.  Handlers map ReplicaSet and pod events
to the owning Deployment's key; see :mod:`.sync` for the steps themselves.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ...api.errors import StatusError
from ...api.selectors import SelectorError, label_selector_from_object
from ...client.informer import object_key
from ...client.resources import DEPLOYMENTS, PODS, REPLICASETS
from ..events import WARNING
from ..ownership import (
    CONTROLLER_INDEX, Claimer, candidates, controller_ref, ensure_controller_index,
)
from ..reconciler import Controller, ControllerContext
from . import history as h
from . import recreate, rolling
from . import replicas as r
from .sync import DeploymentSync

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: Give up waiting for the cache to show our own write after this long (seconds).
WRITE_TTL = 30.0
#: While waiting for our own writes to show up, look again at least this often (seconds).
RECHECK_UNSEEN = 5.0


class DeploymentController(Controller):
    """Reconciles Deployments (see module docstring)."""

    name = "deployment"
    component = "deployment-controller"
    workers = 5

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.deployments = self.informer(DEPLOYMENTS)
        self.replicasets = self.informer(REPLICASETS)
        self.pods = self.informer(PODS)
        ensure_controller_index(self.replicasets)
        ensure_controller_index(self.pods)
        # deployment key -> {object key: (resource plural, resourceVersion before our write, when)}
        self._unseen: dict[str, dict[tuple[str, str], tuple[str | None, float]]] = {}
        self.deployments.add_handler(on_add=self.enqueue, on_update=lambda _, new: self.enqueue(new),
                                     on_delete=self._deployment_deleted)
        self.replicasets.add_handler(on_add=self._rs_added, on_update=self._rs_updated,
                                     on_delete=self._rs_deleted)
        self.pods.add_handler(on_delete=self._pod_deleted)

    # -- handlers ------------------------------------------------------------------------

    def _deployment_deleted(self, d: Obj) -> None:
        key = object_key(d)
        self._unseen.pop(key, None)
        self.enqueue_key(key)

    def _owner_key(self, rs: Obj, ref: Obj | None) -> str | None:
        if ref is None or ref.get("kind") != "Deployment":
            return None
        d = self.deployments.get_by(rs["metadata"].get("namespace"), str(ref.get("name", "")))
        if d is None or d["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(d)

    def _matching_deployments(self, rs: Obj) -> list[str]:
        ns = rs["metadata"].get("namespace")
        keys = []
        for d in self.deployments.list():
            if d["metadata"].get("namespace") != ns:
                continue
            try:
                selector = label_selector_from_object((d.get("spec") or {}).get("selector"))
            except SelectorError:
                continue
            if not selector.empty and selector.matches_object(rs):
                keys.append(object_key(d))
        return keys

    def _rs_added(self, rs: Obj) -> None:
        if rs["metadata"].get("deletionTimestamp"):
            self._rs_deleted(rs)
            return
        ref = controller_ref(rs)
        if ref is not None:
            key = self._owner_key(rs, ref)
            if key is not None:
                self.enqueue_key(key)
            return
        for key in self._matching_deployments(rs):
            self.enqueue_key(key)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if old_ref != new_ref and old_ref is not None:
            key = self._owner_key(old, old_ref)
            if key is not None:
                self.enqueue_key(key)
        if new_ref is not None:
            key = self._owner_key(new, new_ref)
            if key is not None:
                self.enqueue_key(key)
            return
        if old_ref != new_ref or old["metadata"].get("labels") != new["metadata"].get("labels"):
            for key in self._matching_deployments(new):
                self.enqueue_key(key)

    def _rs_deleted(self, rs: Obj) -> None:
        key = self._owner_key(rs, controller_ref(rs))
        if key is not None:
            self.enqueue_key(key)

    def _pod_deleted(self, pod: Obj) -> None:
        """A Recreate rollout waits for old pods to be gone: look again when one goes."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.get_by(pod["metadata"].get("namespace"), str(ref.get("name", "")))
        if rs is None:
            return
        key = self._owner_key(rs, controller_ref(rs))
        if key is None:
            return
        d = self.deployments.get(key)
        if d is not None and not r.is_rolling(d):
            self.enqueue_key(key)

    # -- write expectations ---------------------------------------------------------------

    def written(self, key: str, obj: Obj, before_rv: str | None) -> None:
        """Remember a write for ``key`` until the informer cache shows it (see :meth:`_caught_up`).

        ``before_rv`` is the object's resourceVersion before the write (None: created).
        """
        plural = "deployments" if obj.get("kind") == "Deployment" else "replicasets"
        entry = self._unseen.setdefault(key, {})
        target = (plural, object_key(obj))
        if target not in entry:
            entry[target] = (before_rv, self.clock.monotonic())

    def _caught_up(self, key: str) -> bool:
        entry = self._unseen.get(key)
        if not entry:
            return True
        now = self.clock.monotonic()
        for target, (before_rv, when) in list(entry.items()):
            plural, obj_key = target
            informer = self.replicasets if plural == "replicasets" else self.deployments
            cached = informer.get(obj_key)
            seen = (cached is not None and cached["metadata"].get("resourceVersion") != before_rv) \
                or (cached is None and before_rv is not None)
            if seen or now - when > WRITE_TTL:
                del entry[target]
        if not entry:
            del self._unseen[key]
            return True
        return False

    # -- reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        d = self.deployments.get(key)
        if d is None:
            self._unseen.pop(key, None)
            return None
        if not self._caught_up(key):
            return RECHECK_UNSEEN  # their events requeue us sooner; this is a safety net
        try:
            selector = label_selector_from_object((d.get("spec") or {}).get("selector"))
        except SelectorError as e:
            log.warning("deployment %s has an invalid selector: %s", key, e)
            return None
        if selector.empty:
            self.record_event(d, WARNING, "SelectingAll",
                              "This deployment is selecting all pods. A non-empty selector is required.")
            await self._observe_generation(d)
            return None
        claimer = Claimer(self.client, REPLICASETS, d, api_version="apps/v1", kind="Deployment",
                          selector=selector, refetch_owner=lambda: self._fetch(d))
        rss = await claimer.claim(candidates(self.replicasets, d))
        sync = DeploymentSync(self, key, d, rss)
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old = await sync.new_and_old(create=False)
            await sync.write_status(new_rs, old)
            return None
        await sync.check_paused_conditions()
        if (d.get("spec") or {}).get("paused") or await self._is_scaling_event(sync):
            await self._scale_only(sync)
            return None
        if r.is_rolling(d):
            await rolling.rollout(sync)
        else:
            await recreate.rollout(sync, self._pods_by_rs(sync.rss))
        return sync.requeue_after

    async def _scale_only(self, sync: DeploymentSync) -> None:
        new_rs, old = await sync.new_and_old(create=False)
        await sync.scale(new_rs, old)
        fresh = {rs["metadata"]["uid"]: rs for rs in sync.rss}
        new_rs = fresh.get(new_rs["metadata"]["uid"]) if new_rs is not None else None
        old = [fresh.get(rs["metadata"]["uid"], rs) for rs in old]
        if (sync.d.get("spec") or {}).get("paused"):
            await sync.cleanup(old)
        await sync.write_status(new_rs, old)

    async def _is_scaling_event(self, sync: DeploymentSync) -> bool:
        """Does an active ReplicaSet remember a different desired size than spec.replicas?"""
        new_rs, old = await sync.new_and_old(create=False)
        wanted = r.desired_replicas(sync.d)
        for rs in old + ([new_rs] if new_rs is not None else []):
            if r.spec_replicas(rs) <= 0:
                continue
            desired = h.annotation_int(rs, h.DESIRED_REPLICAS_ANNOTATION)
            if desired is not None and desired != wanted:
                return True
        return False

    def _pods_by_rs(self, rss: list[Obj]) -> dict[str, list[Obj]]:
        return {rs["metadata"]["uid"]: self.pods.by_index(CONTROLLER_INDEX, rs["metadata"]["uid"])
                for rs in rss}

    async def _observe_generation(self, d: Obj) -> None:
        status = d.get("status") or {}
        generation = d["metadata"].get("generation")
        if status.get("observedGeneration") == generation:
            return
        body = copy.deepcopy(d)
        body.setdefault("status", {})["observedGeneration"] = generation
        await self.client.update(DEPLOYMENTS, body, subresource="status")

    async def _fetch(self, d: Obj) -> Obj | None:
        meta = d["metadata"]
        try:
            fresh: Obj = await self.client.get(DEPLOYMENTS, meta["name"],
                                               namespace=meta.get("namespace"))
            return fresh
        except StatusError as e:
            if e.code == 404:
                return None
            raise
