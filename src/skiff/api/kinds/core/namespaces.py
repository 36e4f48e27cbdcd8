"""Namespaces: the cluster-scoped folders every namespaced object lives in.

A Namespace is created ``Active`` with the ``kubernetes`` finalizer in
``spec.finalizers`` and the ``kubernetes.io/metadata.name`` label.  Deleting one sets
``status.phase: Terminating``; the namespace controller empties it and then removes
the finalizer through the ``finalize`` subresource.  A plain update never changes
spec or status (``prepare_update`` keeps the stored ones).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo, Subresource
from .. import meta as m

Obj = dict[str, Any]

FINALIZER_KUBERNETES = "kubernetes"
NAME_LABEL = "kubernetes.io/metadata.name"

NAMESPACE_COLUMNS = (m.NAME_COLUMN, Column("Status", description="The namespace's phase."), m.AGE_COLUMN)


def namespace_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), m.get_path(obj, "status.phase", ""), m.object_age(obj, now)]


def default_namespace(obj: Obj) -> None:
    meta = m.ensure_meta(obj)
    if meta.get("name"):
        labels = meta.get("labels") or {}
        labels[NAME_LABEL] = meta["name"]
        meta["labels"] = labels
    status = obj.setdefault("status", {})
    if not status.get("phase"):
        status["phase"] = "Active"
    obj.setdefault("spec", {})


def prepare_namespace_create(obj: Obj) -> None:
    obj["status"] = {"phase": "Active"}
    spec = obj.setdefault("spec", {})
    finalizers = list(spec.get("finalizers") or [])
    if FINALIZER_KUBERNETES not in finalizers:
        finalizers.append(FINALIZER_KUBERNETES)
    spec["finalizers"] = finalizers


def prepare_namespace_update(obj: Obj, old: Obj) -> None:
    obj["spec"] = old.get("spec") or {}
    obj["status"] = old.get("status") or {}


def validate_finalizers(finalizers: list[str] | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    for name in finalizers or []:
        problems = m.is_qualified_name(name)
        causes += m.invalid_each(path, name, problems)
        if not problems and "/" not in name and name != FINALIZER_KUBERNETES:
            causes.append(m.invalid(path, name, "name is neither a standard finalizer name nor is it "
                                                "fully qualified"))
    return causes


def validate_namespace(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        causes = m.validate_object_meta(obj.get("metadata"), False, name_fn=m.name_is_dns_label)
    else:
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    return causes + validate_finalizers(m.get_path(obj, "spec.finalizers"), "spec.finalizers")


NAMESPACES = ResourceInfo(
    group="", version="v1", kind="Namespace", plural="namespaces", singular="namespace",
    namespaced=False, schema_type="io.k8s.api.core.v1.Namespace", short_names=("ns",),
    verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
    subresources=(Subresource("finalize", "Namespace", verbs=("update",)), Subresource("status", "Namespace")),
    has_status=True, columns=NAMESPACE_COLUMNS, row=namespace_row, default=default_namespace,
    validate=validate_namespace, prepare_create=prepare_namespace_create,
    prepare_update=prepare_namespace_update,
    field_labels={"status.phase": lambda o: m.get_path(o, "status.phase", "")},
)
