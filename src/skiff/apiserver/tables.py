"""Server-side printing: ``meta.k8s.io/v1`` Table and PartialObjectMetadata answers.

``kubectl get`` asks for ``as=Table``; the server answers with the kind's
column definitions (:attr:`ResourceInfo.columns`) and one row per object
(:attr:`ResourceInfo.row`).  Each row carries the object as chosen by the
``includeObject`` query parameter: ``Metadata`` (default, a
PartialObjectMetadata), ``Object`` (the whole object) or ``None``.

In a watch (``kubectl get -w``) every event's object is a one-row Table and
only the first carries ``columnDefinitions``.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..api.errors import bad_request
from ..api.resource import ResourceInfo

Obj = dict[str, Any]

META_V1 = "meta.k8s.io/v1"
INCLUDE_OBJECT = ("None", "Metadata", "Object")


def include_object_mode(query: Any) -> str:
    mode = query.get("includeObject", "") or "Metadata"
    if mode not in INCLUDE_OBJECT:
        raise bad_request(f'includeObject: Unsupported value: "{mode}": supported values: '
                          '"Metadata", "None", "Object"')
    return mode


def partial_metadata(obj: Obj) -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": META_V1, "metadata": obj.get("metadata", {})}


def partial_metadata_list(objs: Iterable[Obj], list_meta: Obj) -> Obj:
    return {"kind": "PartialObjectMetadataList", "apiVersion": META_V1, "metadata": list_meta,
            "items": [{"kind": "PartialObjectMetadata", "apiVersion": META_V1,
                       "metadata": o.get("metadata", {})} for o in objs]}


def column_definitions(info: ResourceInfo) -> list[Obj]:
    return [c.to_dict() for c in info.columns]


def row(info: ResourceInfo, obj: Obj, include: str) -> Obj:
    out: Obj = {"cells": info.row(obj)}
    if include == "Metadata":
        out["object"] = partial_metadata(obj)
    elif include == "Object":
        out["object"] = obj
    return out


def table(info: ResourceInfo, objs: Iterable[Obj], include: str, list_meta: Obj | None = None,
          *, with_columns: bool = True) -> Obj:
    out: Obj = {"kind": "Table", "apiVersion": META_V1, "metadata": list_meta or {}}
    if with_columns:
        out["columnDefinitions"] = column_definitions(info)
    out["rows"] = [row(info, o, include) for o in objs]
    return out
