"""Image reference parsing and normalisation, and imagePullPolicy decisions."""

from __future__ import annotations

import pytest

from skiff.kubelet.images.policy import PullDecision, default_pull_policy, pull_decision
from skiff.kubelet.images.reference import InvalidReference, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text,full,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
    ("bitnami/redis:7", "docker.io/bitnami/redis:7", "bitnami/redis:7"),
    ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app:v2"),
    (f"busybox@{DIGEST}", f"docker.io/library/busybox@{DIGEST}", f"busybox@{DIGEST}"),
    (f"busybox:1.36@{DIGEST}", f"docker.io/library/busybox:1.36@{DIGEST}", f"busybox:1.36@{DIGEST}"),
])
def test_normalisation(text: str, full: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


def test_parts_and_registry_host() -> None:
    hub = parse_reference("nginx")
    assert (hub.domain, hub.path, hub.tag, hub.digest) == ("docker.io", "library/nginx", "latest", None)
    assert hub.registry_host == "registry-1.docker.io"
    local = parse_reference(f"127.0.0.1:5000/app@{DIGEST}")
    assert (local.registry_host, local.pull_reference, local.tag) == ("127.0.0.1:5000", DIGEST, None)
    assert parse_reference("nginx", default_tag=False).tag is None


@pytest.mark.parametrize("text,message", [
    ("", "invalid reference format"),
    ("Busybox", "must be lowercase"),
    ("busybox:", "bad tag"),
    ("busybox@sha256:123", "bad"),
    ("a//b", "invalid reference format"),
    ("busy box", "invalid reference format"),
    ("-leading/dash", "invalid reference format"),
])
def test_invalid_references(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message):
        parse_reference(text)


@pytest.mark.parametrize("image,policy", [
    ("busybox", "Always"), ("busybox:latest", "Always"), ("busybox:1.36", "IfNotPresent"),
    (f"busybox@{DIGEST}", "IfNotPresent"), ("127.0.0.1:5000/app", "Always"),
])
def test_default_pull_policy(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy


@pytest.mark.parametrize("policy,present,decision", [
    ("Always", True, PullDecision.PULL), ("Always", False, PullDecision.PULL),
    ("IfNotPresent", True, PullDecision.USE_LOCAL), ("IfNotPresent", False, PullDecision.PULL),
    ("Never", True, PullDecision.USE_LOCAL), ("Never", False, PullDecision.NEVER_PULL),
    (None, True, PullDecision.USE_LOCAL),     # busybox:1.36 defaults to IfNotPresent
])
def test_pull_decision(policy: str | None, present: bool, decision: PullDecision) -> None:
    assert pull_decision(policy, "busybox:1.36", present) == decision
