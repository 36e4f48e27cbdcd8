"""Table cells as ``kubectl get`` prints them: ages, label selectors, container lists.

Time is never read implicitly in row functions: they take ``now`` (a timezone-aware
``datetime``; ``None`` means the wall clock, via :func:`utc_now`), so tests pass a
fixed instant instead of patching anything.  Server-side Tables always carry the
``-o wide`` cells too; kubectl hides columns with ``priority > 0`` itself.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from ...resource import Column
from .objectmeta import get_path

def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_time(value: str | None) -> datetime | None:
    """RFC 3339 (``2024-01-02T03:04:05Z``, optional fraction/offset) -> aware datetime."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)", text)
    if m and m.group(2):  # Python accepts at most 6 fractional digits
        text = m.group(1) + m.group(2)[:7].ljust(7, "0") + m.group(3)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_time(when: datetime) -> str:
    """``2024-01-02T03:04:05Z`` (whole seconds, UTC), as metav1.Time serialises."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_micro_time(when: datetime) -> str:
    """``2024-01-02T03:04:05.123456Z`` as metav1.MicroTime serialises."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def human_duration(seconds: float) -> str:
    """kubectl's duration: 59s, 119s, 2m5s, 9m, 3h, 4h30m, 47h, 3d4h, 30d, 2y30d, 9y."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rest = s % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def short_human_duration(seconds: float) -> str:
    """The coarser form (one unit): 59s, 5m, 3h, 12d, 2y."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    if s < 86400 * 365:
        return f"{s // 86400}d"
    return f"{s // (86400 * 365)}y"


def format_age(timestamp: str | datetime | None, now: datetime | None = None) -> str:
    """The AGE cell: time since ``timestamp``; ``<unknown>`` when it is not set."""
    when = parse_time(timestamp) if isinstance(timestamp, str) or timestamp is None else timestamp
    if when is None:
        return "<unknown>"
    return human_duration(((now or utc_now()) - when).total_seconds())


def object_age(obj: Mapping[str, Any], now: datetime | None = None) -> str:
    return format_age(get_path(obj, "metadata.creationTimestamp"), now)


def object_name(obj: Mapping[str, Any]) -> str:
    return str(get_path(obj, "metadata.name", ""))


#: The NAME column every printer starts with.
NAME_COLUMN = Column("Name", format="name", description="Name must be unique within a namespace.")
#: The AGE column (time since creationTimestamp, as a string cell).
AGE_COLUMN = Column("Age", description="Time since the object was created.")
#: The columns kube-apiserver uses for kinds without a printer (cells: name_created_row).
DEFAULT_COLUMNS = (NAME_COLUMN, Column("Created At", type="date", description="Creation time."))


def name_age_row(obj: Mapping[str, Any], now: datetime | None = None) -> list[Any]:
    return [object_name(obj), object_age(obj, now)]


def name_created_row(obj: Mapping[str, Any], now: datetime | None = None) -> list[Any]:
    """Cells for :data:`DEFAULT_COLUMNS`: name and the RFC 3339 creation time."""
    created = parse_time(get_path(obj, "metadata.creationTimestamp"))
    return [object_name(obj), format_time(created) if created else ""]


def container_cells(containers: Iterable[Mapping[str, Any]] | None) -> tuple[str, str]:
    """CONTAINERS and IMAGES cells of workload tables: names and images, comma-joined."""
    items = list(containers or [])
    return (",".join(str(c.get("name", "")) for c in items),
            ",".join(str(c.get("image", "")) for c in items))


def format_labels(labels: Mapping[str, Any] | None) -> str:
    """``a=1,b=2`` sorted by key, ``<none>`` when empty (labels.FormatLabels)."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_selector(selector: Mapping[str, Any] | None) -> str:
    """A metav1.LabelSelector as a string: ``app=web,tier in (a,b),!legacy``; ``<none>`` if empty."""
    if not selector:
        return "<none>"
    reqs: list[tuple[str, str]] = []
    for k, v in (selector.get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for expr in selector.get("matchExpressions") or []:
        k = expr.get("key", "")
        op = expr.get("operator", "")
        values = ",".join(sorted(expr.get("values") or []))
        if op == "In":
            reqs.append((k, f"{k} in ({values})"))
        elif op == "NotIn":
            reqs.append((k, f"{k} notin ({values})"))
        elif op == "Exists":
            reqs.append((k, k))
        elif op == "DoesNotExist":
            reqs.append((k, f"!{k}"))
        else:
            return "<error>"
    if not reqs:
        return "<none>"
    return ",".join(text for _, text in sorted(reqs, key=lambda r: r[0]))


def selector_from_labels(labels: Mapping[str, Any] | None) -> str:
    """A map selector as a query string (``a=1,b=2``), empty string when there is none."""
    items = labels or {}
    return ",".join(f"{k}={items[k]}" for k in sorted(items))


def join_or_none(values: Iterable[str], sep: str = ",") -> str:
    items = [v for v in values if v]
    return sep.join(items) if items else "<none>"
