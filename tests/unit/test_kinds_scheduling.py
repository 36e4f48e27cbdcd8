"""scheduling.k8s.io/v1 PriorityClass."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.kinds.scheduling import PRIORITYCLASSES, system_priority_classes

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def pc(name: str = "high", value: int = 1000, **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "value": value,
            "metadata": {"name": name, "creationTimestamp": "2024-01-01T00:55:00Z"}, **fields}


def test_defaults_and_row() -> None:
    obj = pc()
    PRIORITYCLASSES.default(obj)
    assert obj["preemptionPolicy"] == "PreemptLowerPriority"
    assert [c.name for c in PRIORITYCLASSES.columns] == ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
    assert all(c.priority == 0 for c in PRIORITYCLASSES.columns)
    assert PRIORITYCLASSES.row(obj, NOW) == ["high", 1000, False, "5m", "PreemptLowerPriority"]
    assert PRIORITYCLASSES.short_names == ("pc",) and not PRIORITYCLASSES.namespaced


@pytest.mark.parametrize("obj, expected", [
    (pc(value=1_000_000_001), ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]),
    (pc(name="system-special"), ["metadata.name: Forbidden: priority class names with 'system-' prefix are reserved "
                                 "for system use only. error: system-special is not a known system priority class"]),
    (pc(name="system-node-critical", value=5), [
        "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. "
        "error: value of system-node-critical PriorityClass must be 2000001000"]),
    (pc(preemptionPolicy="Always"), [
        'preemptionPolicy: Unsupported value: "Always": supported values: "PreemptLowerPriority", "Never"']),
])
def test_validation(obj: dict[str, Any], expected: list[str]) -> None:
    assert messages(PRIORITYCLASSES.validate(obj, None)) == expected


def test_system_classes_are_valid_and_immutable() -> None:
    classes = system_priority_classes()
    assert {(c["metadata"]["name"], c["value"]) for c in classes} == {
        ("system-node-critical", 2000001000), ("system-cluster-critical", 2000000000)}
    for obj in classes:
        assert PRIORITYCLASSES.validate(obj, None) == []
    old = pc()
    PRIORITYCLASSES.default(old)
    new = copy.deepcopy(old)
    new["value"] = 5
    new["preemptionPolicy"] = "Never"
    assert messages(PRIORITYCLASSES.validate(new, old)) == [
        "value: Forbidden: may not be changed in an update.",
        'preemptionPolicy: Invalid value: "Never": field is immutable']
