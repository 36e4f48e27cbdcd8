"""Fake pod statuses, behaviour annotations, image names and pod IP allocation."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from skiff.kubelet.fake_pods import (
    FakeBehaviour, PodIPAllocator, image_id, image_pull_error, normalize_image, running_status,
    terminated_status,
)

NOW = 1735689600.0


def pod(restart: str | None = None, **annotations: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "nginx"},
                                           {"name": "side", "image": "ghcr.io/x/y:1"}],
                            "initContainers": [{"name": "init", "image": "busybox"}]}
    if restart:
        spec["restartPolicy"] = restart
    return {"metadata": {"name": "p", "namespace": "d", "uid": "u1", "annotations": annotations},
            "spec": spec,
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-12-31T00:00:00Z"}]}}


@pytest.mark.parametrize("image, expected", [
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.27", "docker.io/library/nginx:1.27"),
    ("bitnami/redis", "docker.io/bitnami/redis:latest"),
    ("ghcr.io/x/y:1", "ghcr.io/x/y:1"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("busybox@sha256:abc", "docker.io/library/busybox@sha256:abc"),
])
def test_normalize_image(image: str, expected: str) -> None:
    assert normalize_image(image) == expected


def test_image_id_is_a_stable_digest() -> None:
    assert image_id("nginx") == image_id("docker.io/library/nginx:latest")
    assert image_id("nginx").startswith("docker.io/library/nginx@sha256:")
    assert image_id("nginx") != image_id("nginx:1.27")


def test_behaviour_from_annotations() -> None:
    assert FakeBehaviour.of(pod()) == FakeBehaviour(completes=False)
    assert FakeBehaviour.of(pod("Always", **{"skiff.dev/fake-exit-code": "1"})).completes is False
    assert FakeBehaviour.of(pod("Never")) == FakeBehaviour(completes=True, run_seconds=0, exit_code=0)
    job = FakeBehaviour.of(pod("OnFailure", **{"skiff.dev/fake-run-seconds": "2.5",
                                               "skiff.dev/fake-exit-code": "3"}))
    assert job == FakeBehaviour(completes=True, run_seconds=2.5, exit_code=3)
    assert FakeBehaviour.of(pod("Never", **{"skiff.dev/fake-run-seconds": "soon"})).run_seconds == 0


def test_running_status() -> None:
    status = running_status(pod(), host_ip="127.128.0.1", pod_ip="10.244.0.2", started_at=NOW)
    assert status["phase"] == "Running"
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [
        ("PodReadyToStartContainers", "True"), ("Initialized", "True"), ("Ready", "True"),
        ("ContainersReady", "True"), ("PodScheduled", "True")]
    scheduled = status["conditions"][-1]
    assert scheduled["lastTransitionTime"] == "2024-12-31T00:00:00Z"  # kept from the scheduler
    assert status["podIP"] == "10.244.0.2" and status["podIPs"] == [{"ip": "10.244.0.2"}]
    assert status["hostIP"] == "127.128.0.1" and status["hostIPs"] == [{"ip": "127.128.0.1"}]
    assert status["startTime"] == "2025-01-01T00:00:00Z"
    app = status["containerStatuses"][0]
    assert app["state"] == {"running": {"startedAt": "2025-01-01T00:00:00Z"}}
    assert (app["ready"], app["started"], app["restartCount"]) == (True, True, 0)
    assert app["containerID"] == "fake://u1/app" and app["image"] == "docker.io/library/nginx:latest"
    init = status["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed" and init["ready"] is True


@pytest.mark.parametrize("code, phase, reason, why", [
    (0, "Succeeded", "Completed", "PodCompleted"), (2, "Failed", "Error", "PodFailed")])
def test_terminated_status(code: int, phase: str, reason: str, why: str) -> None:
    status = terminated_status(pod("Never"), host_ip="h", pod_ip="10.244.0.9", started_at=NOW,
                               finished_at=NOW + 5, exit_code=code)
    assert status["phase"] == phase
    term = status["containerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (code, reason)
    assert (term["startedAt"], term["finishedAt"]) == ("2025-01-01T00:00:00Z", "2025-01-01T00:00:05Z")
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", why)
    assert status["containerStatuses"][0]["ready"] is False


def test_ip_allocator_hands_out_distinct_addresses_and_reuses_released_ones() -> None:
    alloc = PodIPAllocator("10.244.3.0/24")
    ips = [alloc.allocate(f"u{i}") for i in range(253)]
    assert ips[0] == "10.244.3.2" and ips[-1] == "10.244.3.254"
    assert len(set(ips)) == 253
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.244.3.0/24") for ip in ips)
    assert alloc.allocate("u5") == ips[5]  # same owner, same address
    with pytest.raises(RuntimeError):
        alloc.allocate("one-too-many")
    alloc.release("u7")
    assert alloc.allocate("new") == ips[7]


def test_ip_allocator_adopts_existing_addresses() -> None:
    alloc = PodIPAllocator("10.244.0.0/24")
    alloc.adopt("old", "10.244.0.2")
    alloc.adopt("outsider", "192.0.2.1")  # not ours: ignored
    assert alloc.allocate("new") == "10.244.0.3"
    assert len(alloc) == 2


@pytest.mark.parametrize("image, failing, fails", [
    ("registry.invalid/app:1", (), "lookup registry.invalid: no such host"),
    ("fake.invalid/x", (), "lookup fake.invalid: no such host"),
    ("invalid:5000/x", (), "lookup invalid: no such host"),
    ("invalid/x", (), None),  # a Docker Hub user named "invalid", not a host
    ("nginx", (), None),
    ("nginx:broken", ("docker.io/library/nginx:broken",), "docker.io/library/nginx:broken: not found"),
    ("example.com/broken/app:2", ("example.com/broken/*",), "not found"),
    ("example.com/fine/app:2", ("example.com/broken/*",), None),
])
def test_image_pull_error(image: str, failing: tuple[str, ...], fails: str | None) -> None:
    error = image_pull_error(image, failing)
    assert (error is None) == (fails is None)
    if fails is not None:
        assert error is not None and fails in error


def test_behaviour_collects_pull_errors_and_readiness() -> None:
    pod = {"metadata": {"annotations": {"skiff.dev/fake-ready": "false"}},
           "spec": {"initContainers": [{"name": "init", "image": "a.invalid/i"}],
                    "containers": [{"name": "ok", "image": "nginx"}, {"name": "bad", "image": "b.invalid/x"}]}}
    behaviour = FakeBehaviour.of(pod)
    assert behaviour.ready is False and set(behaviour.pull_errors) == {"init", "bad"}
