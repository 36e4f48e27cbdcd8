"""apps/v1 ControllerRevision: an immutable snapshot of a StatefulSet/DaemonSet template.

    NAME          CONTROLLER          REVISION   AGE
    web-6d4b9c    statefulset.apps/web   2       5m
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo
from .. import meta as m

Obj = dict[str, Any]


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        causes = m.validate_object_meta(obj.get("metadata"), True)
    else:
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    if obj.get("data") is None:
        causes.append(m.required("data", "data is mandatory"))
    causes += m.validate_nonnegative(obj.get("revision") or 0, "revision")
    if old is not None:
        causes += m.validate_immutable(obj.get("data"), old.get("data"), "data")
    return causes


def controller_name(obj: Obj) -> str:
    """``statefulset.apps/web`` for the controlling owner, ``<none>`` without one."""
    for ref in m.get_path(obj, "metadata.ownerReferences", []) or []:
        if ref.get("controller"):
            api_version = ref.get("apiVersion", "")
            group = api_version.split("/")[0] if "/" in api_version else ""
            kind = ref.get("kind", "")
            if not kind and not group:
                return str(ref.get("name", ""))
            qualified = f"{kind}.{group}" if group else kind
            return f"{qualified.lower()}/{ref.get('name', '')}"
    return "<none>"


COLUMNS = (
    m.NAME_COLUMN,
    Column("Controller", description="Controller of the object"),
    Column("Revision", description="Revision number of the snapshot."),
    m.AGE_COLUMN,
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), controller_name(obj), obj.get("revision", 0), m.object_age(obj, now)]


CONTROLLERREVISIONS = ResourceInfo(
    group="apps", version="v1", kind="ControllerRevision", plural="controllerrevisions",
    singular="controllerrevision", namespaced=True, schema_type="io.k8s.api.apps.v1.ControllerRevision",
    columns=COLUMNS, row=row, validate=validate,
)
