"""Counting finished pods exactly once, with the ``batch.kubernetes.io/job-tracking`` finalizer.

Every pod of a Job is created with the tracking finalizer, so it cannot vanish
before the Job has counted it.  Counting is a two-phase commit through the Job's
status, safe against crashes and stale caches::

    finished pod, finalizer still on
        │ 1. its UID goes into status.uncountedTerminatedPods.{succeeded,failed}
        │    (Indexed: its index goes straight into status.completedIndexes)
        ▼    and the status is written          ── crash here: UID is remembered
    2. remove its finalizer (PATCH)             ── the pod may now be deleted
        ▼
    3. UIDs whose pod has no finalizer any more leave the uncounted lists and
       become status.succeeded / status.failed  (written with the next status)

A pod counts as failed when it failed (see :func:`facts.is_pod_failed`) -- minus
failures a pod failure policy ``Ignore`` s -- or, once the Job is failing, when
it is still active.  Pods of a Job that succeeded early (success policy) are
deleted without counting as failures.

The Job only finishes when nothing is uncounted and no pod is terminating::

    FailureTarget / SuccessCriteriaMet   written first (the decision)
    Failed / Complete (+ completionTime) written when every pod is accounted for

Events: ``Completed`` "Job completed" (and ``TooManySucceededPods`` when more
succeeded than needed); a failure records a Warning with the reason and message
of its condition (``BackoffLimitExceeded`` "Job has reached the specified backoff
limit", ``DeadlineExceeded``, ``PodFailurePolicy`` ...).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ...api.errors import StatusError
from ...client.rest import TransportError
from ..events import NORMAL, WARNING
from . import facts
from . import indexes as ix
from .manage import remove_finalizer
from .policies import match_failure
from .state import Host, SyncState

Obj = dict[str, Any]

#: Keep status.uncountedTerminatedPods below roughly 20 KB (MaxUncountedPods).
MAX_UNCOUNTED = 500


def can_remove_finalizer(st: SyncState, pod: Obj, failed: bool) -> bool:
    """The Job is done with this pod: it is finished (or the Job is), and with
    backoffLimitPerIndex it is not the failed pod its index's replacement still needs."""
    if st.job["metadata"].get("deletionTimestamp") or st.finished is not None \
            or facts.phase_of(pod) == "Succeeded":
        return True
    if not failed:
        return False
    if facts.per_index_limit(st.job) is not None:
        index = ix.completion_index(pod)
        keeper = st.delayed_per_index.get(index) if index is not None else None
        if keeper is not None and facts.uid_of(keeper) == facts.uid_of(pod):
            return False
    return True


def _index_or_minus_one(pod: Obj) -> int:
    index = ix.completion_index(pod)
    return -1 if index is None else index


def fold_uncounted(status: Obj, with_finalizer: set[str]) -> bool:
    """Step 3: count uncounted UIDs whose pod lost its finalizer; True if anything moved."""
    unc: Obj = status.setdefault("uncountedTerminatedPods", {})
    changed = False
    for which, counter in (("succeeded", "succeeded"), ("failed", "failed")):
        listed = [str(u) for u in unc.get(which) or []]
        still = [u for u in listed if u in with_finalizer]
        if len(still) != len(listed):
            changed = True
            status[counter] = int(status.get(counter) or 0) + len(listed) - len(still)
            unc[which] = still
    return changed


async def track(host: Host, st: SyncState, needs_flush: bool) -> None:
    """Count finished pods, remove finalizers, and write the status (see module docstring)."""
    job = st.job
    indexed = facts.is_indexed(job)
    pods = st.pods
    if indexed:
        pods = sorted(pods, key=_index_or_minus_one)
    with_finalizer = {facts.uid_of(p) for p in pods if facts.has_tracking_finalizer(p)
                      and facts.uid_of(p) not in st.expected_removals}
    needs_flush = fold_uncounted(st.status, with_finalizer) or needs_flush
    unc = st.uncounted
    policy = facts.failure_policy(job)
    to_release: list[Obj] = []
    new_indexes: list[int] = []
    reached_max = False
    for pod in pods:
        uid = facts.uid_of(pod)
        if not facts.has_tracking_finalizer(pod) or uid in st.expected_removals:
            continue  # counted in an earlier sync
        failed = facts.is_pod_failed(pod, job)
        if not can_remove_finalizer(st, pod, failed):
            continue
        to_release.append(pod)
        if facts.phase_of(pod) == "Succeeded" and uid not in st.uncounted_failed:
            if indexed:
                index = ix.valid_index(pod, st.completions)
                if index is not None and not st.prev_succeeded_indexes.has(index):
                    new_indexes.append(index)
                    needs_flush = True
            elif uid not in st.uncounted_succeeded:
                unc.setdefault("succeeded", []).append(uid)
                needs_flush = True
        elif failed or (st.finished is not None
                        and st.finished["type"] != facts.SUCCESS_CRITERIA_MET):
            valid = not indexed or ix.valid_index(pod, st.completions) is not None
            if uid not in st.uncounted_failed and valid and match_failure(policy, pod).counts:
                unc.setdefault("failed", []).append(uid)
                needs_flush = True
        if len(new_indexes) + len(unc.get("succeeded") or []) + len(unc.get("failed") or []) \
                >= MAX_UNCOUNTED:
            reached_max = True  # the rest next time (the status write requeues us)
            break
    if indexed:
        needs_flush = _record_indexes(st, new_indexes) or needs_flush
    now = host.clock.time()
    if st.finished is not None and st.finished["type"] == facts.FAILURE_TARGET:
        st.status.setdefault("conditions", []).append(st.finished)
        needs_flush = True
        st.finished = facts.new_condition(facts.FAILED, "True", st.finished["reason"],
                                          st.finished["message"], now)
    if st.finished is not None and st.finished["type"] == facts.SUCCESS_CRITERIA_MET:
        if not facts.condition_true(job, facts.SUCCESS_CRITERIA_MET):
            st.status.setdefault("conditions", []).append(st.finished)
            needs_flush = True
        st.finished = facts.new_condition(facts.COMPLETE, "True", st.finished["reason"],
                                          st.finished["message"], now)
    needs_flush = await _flush_and_release(host, st, to_release, with_finalizer, needs_flush)
    done = not reached_max and _enact_finished(st, now)
    if done or needs_flush:
        st.job = await host.write_status(st.job)
        if done:
            _record_finished(host, st)


