"""events.k8s.io/v1 Event: conversion with core/v1, strict validation, the core events table."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

from skiff.api.kinds.events import EVENTS, core_to_event, event_to_core

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def event(**extra: Any) -> dict[str, Any]:
    body = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "web.17a", "namespace": "default", "creationTimestamp": "2024-01-01T00:55:00Z"},
            "eventTime": "2024-01-01T00:55:00.000000Z", "reportingController": "skiff.io/scheduler",
            "reportingInstance": "skiff-0", "action": "Binding", "reason": "Scheduled", "type": "Normal",
            "note": "Successfully assigned default/web to node-1 ",
            "regarding": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u1"}}
    body.update(extra)
    return body


def test_conversion_both_ways() -> None:
    core = event_to_core(event(deprecatedCount=3))
    assert core["apiVersion"] == "v1"
    assert core["involvedObject"]["name"] == "web" and core["message"].startswith("Successfully")
    assert core["reportingComponent"] == "skiff.io/scheduler" and core["count"] == 3
    back = core_to_event(core)
    assert back == event(deprecatedCount=3)


def test_valid_event_and_strict_rules() -> None:
    assert EVENTS.validate(event(), None) == []
    bad = event(type="Info", deprecatedCount=2, series={"count": 1})
    del bad["eventTime"]
    bad.pop("action")
    assert messages(EVENTS.validate(bad, None)) == [
        "series.count: Invalid value: \"\": should be at least 2",
        "series.lastObservedTime: Required value",
        "eventTime: Required value",
        'type: Invalid value: "": has invalid value: Info',
        'count: Invalid value: "": needs to be unset']


def test_update_keeps_identity_fields() -> None:
    old = event()
    new = copy.deepcopy(old)
    new["series"] = {"count": 2, "lastObservedTime": "2024-01-01T00:58:00.000000Z"}
    assert EVENTS.validate(new, old) == []
    new["note"] = "different"
    assert messages(EVENTS.validate(new, old)) == ['note: Invalid value: "different": field is immutable']


def test_row_and_field_labels_match_core_events() -> None:
    obj = event(series={"count": 4, "lastObservedTime": "2024-01-01T00:59:00.000000Z"})
    assert [c.name for c in EVENTS.columns][:7] == [
        "Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message"]
    assert EVENTS.row(obj, NOW) == ["60s", "Normal", "Scheduled", "pod/web", "", "skiff.io/scheduler, skiff-0",
                                    "Successfully assigned default/web to node-1", "5m", 4, "web.17a"]
    assert EVENTS.field_labels["involvedObject.name"](obj) == "web"
    assert EVENTS.field_labels["reportingComponent"](obj) == "skiff.io/scheduler"
    assert EVENTS.short_names == ("ev",)
