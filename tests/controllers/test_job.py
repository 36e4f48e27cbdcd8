"""The Job controller against the real API server, simulated nodes and the scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from housekeeping_support import ApiServer, meta
from skiff.client.resources import JOBS, PODS
from test_job_support import (
    PodWatch, batch_cluster, condition, create_job, events_for, job_controller, job_pods,
    pod_template, wait_finished, wait_job,
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
