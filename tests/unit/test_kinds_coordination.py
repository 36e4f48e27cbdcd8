"""coordination.k8s.io/v1 Lease."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from skiff.api.kinds.coordination import LEASES

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)


def lease(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": spec,
            "metadata": {"name": "kube-scheduler", "namespace": "kube-system",
                         "creationTimestamp": "2024-01-01T00:55:00Z"}}


def test_row() -> None:
    assert [c.name for c in LEASES.columns] == ["Name", "Holder", "Age"]
    assert LEASES.row(lease(holderIdentity="node-1_abc"), NOW) == ["kube-scheduler", "node-1_abc", "5m"]
    assert LEASES.row(lease(), NOW) == ["kube-scheduler", "", "5m"]


def test_validation() -> None:
    assert LEASES.validate(lease(leaseDurationSeconds=15, leaseTransitions=2), None) == []
    assert [f"{c.field}: {c.message}" for c in LEASES.validate(lease(leaseDurationSeconds=0, leaseTransitions=-1),
                                                               None)] == [
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
        "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0"]
