"""What the Job controller reads off a Job and its pods: spec knobs, pod states, conditions.

Pure functions over plain dicts (no I/O), named after the questions they answer::

    job   is_indexed  completions  parallelism  suspended  backoff_limit
          per_index_limit  only_replace_failed  is_finished  managed_elsewhere
    pod   has_tracking_finalizer  is_terminating  is_pod_failed  removal_order
    conds new_condition  find_condition  ensure_condition

A pod *counts as failed* when its phase is Failed, or -- unless only failed pods
are replaced (``podReplacementPolicy: Failed``, implied by a ``podFailurePolicy``)
-- when it is being deleted before it succeeded (an orphan that never reaches a
terminal phase still costs a retry).

Conditions carry ``lastProbeTime`` and ``lastTransitionTime`` in whole seconds,
as metav1.Time serialises; :func:`ensure_condition` replaces a condition only
when its status, reason or message changes, and never adds a ``False`` one.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ...api.kinds.meta.cells import format_time, parse_time
from .. import podstate

Obj = dict[str, Any]

#: The pod finalizer that keeps a finished pod until the Job has counted it.
TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
#: ``spec.managedBy`` value that means "this controller" (any other: someone else's Job).
JOB_CONTROLLER_NAME = "kubernetes.io/job-controller"

# condition types
COMPLETE = "Complete"
FAILED = "Failed"
SUSPENDED = "Suspended"
FAILURE_TARGET = "FailureTarget"
SUCCESS_CRITERIA_MET = "SuccessCriteriaMet"

# condition reasons and messages
BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
MAX_FAILED_INDEXES_EXCEEDED = ("MaxFailedIndexesExceeded",
                               "Job has exceeded the specified maximal number of failed indexes")
FAILED_INDEXES = ("FailedIndexes", "Job has failed indexes")
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
POD_FAILURE_POLICY = "PodFailurePolicy"
SUCCESS_POLICY = "SuccessPolicy"


# -- the Job's spec ----------------------------------------------------------------

def spec_of(job: Obj) -> Obj:
    return job.get("spec") or {}


def is_indexed(job: Obj) -> bool:
    return spec_of(job).get("completionMode") == "Indexed"


def completions(job: Obj) -> int | None:
    value = spec_of(job).get("completions")
    return None if value is None else int(value)


def parallelism(job: Obj) -> int:
    value = spec_of(job).get("parallelism")
    return 1 if value is None else int(value)


def suspended(job: Obj) -> bool:
    return spec_of(job).get("suspend") is True


def backoff_limit(job: Obj) -> int:
    value = spec_of(job).get("backoffLimit")
    return 6 if value is None else int(value)


def per_index_limit(job: Obj) -> int | None:
    """``spec.backoffLimitPerIndex`` (Indexed Jobs only), or None."""
    value = spec_of(job).get("backoffLimitPerIndex")
    return None if value is None or not is_indexed(job) else int(value)


def failure_policy(job: Obj) -> Obj | None:
    policy = spec_of(job).get("podFailurePolicy")
    return policy if isinstance(policy, dict) else None


def only_replace_failed(job: Obj) -> bool:
    """Replacement pods wait until the pod they replace is Failed, not merely terminating."""
    return spec_of(job).get("podReplacementPolicy") == "Failed" or failure_policy(job) is not None


def restart_policy(job: Obj) -> str:
    return str(((spec_of(job).get("template") or {}).get("spec") or {}).get("restartPolicy") or "")


def managed_elsewhere(job: Obj) -> bool:
    managed_by = spec_of(job).get("managedBy")
    return managed_by is not None and managed_by != JOB_CONTROLLER_NAME


# -- conditions --------------------------------------------------------------------

def find_condition(job: Obj, type_: str) -> Obj | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond  # type: ignore[no-any-return]
    return None


def condition_true(job: Obj, type_: str) -> bool:
    cond = find_condition(job, type_)
    return cond is not None and cond.get("status") == "True"


def finished_type(job: Obj) -> str | None:
    """``Complete`` or ``Failed`` once the Job has finished, else None."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in (COMPLETE, FAILED) and cond.get("status") == "True":
            return str(cond["type"])
    return None


def is_finished(job: Obj) -> bool:
    return finished_type(job) is not None


def stamp(now: float) -> str:
    return format_time(datetime.fromtimestamp(now, timezone.utc))


def new_condition(type_: str, status: str, reason: str, message: str, now: float) -> Obj:
    when = stamp(now)
    return {"type": type_, "status": status, "lastProbeTime": when, "lastTransitionTime": when,
            "reason": reason, "message": message}


def ensure_condition(status: Obj, type_: str, value: str, reason: str, message: str,
                     now: float) -> bool:
    """Set condition ``type_`` in ``status``; True when the list changed."""
    conditions: list[Obj] = status.setdefault("conditions", [])
    for i, cond in enumerate(conditions):
        if cond.get("type") == type_:
            if (cond.get("status"), cond.get("reason", ""), cond.get("message", "")) == (
                    value, reason, message):
                return False
            conditions[i] = new_condition(type_, value, reason, message, now)
            return True
    if value == "False":
        if not conditions:
            status.pop("conditions", None)
        return False
    conditions.append(new_condition(type_, value, reason, message, now))
    return True


# -- pods ----------------------------------------------------------------------------

def has_tracking_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in ((pod.get("metadata") or {}).get("finalizers") or [])


def uid_of(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid", ""))


def phase_of(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_terminating(pod: Obj) -> bool:
    """Being deleted and not yet in a terminal phase."""
    return podstate.is_terminating(pod) and phase_of(pod) not in ("Succeeded", "Failed")


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """Counts as a failure of ``job`` (see module docstring)."""
    phase = phase_of(pod)
    if phase == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return podstate.is_terminating(pod) and phase != "Succeeded"


def restart_count(pod: Obj) -> int:
    status = pod.get("status") or {}
    return sum(int(c.get("restartCount") or 0)
               for c in (status.get("initContainerStatuses") or [])
               + (status.get("containerStatuses") or []))


def removal_order(pod: Obj) -> tuple[Any, ...]:
    """Sort key: the pod to delete first sorts first (Kubernetes' ``ActivePods`` order).

    Unscheduled before scheduled, Pending before Unknown before Running, not
    ready before ready, ready more recently before ready longer, more restarts
    before fewer, newer before older.
    """
    phases = {"Pending": 0, "Unknown": 1, "Running": 2}
    since = podstate.ready_since(pod)
    created = parse_time((pod.get("metadata") or {}).get("creationTimestamp"))
    ready = podstate.is_ready(pod)
    return (bool((pod.get("spec") or {}).get("nodeName")), phases.get(phase_of(pod), 0), ready,
            -(since.timestamp() if ready and since else 0.0), -restart_count(pod),
            -(created.timestamp() if created else 0.0))
