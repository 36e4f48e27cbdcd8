"""A Job's pod failure policy and success policy, as pure matching functions.

``spec.podFailurePolicy.rules`` are tried in order against a failed pod; the
first rule that matches decides what the failure means::

    onExitCodes {containerName?, operator In|NotIn, values}
        a terminated (init) container with a non-zero exit code that the
        operator accepts (exit code 0 never matches)
    onPodConditions [{type, status}]
        a pod condition with that type and status (e.g. DisruptionTarget=True)

    action   Ignore     not counted against backoffLimit; the pod is replaced
             Count      counted as usual (also what happens when no rule matches)
             FailIndex  counted, and the pod's index fails (backoffLimitPerIndex)
             FailJob    the whole Job fails at once (reason PodFailurePolicy)

``spec.successPolicy.rules`` (Indexed Jobs) declare the Job successful early:
a rule matches when all of its ``succeededIndexes`` succeeded, or at least
``succeededCount`` of them (of all indexes, when it names none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .indexes import Intervals

Obj = dict[str, Any]

IGNORE = "Ignore"
COUNT = "Count"
FAIL_INDEX = "FailIndex"
FAIL_JOB = "FailJob"


@dataclass(frozen=True)
class FailureMatch:
    """What a failed pod means under the policy."""

    counts: bool = True  # towards backoffLimit (and backoffLimitPerIndex)
    action: str | None = None  # the matching rule's action (None: no rule matched)
    message: str | None = None  # set for FailJob: the Job's failure message


NO_MATCH = FailureMatch()


def _exit_code_matches(code: int, requirement: Obj) -> bool:
    values = [int(v) for v in requirement.get("values") or []]
    operator = requirement.get("operator")
    if operator == "In":
        return code in values
    if operator == "NotIn":
        return code not in values
    return False


def _matching_container(pod: Obj, requirement: Obj) -> tuple[str, int] | None:
    """(container name, exit code) of the first terminated container the requirement matches."""
    status = pod.get("status") or {}
    wanted = requirement.get("containerName")
    for field in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(field) or []:
            terminated = (cs.get("state") or {}).get("terminated")
            if terminated is None:
                continue
            if wanted is not None and wanted != cs.get("name"):
                continue
            code = int(terminated.get("exitCode") or 0)
            if code != 0 and _exit_code_matches(code, requirement):
                return str(cs.get("name", "")), code
    return None


def _matching_condition(pod: Obj, patterns: list[Obj]) -> str | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        for pattern in patterns:
            if cond.get("type") == pattern.get("type") and cond.get("status") == pattern.get(
                    "status", "True"):
                return str(cond.get("type"))
    return None


def match_failure(policy: Obj | None, pod: Obj) -> FailureMatch:
    """Apply ``policy`` to a failed ``pod``."""
    if policy is None:
        return NO_MATCH
    meta = pod.get("metadata") or {}
    who = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    for index, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            found = _matching_container(pod, rule["onExitCodes"])
            if found is None:
                continue
            what = f"Container {found[0]} for pod {who} failed with exit code {found[1]}"
        elif rule.get("onPodConditions") is not None:
            cond = _matching_condition(pod, rule["onPodConditions"])
            if cond is None:
                continue
            what = f"Pod {who} has condition {cond}"
        else:
            continue
        if action == IGNORE:
            return FailureMatch(counts=False, action=IGNORE)
        if action == COUNT:
            return FailureMatch(action=COUNT)
        if action == FAIL_INDEX:  # validation allows it only with backoffLimitPerIndex
            return FailureMatch(action=FAIL_INDEX)
        if action == FAIL_JOB:
            return FailureMatch(action=FAIL_JOB,
                                message=f"{what} matching {FAIL_JOB} rule at index {index}")
    return NO_MATCH


def _rule_matches(required: Intervals, succeeded: Intervals, count: int | None) -> bool:
    contains = sum(1 for ix in required if succeeded.has(ix))
    return contains == required.total() or (count is not None and contains >= count)


def match_success(policy: Obj | None, completions: int, succeeded: Intervals) -> str | None:
    """The SuccessCriteriaMet message when a success policy rule matches, else None."""
    if policy is None or succeeded.total() == 0:
        return None
    for index, rule in enumerate(policy.get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = Intervals.parse(rule["succeededIndexes"], completions)
            if required.total() == 0:
                continue
            if _rule_matches(required, succeeded, None if count is None else int(count)):
                return f"Matched rules at index {index}"
        elif count is not None and succeeded.total() >= int(count):
            return f"Matched rules at index {index}"
    return None
