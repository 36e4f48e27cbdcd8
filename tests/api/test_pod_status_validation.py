"""A pod write that leaves the spec as stored (a status write) does not validate the spec again.

As in Kubernetes, where a status update validates the metadata and the status only:
a pod whose stored spec the current rules would refuse (one written through the
unvalidated ephemeralcontainers subresource, or by an older server) keeps getting
status updates.  Any change of the spec is validated in full.
"""

from __future__ import annotations

import copy
from typing import Any

from skiff.api.kinds.core.pods import PODS

Obj = dict[str, Any]


def stored_pod(image: str = "busybox") -> Obj:
    pod: Obj = {"metadata": {"name": "web", "namespace": "default", "resourceVersion": "5"},
                "spec": {"containers": [{"name": "main", "image": image}]}}
    PODS.prepare_create(pod)
    PODS.default(pod)
    return pod


def with_status(pod: Obj) -> Obj:
    new = copy.deepcopy(pod)
    new["status"] = {"phase": "Running", "podIP": "10.244.0.2"}
    return new


def fields(causes: list[Any]) -> list[str]:
    return [c.field for c in causes]


def test_status_write_of_a_valid_pod() -> None:
    old = stored_pod()
    assert PODS.validate(with_status(old), old) == []


def test_unchanged_spec_is_not_validated_again() -> None:
    old = stored_pod(image="")  # refused on create ...
    assert fields(PODS.validate(old, None)) == ["spec.containers[0].image"]
    assert PODS.validate(with_status(old), old) == []  # ... but its status may be written


def test_a_changed_spec_is_validated() -> None:
    old = stored_pod(image="")
    new = with_status(old)
    new["spec"]["activeDeadlineSeconds"] = 60  # an allowed change: the spec is validated again
    assert fields(PODS.validate(new, old)) == ["spec.containers[0].image"]


def test_true_is_not_one() -> None:
    old = stored_pod(image="")
    old["spec"]["hostNetwork"] = True
    new = with_status(old)
    new["spec"]["hostNetwork"] = 1  # == True in Python, another JSON value
    assert "spec.containers[0].image" in fields(PODS.validate(new, old))


def test_metadata_is_still_validated() -> None:
    old = stored_pod()
    new = with_status(old)
    new["metadata"]["labels"] = {"bad key!": "x"}
    assert fields(PODS.validate(new, old)) == ["metadata.labels"]
