"""Keeping the right number of a Job's pods running: create, delete, back off.

::

    suspended            delete every active pod (finalizer first, then the pod)
    want = parallelism, but never more than the completions still missing
           (no completions: parallelism until the first success, then what runs)
    too many active      delete the surplus, least advanced first (and, Indexed,
                         every duplicate or out-of-range index first)
    too few active       wait out the failure back-off (see backoff.py), then
                         create the difference in slow-start batches (1, 2, 4 ...)
                         -- Indexed: for the lowest indexes neither succeeded,
                         failed, running nor (podReplacementPolicy Failed) terminating
    a Job that has failed or succeeded early: delete its active pods, keeping their
    finalizers so they are counted (see :func:`delete_active_pods`)

Every pod gets the tracking finalizer, a controller reference to the Job and
the template's labels (which include the Job's selector).  Events:
``SuccessfulCreate`` ("Created pod: pi-x2k8q"), ``SuccessfulDelete``
("Deleted pod: pi-x2k8q"), ``FailedCreate`` / ``FailedDelete`` (Warning).
At most 500 pods are created or deleted per sync.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ...api.errors import StatusError
from ...client.resources import PODS
from ...client.rest import TransportError
from .. import podcontrol, podstate
from ..events import NORMAL, WARNING
from ..ownership import owner_reference
from . import backoff, facts
from . import indexes as ix
from .policies import match_failure
from .state import Host, SyncState

Obj = dict[str, Any]

#: At most this many pods are created or deleted in one sync (MaxPodCreateDeletePerSync).
MAX_BURST = 500


def job_owner_reference(job: Obj) -> Obj:
    return owner_reference(job, api_version="batch/v1", kind="Job")


def pods_for_removal(job: Obj, active: Sequence[Obj], at_least: int) -> list[Obj]:
    """Active pods to delete: duplicated/invalid indexes, then the least advanced."""
    if facts.is_indexed(job):
        remove, keep = ix.duplicates_for_removal(active, facts.completions(job) or 0,
                                                 facts.removal_order)
    else:
        remove, keep = [], list(active)
    if len(remove) < at_least:
        keep.sort(key=facts.removal_order)
        remove += keep[:at_least - len(remove)]
    return remove


def wanted_active(job: Obj, active: int, succeeded: int) -> int:
    completions = facts.completions(job)
    if completions is None:
        return active if succeeded > 0 else facts.parallelism(job)
    return max(0, min(completions - succeeded, facts.parallelism(job)))


async def manage(host: Host, st: SyncState) -> tuple[int, BaseException | None]:
    """Create or delete pods for ``st``; (active pods now, the first error)."""
    job = st.job
    active = len(st.active)
    if facts.suspended(job):
        return await _remove(host, st, pods_for_removal(job, st.active, active), active)
    want = wanted_active(job, active, st.succeeded)
    surplus = pods_for_removal(job, st.active, max(0, active - want))[:MAX_BURST]
    if surplus:
        # Deleting wins over creating in one sync (an Indexed Job may need both).
        return await _remove(host, st, surplus, active)
    terminating = st.terminating if facts.only_replace_failed(job) else 0
    missing = want - terminating - active
    if missing <= 0:
        return active, None
    now = host.clock.time()
    per_index = facts.per_index_limit(job) is not None
    if not per_index:
        wait = backoff.remaining(st.backoff.failures, st.backoff.last_failure, now,
                                 base=host.backoff_base, cap=host.backoff_cap)
        if wait > 0:
            host.requeue_at(st.key, now + wait)
            return active, None
    missing = min(missing, MAX_BURST)
    indexes: list[int] | None = None
    if facts.is_indexed(job):
        indexes = ix.first_pending(missing, st.completions, _taken_indexes(st))
        if per_index:
            indexes, wait = _indexes_ready(host, st, indexes, now)
            if wait > 0:
                host.requeue_at(st.key, now + wait)
                return active, None
        missing = len(indexes)
    if missing <= 0:
        return active, None
    created, error = await _create(host, st, missing, indexes)
    return active + created, error


def _taken_indexes(st: SyncState) -> ix.Intervals:
    taken = st.succeeded_indexes.with_indexes(ix.indexes_of(st.active))
    if facts.only_replace_failed(st.job):
        taken = taken.with_indexes(ix.indexes_of(p for p in st.pods if facts.is_terminating(p)))
    if st.failed_indexes is not None:
        taken = taken.merge(st.failed_indexes)
    return taken


def _indexes_ready(host: Host, st: SyncState, wanted: list[int],
                   now: float) -> tuple[list[int], float]:
    """backoffLimitPerIndex: the indexes whose own back-off has passed, else the shortest wait."""
    ready: list[int] = []
    shortest: float | None = None
    for index in wanted:
        last = st.delayed_per_index.get(index)
        wait = 0.0
        if last is not None:
            wait = backoff.remaining(ix.absolute_failure_count(last) + 1, backoff.finish_time(last),
                                     now, base=host.backoff_base, cap=host.backoff_cap)
        if wait <= 0:
            ready.append(index)
        elif shortest is None or wait < shortest:
            shortest = wait
    return (ready, 0.0) if ready else ([], shortest or 0.0)


def _failure_counts(job: Obj, replaced: Obj | None) -> tuple[int, int]:
    """(failure count, ignored failure count) a replacement of ``replaced`` inherits."""
    if replaced is None:
        return 0, 0
    counted, ignored = ix.failure_count(replaced), ix.ignored_failure_count(replaced)
    if match_failure(facts.failure_policy(job), replaced).counts:
        counted += 1
    else:
        ignored += 1
    return counted, ignored


async def _create(host: Host, st: SyncState, count: int,
                  indexes: list[int] | None) -> tuple[int, BaseException | None]:
    job, key = st.job, st.key
    meta = job["metadata"]
    host.expectations.expect_creations(key, count)
    template = copy.deepcopy(facts.spec_of(job).get("template") or {})
    if indexes is not None:
        ix.add_index_env(template.setdefault("spec", {}))
    finalizers = template.setdefault("metadata", {}).setdefault("finalizers", [])
    if facts.TRACKING_FINALIZER not in finalizers:
        finalizers.append(facts.TRACKING_FINALIZER)
    ref = job_owner_reference(job)
    pending = list(indexes) if indexes is not None else None
    created = 0

    async def create_one() -> None:
        nonlocal created
        pod = podcontrol.pod_from_template(template, namespace=meta["namespace"],
                                           owner_name=meta["name"], owner_ref=ref)
        if pending is not None:
            index = pending.pop(0)
            ix.stamp_index(pod, meta["name"], index)
            if facts.per_index_limit(job) is not None:
                counted, ignored = _failure_counts(job, st.delayed_per_index.get(index))
                notes = pod["metadata"].setdefault("annotations", {})
                notes[ix.INDEX_FAILURE_COUNT] = str(counted)
                if ignored:
                    notes[ix.INDEX_IGNORED_FAILURE_COUNT] = str(ignored)
        try:
            new = await podcontrol.create_pod(host.client, pod)
        except (StatusError, TransportError) as e:
            host.expectations.creation_observed(key)  # it will never be seen
            if _namespace_terminating(e):
                return  # every later create fails the same way; nothing to retry
            host.record_event(job, WARNING, "FailedCreate", f"Error creating: {_message(e)}")
            raise
        created += 1
        host.record_event(job, NORMAL, "SuccessfulCreate", f"Created pod: {new['metadata']['name']}")

    done, errors = await podcontrol.slow_start(count, create_one)
    for _ in range(count - done - len(errors)):
        host.expectations.creation_observed(key)  # skipped after a failed batch
    return created, errors[0] if errors else None


async def _remove(host: Host, st: SyncState, victims: list[Obj],
                  active: int) -> tuple[int, BaseException | None]:
    if not victims:
        return active, None
    host.expectations.expect_deletions(st.key, [facts.uid_of(p) for p in victims])
    ready, removed, error = await delete_job_pods(host, st, victims)
    st.terminating += removed
    st.ready -= ready
    return active - removed, error


async def delete_job_pods(host: Host, st: SyncState,
                          pods: Sequence[Obj]) -> tuple[int, int, BaseException | None]:
    """Remove the tracking finalizer, then delete: (ready deleted, deleted, first error).

    Used when pods go although nothing failed (suspend, too many): they are not counted.
    """
    async def one(pod: Obj) -> bool:
        try:
            if facts.has_tracking_finalizer(pod):
                await remove_finalizer(host, pod)
            await _delete(host, st.job, pod)
        except (StatusError, TransportError) as e:
            host.expectations.deletion_observed(st.key, facts.uid_of(pod))
            if isinstance(e, StatusError) and e.code == 404:
                return True
            raise
        return True
    return await _each(pods, one)


async def delete_active_pods(host: Host, st: SyncState,
                             pods: Sequence[Obj]) -> tuple[int, int, BaseException | None]:
    """Delete a finishing Job's active pods, keeping their finalizers (they get counted)."""
    async def one(pod: Obj) -> bool:
        try:
            await _delete(host, st.job, pod)
        except StatusError as e:
            if e.code == 404:
                return True
            raise
        return True
    return await _each(pods, one)


