"""The disruption controller: keeps each PodDisruptionBudget's status current.

The eviction subresource (``kubectl drain``) lets a pod go only while its
budget's ``status.disruptionsAllowed`` is above 0 and ``observedGeneration`` is
current -- this controller computes those numbers::

    pods        = pods in the budget's namespace matching spec.selector
    spec.minAvailable N (an integer)    expectedPods = len(pods), desiredHealthy = N
    spec.minAvailable P% / maxUnavailable
                expectedPods = sum of the replicas of the pods' controllers
                               (Deployment via its ReplicaSet, ReplicaSet,
                               ReplicationController, StatefulSet, anything with
                               a scale subresource); pods without one are
                               reported (event UnmanagedPods) and not counted
                desiredHealthy = ceil(P% of expected) | expected - maxUnavailable
                               (percentages round up)
    currentHealthy = Ready pods, not being deleted, not just evicted
    disruptionsAllowed = max(0, currentHealthy - desiredHealthy)  (0 when expected is 0)
    disruptedPods = evictions granted by the API server that the pod's deletion
                    has not caught up with yet; dropped after 2 minutes
    conditions: DisruptionAllowed True SufficientPods | False InsufficientPods
                | False SyncFailed (then disruptionsAllowed is 0: fail safe)

Keyed by ``namespace/name`` of the budget; any change of a pod matching a
budget re-queues that budget.
"""

from __future__ import annotations

import copy
import logging
import math
from datetime import datetime, timezone
from typing import Any, ClassVar

from ..api.errors import StatusError
from ..api.kinds.meta.cells import format_time, parse_time
from ..api.selectors import SelectorError, label_selector_from_object
from ..client.informer import Informer, object_key
from ..client.resources import DEPLOYMENTS, PODS, REPLICASETS, STATEFULSETS, Resource
from ..client.rest import TransportError
from .discovery import ApiResources, discover
from .events import NORMAL, WARNING
from .ownership import controller_ref
from .podstate import is_ready
from .reconciler import Controller, ControllerContext

Obj = dict[str, Any]
log = logging.getLogger(__name__)

PODDISRUPTIONBUDGETS = Resource("policy", "v1", "poddisruptionbudgets", kind="PodDisruptionBudget")
REPLICATIONCONTROLLERS = Resource("", "v1", "replicationcontrollers", kind="ReplicationController")
#: How long an eviction the API server granted may wait for the pod's deletion.
DELETION_TIMEOUT = 120.0


class SyncFailed(Exception):
    """The budget's numbers cannot be computed (reported in its status)."""


def scaled(value: Any, total: int) -> int:
    """An IntOrString against ``total``: ``"50%"`` of 3 -> 2 (rounded up), ``2`` -> 2."""
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%"):
            raise SyncFailed(f"invalid value {value!r}: a string must be a percentage")
        try:
            percent = int(text[:-1])
        except ValueError:
            raise SyncFailed(f"invalid value {value!r}: must be an integer percentage") from None
        return math.ceil(percent * total / 100)
    return int(value)


