"""The Job controller against the real API server, simulated nodes and the scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from housekeeping_support import ApiServer, meta, wait_gone, watch_until
from skiff.client.resources import JOBS, PODS
from test_job_support import (
    PodWatch, batch_cluster, condition, create_job, events_for, gc_controller, job_controller,
    job_pods, pod_template, wait_finished, wait_job,
)

Obj = dict[str, Any]
TRACKING = "batch.kubernetes.io/job-tracking"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ApiServer]:
    async with batch_cluster(tmp_path, ([("job", job_controller())], None)) as server:
        yield server


async def test_completions_5_parallelism_2(api: ApiServer) -> None:
    since = (await api.client.list(PODS, namespace="default")).resource_version
    async with PodWatch(api, since) as watch:
        job = await create_job(api, "work", completions=5, parallelism=2,
                               template=pod_template(run_seconds=0.3))
        code, out, err = await api.kubectl("wait", "--for=condition=complete", "job/work",
                                           "--timeout=20s", timeout=25)
        assert code == 0, err
        assert out.strip() == "job.batch/work condition met"
    done = await api.client.get(JOBS, "work", namespace="default")
    status = done["status"]
    assert status["succeeded"] == 5 and status.get("failed", 0) == 0
    assert status.get("active", 0) == 0 and status["ready"] == 0 and status["terminating"] == 0
    assert status["uncountedTerminatedPods"] == {}
    assert status["startTime"] <= status["completionTime"]
    assert [c["type"] for c in status["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    assert all((c["reason"], c["message"]) == (
        "CompletionsReached", "Reached expected number of succeeded pods")
        for c in status["conditions"])
    pods = await job_pods(api, job)
    assert len(pods) == 5 == len(watch.names)
    assert all(p["status"]["phase"] == "Succeeded" for p in pods)
    assert all(TRACKING not in (meta(p).get("finalizers") or []) for p in pods)
    assert watch.most_running == 2  # overlapping, never more than parallelism
    created = await events_for(api, "work", "SuccessfulCreate", count=5)
    assert sorted(e["message"] for e in created) == sorted(
        f"Created pod: {meta(p)['name']}" for p in pods)
    completed = await events_for(api, "work", "Completed")
    assert completed[0]["message"] == "Job completed"
    assert completed[0]["source"]["component"] == "job-controller"
    code, out, _ = await api.kubectl("get", "job", "work", "--no-headers")
    assert out.split()[:3] == ["work", "Complete", "5/5"]


async def test_pods_carry_the_tracking_finalizer_until_counted(api: ApiServer) -> None:
    job = await create_job(api, "slow", template=pod_template(run_seconds=30))
    running = await wait_job(api, "slow", lambda j: j.get("status", {}).get("ready") == 1)
    assert running["status"]["active"] == 1
    assert "startTime" in running["status"]
    pods = await job_pods(api, job)
    assert len(pods) == 1
    pod = pods[0]
    assert TRACKING in meta(pod)["finalizers"]
    assert meta(pod)["labels"]["batch.kubernetes.io/job-name"] == "slow"
    assert meta(pod)["labels"]["batch.kubernetes.io/controller-uid"] == meta(job)["uid"]
    assert meta(pod)["ownerReferences"] == [{
        "apiVersion": "batch/v1", "kind": "Job", "name": "slow", "uid": meta(job)["uid"],
        "controller": True, "blockOwnerDeletion": True}]


async def test_backoff_limit_stops_a_failing_job(api: ApiServer) -> None:
    job = await create_job(api, "broken", backoffLimit=2, template=pod_template(exit_code=1))
    failed = await wait_finished(api, "broken", "Failed")
    status = failed["status"]
    assert status["failed"] == 3 and status.get("succeeded", 0) == 0
    assert status.get("active", 0) == 0
    types = [c["type"] for c in status["conditions"]]
    assert types == ["FailureTarget", "Failed"]
    reason = condition(failed, "Failed")
    assert reason is not None
    assert (reason["reason"], reason["message"]) == (
        "BackoffLimitExceeded", "Job has reached the specified backoff limit")
    pods = await job_pods(api, job)
    assert len(pods) == 3 and all(p["status"]["phase"] == "Failed" for p in pods)
    assert all(TRACKING not in (meta(p).get("finalizers") or []) for p in pods)
    warning = await events_for(api, "broken", "BackoffLimitExceeded")
    assert warning[0]["type"] == "Warning"
    assert warning[0]["message"] == "Job has reached the specified backoff limit"
    code, out, _ = await api.kubectl("get", "job", "broken", "--no-headers")
    assert out.split()[:3] == ["broken", "Failed", "0/1"]


async def test_indexed_job_gives_each_pod_its_index(api: ApiServer) -> None:
    job = await create_job(api, "idx", completions=4, parallelism=2, completionMode="Indexed",
                           template=pod_template(run_seconds=0.2))
    done = await wait_finished(api, "idx")
    assert done["status"]["completedIndexes"] == "0-3"
    assert done["status"]["succeeded"] == 4
    pods = await job_pods(api, job)
    by_index = {meta(p)["annotations"]["batch.kubernetes.io/job-completion-index"]: p for p in pods}
    assert sorted(by_index) == ["0", "1", "2", "3"] and len(pods) == 4
    for index, pod in by_index.items():
        assert meta(pod)["labels"]["batch.kubernetes.io/job-completion-index"] == index
        assert meta(pod)["name"].startswith(f"idx-{index}-")
        assert pod["spec"]["hostname"] == f"idx-{index}"
        env = pod["spec"]["containers"][0]["env"]
        assert {"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
            "apiVersion": "v1",
            "fieldPath": "metadata.labels['batch.kubernetes.io/job-completion-index']"}}} in env


async def test_suspend_deletes_pods_and_resume_starts_them_again(api: ApiServer) -> None:
    job = await create_job(api, "nap", completions=4, parallelism=2, suspend=True,
                           template=pod_template(run_seconds=3600))
    held = await wait_job(api, "nap", lambda j: condition(j, "Suspended"))
    cond = condition(held, "Suspended")
    assert cond is not None and (cond["reason"], cond["message"]) == ("JobSuspended", "Job suspended")
    assert "startTime" not in held["status"] and await job_pods(api, job) == []

    await api.client.patch(JOBS, "nap", {"spec": {"suspend": False}}, namespace="default")
    running = await wait_job(api, "nap", lambda j: j["status"].get("ready") == 2)
    resumed = [c for c in running["status"]["conditions"] if c["type"] == "Suspended"][0]
    assert (resumed["status"], resumed["reason"], resumed["message"]) == (
        "False", "JobResumed", "Job resumed")
    assert "startTime" in running["status"]
    first = {meta(p)["name"] for p in await job_pods(api, job)}
    assert len(first) == 2

    await api.client.patch(JOBS, "nap", {"spec": {"suspend": True}}, namespace="default")
    await wait_job(api, "nap", lambda j: condition(j, "Suspended") and not j["status"].get("active")
                   and not j["status"].get("terminating"))
    await wait_gone(api.client, PODS, first, namespace="default")
    status = (await api.client.get(JOBS, "nap", namespace="default"))["status"]
    assert status.get("failed", 0) == 0 and status.get("succeeded", 0) == 0  # not counted
    await events_for(api, "nap", "Suspended", count=2)
    await events_for(api, "nap", "Resumed")

    await api.client.patch(JOBS, "nap", {"spec": {"suspend": False}}, namespace="default")
    await wait_job(api, "nap", lambda j: j["status"].get("ready") == 2)
    again = {meta(p)["name"] for p in await job_pods(api, job)}
    assert len(again) == 2 and not again & first


async def test_pod_failure_policy_ignore_and_fail_job(api: ApiServer) -> None:
    ignore_disruptions = {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    job = await create_job(api, "careful", backoffLimit=0, podFailurePolicy=ignore_disruptions,
                           template=pod_template(run_seconds=3600))
    await wait_job(api, "careful", lambda j: j.get("status", {}).get("ready") == 1)
    [victim] = await job_pods(api, job)
    # what an eviction looks like to the Job: DisruptionTarget, then the pod fails
    conditions = victim["status"]["conditions"] + [{
        "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
        "message": "Eviction API: evicting", "lastTransitionTime": victim["status"]["startTime"]}]
    await api.client.patch(PODS, meta(victim)["name"], {"status": {
        "phase": "Failed", "conditions": conditions}}, namespace="default", subresource="status")
    await watch_until(api.client, PODS, lambda _t, p: meta(p)["name"] == meta(victim)["name"]
                      and TRACKING not in (meta(p).get("finalizers") or []), namespace="default")
    await watch_until(api.client, PODS, lambda _t, p: meta(p)["name"] != meta(victim)["name"]
                      and p.get("status", {}).get("phase") == "Running", namespace="default")
    # the status is written before a finalizer is released: this is the verdict
    replaced = await api.client.get(JOBS, "careful", namespace="default")
    assert replaced["status"].get("failed", 0) == 0  # ignored: backoffLimit 0 not exceeded
    assert not condition(replaced, "Failed") and not condition(replaced, "FailureTarget")
    assert len(await job_pods(api, job)) == 2

    # exit code 42 matches the FailJob rule: the whole Job fails at once
    await create_job(api, "fatal", backoffLimit=5, podFailurePolicy=ignore_disruptions,
                     template=pod_template(exit_code=42))
    failed = await wait_finished(api, "fatal", "Failed")
    cond = condition(failed, "Failed")
    assert cond is not None and cond["reason"] == "PodFailurePolicy"
    assert cond["message"].startswith("Container work for pod default/fatal-")
    assert cond["message"].endswith(" failed with exit code 42 matching FailJob rule at index 1")
    assert failed["status"]["failed"] == 1
    assert [c["type"] for c in failed["status"]["conditions"]] == ["FailureTarget", "Failed"]


async def test_backoff_limit_per_index(api: ApiServer) -> None:
    job = await create_job(api, "each", completions=3, parallelism=3, completionMode="Indexed",
                           backoffLimitPerIndex=1, template=pod_template(exit_code=1))
    failed = await wait_finished(api, "each", "Failed")
    status = failed["status"]
    assert status["failedIndexes"] == "0-2" and status["failed"] == 6
    cond = condition(failed, "Failed")
    assert cond is not None and (cond["reason"], cond["message"]) == (
        "FailedIndexes", "Job has failed indexes")
    pods = await job_pods(api, job)
    counts = sorted((meta(p)["annotations"]["batch.kubernetes.io/job-completion-index"],
                     meta(p)["annotations"]["batch.kubernetes.io/job-index-failure-count"])
                    for p in pods)
    assert counts == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1"), ("2", "0"), ("2", "1")]


async def test_success_policy_ends_an_indexed_job_early(api: ApiServer) -> None:
    job = await create_job(api, "leader", completions=3, parallelism=3, completionMode="Indexed",
                           successPolicy={"rules": [{"succeededIndexes": "0"}]},
                           template=pod_template(run_seconds=3600))
    await wait_job(api, "leader", lambda j: j.get("status", {}).get("ready") == 3)
    [leader] = [p for p in await job_pods(api, job)
                if meta(p)["annotations"]["batch.kubernetes.io/job-completion-index"] == "0"]
    await api.client.patch(PODS, meta(leader)["name"], {"status": {"phase": "Succeeded"}},
                           namespace="default", subresource="status")
    done = await wait_finished(api, "leader")
    status = done["status"]
    assert [(c["type"], c["reason"], c["message"]) for c in status["conditions"]] == [
        ("SuccessCriteriaMet", "SuccessPolicy", "Matched rules at index 0"),
        ("Complete", "SuccessPolicy", "Matched rules at index 0")]
    assert status["completedIndexes"] == "0" and status["succeeded"] == 1
    assert status.get("failed", 0) == 0  # the other indexes were stopped, not failed
    others = {meta(p)["name"] for p in await job_pods(api, job)} - {meta(leader)["name"]}
    await wait_gone(api.client, PODS, others, namespace="default")


async def test_deleting_a_job_releases_its_pods(tmp_path: Path) -> None:
    async with batch_cluster(tmp_path, ([("job", job_controller()),
                                         ("garbagecollector", gc_controller())], None)) as api:
        job = await create_job(api, "gone", parallelism=2, completions=2,
                               template=pod_template(run_seconds=3600))
        await wait_job(api, "gone", lambda j: j.get("status", {}).get("ready") == 2)
        names = {meta(p)["name"] for p in await job_pods(api, job)}
        await api.client.delete(JOBS, "gone", namespace="default", propagation_policy="Background")
        # the garbage collector deletes the pods; their tracking finalizer is released
        await wait_gone(api.client, PODS, names, namespace="default")
