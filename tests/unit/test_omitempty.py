"""Go's omitempty on stored status: the zeros Kubernetes never shows are left out."""

from __future__ import annotations

from skiff.api.omitempty import EmptyFields
from skiff.api.schema import builtin_schema

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"


def test_a_deployment_scaled_to_zero_shows_no_replica_counts() -> None:
    obj = {"status": {"replicas": 0, "updatedReplicas": 0, "readyReplicas": 0, "availableReplicas": 0,
                      "unavailableReplicas": 0, "observedGeneration": 3,
                      "conditions": [{"type": "Available", "status": "True", "reason": "", "message": "ok"}]}}
    EmptyFields(builtin_schema()).drop_in_status(DEPLOYMENT, obj)
    assert obj["status"] == {"observedGeneration": 3,
                             "conditions": [{"type": "Available", "status": "True", "message": "ok"}]}


def test_fields_without_omitempty_and_non_zero_values_stay() -> None:
    obj = {"status": {"replicas": 0, "fullyLabeledReplicas": 0, "readyReplicas": 2}}
    EmptyFields(builtin_schema()).drop_in_status("io.k8s.api.apps.v1.ReplicaSet", obj)
    assert obj["status"] == {"replicas": 0, "readyReplicas": 2}  # ReplicaSetStatus.replicas has no omitempty


def test_pod_status_keeps_structs_and_drops_empty_lists() -> None:
    obj = {"status": {"phase": "Running", "message": "", "podIPs": [],
                      "containerStatuses": [{"name": "c", "ready": False, "restartCount": 0, "image": "i",
                                             "imageID": "", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                                             "lastState": {}}]}}
    EmptyFields(builtin_schema()).drop_in_status("io.k8s.api.core.v1.Pod", obj)
    status = obj["status"]
    assert "message" not in status and "podIPs" not in status
    container = status["containerStatuses"][0]
    # ready and restartCount have no omitempty; lastState is a struct (Go prints it as {})
    assert container["ready"] is False and container["restartCount"] == 0 and container["lastState"] == {}
