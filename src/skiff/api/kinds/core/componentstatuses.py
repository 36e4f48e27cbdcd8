"""ComponentStatus (core/v1, deprecated since v1.19 and still served): ``kubectl get cs``.

    NAME                 STATUS    MESSAGE   ERROR
    scheduler            Healthy   ok
    controller-manager   Healthy   ok
    etcd-0               Healthy   ok

Read-only and not stored: the cluster that runs the components answers from what it
knows (see skiff.cli.componentstatus and skiff.apiserver.readonly); every answer
carries Kubernetes' deprecation warning, which kubectl prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...resource import Column, ResourceInfo
from .. import meta as m

Obj = dict[str, Any]


def _row(obj: Obj, now: datetime | None = None) -> list[Any]:
    healthy: Obj = next((c for c in obj.get("conditions") or [] if c.get("type") == "Healthy"), {})
    status = {"True": "Healthy", "False": "Unhealthy"}.get(str(healthy.get("status")), "Unknown")
    return [m.object_name(obj), status, healthy.get("message", ""), healthy.get("error", "")]


COMPONENT_STATUSES = ResourceInfo(
    group="", version="v1", kind="ComponentStatus", plural="componentstatuses", singular="componentstatus",
    namespaced=False, schema_type="io.k8s.api.core.v1.ComponentStatus", short_names=("cs",),
    verbs=("get", "list"), stored=False, warning="v1 ComponentStatus is deprecated in v1.19+",
    columns=(m.NAME_COLUMN, Column("Status", description="Status of the component conditions"),
             Column("Message", description="Message of the component conditions"),
             Column("Error", description="Error of the component conditions")),
    row=_row,
)
