"""The Job controller's pure parts: index sets, back-off arithmetic, failure and success policies."""

from __future__ import annotations

from typing import Any

import pytest

from skiff.controllers.job import backoff, facts
from skiff.controllers.job import indexes as ix
from skiff.controllers.job.policies import match_failure, match_success

Obj = dict[str, Any]


@pytest.mark.parametrize(("indexes", "text"), [
    ([], ""), ([3], "3"), ([0, 1], "0,1"), ([0, 1, 2, 4], "0-2,4"),
    ([7, 1, 2, 3, 9, 8], "1-3,7-9"), ([5, 6, 10], "5,6,10")])
def test_index_sets_are_written_as_kubernetes_writes_them(indexes: list[int], text: str) -> None:
    intervals = ix.Intervals().with_indexes(indexes)
    assert str(intervals) == text
    assert intervals.total() == len(set(indexes))
    assert ix.Intervals.parse(text, 100) == intervals
    assert sorted(intervals) == sorted(set(indexes))


def test_parsing_clips_to_completions_and_skips_garbage() -> None:
    assert str(ix.Intervals.parse("0-2,x,4-9,12", 6)) == "0-2,4,5"
    assert str(ix.Intervals.parse("1,2,3", 10)) == "1-3"  # neighbours merge
    merged = ix.Intervals.parse("0-2", 10).merge(ix.Intervals.parse("3,5-6", 10))
    assert str(merged) == "0-3,5,6" and merged.has(3) and not merged.has(4)


def test_first_pending_skips_taken_indexes() -> None:
    taken = ix.Intervals.parse("0-2,4,7", 10)
    assert ix.first_pending(3, 10, taken) == [3, 5, 6]
    assert ix.first_pending(10, 9, taken) == [3, 5, 6, 8]
    assert ix.first_pending(0, 10, taken) == []


def pod(name: str, index: int | None = None, *, phase: str = "Running", ready: bool = True,
        node: str = "n1", **extra: Any) -> Obj:
    meta: Obj = {"name": name, "uid": name, "creationTimestamp": "2025-01-01T00:00:00Z"}
    if index is not None:
        meta["annotations"] = {ix.COMPLETION_INDEX: str(index)}
    conditions = [{"type": "Ready", "status": "True" if ready else "False",
                   "lastTransitionTime": "2025-01-01T00:00:01Z"}]
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": conditions, **extra}}


def test_duplicate_and_invalid_indexes_go_first() -> None:
    pods = [pod("a0", 0), pod("b0", 0, ready=False), pod("c1", 1), pod("x"), pod("z9", 9)]
    remove, keep = ix.duplicates_for_removal(pods, 3, facts.removal_order)
    assert sorted(p["metadata"]["name"] for p in remove) == ["b0", "x", "z9"]
    assert sorted(p["metadata"]["name"] for p in keep) == ["a0", "c1"]


def test_index_pod_names_fit_generate_name() -> None:
    assert ix.generate_name("pi", 3) == "pi-3-"
    long = ix.generate_name("j" * 63, 12345)
    assert len(long) == ix.MAX_GENERATE_NAME and long.endswith("-12345-")


def test_back_off_doubles_from_10_seconds_up_to_6_minutes() -> None:
    delays = [backoff.delay_for(n, backoff.DEFAULT_BASE, backoff.DEFAULT_CAP) for n in range(0, 9)]
    assert delays == [0, 10, 20, 40, 80, 160, 320, 360, 360]
    assert backoff.remaining(2, 1000.0, 1005.0, base=10, cap=360) == 15
    assert backoff.remaining(2, 1000.0, 1030.0, base=10, cap=360) == 0
    assert backoff.remaining(0, None, 1030.0, base=10, cap=360) == 0


