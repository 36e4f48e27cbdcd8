"""A CustomResourceDefinition, read as the :class:`ResourceInfo` records the API serves.

One record per served version, built only from the definition (pure; no I/O)::

    served_resources(crd) -> [ResourceInfo(group, "v1", kind, plural, ...), ...]

Each record carries the kind's behaviour as functions, like a built-in kind's:

* ``prune``     drops fields the version's ``openAPIV3Schema`` does not specify
                (reported as unknown fields: ``fieldValidation`` Strict/Warn/Ignore)
* ``default``   fills the schema's ``default`` values
* ``validate``  ObjectMeta plus the schema (types, formats, enum, bounds, patterns ...)
* ``columns`` / ``row``  ``additionalPrinterColumns`` (JSONPath cells; an ``Age``
                column when none are given), after the ``Name`` column
* ``field_labels``  ``selectableFields`` (``kubectl get -l ... --field-selector spec.color=red``)
* ``has_status`` / ``scale``  the ``status`` and ``scale`` subresources

Names come from ``status.acceptedNames`` (the names the server accepted, which
may lag ``spec.names``).  Objects of every version are stored in the storage
version; :func:`storage_conversions` says how to turn them into each served
version (strategy ``None``: only ``apiVersion`` changes, as in Kubernetes).
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Callable

import orjson

from ...api.errors import Cause
from ...api.jsonpath import JsonPath, column_value, compile_path
from ...api.kinds import meta as m
from ...api.kinds.apiextensions import structural
from ...api.resource import Column, ResourceInfo, ScalePaths, Subresource

Obj = dict[str, Any]

#: the column Kubernetes shows for a version without additionalPrinterColumns
DEFAULT_PRINTER_COLUMNS: tuple[Obj, ...] = (
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},)


def accepted_names(crd: Obj) -> Obj:
    status_names = (crd.get("status") or {}).get("acceptedNames") or {}
    if status_names.get("plural") and status_names.get("kind"):
        return dict(status_names)
    return dict((crd.get("spec") or {}).get("names") or {})


def storage_version(crd: Obj) -> str:
    for version in (crd.get("spec") or {}).get("versions") or []:
        if version.get("storage"):
            return str(version.get("name", ""))
    return ""


def served_resources(crd: Obj) -> list[ResourceInfo]:
    """The ResourceInfo of every served version of ``crd`` (in the definition's order)."""
    spec = crd.get("spec") or {}
    names = accepted_names(crd)
    out: list[ResourceInfo] = []
    for version in spec.get("versions") or []:
        if version.get("served"):
            out.append(_version_resource(spec, names, version))
    return out


def _version_resource(spec: Obj, names: Obj, version: Obj) -> ResourceInfo:
    group, kind = str(spec.get("group", "")), str(names.get("kind", ""))
    namespaced = spec.get("scope") == "Namespaced"
    schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}
    subresources = version.get("subresources") or {}
    has_status = "status" in subresources
    scale_spec = subresources.get("scale")
    served_subresources: list[Subresource] = []
    if has_status:
        served_subresources.append(Subresource("status", kind))
    scale = None
    if scale_spec is not None:
        served_subresources.append(Subresource("scale", "Scale", group="autoscaling", version="v1"))
        scale = ScalePaths(spec_replicas=_dotted(scale_spec.get("specReplicasPath", "")),
                           status_replicas=_dotted(scale_spec.get("statusReplicasPath", "")),
                           label_selector=_dotted(scale_spec.get("labelSelectorPath", "")))
    printer = version.get("additionalPrinterColumns") or list(DEFAULT_PRINTER_COLUMNS)
    selectable = {str(f.get("jsonPath", "")).lstrip("."): _field_label(str(f.get("jsonPath", "")))
                  for f in version.get("selectableFields") or [] if f.get("jsonPath")}
    columns, row = _table(printer)
    return ResourceInfo(
        group=group, version=str(version.get("name", "")), kind=kind,
        plural=str(names.get("plural", "")), singular=str(names.get("singular", "") or kind.lower()),
        namespaced=namespaced, short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        subresources=tuple(served_subresources), has_status=has_status, scale=scale,
        columns=columns, row=row, field_labels=selectable,
        prepare_create=_drop_status if has_status else _keep,
        prune=_pruner(schema), default=_defaulter(schema), validate=_validator(schema, namespaced),
        openapi_schema=orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode(),
    )


