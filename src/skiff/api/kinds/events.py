"""The ``events.k8s.io/v1`` group: Event, the newer view of core/v1 Events.

Both APIs serve the *same* objects; only field names differ::

    events.k8s.io/v1            core/v1
    regarding                   involvedObject
    note                        message
    reportingController         reportingComponent
    deprecatedSource            source
    deprecatedFirstTimestamp    firstTimestamp
    deprecatedLastTimestamp     lastTimestamp
    deprecatedCount             count

:func:`event_to_core` / :func:`core_to_event` convert (store one form, convert at
the edge).  Tables and field selectors are those of core events (as in
Kubernetes, where one printer serves both); validation is the stricter
events.k8s.io/v1 one for writes through this API.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Callable

from ..errors import Cause
from ..resource import ResourceInfo
from . import meta as m
from .core.events import EVENT_COLUMNS, EVENT_FIELD_LABELS, event_row

Obj = dict[str, Any]

#: events.k8s.io/v1 field -> core/v1 field (fields with the same name are copied as is).
RENAMED = {
    "regarding": "involvedObject", "note": "message", "reportingController": "reportingComponent",
    "deprecatedSource": "source", "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp", "deprecatedCount": "count",
}
SHARED = ("metadata", "eventTime", "series", "reportingInstance", "action", "reason", "related", "type")
LIMIT = 128
NOTE_LIMIT = 1024


def event_to_core(obj: Obj) -> Obj:
    """An events.k8s.io/v1 Event as a core/v1 Event."""
    out: Obj = {"apiVersion": "v1", "kind": "Event"}
    for name in SHARED:
        if name in obj:
            out[name] = copy.deepcopy(obj[name])
    for new, old in RENAMED.items():
        if new in obj:
            out[old] = copy.deepcopy(obj[new])
    out.setdefault("involvedObject", {})
    return out


def core_to_event(obj: Obj) -> Obj:
    """A core/v1 Event as an events.k8s.io/v1 Event."""
    out: Obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event"}
    for name in SHARED:
        if name in obj:
            out[name] = copy.deepcopy(obj[name])
    for new, old in RENAMED.items():
        if old in obj:
            out[new] = copy.deepcopy(obj[old])
    return out


def _validate_series(obj: Obj) -> list[Cause]:
    series = obj.get("series")
    if series is None:
        return []
    causes: list[Cause] = []
    if (series.get("count") or 0) < 2:
        causes.append(m.invalid("series.count", "", "should be at least 2"))
    if not series.get("lastObservedTime"):
        causes.append(m.required("series.lastObservedTime"))
    return causes


def _validate_common(obj: Obj) -> list[Cause]:
    """The checks every write gets (legacyValidateEvent for events with an eventTime)."""
    causes: list[Cause] = []
    namespace = m.get_path(obj, "metadata.namespace", "")
    regarding_ns = m.get_path(obj, "regarding.namespace", "")
    mismatch = m.invalid("involvedObject.namespace", regarding_ns, "does not match event.namespace")
    if not obj.get("eventTime"):
        if (not regarding_ns and namespace not in ("", "default")) or (regarding_ns and namespace != regarding_ns):
            causes.append(mismatch)
    else:
        if not regarding_ns and namespace not in ("default", "kube-system"):
            causes.append(mismatch)
        controller = obj.get("reportingController") or ""
        if not controller:
            causes.append(m.required("reportingController"))
        causes += m.invalid_each("reportingController", controller, m.is_qualified_name(controller))
        for name in ("reportingInstance", "action", "reason"):
            value = obj.get(name) or ""
            if not value:
                causes.append(m.required(name))
            if len(value) > LIMIT:
                causes.append(m.invalid(name, "", f"can have at most {LIMIT} characters"))
        if len(obj.get("note") or "") > NOTE_LIMIT:
            causes.append(m.invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    causes += m.invalid_each("namespace", namespace, m.is_dns1123_subdomain(namespace))
    return causes


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = _validate_common(obj)
    if old is not None:
        causes += m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        if obj.get("series") != old.get("series"):
            causes += _validate_series(obj)
        for name, path in (("regarding", "involvedObject"), ("reason", "reason"), ("note", "note"),
                           ("deprecatedSource", "source"), ("deprecatedFirstTimestamp", "firstTimestamp"),
                           ("deprecatedLastTimestamp", "lastTimestamp"), ("deprecatedCount", "count"),
                           ("reason", "reason"), ("type", "type"), ("eventTime", "eventTime"),
                           ("action", "action"), ("related", "related"),
                           ("reportingController", "reportingController"),
                           ("reportingInstance", "reportingInstance")):
            causes += m.validate_immutable(obj.get(name), old.get(name), path)
        return causes
    causes += m.validate_object_meta(obj.get("metadata"), True)
    causes += _validate_series(obj)
    if not obj.get("eventTime"):
        causes.append(m.required("eventTime"))
    if obj.get("type") not in ("Normal", "Warning"):
        causes.append(m.invalid("type", "", f"has invalid value: {obj.get('type') or ''}"))
    for name, path in (("deprecatedFirstTimestamp", "firstTimestamp"), ("deprecatedLastTimestamp", "lastTimestamp"),
                       ("deprecatedCount", "count")):
        if obj.get(name):
            causes.append(m.invalid(path, "", "needs to be unset"))
    source = obj.get("deprecatedSource") or {}
    if source.get("component") or source.get("host"):
        causes.append(m.invalid("source", "", "needs to be unset"))
    return causes


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return event_row(event_to_core(obj), now)


def _via_core(getter: Callable[[Obj], str]) -> Callable[[Obj], str]:
    return lambda obj: getter(event_to_core(obj))


EVENTS = ResourceInfo(
    group="events.k8s.io", version="v1", kind="Event", plural="events", singular="event",
    namespaced=True, schema_type="io.k8s.api.events.v1.Event", short_names=("ev",),
    columns=EVENT_COLUMNS, row=row, validate=validate,
    field_labels={name: _via_core(getter) for name, getter in EVENT_FIELD_LABELS.items()},
)

RESOURCES: tuple[ResourceInfo, ...] = (EVENTS,)
