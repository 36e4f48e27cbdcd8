"""The ``metrics.k8s.io/v1beta1`` group: resource usage now, read-only (``kubectl top``).

    NodeMetrics   nodes   cluster-scoped   {timestamp, window, usage: {cpu, memory}}
    PodMetrics    pods    namespaced       {timestamp, window, containers: [{name, usage}]}

In Kubernetes these come from metrics-server, an API server of its own behind the
aggregation layer; nothing is stored.  skiff serves them from its metrics server
(:mod:`skiff.metrics`) through the API server's read-only sources; a server without
one answers 503 ServiceUnavailable, as an API server whose metrics APIService is
unavailable does (``kubectl top`` then says the metrics API is not available).
``usage.cpu`` is a rate in cores ("250m" or nanocores "1234567n"), ``usage.memory`` the
working set in bytes ("12Mi" style, Ki granularity); ``window`` is the span the CPU rate
was measured over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..resource import Column, ResourceInfo
from . import meta as m

Obj = dict[str, Any]

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
READ_VERBS = ("get", "list")


def _node_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    usage = obj.get("usage") or {}
    return [m.object_name(obj), usage.get("cpu", ""), usage.get("memory", ""), obj.get("window", "")]


def _pod_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    names = ",".join(str(c.get("name", "")) for c in obj.get("containers") or [])
    return [m.object_name(obj), names, obj.get("window", "")]


NODE_METRICS = ResourceInfo(
    group=GROUP, version=VERSION, kind="NodeMetrics", plural="nodes", singular="",
    namespaced=False, verbs=READ_VERBS, stored=False,
    schema_type="io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics",
    columns=(m.NAME_COLUMN, Column("CPU"), Column("Memory"), Column("Window")), row=_node_row,
)

POD_METRICS = ResourceInfo(
    group=GROUP, version=VERSION, kind="PodMetrics", plural="pods", singular="",
    namespaced=True, verbs=READ_VERBS, stored=False,
    schema_type="io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics",
    columns=(m.NAME_COLUMN, Column("Containers"), Column("Window")), row=_pod_row,
)

RESOURCES: tuple[ResourceInfo, ...] = (NODE_METRICS, POD_METRICS)
