"""One sync of a Job: count, decide, act, record.

::

    count     succeeded / failed = status counters + uncounted UIDs + pods finished
              since (Indexed: succeeded = the set of completed indexes)
    start     status.startTime, unless suspended
    decide    the Job is done?            (first match wins)
                SuccessCriteriaMet already recorded        -> it succeeds
                FailureTarget already recorded             -> it fails
                a failed pod matches a FailJob rule        -> FailureTarget PodFailurePolicy
                failed > backoffLimit (or restarts, OnFailure) -> FailureTarget BackoffLimitExceeded
                running longer than activeDeadlineSeconds  -> FailureTarget DeadlineExceeded
                (else, with a deadline: look again when it passes)
              Indexed + backoffLimitPerIndex: MaxFailedIndexesExceeded, FailedIndexes;
              Indexed + successPolicy: SuccessCriteriaMet SuccessPolicy
    act       done: delete the active pods (kept until counted)
              else: manage pods (manage.py); all completions in and nothing
                    active -> SuccessCriteriaMet CompletionsReached;
                    Suspended condition (events Suspended / Resumed; resuming
                    restarts the activeDeadlineSeconds clock)
    record    active, ready, terminating; then tracking.py counts finished pods,
              removes finalizers and writes the status (Complete / Failed last)

Nothing here blocks on time: deadlines and back-off ask the controller to look
again later (``Host.requeue_at``), on the controller's injectable clock.
"""

from __future__ import annotations

from typing import Any

from ...api.kinds.meta.cells import parse_time
from .. import podstate
from ..events import NORMAL
from . import backoff, facts
from . import indexes as ix
from .manage import delete_active_pods, manage
from .policies import FAIL_INDEX, match_failure, match_success
from .state import Host, SyncState
from .tracking import track

Obj = dict[str, Any]


def new_state(host: Host, key: str, job: Obj, pods: list[Obj]) -> SyncState:
    """The starting state of a sync (``job`` is our own copy)."""
    status = job.setdefault("status", {})
    unc = status.setdefault("uncountedTerminatedPods", {})
    active = [p for p in pods if podstate.is_active(p)]
    return SyncState(
        key=key, job=job, pods=pods, active=active,
        expected_removals=host.removals.pending(key),
        uncounted_succeeded={str(u) for u in unc.get("succeeded") or []},
        uncounted_failed={str(u) for u in unc.get("failed") or []},
        ready=sum(1 for p in active if podstate.is_ready(p)),
        terminating=sum(1 for p in pods if facts.is_terminating(p)))


def _newly_finished(st: SyncState) -> tuple[list[Obj], list[Obj]]:
    """Finished pods not yet counted anywhere: (succeeded, failed)."""
    succeeded: list[Obj] = []
    failed: list[Obj] = []
    indexed = facts.is_indexed(st.job)
    for pod in st.pods:
        uid = facts.uid_of(pod)
        if not facts.has_tracking_finalizer(pod) or uid in st.expected_removals:
            continue
        if indexed and ix.valid_index(pod, st.completions) is None:
            continue
        if facts.phase_of(pod) == "Succeeded" and uid not in st.uncounted_succeeded:
            succeeded.append(pod)
        elif facts.is_pod_failed(pod, st.job) and uid not in st.uncounted_failed:
            failed.append(pod)
    return succeeded, failed


def _past_restart_limit(job: Obj, pods: list[Obj]) -> bool:
    """restartPolicy OnFailure: container restarts of running pods reached backoffLimit."""
    if facts.restart_policy(job) != "OnFailure":
        return False
    restarts = sum(facts.restart_count(p) for p in pods
                   if facts.phase_of(p) in ("Running", "Pending"))
    limit = facts.backoff_limit(job)
    return restarts > 0 if limit == 0 else restarts >= limit


def _start_time(job: Obj) -> float | None:
    when = parse_time((job.get("status") or {}).get("startTime"))
    return when.timestamp() if when else None


def _failure_target(reason_message: tuple[str, str], now: float) -> Obj:
    return facts.new_condition(facts.FAILURE_TARGET, "True", reason_message[0],
                               reason_message[1], now)


def _decide(host: Host, st: SyncState, now: float) -> Obj | None:
    """The condition the Job is heading to, if it is done (see module docstring)."""
    job = st.job
    met = facts.find_condition(job, facts.SUCCESS_CRITERIA_MET)
    if met is not None and met.get("status") == "True":
        return dict(met)
    target = facts.find_condition(job, facts.FAILURE_TARGET)
    if target is not None and target.get("status") == "True":
        return facts.new_condition(facts.FAILED, "True", target.get("reason", ""),
                                   target.get("message", ""), now)
    policy = facts.failure_policy(job)
    if policy is not None:
        for pod in st.pods:
            if facts.is_pod_failed(pod, job):
                message = match_failure(policy, pod).message
                if message is not None:
                    return _failure_target((facts.POD_FAILURE_POLICY, message), now)
    if st.failed > facts.backoff_limit(job) or _past_restart_limit(job, st.pods):
        return _failure_target(facts.BACKOFF_LIMIT_EXCEEDED, now)
    deadline = facts.spec_of(job).get("activeDeadlineSeconds")
    start = _start_time(job)
    if deadline is not None and start is not None and not facts.suspended(job):
        if now - start >= int(deadline):
            return _failure_target(facts.DEADLINE_EXCEEDED, now)
        host.requeue_at(st.key, start + int(deadline))
    return None


def _index_failed(job: Obj, pod: Obj, limit: int) -> bool:
    """backoffLimitPerIndex: this failed pod exhausts its index."""
    if not facts.is_pod_failed(pod, job):
        return False
    match = match_failure(facts.failure_policy(job), pod)
    if match.action == FAIL_INDEX:
        return True
    return match.counts and ix.failure_count(pod) >= limit