async def _each(pods: Sequence[Obj], action: Callable[[Obj], Awaitable[bool]]) -> tuple[int, int, BaseException | None]:
    results = await asyncio.gather(*(action(p) for p in pods), return_exceptions=True)
    ready = deleted = 0
    error: BaseException | None = None
    for pod, result in zip(pods, results):
        if isinstance(result, BaseException):
            if isinstance(result, asyncio.CancelledError):
                raise result
            error = error or result
            continue
        deleted += 1
        ready += podstate.is_ready(pod)
    return ready, deleted, error


async def _delete(host: Host, job: Obj, pod: Obj) -> None:
    name = pod["metadata"]["name"]
    try:
        await podcontrol.delete_pod(host.client, pod)
    except (StatusError, TransportError) as e:
        if not (isinstance(e, StatusError) and e.code == 404):
            host.record_event(job, WARNING, "FailedDelete", f"Error deleting: {_message(e)}")
        raise
    host.record_event(job, NORMAL, "SuccessfulDelete", f"Deleted pod: {name}")


async def remove_finalizer(host: Host, pod: Obj) -> None:
    """Drop the tracking finalizer (a strategic merge patch that leaves other finalizers)."""
    meta = pod["metadata"]
    await host.client.patch(PODS, meta["name"], {
        "metadata": {"$deleteFromPrimitiveList/finalizers": [facts.TRACKING_FINALIZER]}},
        namespace=meta.get("namespace"), patch_type="strategic")


def _message(error: BaseException) -> str:
    if isinstance(error, StatusError):
        return error.message
    return str(error) or type(error).__name__


def _namespace_terminating(error: BaseException) -> bool:
    return (isinstance(error, StatusError) and error.code == 403
            and "because it is being terminated" in error.message)