def _dotted(json_path: str) -> str:
    """``.spec.replicas`` -> ``spec.replicas`` (scale paths are simple field paths)."""
    return json_path[1:] if json_path.startswith(".") else json_path


def _field_label(json_path: str) -> Callable[[Obj], str]:
    """A ``selectableFields`` entry as a field-selector label: the value as text ("" when unset)."""
    try:
        compiled: JsonPath | None = compile_path(json_path)
    except ValueError:
        compiled = None

    def value(obj: Obj) -> str:
        try:
            found = compiled.find(obj) if compiled is not None else []
        except ValueError:  # JsonPathError: e.g. an index past the end
            found = []
        if not found or found[0] is None:
            return ""
        first = found[0]
        return ("true" if first else "false") if isinstance(first, bool) else str(first)
    return value


def _drop_status(obj: Obj) -> None:  # with a status subresource, a create sets no status
    obj.pop("status", None)


def _keep(obj: Obj) -> None:
    return None


def _pruner(schema: Obj) -> Callable[[Obj], list[str]]:
    def prune(obj: Obj) -> list[str]:
        return [p[1:] if p.startswith(".") else p for p in structural.prune(schema, obj)]
    return prune


def _defaulter(schema: Obj) -> Callable[[Obj], None]:
    def default(obj: Obj) -> None:
        structural.apply_defaults(schema, obj)
    return default


def _validator(schema: Obj, namespaced: bool) -> Callable[[Obj, Obj | None], list[Cause]]:
    def validate(obj: Obj, old: Obj | None) -> list[Cause]:
        if old is None:
            causes = m.validate_object_meta(obj.get("metadata"), namespaced)
        else:
            causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        return causes + structural.validate(schema, obj)
    return validate


def _table(printer: list[Obj]) -> tuple[tuple[Column, ...], Callable[..., list[Any]]]:
    columns = [m.NAME_COLUMN]
    cells: list[tuple[str, JsonPath | None]] = []
    for col in printer:
        json_path = str(col.get("jsonPath", ""))
        try:
            compiled: JsonPath | None = compile_path(json_path)
        except ValueError:
            compiled = None
        columns.append(Column(str(col.get("name", "")), type=str(col.get("type", "string")),
                              format=str(col.get("format", "")),
                              description=str(col.get("description") or
                                              f"Custom resource definition column (in JSONPath format): "
                                              f"{json_path}"),
                              priority=int(col.get("priority", 0) or 0)))
        cells.append((str(col.get("type", "string")), compiled))

    def row(obj: Obj, now: datetime | None = None) -> list[Any]:
        out: list[Any] = [m.object_name(obj)]
        for type_, compiled in cells:
            if compiled is None:
                out.append(None)
                continue
            out.append(column_value(compiled, obj, type_, now))
        return out
    return tuple(columns), row


def storage_conversions(crd: Obj, served: ResourceInfo) -> tuple[Callable[[Obj], Obj], Callable[[Obj], Obj]]:
    """(to storage, from storage) for objects of ``served`` (strategy None: the apiVersion)."""
    group = served.group
    stored_api_version = f"{group}/{storage_version(crd)}"

    def to_storage(obj: Obj) -> Obj:
        out = copy.copy(obj)
        out["apiVersion"] = stored_api_version
        return out

    def from_storage(obj: Obj) -> Obj:
        out = copy.copy(obj)
        out["apiVersion"] = served.api_version
        return out
    return to_storage, from_storage