def finished(name: str, at: str, phase: str = "Failed") -> Obj:
    return {"metadata": {"name": name, "creationTimestamp": "2025-01-01T00:00:00Z"},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": 1, "finishedAt": at}}}]}}


def test_a_success_resets_the_back_off() -> None:
    start = backoff.BackoffRecord()
    one = backoff.next_record(start, [], [finished("f1", "2025-01-01T00:00:10Z")])
    assert one.failures == 1 and one.last_failure == pytest.approx(1735689610)
    two = backoff.next_record(one, [], [finished("f2", "2025-01-01T00:00:30Z")])
    assert two.failures == 2 and two.last_failure == pytest.approx(1735689630)
    # a success after the failures: only failures after it count
    mixed = backoff.next_record(two, [finished("ok", "2025-01-01T00:00:40Z", "Succeeded")],
                                [finished("f3", "2025-01-01T00:00:35Z"),
                                 finished("f4", "2025-01-01T00:00:50Z")])
    assert mixed.failures == 1 and mixed.last_failure == pytest.approx(1735689650)
    clean = backoff.next_record(mixed, [finished("ok2", "2025-01-01T00:01:00Z", "Succeeded")], [])
    assert clean == backoff.BackoffRecord()


def test_finish_time_falls_back_to_ready_false_then_deletion() -> None:
    no_containers = {"metadata": {"creationTimestamp": "2025-01-01T00:00:00Z"},
                     "status": {"conditions": [{"type": "Ready", "status": "False",
                                                "lastTransitionTime": "2025-01-01T00:00:07Z"}]}}
    assert backoff.finish_time(no_containers) == pytest.approx(1735689607)
    deleted = {"metadata": {"creationTimestamp": "2025-01-01T00:00:00Z",
                            "deletionTimestamp": "2025-01-01T00:01:00Z",
                            "deletionGracePeriodSeconds": 30}, "status": {}}
    assert backoff.finish_time(deleted) == pytest.approx(1735689630)


def failed_pod(code: int, *, container: str = "main", conditions: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": "p", "namespace": "ns"},
            "status": {"phase": "Failed", "conditions": conditions or [], "containerStatuses": [
                {"name": "side", "state": {"terminated": {"exitCode": 0}}},
                {"name": container, "state": {"terminated": {"exitCode": code}}}]}}


POLICY = {"rules": [
    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
    {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
    {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
]}


def test_pod_failure_policy_rules_in_order() -> None:
    disrupted = failed_pod(42, conditions=[{"type": "DisruptionTarget", "status": "True"}])
    ignored = match_failure(POLICY, disrupted)  # rule 0 wins over the exit code rule
    assert (ignored.counts, ignored.action, ignored.message) == (False, "Ignore", None)
    fatal = match_failure(POLICY, failed_pod(42))
    assert fatal.action == "FailJob" and fatal.counts
    assert fatal.message == "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
    assert match_failure(POLICY, failed_pod(42, container="other")).action == "Count"  # NotIn [1, 2]
    assert match_failure(POLICY, failed_pod(1)).action is None  # nothing matched: counted
    assert match_failure(POLICY, failed_pod(1)).counts
    assert match_failure(None, failed_pod(42)).counts
    by_condition = {"rules": [{"action": "FailJob", "onPodConditions": [{"type": "ConfigIssue"}]}]}
    broken = failed_pod(1, conditions=[{"type": "ConfigIssue", "status": "True"}])
    assert match_failure(by_condition, broken).message == (
        "Pod ns/p has condition ConfigIssue matching FailJob rule at index 0")


def test_success_policy_rules() -> None:
    done = ix.Intervals.parse("0,2-4", 10)
    assert match_success({"rules": [{"succeededIndexes": "0,2"}]}, 10, done) == "Matched rules at index 0"
    assert match_success({"rules": [{"succeededIndexes": "0-1"}]}, 10, done) is None
    assert match_success({"rules": [{"succeededIndexes": "0-1", "succeededCount": 1},
                                    {"succeededCount": 9}]}, 10, done) == "Matched rules at index 0"
    assert match_success({"rules": [{"succeededIndexes": "5-9"}, {"succeededCount": 4}]}, 10,
                         done) == "Matched rules at index 1"
    assert match_success({"rules": [{"succeededCount": 1}]}, 10, ix.Intervals()) is None


def test_conditions_change_only_when_something_changes() -> None:
    status: Obj = {}
    assert not facts.ensure_condition(status, "Suspended", "False", "JobResumed", "Job resumed", 10.0)
    assert "conditions" not in status  # a False condition is never added
    assert facts.ensure_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", 10.0)
    assert not facts.ensure_condition(status, "Suspended", "True", "JobSuspended", "Job suspended", 20.0)
    assert facts.ensure_condition(status, "Suspended", "False", "JobResumed", "Job resumed", 30.0)
    [cond] = status["conditions"]
    assert cond == {"type": "Suspended", "status": "False", "reason": "JobResumed",
                    "message": "Job resumed", "lastProbeTime": "1970-01-01T00:00:30Z",
                    "lastTransitionTime": "1970-01-01T00:00:30Z"}
