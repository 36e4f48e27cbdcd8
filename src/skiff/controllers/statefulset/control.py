"""One pass of the StatefulSet algorithm over its member pods.

Members are the pods with an ordinal in range; *condemned* ones are named like
members but their ordinal is past the end (a scale-down)::

    1. members, lowest ordinal first
         Failed / Succeeded ─▶ delete it (it comes back under the same name once gone)
         missing            ─▶ its claims still belong to an earlier pod? wait;
                               else create its claims, then the pod, from the current
                               revision below the partition, the update revision above
         Pending            ─▶ create any claims it lacks
         terminating, not Running+Ready, not yet available ─▶ OrderedReady waits here
         identity labels / claims / claim owner references off ─▶ repair
    2. condemned: claim owner references for the retention policy (whenScaled)
    3. condemned, highest ordinal first: delete; OrderedReady deletes one, waits until
       it is gone, and only while all other pods are healthy
    4. OnDelete: done.  RollingUpdate: from the highest ordinal down to the partition,
       delete the first member not at the update revision; a member that is not
       available on the way holds the update (one pod at a time)

OrderedReady (the default) stops the pass at the first thing it must wait for,
so pods are created 0, 1, 2 ... each only once the one before is Running and
Ready, and removed in reverse.  Parallel does each step for all pods at once
(creations in slow-start batches); after a step that created or deleted pods
the pass ends and the next begins when the controller has seen those writes
(its expectations are set for the whole batch before anything is sent).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ...client.expectations import Expectations
from .. import history, podstate
from ..podcontrol import slow_start
from . import identity as ident
from .podcontrol import StatefulPodControl
from .revisions import Revisions
from .status import is_available, is_running_and_ready, is_unavailable

Obj = dict[str, Any]


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _finished(pod: Obj) -> bool:
    return _phase(pod) in ("Failed", "Succeeded")


@dataclass
class MemberSync:
    """One pass for one StatefulSet (see module docstring)."""

    pods: StatefulPodControl
    expectations: Expectations
    key: str
    sts: Obj
    revisions: Revisions
    members: list[Obj]
    now: float

    def __post_init__(self) -> None:
        spec = self.sts.get("spec") or {}
        self.monotonic = spec.get("podManagementPolicy") != "Parallel"
        self.min_ready = int(spec.get("minReadySeconds") or 0)
        self.current_set = history.with_template(self.sts, self.revisions.current)
        self.update_set = history.with_template(self.sts, self.revisions.update)
        self.start = ident.start_ordinal(self.sts)
        self.end = self.start + ident.replicas_of(self.sts)
        self.replicas: dict[int, Obj] = {}
        self.condemned: list[Obj] = []
        for pod in self.members:
            ordinal = ident.ordinal_of(pod)
            if self.start <= ordinal < self.end:
                self.replicas[ordinal] = pod
            elif ordinal >= 0:
                self.condemned.append(pod)
        self.condemned.sort(key=ident.ordinal_of, reverse=True)

    # -- helpers ------------------------------------------------------------------------

    def _new_member(self, ordinal: int) -> Obj:
        """Member ``ordinal`` at the revision its position calls for."""
        strategy = (self.sts.get("spec") or {}).get("updateStrategy") or {}
        rolling = strategy.get("rollingUpdate")
        current_spec = self.current_set.get("spec") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            if rolling is None:
                below = ordinal < self.start + int((self.sts.get("status") or {}).get("currentReplicas") or 0)
            else:
                below = ordinal < self.start + int(rolling.get("partition") or 0)
            if below:
                return ident.new_pod(self.current_set, current_spec.get("template") or {},
                                     ordinal, self.revisions.current_name)
        return ident.new_pod(self.update_set, (self.update_set.get("spec") or {}).get("template") or {},
                             ordinal, self.revisions.update_name)

    def _healthy_and_available(self, pod: Obj) -> bool:
        return (not podstate.is_terminating(pod) and is_running_and_ready(pod)
                and is_available(pod, self.min_ready, self.now))

    async def _write_batch(self, creates: list[Obj], deletes: list[Obj]) -> None:
        """Create and delete these pods, expectations first; the first error is raised."""
        if creates:
            self.expectations.expect_creations(self.key, len(creates))
        if deletes:
            self.expectations.expect_deletions(self.key, [p["metadata"]["uid"] for p in deletes])
        errors: list[BaseException] = []

        async def delete_one(pod: Obj) -> None:
            try:
                await self.pods.delete(self.sts, pod)
            except BaseException:
                self.expectations.deletion_observed(self.key, pod["metadata"]["uid"])
                raise

        results = await asyncio.gather(*(delete_one(p) for p in deletes), return_exceptions=True)
        errors += [r for r in results if isinstance(r, BaseException)]
        queue = list(creates)

        async def create_next() -> None:
            pod = queue.pop(0)
            try:
                await self.pods.create(self.sts, pod)
            except BaseException:
                self.expectations.creation_observed(self.key)
                raise

        if queue:
            done, failed = await slow_start(len(queue), create_next)
            for _ in range(len(creates) - done - len(failed)):
                self.expectations.creation_observed(self.key)  # never attempted
            errors += failed
        for e in errors:
            if isinstance(e, asyncio.CancelledError):
                raise e
        if errors:
            raise errors[0]

    # -- the pass -------------------------------------------------------------------------

    async def run(self) -> None:
        if self.sts["metadata"].get("deletionTimestamp"):
            return
        if await self._members():
            return
        for pod in self.condemned:
            if not self.pods.claims_match_policy(self.update_set, pod):
                await self.pods.update_claims_for_policy(self.update_set, pod)
        if await self._scale_down():
            return
        strategy = (self.sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            await self._rolling_update(int((strategy.get("rollingUpdate") or {}).get("partition") or 0))

    async def _members(self) -> bool:
        """Step 1; True when the pass must end here."""
        creates: list[Obj] = []
        deletes: list[Obj] = []
        for ordinal in range(self.start, self.end):
            pod = self.replicas.get(ordinal)
            if pod is not None and _finished(pod):
                if not podstate.is_terminating(pod):
                    deletes.append(pod)
                if self.monotonic:
                    break
                continue
            if pod is None:
                member = self._new_member(ordinal)
                if self.pods.claim_is_stale(self.sts, member):
                    if self.monotonic:
                        break
                    continue
                creates.append(member)
                if self.monotonic:
                    break
                continue
            if _phase(pod) == "Pending":
                await self.pods.create_missing_claims(self.update_set, pod)
            if self.monotonic and not self._healthy_and_available(pod):
                return True
            if not (ident.identity_matches(self.sts, pod) and ident.storage_matches(self.sts, pod)
                    and self.pods.claims_match_policy(self.update_set, pod)):
                await self.pods.repair(self.update_set, pod)
        else:
            if not creates and not deletes:
                return False
        await self._write_batch(creates, deletes)
        return True

    async def _scale_down(self) -> bool:
        """Step 3; True when the pass must end here."""
        if not self.condemned:
            return False
        if not self.monotonic:
            doomed = [p for p in self.condemned if not podstate.is_terminating(p)]
            if doomed:
                await self._write_batch([], doomed)
                return True
            return False
        first_unhealthy = next((p for p in reversed(self.condemned)
                                if is_unavailable(p, self.min_ready, self.now)), None)
        for pod in self.condemned:
            if podstate.is_terminating(pod):
                return True  # wait until it is gone
            if not self._healthy_and_available(pod) and pod is not first_unhealthy:
                return True
            await self._write_batch([], [pod])
            return True
        return False

    async def _rolling_update(self, partition: int) -> None:
        """Step 4 (RollingUpdate): replace the highest out-of-date member at or above the partition."""
        for ordinal in range(self.end - 1, self.start + partition - 1, -1):
            pod = self.replicas.get(ordinal)
            if pod is None:
                return
            if ident.revision_of(pod) != self.revisions.update_name and not podstate.is_terminating(pod):
                await self._write_batch([], [pod])
                return
            if is_unavailable(pod, self.min_ready, self.now):
                return