def _count_indexes(st: SyncState, now: float) -> None:
    """Indexed Jobs: completed (and failed) indexes, and what they decide."""
    job, status, completions = st.job, st.status, st.completions
    st.prev_succeeded_indexes = ix.Intervals.parse(status.get("completedIndexes"), completions)
    st.succeeded_indexes = st.prev_succeeded_indexes.with_indexes(
        i for p in st.pods if facts.phase_of(p) == "Succeeded" and facts.has_tracking_finalizer(p)
        and (i := ix.valid_index(p, completions)) is not None)
    st.succeeded = st.succeeded_indexes.total()
    limit = facts.per_index_limit(job)
    if limit is not None:
        st.failed_indexes = ix.Intervals.parse(status.get("failedIndexes"), completions).with_indexes(
            i for p in st.pods if facts.has_tracking_finalizer(p)
            and (i := ix.valid_index(p, completions)) is not None and _index_failed(job, p, limit))
        failed_total = st.failed_indexes.total()
        most = facts.spec_of(job).get("maxFailedIndexes")
        if st.finished is None:
            if most is not None and failed_total > int(most):
                st.finished = _failure_target(facts.MAX_FAILED_INDEXES_EXCEEDED, now)
            elif failed_total > 0 and failed_total + st.succeeded >= completions:
                st.finished = _failure_target(facts.FAILED_INDEXES, now)
        st.delayed_per_index = _kept_failures(st)
    if st.finished is None:
        message = match_success(facts.spec_of(job).get("successPolicy"), completions,
                                st.succeeded_indexes)
        if message is not None:
            st.finished = facts.new_condition(facts.SUCCESS_CRITERIA_MET, "True",
                                              facts.SUCCESS_POLICY, message, now)


def _kept_failures(st: SyncState) -> dict[int, Obj]:
    """Per pending index, its latest failed pod (kept until the replacement exists)."""
    busy = ix.indexes_of(st.active)
    kept: dict[int, Obj] = {}
    for pod in st.pods:
        if not facts.has_tracking_finalizer(pod) or facts.uid_of(pod) in st.expected_removals:
            continue
        index = ix.valid_index(pod, st.completions)
        if index is None or not facts.is_pod_failed(pod, st.job):
            continue
        if st.succeeded_indexes.has(index) or index in busy or (
                st.failed_indexes is not None and st.failed_indexes.has(index)):
            continue
        current = kept.get(index)
        if current is None or (
                ix.absolute_failure_count(current) <= ix.absolute_failure_count(pod)
                and backoff.finish_time(pod) >= backoff.finish_time(current)):
            kept[index] = pod
    return kept


def _suspension(host: Host, st: SyncState, now: float) -> bool:
    """Keep the Suspended condition in step with spec.suspend; True when it changed."""
    if facts.suspended(st.job):
        changed = facts.ensure_condition(st.status, facts.SUSPENDED, "True", "JobSuspended",
                                         "Job suspended", now)
        if changed:
            host.record_event(st.job, NORMAL, "Suspended", "Job suspended")
        return changed
    changed = facts.ensure_condition(st.status, facts.SUSPENDED, "False", "JobResumed",
                                     "Job resumed", now)
    if changed:
        host.record_event(st.job, NORMAL, "Resumed", "Job resumed")
        # activeDeadlineSeconds counts continuous activity: it starts over on resume
        st.status["startTime"] = facts.stamp(now)
    return changed


async def sync_job(host: Host, key: str, job: Obj, pods: list[Obj], may_manage: bool) -> None:
    """Run one sync (see module docstring).  ``may_manage``: expectations are met.

    Raises the first error of creating/deleting pods after the status is recorded.
    """
    st = new_state(host, key, job, pods)
    status = st.status
    succeeded, failed = _newly_finished(st)
    policy = facts.failure_policy(job)
    st.succeeded = int(status.get("succeeded") or 0) + len(succeeded) + len(st.uncounted_succeeded)
    st.failed = (int(status.get("failed") or 0) + len(st.uncounted_failed)
                 + sum(1 for p in failed if match_failure(policy, p).counts))
    now = host.clock.time()
    if status.get("startTime") is None and not facts.suspended(job):
        status["startTime"] = facts.stamp(now)
    st.backoff = backoff.next_record(host.backoffs.get(key), succeeded, failed)
    st.finished = _decide(host, st, now)
    if facts.is_indexed(job):
        _count_indexes(st, now)

    suspension_changed = False
    error: BaseException | None = None
    active = len(st.active)
    if st.finished is not None:
        ready, deleted, error = await delete_active_pods(host, st, st.active)
        if deleted != active or not may_manage:
            st.finished = None  # pods (or creations) still to be seen: not done yet
        active -= deleted
        st.terminating += deleted
        st.ready -= ready
    else:
        managed = may_manage and not job["metadata"].get("deletionTimestamp")
        if managed:
            active, error = await manage(host, st)
        completions = facts.completions(job)
        enough = st.succeeded > 0 if completions is None else st.succeeded >= completions
        if enough and active == 0:
            st.finished = facts.new_condition(facts.SUCCESS_CRITERIA_MET, "True",
                                              *facts.COMPLETIONS_REACHED, now)
        elif managed:
            suspension_changed = _suspension(host, st, now)

    needs_flush = (suspension_changed or active != int(status.get("active") or 0)
                   or st.ready != status.get("ready") or st.terminating != status.get("terminating"))
    status["active"] = active
    status["ready"] = st.ready
    status["terminating"] = st.terminating
    await track(host, st, needs_flush)
    if error is not None:
        raise error