class DisruptionController(Controller):
    """Computes PodDisruptionBudget status (see module docstring)."""

    name: ClassVar[str] = "disruption"
    workers: ClassVar[int] = 2
    component: ClassVar[str] = "controllermanager"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.budgets: Informer = self.informer(PODDISRUPTIONBUDGETS)
        self.pods: Informer = self.informer(PODS)
        self.replicasets: Informer = self.informer(REPLICASETS)
        self.deployments: Informer = self.informer(DEPLOYMENTS)
        self.statefulsets: Informer = self.informer(STATEFULSETS)
        self.rcs: Informer = self.informer(REPLICATIONCONTROLLERS)
        self._resources: ApiResources | None = None
        self.budgets.add_handler(on_add=self.enqueue, on_update=lambda _old, new: self.enqueue(new))
        self.pods.add_handler(on_add=self._pod_changed, on_update=self._pod_updated,
                              on_delete=self._pod_changed)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
            self._pod_changed(old)  # budgets it no longer matches count it no more
        self._pod_changed(new)

    def _pod_changed(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        for budget in self.budgets.list():
            bmeta = budget.get("metadata") or {}
            if bmeta.get("namespace") != meta.get("namespace"):
                continue
            try:
                if label_selector_from_object((budget.get("spec") or {}).get("selector")).matches(labels):
                    self.enqueue(budget)
            except SelectorError:
                continue

    # -- reconcile ------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        budget = self.budgets.get(key)
        if budget is None:
            return None
        try:
            pods = self._pods_for(budget)
            expected, desired = await self._expected(budget, pods)
        except SyncFailed as e:
            await self._write(budget, self._failed_status(budget, str(e)))
            return None
        now = self.clock.time()
        disrupted, recheck = self._disrupted(budget, pods, now)
        healthy = sum(1 for p in pods if not (p.get("metadata") or {}).get("deletionTimestamp")
                      and p["metadata"]["name"] not in disrupted and is_ready(p))
        allowed = healthy - desired if expected > 0 else 0
        status = self._status(budget, healthy, desired, expected, max(allowed, 0), disrupted)
        if not pods:
            self.record_event(budget, NORMAL, "NoPods", "No matching pods found")
        await self._write(budget, status)
        return recheck

    def _pods_for(self, budget: Obj) -> list[Obj]:
        meta = budget.get("metadata") or {}
        try:
            selector = label_selector_from_object((budget.get("spec") or {}).get("selector"))
        except SelectorError as e:
            raise SyncFailed(str(e)) from None
        return [p for p in self.pods.list()
                if (p.get("metadata") or {}).get("namespace") == meta.get("namespace")
                and selector.matches((p.get("metadata") or {}).get("labels") or {})]

    async def _expected(self, budget: Obj, pods: list[Obj]) -> tuple[int, int]:
        """(expectedPods, desiredHealthy)."""
        spec = budget.get("spec") or {}
        if spec.get("maxUnavailable") is not None:
            expected = await self._expected_scale(budget, pods)
            return expected, max(0, expected - scaled(spec["maxUnavailable"], expected))
        min_available = spec.get("minAvailable")
        if isinstance(min_available, int):
            return len(pods), min_available
        if min_available is not None:
            expected = await self._expected_scale(budget, pods)
            return expected, scaled(min_available, expected)
        return 0, 0

    async def _expected_scale(self, budget: Obj, pods: list[Obj]) -> int:
        scales: dict[str, int] = {}
        unmanaged = []
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                unmanaged.append(pod["metadata"]["name"])
                continue
            if ref.get("uid") in scales:
                continue
            found = await self._scale_of(ref, pod["metadata"]["namespace"])
            if found is None:
                raise SyncFailed(f'found no controllers for pod "{pod["metadata"]["name"]}"')
            scales[found[0]] = found[1]
        if unmanaged:
            self.record_event(budget, WARNING, "UnmanagedPods",
                              f"Pods selected by this PodDisruptionBudget were found to be unmanaged: "
                              f"{', '.join(sorted(unmanaged))}; set spec.minAvailable to an integer "
                              f"to account for them")
        return sum(scales.values())

    async def _scale_of(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        """(uid, replicas) of the controller ``ref`` names (a Deployment through its ReplicaSet)."""
        kind, name, uid = ref.get("kind"), str(ref.get("name", "")), ref.get("uid")
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        cached: Obj | None = None
        if (group, kind) == ("apps", "ReplicaSet"):
            cached = self.replicasets.get_by(namespace, name)
            owner = controller_ref(cached) if cached is not None else None
            if owner is not None and owner.get("kind") == "Deployment":
                deploy = self.deployments.get_by(namespace, str(owner.get("name", "")))
                if deploy is not None and deploy["metadata"].get("uid") == owner.get("uid"):
                    return str(owner["uid"]), int((deploy.get("spec") or {}).get("replicas", 1))
        elif (group, kind) == ("apps", "StatefulSet"):
            cached = self.statefulsets.get_by(namespace, name)
        elif (group, kind) == ("", "ReplicationController"):
            cached = self.rcs.get_by(namespace, name)
        elif (group, kind) == ("apps", "Deployment"):
            cached = self.deployments.get_by(namespace, name)
        else:
            return await self._generic_scale(ref, namespace)
        if cached is None or cached["metadata"].get("uid") != uid:
            return None
        return str(uid), int((cached.get("spec") or {}).get("replicas", 1))

    async def _generic_scale(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        """Any other controller kind: its ``scale`` subresource (e.g. a CustomResource)."""
        try:
            if self._resources is None:
                self._resources = await discover(self.client)
            res = self._resources.for_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
            if res is None:
                return None
            scale = await self.client.get(res, str(ref.get("name", "")), namespace=namespace,
                                          subresource="scale")
        except (StatusError, TransportError):
            return None
        if (scale.get("metadata") or {}).get("uid") != ref.get("uid"):
            return None
        return str(ref["uid"]), int((scale.get("spec") or {}).get("replicas", 0))

    def _disrupted(self, budget: Obj, pods: list[Obj], now: float) -> tuple[dict[str, str], float | None]:
        """Evictions still waiting for their pod's deletion, and when to look again."""
        granted = (budget.get("status") or {}).get("disruptedPods") or {}
        kept: dict[str, str] = {}
        recheck: float | None = None
        for pod in pods:
            meta = pod.get("metadata") or {}
            when = granted.get(meta.get("name"))
            if when is None or meta.get("deletionTimestamp"):
                continue
            at = parse_time(when)
            expires = (at.timestamp() if at else now) + DELETION_TIMEOUT
            if expires < now:
                self.record_event(pod, WARNING, "NotDeleted",
                                  f"Pod was expected by PDB {object_key(budget)} to be deleted but it wasn't")
                continue
            kept[str(meta["name"])] = when
            left = expires - now
            recheck = left if recheck is None else min(recheck, left)
        return kept, recheck

    # -- status ---------------------------------------------------------------------

    def _condition(self, budget: Obj, status: str, reason: str, message: str, generation: int) -> Obj:
        old = next((c for c in (budget.get("status") or {}).get("conditions") or []
                    if c.get("type") == "DisruptionAllowed"), None)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else \
            format_time(datetime.fromtimestamp(self.clock.time(), timezone.utc))
        return {"type": "DisruptionAllowed", "status": status, "reason": reason, "message": message,
                "observedGeneration": generation, "lastTransitionTime": since}

    def _status(self, budget: Obj, healthy: int, desired: int, expected: int, allowed: int,
                disrupted: dict[str, str]) -> Obj:
        generation = int((budget.get("metadata") or {}).get("generation", 0))
        cond = self._condition(budget, "True", "SufficientPods", "", generation) if allowed > 0 \
            else self._condition(budget, "False", "InsufficientPods", "", generation)
        status: Obj = {"observedGeneration": generation, "disruptionsAllowed": allowed,
                       "currentHealthy": healthy, "desiredHealthy": desired, "expectedPods": expected,
                       "conditions": [cond]}
        if disrupted:
            status["disruptedPods"] = disrupted
        return status

    def _failed_status(self, budget: Obj, message: str) -> Obj:
        status = copy.deepcopy(budget.get("status") or {})
        status["disruptionsAllowed"] = 0
        status["conditions"] = [self._condition(budget, "False", "SyncFailed", message,
                                                int(status.get("observedGeneration", 0)))]
        self.record_event(budget, WARNING, "CalculateExpectedPodCountFailed",
                          f"Failed to calculate the number of expected pods: {message}")
        return status

    async def _write(self, budget: Obj, status: Obj) -> None:
        current = budget.get("status") or {}
        if all(current.get(k) == v for k, v in status.items()) and \
                ("disruptedPods" in status or not current.get("disruptedPods")):
            return
        body = copy.deepcopy(budget)
        body["status"] = status
        try:
            await self.client.update(PODDISRUPTIONBUDGETS, body, subresource="status")
        except StatusError as e:
            if e.code != 404:
                raise
