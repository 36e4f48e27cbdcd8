"""ReplicaSet and ReplicationController: keep ``spec.replicas`` pods running.

One reconcile of ``namespace/name`` (level-triggered; run again on any change
to the owner or to one of its pods)::

    owner gone? ─▶ forget expectations, done
    pods = active pods it controls + matching orphans (from the pod cache)
         ──claim──▶ adopt matching orphans, release owned pods that no longer match
    expectations satisfied and owner not deleting?
         too few: create min(diff, 500) from the template in slow-start batches
                  (1, 2, 4 ...), expecting each creation first
         too many: delete the min(diff, 500) lowest-ranked pods (see ranking.py)
    status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
            observedGeneration; a ReplicaFailure condition (FailedCreate /
            FailedDelete) while creating or deleting fails
    ready pods still inside minReadySeconds ─▶ look again when the first turns available

Events: ``SuccessfulCreate`` ("Created pod: web-x2k8q"), ``SuccessfulDelete``
("Deleted pod: web-x2k8q"), ``FailedCreate`` / ``FailedDelete`` (Warning).

ReplicationController (core/v1) is the same machine with a plain label-map
selector and its own kind in the owner references, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar

from ..api.errors import StatusError
from ..api.kinds.meta.cells import format_time
from ..api.selectors import LabelSelector, SelectorError, label_selector_from_object
from ..client.informer import object_key
from ..client.resources import PODS, REPLICASETS, Resource
from ..client.rest import TransportError
from . import podcontrol, podstate, ranking
from .events import NORMAL, WARNING
from .ownership import (
    CONTROLLER_INDEX, Claimer, candidates, controller_ref, ensure_controller_index, owner_reference,
)
from .reconciler import Controller, ControllerContext

Obj = dict[str, Any]
log = logging.getLogger(__name__)

REPLICATIONCONTROLLERS = Resource("", "v1", "replicationcontrollers",
                                  kind="ReplicationController")

#: At most this many pods are created or deleted by one reconcile (Kubernetes' BurstReplicas).
BURST_REPLICAS = 500

REPLICA_FAILURE = "ReplicaFailure"


@dataclass(frozen=True)
class ReplicatedKind:
    """What differs between ReplicaSet and ReplicationController."""

    resource: Resource
    api_version: str
    kind: str
    selector_of: Callable[[Obj], LabelSelector]


def _set_based_selector(owner: Obj) -> LabelSelector:
    return label_selector_from_object((owner.get("spec") or {}).get("selector"))


def _map_selector(owner: Obj) -> LabelSelector:
    labels = (owner.get("spec") or {}).get("selector") or {}
    return label_selector_from_object({"matchLabels": labels})


REPLICASET = ReplicatedKind(REPLICASETS, "apps/v1", "ReplicaSet", _set_based_selector)
REPLICATIONCONTROLLER = ReplicatedKind(REPLICATIONCONTROLLERS, "v1", "ReplicationController",
                                       _map_selector)


def replicas_of(owner: Obj) -> int:
    value = (owner.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def _fully_labeled(pod: Obj, template_labels: dict[str, str]) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    for key, value in template_labels.items():
        if labels.get(key) != value:
            return False
    return True


class ReplicaSetController(Controller):
    """Reconciles ReplicaSets (see module docstring)."""

    name = "replicaset"
    component = "replicaset-controller"
    workers = 5
    replicated: ClassVar[ReplicatedKind] = REPLICASET

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.owners = self.informer(self.replicated.resource)
        self.pods = self.informer(PODS)
        ensure_controller_index(self.pods)
        ensure_controller_index(self.owners)
        self.owners.add_handler(on_add=self.enqueue, on_update=self._owner_updated,
                                on_delete=self._owner_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=self._pod_deleted)

    # -- event handlers: only compute keys ------------------------------------------

    def _owner_updated(self, old: Obj, new: Obj) -> None:
        self.enqueue(new)

    def _owner_deleted(self, owner: Obj) -> None:
        key = object_key(owner)
        self.expectations.forget(key)
        self.enqueue_key(key)

    def _owner_key(self, pod: Obj, ref: Obj | None) -> str | None:
        """The key of the owner ``ref`` names, if it is one of ours and in the cache."""
        if ref is None or ref.get("kind") != self.replicated.kind:
            return None
        ns = (pod.get("metadata") or {}).get("namespace", "")
        owner = self.owners.get_by(ns, str(ref.get("name", "")))
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return object_key(owner)

    def _matching_owners(self, pod: Obj) -> list[str]:
        ns = (pod.get("metadata") or {}).get("namespace", "")
        keys = []
        for owner in self.owners.list():
            if owner["metadata"].get("namespace") != ns:
                continue
            try:
                if self.replicated.selector_of(owner).matches_object(pod):
                    keys.append(object_key(owner))
            except SelectorError:
                continue
        return keys

    def _pod_added(self, pod: Obj) -> None:
        if podstate.is_terminating(pod):
            self._pod_deleted(pod)  # e.g. seen for the first time after a restart
            return
        ref = controller_ref(pod)
        if ref is not None:
            key = self._owner_key(pod, ref)
            if key is not None:
                self.expectations.creation_observed(key)
                self.enqueue_key(key)
            return
        for key in self._matching_owners(pod):
            self.enqueue_key(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        labels_changed = old["metadata"].get("labels") != new["metadata"].get("labels")
        if podstate.is_terminating(new):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
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
        if labels_changed or old_ref != new_ref:
            for key in self._matching_owners(new):
                self.enqueue_key(key)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod, controller_ref(pod))
        if key is None:
            return
        self.expectations.deletion_observed(key, str(pod["metadata"].get("uid", "")))
        self.enqueue_key(key)

    # -- reconcile --------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.forget(key)
            return None
        try:
            selector = self.replicated.selector_of(owner)
        except SelectorError as e:
            log.warning("%s %s has an invalid selector: %s", self.replicated.kind, key, e)
            return None
        needs_sync = self.expectations.satisfied(key) and not owner["metadata"].get(
            "deletionTimestamp")
        active = [p for p in candidates(self.pods, owner) if podstate.is_active(p)]
        claimer = Claimer(self.client, PODS, owner, api_version=self.replicated.api_version,
                          kind=self.replicated.kind, selector=selector,
                          refetch_owner=lambda: self._fetch(owner))
        pods = await claimer.claim(active)

        manage_error: BaseException | None = None
        if needs_sync:
            manage_error = await self._manage(key, owner, pods)
        now = self.clock.time()
        status = replica_status(owner, pods, manage_error, now)
        await self._write_status(owner, status)
        if manage_error is not None:
            raise manage_error
        return self._next_availability(owner, pods, now)

    async def _fetch(self, owner: Obj) -> Obj | None:
        meta = owner["metadata"]
        try:
            fresh: Obj = await self.client.get(self.replicated.resource, meta["name"],
                                               namespace=meta.get("namespace"))
            return fresh
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    async def _manage(self, key: str, owner: Obj, pods: list[Obj]) -> BaseException | None:
        """Create or delete pods to reach ``spec.replicas``; the first error, if any."""
        diff = len(pods) - replicas_of(owner)
        if diff < 0:
            return await self._create(key, owner, min(-diff, BURST_REPLICAS))
        if diff > 0:
            return await self._delete(key, owner, pods, min(diff, BURST_REPLICAS))
        return None

    async def _create(self, key: str, owner: Obj, count: int) -> BaseException | None:
        self.expectations.expect_creations(key, count)
        meta = owner["metadata"]
        ref = owner_reference(owner, api_version=self.replicated.api_version,
                              kind=self.replicated.kind)
        template = (owner.get("spec") or {}).get("template") or {}

        async def create_one() -> None:
            pod = podcontrol.pod_from_template(template, namespace=meta["namespace"],
                                               owner_name=meta["name"], owner_ref=ref)
            try:
                created = await podcontrol.create_pod(self.client, pod)
            except (StatusError, TransportError) as e:
                self.expectations.creation_observed(key)  # it will never be seen
                self.record_event(owner, WARNING, "FailedCreate", f"Error creating: {_message(e)}")
                raise
            self.record_event(owner, NORMAL, "SuccessfulCreate",
                              f"Created pod: {created['metadata']['name']}")

        done, errors = await podcontrol.slow_start(count, create_one)
        for _ in range(count - done - len(errors)):
            self.expectations.creation_observed(key)  # skipped: never attempted
        if errors:
            if all(_namespace_terminating(e) for e in errors):
                return None
            return errors[0]
        return None

    async def _delete(self, key: str, owner: Obj, pods: list[Obj], count: int
                      ) -> BaseException | None:
        victims = ranking.pods_to_delete(pods, count, related=self._related_pods(owner, pods),
                                         now=self.clock.time())
        self.expectations.expect_deletions(key, [p["metadata"]["uid"] for p in victims])

        async def delete_one(pod: Obj) -> None:
            name = pod["metadata"]["name"]
            try:
                await podcontrol.delete_pod(self.client, pod)
            except (StatusError, TransportError) as e:
                self.expectations.deletion_observed(key, pod["metadata"]["uid"])
                if isinstance(e, StatusError) and e.code == 404:
                    return
                self.record_event(owner, WARNING, "FailedDelete", f"Error deleting: {_message(e)}")
                raise
            self.record_event(owner, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")

        results = await asyncio.gather(*(delete_one(p) for p in victims), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        return errors[0] if errors else None

    def _related_pods(self, owner: Obj, pods: list[Obj]) -> list[Obj]:
        """Pods of every ReplicaSet controlled by the same Deployment (or just ours)."""
        ref = controller_ref(owner)
        if ref is None:
            return pods
        siblings = self.owners.by_index(CONTROLLER_INDEX, str(ref.get("uid", "")))
        related: list[Obj] = []
        for sibling in siblings:
            related += self.pods.by_index(CONTROLLER_INDEX, sibling["metadata"]["uid"])
        return related

    # -- status -----------------------------------------------------------------------

    async def _write_status(self, owner: Obj, status: Obj) -> None:
        if _comparable(owner.get("status") or {}) == _comparable(status):
            return
        body = copy.deepcopy(owner)
        body["status"] = status
        try:
            await self.client.update(self.replicated.resource, body, subresource="status")
        except StatusError as e:
            if e.code == 404:
                return
            if e.code != 409:
                raise
            fresh = await self._fetch(owner)  # one retry on a fresh copy, as Kubernetes
            if fresh is None:
                return
            fresh["status"] = status
            await self.client.update(self.replicated.resource, fresh, subresource="status")

    def _next_availability(self, owner: Obj, pods: list[Obj], now: float) -> float | None:
        """Seconds until the first ready pod passes minReadySeconds (to recount then)."""
        min_ready = int((owner.get("spec") or {}).get("minReadySeconds") or 0)
        waits = [w for p in pods
                 if (w := podstate.seconds_until_available(p, min_ready, now)) is not None]
        return min(waits) + 0.05 if waits else None


def replica_status(owner: Obj, pods: list[Obj], error: BaseException | None, now: float) -> Obj:
    """The status of ``owner`` with these (claimed, active) pods, after ``error`` (if any)."""
    spec = owner.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    old = owner.get("status") or {}
    labeled = ready = available = 0
    for pod in pods:
        labeled += _fully_labeled(pod, template_labels)
        is_ready, is_available = podstate.readiness(pod, min_ready, now)
        ready += is_ready
        available += is_available
    status: Obj = {
        "replicas": len(pods), "fullyLabeledReplicas": labeled, "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": owner["metadata"].get("generation"),
    }
    conditions = [c for c in old.get("conditions") or [] if c.get("type") != REPLICA_FAILURE]
    failure = next((c for c in old.get("conditions") or []
                    if c.get("type") == REPLICA_FAILURE), None)
    if error is not None:
        if failure is None:
            reason = "FailedCreate" if len(pods) < replicas_of(owner) else "FailedDelete"
            failure = {"type": REPLICA_FAILURE, "status": "True",
                       "lastTransitionTime": format_time(datetime.fromtimestamp(now, timezone.utc)),
                       "reason": reason, "message": _message(error)}
        conditions.append(failure)
    if conditions:
        status["conditions"] = conditions
    return {k: v for k, v in status.items() if v is not None}


class ReplicationControllerController(ReplicaSetController):
    """Reconciles core/v1 ReplicationControllers: the ReplicaSet machine, map selector."""

    name = "replicationcontroller"
    component = "replication-controller"
    replicated = REPLICATIONCONTROLLER


def _comparable(status: Obj) -> tuple[Any, ...]:
    """The status fields this controller owns; absent counts are 0 (omitted when empty)."""
    counts = tuple(status.get(k) or 0 for k in ("replicas", "fullyLabeledReplicas",
                                                 "readyReplicas", "availableReplicas",
                                                 "observedGeneration"))
    return counts + (status.get("conditions") or [],)


def _message(error: BaseException) -> str:
    if isinstance(error, StatusError):
        return error.message
    return str(error) or type(error).__name__


def _namespace_terminating(error: BaseException) -> bool:
    """Creating in a terminating namespace fails expectedly (Kubernetes ignores it)."""
    return (isinstance(error, StatusError) and error.code == 403
            and "because it is being terminated" in error.message)
