"""policy/v1 PodDisruptionBudget."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.kinds.policy import EVICTION_KIND, PODDISRUPTIONBUDGETS

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)


def pdb(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-01-01T00:55:00Z"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}}


@pytest.mark.parametrize("spec, cells", [
    ({"minAvailable": 2}, ["2", "N/A"]),
    ({"maxUnavailable": "25%"}, ["N/A", "25%"]),
])
def test_row(spec: dict[str, Any], cells: list[str]) -> None:
    obj = pdb(**spec)
    obj["status"] = {"disruptionsAllowed": 1}
    assert [c.name for c in PODDISRUPTIONBUDGETS.columns] == [
        "Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"]
    assert PODDISRUPTIONBUDGETS.row(obj, NOW) == ["web", *cells, 1, "5m"]


def test_validation() -> None:
    assert PODDISRUPTIONBUDGETS.validate(pdb(minAvailable="50%"), None) == []
    both = [c for c in PODDISRUPTIONBUDGETS.validate(pdb(minAvailable=1, maxUnavailable=1), None)]
    assert [(c.field, c.message.endswith("minAvailable and maxUnavailable cannot be both set")) for c in both] == [
        ("spec", True)]
    assert [f"{c.field}: {c.message}" for c in PODDISRUPTIONBUDGETS.validate(pdb(maxUnavailable="150%"), None)] == [
        'spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"150%"}: '
        "must not be greater than 100%"]


def test_generation_and_status() -> None:
    obj = pdb(minAvailable=1)
    obj["status"] = {"disruptionsAllowed": 5}
    PODDISRUPTIONBUDGETS.prepare_create(obj)
    assert obj["metadata"]["generation"] == 1 and "status" not in obj
    obj["status"] = {"disruptionsAllowed": 1}
    new = copy.deepcopy(obj)
    new["spec"]["minAvailable"] = 2
    new.pop("status")
    PODDISRUPTIONBUDGETS.prepare_update(new, obj)
    assert new["metadata"]["generation"] == 2 and new["status"] == {"disruptionsAllowed": 1}
    assert PODDISRUPTIONBUDGETS.short_names == ("pdb",) and EVICTION_KIND == ("policy", "v1", "Eviction")
