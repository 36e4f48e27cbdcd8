"""Events (core/v1): what happened to an object, as ``kubectl get events`` and
``kubectl describe`` show it.

An event names its subject in ``involvedObject``; describe finds them with the field
selector ``involvedObject.name=x,involvedObject.namespace=ns,involvedObject.uid=...``.
Repeated events bump ``count``/``lastTimestamp`` (or ``series`` for events.k8s.io
style events), which the LAST SEEN and COUNT columns reflect.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo
from .. import meta as m

Obj = dict[str, Any]

REASON_LIMIT = 128
ACTION_LIMIT = 128
REPORTING_INSTANCE_LIMIT = 128
NOTE_LIMIT = 1024

EVENT_COLUMNS = (
    Column("Last Seen", description="Time since the event was last seen."),
    Column("Type", description="Normal or Warning."),
    Column("Reason", description="Short machine-readable reason."),
    Column("Object", description="The object the event is about."),
    Column("Subobject", priority=1, description="Field path within the object."),
    Column("Source", priority=1, description="Component (and host) that reported the event."),
    Column("Message", description="Human-readable description."),
    Column("First Seen", priority=1, description="Time since the event was first seen."),
    Column("Count", priority=1, description="How often the event occurred."),
    Column("Name", priority=1, format="name", description="Name of the Event object."),
)


def _source(event: Obj) -> str:
    component = m.get_path(event, "source.component") or event.get("reportingComponent") or ""
    host = m.get_path(event, "source.host") or event.get("reportingInstance") or ""
    return f"{component}, {host}" if host else str(component)


def event_row(event: Obj, now: datetime | None = None) -> list[Any]:
    first = m.format_age(event.get("firstTimestamp") or event.get("eventTime"), now)
    last = m.format_age(event["lastTimestamp"], now) if event.get("lastTimestamp") else first
    count = event.get("count") or 0
    series = event.get("series")
    if isinstance(series, dict):
        last = m.format_age(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif not count:
        count = 1
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [last, event.get("type", ""), event.get("reason", ""), target, involved.get("fieldPath", ""),
            _source(event), str(event.get("message", "")).strip(), first, count, m.object_name(event)]


def validate_event(event: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(event.get("metadata"), True) if old is None else \
        m.validate_object_meta_update(event.get("metadata"), old.get("metadata"))
    namespace = m.get_path(event, "metadata.namespace", "")
    involved_ns = m.get_path(event, "involvedObject.namespace", "")
    mismatch = m.invalid("involvedObject.namespace", involved_ns, "does not match event.namespace")
    if not event.get("eventTime"):
        if not involved_ns:
            if namespace not in ("", "default"):
                causes.append(mismatch)
        elif namespace != involved_ns:
            causes.append(mismatch)
    else:
        if not involved_ns and namespace != "kube-system":
            causes.append(mismatch)
        controller = event.get("reportingComponent") or ""
        if not controller:
            causes.append(m.required("reportingComponent"))
        causes += m.invalid_each("reportingComponent", controller, m.is_qualified_name(controller))
        for f, limit in (("reportingInstance", REPORTING_INSTANCE_LIMIT), ("action", ACTION_LIMIT),
                         ("reason", REASON_LIMIT)):
            value = event.get(f) or ""
            if not value:
                causes.append(m.required(f))
            elif len(value) > limit:
                causes.append(m.invalid(f, "", f"can have at most {limit} characters"))
        if len(event.get("message") or "") > NOTE_LIMIT:
            causes.append(m.invalid("message", "", f"can have at most {NOTE_LIMIT} characters"))
    return causes


def _involved(field: str) -> Any:
    return lambda o: str(m.get_path(o, f"involvedObject.{field}", ""))


EVENT_FIELD_LABELS = {
    "involvedObject.kind": _involved("kind"),
    "involvedObject.namespace": _involved("namespace"),
    "involvedObject.name": _involved("name"),
    "involvedObject.uid": _involved("uid"),
    "involvedObject.apiVersion": _involved("apiVersion"),
    "involvedObject.resourceVersion": _involved("resourceVersion"),
    "involvedObject.fieldPath": _involved("fieldPath"),
    "reason": lambda o: str(o.get("reason", "")),
    "reportingComponent": lambda o: str(o.get("reportingComponent", "")),
    "source": lambda o: str(m.get_path(o, "source.component", "")),
    "type": lambda o: str(o.get("type", "")),
}

EVENTS = ResourceInfo(
    group="", version="v1", kind="Event", plural="events", singular="event", namespaced=True,
    schema_type="io.k8s.api.core.v1.Event", short_names=("ev",),
    columns=EVENT_COLUMNS, row=event_row, validate=validate_event, field_labels=EVENT_FIELD_LABELS,
)
