"""The Job controller: run pods to completion, count them, finish the Job.

One reconcile of ``namespace/name``::

    Job gone ─▶ forget its expectations and back-off record
    managed by another controller (spec.managedBy) or already finished ─▶ done
    our last status write not in the cache yet ─▶ wait (its watch event requeues us)
    claim pods (adopt matching orphans, adding the tracking finalizer;
               release pods that no longer match)
    sync (sync.py): count, decide, create/delete pods (manage.py),
                    count finished pods and write the status (tracking.py)

Handlers only map pod events to the owning Job's key (and observe the
creations, deletions and finalizer removals the controller waits for).  A
second, small queue removes the tracking finalizer from pods no Job will
count any more: orphans, and pods of deleted or finished Jobs.

Constructor options (``functools.partial`` in tests): ``backoff_base`` and
``backoff_cap`` of the failed-pod back-off (default 10 s doubling, 6 min).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from ...api.errors import StatusError
from ...api.selectors import SelectorError, label_selector_from_object
from ...client.informer import object_key
from ...client.resources import JOBS, PODS
from ...client.workqueue import WorkQueue
from .. import podstate
from ..ownership import (
    CONTROLLER_INDEX, Claimer, candidates, controller_ref, ensure_controller_index,
)
from ..reconciler import Controller, ControllerContext
from . import facts
from .backoff import DEFAULT_BASE, DEFAULT_CAP, BackoffStore
from .manage import remove_finalizer
from .state import FinalizerRemovals
from .sync import sync_job

Obj = dict[str, Any]
log = logging.getLogger(__name__)

#: Stop waiting for the cache to show our own status write after this long (seconds).
WRITE_TTL = 30.0


class _JobPodClaimer(Claimer):
    """Adopting a pod also gives it the tracking finalizer, in the same patch."""

    async def _adopt(self, obj: Obj) -> Obj | None:
        meta = obj["metadata"]
        patch = {"metadata": {"ownerReferences": [self.ref], "uid": meta["uid"],
                              "finalizers": [facts.TRACKING_FINALIZER]}}
        try:
            result: Obj = await self.client.patch(self.resource, meta["name"], patch,
                                                  namespace=meta.get("namespace"),
                                                  patch_type="strategic")
            return result
        except StatusError as e:
            if e.code == 404:
                return None
            raise


class JobController(Controller):
    """Reconciles batch/v1 Jobs (see module docstring)."""

    name = "job"
    component = "job-controller"
    workers = 5

    def __init__(self, ctx: ControllerContext, *, backoff_base: float = DEFAULT_BASE,
                 backoff_cap: float = DEFAULT_CAP) -> None:
        super().__init__(ctx)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.removals = FinalizerRemovals()
        self.backoffs = BackoffStore()
        self.orphans: WorkQueue[str] = WorkQueue(clock=ctx.clock)
        # job key -> (resourceVersions our status writes replaced, when the first was made)
        self._unseen: dict[str, tuple[set[str], float]] = {}
        self.jobs = self.informer(JOBS)
        self.pods = self.informer(PODS)
        ensure_controller_index(self.pods)
        self.jobs.add_handler(on_add=self.enqueue, on_update=self._job_updated,
                              on_delete=self._job_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated,
                              on_delete=lambda pod: self._pod_gone(pod, final=True))

    # -- Host (what the sync steps use) ----------------------------------------------------

    def requeue_at(self, key: str, when: float) -> None:
        self.enqueue_after(key, when - self.clock.time())

    async def write_status(self, job: Obj) -> Obj:
        """PUT the status (optimistically: a stale Job fails with 409 and is retried)."""
        _tidy_status(job.setdefault("status", {}))
        before = str(job["metadata"].get("resourceVersion", ""))
        written: Obj = await self.client.update(JOBS, job, subresource="status")
        key = object_key(job)
        stale, since = self._unseen.get(key, (set(), self.clock.monotonic()))
        stale.add(before)
        self._unseen[key] = (stale, since)
        return written

    # -- handlers: only compute keys ------------------------------------------------------

    def _job_updated(self, old: Obj, new: Obj) -> None:
        self.enqueue(new)
        if facts.is_finished(new):
            self._release_pods_of(new)  # a backup: finishing normally released them all

    def _job_deleted(self, job: Obj) -> None:
        key = object_key(job)
        self._unseen.pop(key, None)
        self.enqueue_key(key)
        self._release_pods_of(job)

    def _release_pods_of(self, job: Obj) -> None:
        for pod in self.pods.by_index(CONTROLLER_INDEX, facts.uid_of(job)):
            if facts.has_tracking_finalizer(pod):
                self.orphans.add(object_key(pod))

    def _job_of(self, pod: Obj, ref: Obj | None) -> Obj | None:
        if ref is None or ref.get("kind") != "Job":
            return None
        job = self.jobs.get_by((pod.get("metadata") or {}).get("namespace"), str(ref.get("name", "")))
        if job is None or facts.uid_of(job) != ref.get("uid"):
            return None
        return job

    def _matching_jobs(self, pod: Obj) -> list[str]:
        ns = (pod.get("metadata") or {}).get("namespace")
        keys = []
        for job in self.jobs.list():
            if job["metadata"].get("namespace") != ns:
                continue
            try:
                selector = label_selector_from_object(facts.spec_of(job).get("selector"))
            except SelectorError:
                continue
            if not selector.empty and selector.matches_object(pod):
                keys.append(object_key(job))
        return keys

    def _pod_added(self, pod: Obj) -> None:
        if podstate.is_terminating(pod):
            self._pod_gone(pod, final=False)  # e.g. first seen after a restart
            return
        ref = controller_ref(pod)
        if ref is not None:
            job = self._job_of(pod, ref)
            if job is not None:
                key = object_key(job)
                self.expectations.creation_observed(key)
                self.enqueue_key(key)
            return
        if facts.has_tracking_finalizer(pod):
            self.orphans.add(object_key(pod))
        for key in self._matching_jobs(pod):
            self.enqueue_key(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        if podstate.is_terminating(new):
            self._pod_gone(new, final=False)
            return
        released = not facts.has_tracking_finalizer(new)
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        uid = facts.uid_of(new)
        if old_ref != new_ref and old_ref is not None:
            job = self._job_of(old, old_ref)
            if job is not None:
                if released:
                    self.removals.observed(object_key(job), uid)
                self.enqueue(job)
        if new_ref is not None:
            job = self._job_of(new, new_ref)
            if job is not None:
                if released:
                    self.removals.observed(object_key(job), uid)
                self.enqueue(job)
            return
        if not released:
            self.orphans.add(object_key(new))
        if old_ref != new_ref or old["metadata"].get("labels") != new["metadata"].get("labels"):
            for key in self._matching_jobs(new):
                self.enqueue_key(key)

    def _pod_gone(self, pod: Obj, *, final: bool) -> None:
        """The pod is being deleted (``final``: it is gone)."""
        has_finalizer = facts.has_tracking_finalizer(pod)
        ref = controller_ref(pod)
        job = self._job_of(pod, ref)
        if job is None or facts.is_finished(job):
            if has_finalizer and not final:
                self.orphans.add(object_key(pod))
            return
        key = object_key(job)
        uid = facts.uid_of(pod)
        self.expectations.deletion_observed(key, uid)
        if final or not has_finalizer:
            self.removals.observed(key, uid)
        self.enqueue_key(key)

    # -- reconcile ------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        job = self.jobs.get(key)
        if job is None:
            self.expectations.forget(key)
            self.removals.forget(key)
            self.backoffs.remove(key)
            self._unseen.pop(key, None)
            return None
        if facts.managed_elsewhere(job):
            return None
        if facts.is_finished(job):
            self.backoffs.remove(key)
            return None
        if not self._caught_up(key, job):
            return None  # the write's own event brings us back
        may_manage = self.expectations.satisfied(key)
        mine = copy.deepcopy(job)
        pods = await self._claim(mine)
        if pods is None:
            return None
        await sync_job(self, key, mine, pods, may_manage)
        return None

    def _caught_up(self, key: str, job: Obj) -> bool:
        entry = self._unseen.get(key)
        if entry is None:
            return True
        stale, since = entry
        if str(job["metadata"].get("resourceVersion", "")) in stale \
                and self.clock.monotonic() - since < WRITE_TTL:
            return False
        del self._unseen[key]
        return True

    async def _claim(self, job: Obj) -> list[Obj] | None:
        try:
            selector = label_selector_from_object(facts.spec_of(job).get("selector"))
        except SelectorError as e:
            log.warning("job %s has an invalid selector: %s", object_key(job), e)
            return None
        claimer = _JobPodClaimer(self.client, PODS, job, api_version="batch/v1", kind="Job",
                                 selector=selector, refetch_owner=lambda: self._fetch(job))
        return await claimer.claim(candidates(self.pods, job))

    async def _fetch(self, job: Obj) -> Obj | None:
        meta = job["metadata"]
        try:
            fresh: Obj = await self.client.get(JOBS, meta["name"], namespace=meta.get("namespace"))
            return fresh
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    # -- pods no Job counts any more ---------------------------------------------------------

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(super().run(), name=f"{self.name}-workers")
                tg.create_task(self._orphan_worker(), name=f"{self.name}-orphans")
        finally:
            self.orphans.shut_down()

    async def _orphan_worker(self) -> None:
        await self.wait_synced()
        while (key := await self.orphans.get()) is not None:
            try:
                await self._release_orphan(key)
            except Exception as e:
                log.info("job: releasing orphan pod %s failed: %s", key, e)
                self.orphans.add_rate_limited(key)
            else:
                self.orphans.forget(key)
            finally:
                self.orphans.done(key)

    async def _release_orphan(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or not facts.has_tracking_finalizer(pod):
            return
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return  # someone else's pod: not ours to touch
            job = self._job_of(pod, ref)
            if job is not None and (facts.managed_elsewhere(job) or not facts.is_finished(job)):
                return  # a live Job counts it
        try:
            await remove_finalizer(self, pod)
        except StatusError as e:
            if e.code != 404:
                raise


def _tidy_status(status: Obj) -> None:
    """Omit what Kubernetes omits when empty (zero counters, empty lists and strings)."""
    for name in ("active", "succeeded", "failed"):
        if not status.get(name):
            status.pop(name, None)
    unc = status.setdefault("uncountedTerminatedPods", {})
    for name in ("succeeded", "failed"):
        if not unc.get(name):
            unc.pop(name, None)
    if not status.get("completedIndexes"):
        status.pop("completedIndexes", None)
    if status.get("failedIndexes") is None:
        status.pop("failedIndexes", None)
    if not status.get("conditions"):
        status.pop("conditions", None)
