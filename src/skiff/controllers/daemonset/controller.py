"""The DaemonSet controller: one pod on every eligible node.

One reconcile of ``namespace/name``::

    DaemonSet gone ─▶ forget expectations and back-offs, done
    selector {} (selects everything) ─▶ Warning SelectingAll, nothing else
    being deleted ─▶ nothing (the garbage collector removes pods and revisions)
    claim ControllerRevisions; find or make the current one (revisions.py) -> hash
    claim pods (adopt matching orphans), group them by the node they are for
    own writes not yet seen ─▶ status only (observedGeneration not raised)
    per node: create / delete (manage.py), slow-start creations, expectations first
    writes all seen and strategy RollingUpdate ─▶ one update step (rolling.py)
    old revisions beyond revisionHistoryLimit deleted
    status (status.py), observedGeneration raised
    ready pods inside minReadySeconds or failed pods in back-off ─▶ look again later

Pods are created through the API with a required node affinity for their node,
and the default scheduler binds them (as Kubernetes has done since 1.12).
Pods bound to a node that was deleted are left to the pod garbage collector.

Events: ``SuccessfulCreate`` ("Created pod: log-x2k8q"), ``SuccessfulDelete``
("Deleted pod: log-x2k8q"), ``FailedCreate`` / ``FailedDelete``, ``SelectingAll``,
``FailedDaemonPod``, ``SucceededDaemonPod``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from ...api.errors import StatusError
from ...api.selectors import LabelSelector, SelectorError, label_selector_from_object
from ...client.informer import object_key
from ...client.resources import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS
from ...client.rest import TransportError
from .. import history, podstate
from ..events import NORMAL, WARNING
from ..ownership import (
    CONTROLLER_INDEX, Claimer, candidates, controller_ref, ensure_controller_index, owner_reference,
)
from ..podcontrol import create_pod, delete_pod, slow_start
from ..reconciler import Controller, ControllerContext
from . import manage, rolling
from . import status as st
from .placement import daemon_pod_spec, should_run
from .pods import by_node, daemon_template, pod_for_node, template_generation
from .revisions import History, construct, to_clean_up

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: At most this many pods are created or deleted by one sync (Kubernetes' BurstReplicas).
BURST_REPLICAS = 250


def _selector(ds: Obj) -> LabelSelector:
    return label_selector_from_object((ds.get("spec") or {}).get("selector"))


def _message(error: BaseException) -> str:
    if isinstance(error, StatusError):
        return error.message
    return str(error) or type(error).__name__


def _namespace_terminating(error: BaseException) -> bool:
    return (isinstance(error, StatusError) and error.code == 403
            and "because it is being terminated" in error.message)


class DaemonSetsController(Controller):
    """Reconciles DaemonSets (see module docstring)."""

    name = "daemonset"
    component = "daemonset-controller"
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.sets = self.informer(DAEMONSETS)
        self.pods = self.informer(PODS)
        self.nodes = self.informer(NODES)
        self.revisions = self.informer(CONTROLLERREVISIONS)
        ensure_controller_index(self.pods)
        ensure_controller_index(self.revisions)
        self.backoff = manage.FailedPodBackoff(self.clock.monotonic)
        self.sets.add_handler(on_add=self.enqueue, on_update=lambda _, new: self.enqueue(new),
                              on_delete=self._set_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_deleted)
        self.nodes.add_handler(on_add=lambda _: self._enqueue_all(),
                               on_update=self._node_updated,
                               on_delete=lambda _: self._enqueue_all())
        self.revisions.add_handler(on_add=self._revision_changed,
                                   on_update=lambda _, new: self._revision_changed(new),
                                   on_delete=self._revision_changed)

    # -- handlers: only compute keys -----------------------------------------------------------

    def _set_deleted(self, ds: Obj) -> None:
        key = object_key(ds)
        self.expectations.forget(key)
        self.backoff.forget(key)
        self.enqueue_key(key)

    def _enqueue_all(self) -> None:
        for ds in self.sets.list():
            self.enqueue(ds)

    def _owner_key(self, obj: Obj) -> str | None:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != "DaemonSet":
            return None
        ds = self.sets.get_by((obj.get("metadata") or {}).get("namespace"), str(ref.get("name", "")))
        if ds is None or ds["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(ds)

    def _matching_sets(self, obj: Obj) -> list[str]:
        ns = (obj.get("metadata") or {}).get("namespace")
        keys = []
        for ds in self.sets.list():
            if ds["metadata"].get("namespace") != ns:
                continue
            try:
                selector = _selector(ds)
            except SelectorError:
                continue
            if not selector.empty and selector.matches_object(obj):
                keys.append(object_key(ds))
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
            for key in self._matching_sets(pod):
                self.enqueue_key(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        if podstate.is_terminating(new) and not podstate.is_terminating(old):
            self._pod_deleted(new)
            return
        keys = {k for k in (self._owner_key(old), self._owner_key(new)) if k is not None}
        if controller_ref(new) is None:
            keys.update(self._matching_sets(new))
        for key in keys:
            self.enqueue_key(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, str(pod["metadata"].get("uid", "")))
            self.enqueue_key(key)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        """Only changes that can change placement matter (labels, taints, unschedulable)."""
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels") \
                or (old.get("spec") or {}) != (new.get("spec") or {}):
            self._enqueue_all()

    def _revision_changed(self, revision: Obj) -> None:
        key = self._owner_key(revision)
        if key is not None:
            self.enqueue_key(key)

    # -- reconcile ---------------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        ds = self.sets.get(key)
        if ds is None:
            self.expectations.forget(key)
            self.backoff.forget(key)
            return None
        raw_selector = (ds.get("spec") or {}).get("selector")
        if isinstance(raw_selector, dict) and not raw_selector.get("matchLabels") \
                and not raw_selector.get("matchExpressions"):
            self.record_event(ds, WARNING, "SelectingAll",
                              "This daemon set is selecting all pods. A non-empty selector is required.")
            return None
        try:
            selector = _selector(ds)
        except SelectorError as e:
            log.warning("daemonset %s has an invalid selector: %s", key, e)
            return None
        if ds["metadata"].get("deletionTimestamp"):
            return None
        revisions = await self._claim(ds, selector, CONTROLLERREVISIONS, self.revisions)
        hist = await construct(self.client, ds, revisions)
        hash_ = hist.hash
        if not self.expectations.satisfied(key):
            return await self._update_status(ds, hist, observed=False)
        nodes = self.nodes.list()
        spec = daemon_pod_spec(ds)
        surge, _ = rolling.limits(ds, 1)
        node_pods = by_node(await self._claim(ds, selector, PODS, self.pods))
        the_plan = manage.plan(key, ds, nodes, node_pods, hash_, spec,
                               self._is_rolling(ds) and surge > 0, self.backoff, self.clock.time())
        for type_, reason, message in the_plan.events:
            self.record_event(ds, type_, reason, message)
        try:
            await self._sync_nodes(key, ds, the_plan.delete, the_plan.create_on, hash_)
            if self.expectations.satisfied(key) and self._is_rolling(ds):
                node_pods = by_node(self._owned_pods(ds))
                wanted = {str(n["metadata"]["name"]): should_run(n, ds, spec)[0] for n in nodes}
                deletes, creates = rolling.plan(ds, node_pods, wanted, hash_,
                                                template_generation(ds), self.clock.time())
                await self._sync_nodes(key, ds, deletes, creates, hash_)
            for revision in to_clean_up(ds, hist.old, self._owned_pods(ds)):
                await history.delete_revision(self.client, revision)
        finally:
            again = await self._update_status(ds, hist, observed=True)
        waits = [w for w in (again, the_plan.retry_after) if w is not None]
        return min(waits) if waits else None

    def _is_rolling(self, ds: Obj) -> bool:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        return str(strategy.get("type", "RollingUpdate")) == "RollingUpdate"

    def _owned_pods(self, ds: Obj) -> list[Obj]:
        return self.pods.by_index(CONTROLLER_INDEX, str(ds["metadata"]["uid"]))

    async def _claim(self, ds: Obj, selector: LabelSelector, resource: Any, informer: Any) -> list[Obj]:
        claimer = Claimer(self.client, resource, ds, api_version="apps/v1", kind="DaemonSet",
                          selector=selector, refetch_owner=lambda: self._fetch(ds))
        return await claimer.claim(candidates(informer, ds))

    async def _fetch(self, ds: Obj) -> Obj | None:
        meta = ds["metadata"]
        try:
            fresh: Obj = await self.client.get(DAEMONSETS, meta["name"], namespace=meta["namespace"])
            return fresh
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    # -- writes ------------------------------------------------------------------------------------

    async def _sync_nodes(self, key: str, ds: Obj, delete: list[Obj], create_on: list[str],
                          hash_: str) -> None:
        """Delete ``delete`` and create a pod on each node of ``create_on`` (expectations first)."""
        create_on, delete = create_on[:BURST_REPLICAS], delete[:BURST_REPLICAS]
        if not create_on and not delete:
            return
        if create_on:
            self.expectations.expect_creations(key, len(create_on))
        if delete:
            self.expectations.expect_deletions(key, [p["metadata"]["uid"] for p in delete])
        template = daemon_template(ds, hash_)
        ref = owner_reference(ds, api_version="apps/v1", kind="DaemonSet")
        queue = list(create_on)

        async def create_next() -> None:
            pod = pod_for_node(ds, template, queue.pop(0), ref)
            try:
                created = await create_pod(self.client, pod)
            except (StatusError, TransportError) as e:
                self.expectations.creation_observed(key)
                if _namespace_terminating(e):
                    return
                self.record_event(ds, WARNING, "FailedCreate", f"Error creating: {_message(e)}")
                raise
            self.record_event(ds, NORMAL, "SuccessfulCreate",
                              f"Created pod: {created['metadata']['name']}")

        async def delete_one(pod: Obj) -> None:
            try:
                await delete_pod(self.client, pod)
            except (StatusError, TransportError) as e:
                self.expectations.deletion_observed(key, pod["metadata"]["uid"])
                if isinstance(e, StatusError) and e.code == 404:
                    return
                self.record_event(ds, WARNING, "FailedDelete", f"Error deleting: {_message(e)}")
                raise
            self.record_event(ds, NORMAL, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}")

        errors: list[BaseException] = []
        if create_on:
            done, failed = await slow_start(len(create_on), create_next)
            for _ in range(len(create_on) - done - len(failed)):
                self.expectations.creation_observed(key)  # never attempted
            errors += failed
        results = await asyncio.gather(*(delete_one(p) for p in delete), return_exceptions=True)
        errors += [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def _update_status(self, ds: Obj, hist: History, *, observed: bool) -> float | None:
        """Write the status if it changed; seconds until a ready pod turns available, if any."""
        spec = daemon_pod_spec(ds)
        pods = self._owned_pods(ds)
        now = self.clock.time()
        status = st.compute(ds, self.nodes.list(), by_node(pods), spec, hist.hash,
                            template_generation(ds), now)
        old = ds.get("status") or {}
        status["observedGeneration"] = (ds["metadata"].get("generation") if observed
                                        else old.get("observedGeneration"))
        status["collisionCount"] = hist.collision_count
        status = {k: v for k, v in status.items() if v is not None}
        if st.differs(old, status):
            await self._write_status(ds, status)
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        waits = [w for p in pods if (w := podstate.seconds_until_available(p, min_ready, now)) is not None]
        return min(waits) + 0.05 if waits else None

    async def _write_status(self, ds: Obj, status: Obj) -> None:
        """A merge patch of the status: no conflicts with our own earlier writes the
        cache has not shown yet, and a no-op on the server when nothing changed."""
        meta = ds["metadata"]
        try:
            await self.client.patch(DAEMONSETS, meta["name"], {"status": status},
                                    namespace=meta["namespace"], subresource="status")
        except StatusError as e:
            if e.code != 404:
                raise