def _record_indexes(st: SyncState, new_indexes: list[int]) -> bool:
    st.succeeded_indexes = st.succeeded_indexes.with_indexes(new_indexes)
    status = st.status
    changed = False
    text = str(st.succeeded_indexes)
    if text != (status.get("completedIndexes") or ""):
        changed = True
    status["completedIndexes"] = text
    status["succeeded"] = st.succeeded_indexes.total()
    failed_text = str(st.failed_indexes) if st.failed_indexes is not None else None
    if failed_text != status.get("failedIndexes"):
        changed = True
        status["failedIndexes"] = failed_text
    return changed


async def _flush_and_release(host: Host, st: SyncState, pods: list[Obj],
                             with_finalizer: set[str], needs_flush: bool) -> bool:
    """Steps 1-3: write the uncounted UIDs, remove finalizers, fold what was released.

    Returns whether the status still has unwritten changes; raises the first
    finalizer-removal error after saving the partial progress.
    """
    if needs_flush:
        st.job = await host.write_status(st.job)
        host.backoffs.put(st.key, st.backoff)
        needs_flush = False
    error: BaseException | None = None
    if pods:
        released, error = await release(host, st.key, pods)
        with_finalizer -= released
    if fold_uncounted(st.status, with_finalizer):
        needs_flush = True
    if error is not None:
        if needs_flush:
            st.job = await host.write_status(st.job)
        raise error
    return needs_flush


async def release(host: Host, key: str, pods: Sequence[Obj]) -> tuple[set[str], BaseException | None]:
    """Remove the tracking finalizer from ``pods``: (UIDs released, first error)."""
    uids = [facts.uid_of(p) for p in pods]
    host.removals.expect(key, uids)

    async def one(pod: Obj) -> None:
        try:
            await remove_finalizer(host, pod)
        except (StatusError, TransportError) as e:
            host.removals.observed(key, facts.uid_of(pod))  # no update will show it
            if isinstance(e, StatusError) and e.code == 404:
                return  # gone: as good as released
            raise

    results = await asyncio.gather(*(one(p) for p in pods), return_exceptions=True)
    released: set[str] = set()
    error: BaseException | None = None
    for uid, result in zip(uids, results):
        if isinstance(result, asyncio.CancelledError):
            raise result
        if isinstance(result, BaseException):
            error = error or result
        else:
            released.add(uid)
    return released, error


def _enact_finished(st: SyncState, now: float) -> bool:
    """Add Complete/Failed once every pod is counted and none is terminating."""
    cond = st.finished
    if cond is None:
        return False
    if st.uncounted.get("succeeded") or st.uncounted.get("failed") or st.terminating > 0:
        return False
    facts.ensure_condition(st.status, cond["type"], "True", cond["reason"], cond["message"], now)
    if cond["type"] == facts.COMPLETE:
        st.status["completionTime"] = facts.stamp(now)
    return True


def _record_finished(host: Host, st: SyncState) -> None:
    job, cond = st.job, st.finished
    assert cond is not None
    if cond["type"] == facts.COMPLETE:
        completions = facts.completions(job)
        if completions is not None and int(st.status.get("succeeded") or 0) > completions:
            host.record_event(job, WARNING, "TooManySucceededPods",
                              "Too many succeeded pods running after completion count reached")
        host.record_event(job, NORMAL, "Completed", "Job completed")
    else:
        host.record_event(job, WARNING, cond["reason"], cond["message"])
