"""OpenAPI v3 documents generated from the type schema (``/openapi/v3``).

kubectl reads them for two things:

* ``kubectl apply`` (``--validate=strict``, the default) downloads the document
  of the object's group-version and looks for the PATCH operation tagged with
  the kind's ``x-kubernetes-group-version-kind``; when it lists a
  ``fieldValidation`` query parameter kubectl leaves validation to the server
  and sends ``?fieldValidation=Strict``.
* ``kubectl explain`` finds the schema carrying that ``x-kubernetes-group-version-kind``
  in ``components.schemas`` and walks its ``properties`` / ``$ref`` links.

Layout, as kube-apiserver serves it::

    GET /openapi/v3                 {"paths": {"apis/apps/v1": {"serverRelativeURL":
                                      "/openapi/v3/apis/apps/v1?hash=<H>"}, ...}}
    GET /openapi/v3/apis/apps/v1    {"openapi": "3.0.0", "info": ..., "paths": {...},
                                     "components": {"schemas": {"io.k8s.api.apps.v1.Deployment": ...}}}

Schemas are named by Go package (``io.k8s.api.core.v1.Pod``); a property that
names another type is ``{"allOf": [{"$ref": "#/components/schemas/<name>"}]}``;
inlined structs (``Volume`` + ``VolumeSource``) are flattened; special types
take their JSON form (Time: string/date-time, Quantity: string or number,
IntOrString: integer or string with ``x-kubernetes-int-or-string``).
No descriptions are carried.  ``<H>`` is the upper-case hex SHA-512 of the
document's bytes.  Documents are pure functions of their inputs and cached.

The walk from a kind to every type it reaches (:class:`Definitions`) is shared
with the v2 document (.openapi_v2); where the two versions write a type
differently is a :class:`Dialect`.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable

import orjson

from .. import KUBERNETES_VERSION
from .resource import ResourceInfo, Subresource
from .schema import FieldDef, Schema, TypeDef, builtin_schema
from .schema_load import json_fields

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
REF = "#/components/schemas/"
JSON_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json",
               "application/merge-patch+json", "application/strategic-merge-patch+json")

Doc = dict[str, Any]

# A hashable description of one served resource:
# (group, version, kind, plural, namespaced, schema_type, verbs, subresources, custom schema)
# -- the last is a custom resource's openAPIV3Schema as JSON text ("" for built-in kinds)
Facts = tuple[str, str, str, str, bool, str, tuple[str, ...], tuple[Subresource, ...], str]


# --------------------------------------------------------------------------- public


def openapi_v3_index(resources: Iterable[ResourceInfo], schema: Schema | None = None) -> Doc:
    """The ``/openapi/v3`` index: one entry per served group-version."""
    schema = schema or builtin_schema()
    resources = list(resources)
    paths: Doc = {}
    for group, version in sorted({(r.group, r.version) for r in resources},
                                 key=lambda gv: (gv[0] != "", gv)):
        _, digest = openapi_v3_document(group, version, resources, schema)
        path = group_version_path(group, version)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def openapi_v3_group_version(group: str, version: str, resources: Iterable[ResourceInfo],
                             schema: Schema) -> Doc:
    """The document of one group-version (shared and cached: do not mutate it)."""
    return _build(_facts(group, version, resources), schema)


def openapi_v3_document(group: str, version: str, resources: Iterable[ResourceInfo],
                        schema: Schema) -> tuple[bytes, str]:
    """The group-version document as JSON bytes, and its hash (for ``?hash=`` / ETag)."""
    return _serialized(_facts(group, version, resources), schema)


def group_version_path(group: str, version: str) -> str:
    """``api/v1`` for the core group, ``apis/<group>/<version>`` otherwise."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def custom_type_name(group: str, version: str, kind: str) -> str:
    """``stable.example.com``, ``v1``, ``CronTab`` -> ``com.example.stable.v1.CronTab``."""
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


# --------------------------------------------------------------------------- caching


def resource_facts(resources: Iterable[ResourceInfo]) -> tuple[Facts, ...]:
    """What a document depends on, as a hashable key (ResourceInfo holds functions)."""
    return tuple(sorted(
        (r.group, r.version, r.kind, r.plural, r.namespaced, r.schema_type, tuple(r.verbs),
         tuple(r.subresources), r.openapi_schema)
        for r in resources))


def _facts(group: str, version: str, resources: Iterable[ResourceInfo]) -> tuple[Facts, ...]:
    return resource_facts(r for r in resources if r.group == group and r.version == version)


@lru_cache(maxsize=128)
def _serialized(facts: tuple[Facts, ...], schema: Schema) -> tuple[bytes, str]:
    body = orjson.dumps(_build(facts, schema), option=orjson.OPT_SORT_KEYS)
    return body, hashlib.sha512(body).hexdigest().upper()


@lru_cache(maxsize=128)
def _build(facts: tuple[Facts, ...], schema: Schema) -> Doc:
    builder = _Builder(schema)
    paths: Doc = {}
    for fact in facts:
        paths.update(builder.resource_paths(fact))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": paths,
        "components": {"schemas": builder.definitions.defs},
    }


# --------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class Dialect:
    """Where OpenAPI v3 and v2 (Swagger) write the same type differently."""

    ref_prefix: str          # where named schemas live: "#/components/schemas/", "#/definitions/"
    quantity: Doc            # resource.Quantity (a string, or in v3 also a number)
    int_or_string: Doc       # intstr.IntOrString
    wrap_refs: bool          # a property naming a type is {"allOf": [{"$ref": ...}]} (v3)
    empty_properties: bool   # a struct without fields still has "properties": {} (v3)


V3 = Dialect(ref_prefix=REF, quantity={"oneOf": [{"type": "string"}, {"type": "number"}]},
             int_or_string={"format": "int-or-string",
                            "oneOf": [{"type": "integer"}, {"type": "string"}],
                            "x-kubernetes-int-or-string": True},
             wrap_refs=True, empty_properties=True)


class Definitions:
    """The schema of every type reachable from the added ones (``defs``, by type name)."""

    def __init__(self, schema: Schema, dialect: Dialect) -> None:
        self.schema = schema
        self.dialect = dialect
        self.defs: Doc = {}

    def ref(self, type_name: str) -> Doc:
        """A reference to ``type_name``'s schema (added, with what it reaches, if new)."""
        self.add(type_name)
        return {"$ref": self.dialect.ref_prefix + type_name}

    def add(self, type_name: str) -> None:
        if type_name in self.defs:
            return
        self.defs[type_name] = {}  # placeholder: types may refer to themselves
        typedef = self.schema.type(type_name)
        self.defs[type_name] = (self.type_schema(typedef) if typedef is not None
                                else {"type": "object"})

    def add_custom(self, group: str, version: str, kind: str, schema_json: str) -> str:
        """A custom kind's schema (its CRD's ``openAPIV3Schema``) and its list's, named as
        Kubernetes names them (``com.example.stable.v1.CronTab``); returns the item's name."""
        name = custom_type_name(group, version, kind)
        if name in self.defs:
            return name
        item: Doc = orjson.loads(schema_json) or {"type": "object"}
        properties = item.setdefault("properties", {})
        properties["apiVersion"] = {"type": "string"}
        properties["kind"] = {"type": "string"}
        properties["metadata"] = self._wrapped(self.ref(f"{META}.ObjectMeta"))
        item.setdefault("type", "object")
        item["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
        self.defs[name] = item
        self.defs[name + "List"] = {
            "type": "object", "required": ["items"],
            "properties": {"apiVersion": {"type": "string"},
                           "items": {"type": "array", "items": self.ref(name)},
                           "kind": {"type": "string"},
                           "metadata": self._wrapped(self.ref(f"{META}.ListMeta"))},
            "x-kubernetes-group-version-kind": [{"group": group, "kind": kind + "List", "version": version}],
        }
        return name

    def _wrapped(self, ref: Doc) -> Doc:
        return {"allOf": [ref]} if self.dialect.wrap_refs else ref

    def type_schema(self, typedef: TypeDef) -> Doc:
        special = self.special_schema(typedef)
        if special is not None:
            return special
        properties: Doc = {}
        required: list[str] = []
        for name, f in sorted(json_fields(self.schema, typedef).items()):
            properties[name] = self.property(f)
            if f.required:
                required.append(name)
        out: Doc = {"type": "object"}
        if properties or self.dialect.empty_properties:  # none at all: any keys are allowed
            out["properties"] = properties
        if required:
            out["required"] = required
        if typedef.gvk is not None:
            group, version, kind = typedef.gvk
            out["x-kubernetes-group-version-kind"] = [
                {"group": group, "kind": kind, "version": version}]
        return out

    def property(self, f: FieldDef) -> Doc:
        if f.map_value is not None:
            out: Doc = {"type": "object", "additionalProperties": self.value(f.map_value)}
        elif f.repeated:
            out = {"type": "array", "items": self.value(f.type)}
        else:
            out = self.value(f.type)
            if "$ref" in out and self.dialect.wrap_refs:
                out = {"allOf": [out]}
        if f.list_map_keys:
            out["x-kubernetes-list-map-keys"] = list(f.list_map_keys)
        if f.list_type:
            out["x-kubernetes-list-type"] = f.list_type
        if f.patch_merge_key:
            out["x-kubernetes-patch-merge-key"] = f.patch_merge_key
        if f.patch_strategy:
            out["x-kubernetes-patch-strategy"] = f.patch_strategy
        return out

    def value(self, type_name: str) -> Doc:
        scalar = _SCALAR_SCHEMAS.get(type_name)
        if scalar is not None:
            return dict(scalar)
        typedef = self.schema.type(type_name)
        if typedef is not None and typedef.special == "list":
            return self.special_schema(typedef) or {}  # named slices are plain arrays in OpenAPI
        return self.ref(type_name)

    def special_schema(self, typedef: TypeDef) -> Doc | None:
        """The JSON form of a type with its own encoding (Time, Quantity...), else None."""
        special = typedef.special
        if special in ("time", "microtime"):
            return {"type": "string", "format": "date-time"}
        if special == "duration":
            return {"type": "string"}
        if special == "quantity":
            return copy.deepcopy(self.dialect.quantity)
        if special == "intorstring":
            return copy.deepcopy(self.dialect.int_or_string)
        if special in ("raw", "fieldsv1"):
            return {"type": "object"}
        if special == "list":
            items = typedef.fields["items"]
            return {"type": "array", "items": dict(_SCALAR_SCHEMAS.get(items.type, {"type": "object"}))}
        return None


_SCALAR_SCHEMAS: dict[str, Doc] = {
    "string": {"type": "string"},
    "bytes": {"type": "string", "format": "byte"},
    "bool": {"type": "boolean"},
    "int32": {"type": "integer", "format": "int32"},
    "int64": {"type": "integer", "format": "int64"},
    "double": {"type": "number", "format": "double"},
    "float": {"type": "number", "format": "float"},
}


# --------------------------------------------------------------------------- paths


class _Builder:
    """The paths of a group-version's resources, and the schemas they mention."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.definitions = Definitions(schema, V3)

    def ref(self, type_name: str) -> Doc:
        return self.definitions.ref(type_name)

    def resource_paths(self, fact: Facts) -> Doc:
        group, version, kind, plural, namespaced, schema_type, verbs, subresources, custom = fact
        gvk = {"group": group, "kind": kind, "version": version}
        if custom:
            type_name = self.definitions.add_custom(group, version, kind, custom)
        else:
            type_name = schema_type or self._type_for(group, version, kind)
        item = self.ref(type_name)
        list_type = type_name + "List"
        listing = (self.ref(list_type) if self.schema.type(list_type) or list_type in self.definitions.defs
                   else {"type": "object"})
        base = "/" + group_version_path(group, version)
        scope = f"{base}/namespaces/{{namespace}}/{plural}" if namespaced else f"{base}/{plural}"
        op = OperationNamer(group, version, kind, namespaced)
        scope_params = [_NAMESPACE] if namespaced else []
        paths: Doc = {}

        collection: Doc = {"parameters": scope_params + [_PRETTY]}
        if "list" in verbs:
            collection["get"] = self.operation(op.name("list"), "list", gvk, _LIST_QUERY, None,
                                               listing)
        if "create" in verbs:
            collection["post"] = self.operation(op.name("create"), "post", gvk, _WRITE_QUERY,
                                                item, item, extra_codes=("201", "202"))
        if "deletecollection" in verbs:
            collection["delete"] = self.operation(op.name("deletecollection"), "deletecollection",
                                                  gvk, _LIST_QUERY, self.ref(f"{META}.DeleteOptions"),
                                                  self.ref(f"{META}.Status"))
        if len(collection) > 1:
            paths[scope] = collection

        named: Doc = {"parameters": [_NAME] + scope_params + [_PRETTY]}
        if "get" in verbs:
            named["get"] = self.operation(op.name("read"), "get", gvk, [], None, item)
        if "update" in verbs:
            named["put"] = self.operation(op.name("replace"), "put", gvk, _WRITE_QUERY, item, item,
                                          extra_codes=("201",))
        if "patch" in verbs:
            named["patch"] = self.patch_operation(op.name("patch"), gvk, item)
        if "delete" in verbs:
            named["delete"] = self.operation(op.name("delete"), "delete", gvk, _DELETE_QUERY,
                                             self.ref(f"{META}.DeleteOptions"),
                                             self.ref(f"{META}.Status"), extra_codes=("202",))
        if len(named) > 1:
            paths[f"{scope}/{{name}}"] = named

        for sub in subresources:
            paths[f"{scope}/{{name}}/{sub.name}"] = self.subresource_path(
                fact, sub, op, [_NAME] + scope_params + [_PRETTY])
        if namespaced and "list" in verbs:
            paths[f"{base}/{plural}"] = {
                "parameters": [_PRETTY],
                "get": self.operation(op.name("list", all_namespaces=True), "list", gvk,
                                      _LIST_QUERY, None, listing)}
        return paths

    def subresource_path(self, fact: Facts, sub: Subresource, op: "OperationNamer",
                         params: list[Doc]) -> Doc:
        group, version = fact[0], fact[1]
        sub_group = sub.group or group
        sub_version = sub.version or version
        gvk = {"group": sub_group, "kind": sub.kind, "version": sub_version}
        if fact[8] and (sub_group, sub_version, sub.kind) == (group, version, fact[2]):
            type_name = custom_type_name(group, version, sub.kind)  # a custom kind's status
        else:
            type_name = self._type_for(sub_group, sub_version, sub.kind)
        body = (self.ref(type_name) if self.schema.type(type_name) or type_name in self.definitions.defs
                else {"type": "object"})
        suffix = sub.name.capitalize()
        path: Doc = {"parameters": params}
        if "get" in sub.verbs:
            path["get"] = self.operation(op.name("read", suffix), "get", gvk, [], None, body)
        if "update" in sub.verbs:
            path["put"] = self.operation(op.name("replace", suffix), "put", gvk, _WRITE_QUERY,
                                         body, body, extra_codes=("201",))
        if "patch" in sub.verbs:
            path["patch"] = self.patch_operation(op.name("patch", suffix), gvk, body)
        if "create" in sub.verbs:
            path["post"] = self.operation(op.name("create", suffix), "post", gvk, _WRITE_QUERY,
                                          body, body, extra_codes=("201", "202"))
        return path

    def operation(self, operation_id: str, action: str, gvk: Doc, query: list[Doc],
                  request: Doc | None, response: Doc, extra_codes: tuple[str, ...] = ()) -> Doc:
        media = {t: {"schema": response} for t in JSON_TYPES}
        responses: Doc = {"200": {"description": "OK", "content": media}}
        for code in extra_codes:
            responses[code] = {"description": _CODE_TEXT[code], "content": media}
        responses["401"] = {"description": "Unauthorized"}
        out: Doc = {"operationId": operation_id, "parameters": list(query),
                    "responses": responses, "x-kubernetes-action": action,
                    "x-kubernetes-group-version-kind": gvk}
        if request is not None:
            out["requestBody"] = {"content": {"*/*": {"schema": request}}, "required": True}
        return out

    def patch_operation(self, operation_id: str, gvk: Doc, item: Doc) -> Doc:
        out = self.operation(operation_id, "patch", gvk, _PATCH_QUERY, None, item,
                             extra_codes=("201",))
        patch = self.ref(f"{META}.Patch")
        out["requestBody"] = {"content": {t: {"schema": patch} for t in PATCH_TYPES},
                              "required": True}
        return out

    def _type_for(self, group: str, version: str, kind: str) -> str:
        typedef = self.schema.for_kind(group, version, kind)
        return typedef.name if typedef is not None else f"{group}.{version}.{kind}"


# --------------------------------------------------------------------------- parameters


def _query(name: str, type_: str = "string") -> Doc:
    return {"name": name, "in": "query", "schema": {"type": type_, "uniqueItems": True}}


_NAME = {"name": "name", "in": "path", "required": True,
         "schema": {"type": "string", "uniqueItems": True}}
_NAMESPACE = {"name": "namespace", "in": "path", "required": True,
              "schema": {"type": "string", "uniqueItems": True}}
_PRETTY = _query("pretty")
_WRITE_QUERY = [_query("dryRun"), _query("fieldManager"), _query("fieldValidation")]
_PATCH_QUERY = _WRITE_QUERY + [_query("force", "boolean")]
_DELETE_QUERY = [_query("dryRun"), _query("gracePeriodSeconds", "integer"),
                 _query("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean"),
                 _query("orphanDependents", "boolean"), _query("propagationPolicy")]
_LIST_QUERY = [_query("allowWatchBookmarks", "boolean"), _query("continue"),
               _query("fieldSelector"), _query("labelSelector"), _query("limit", "integer"),
               _query("resourceVersion"), _query("resourceVersionMatch"),
               _query("sendInitialEvents", "boolean"), _query("timeoutSeconds", "integer"),
               _query("watch", "boolean")]
_CODE_TEXT = {"201": "Created", "202": "Accepted"}


class OperationNamer:
    """Kubernetes' operation ids: ``patchAppsV1NamespacedDeployment``,
    ``listCoreV1PodForAllNamespaces``, ``readAppsV1NamespacedDeploymentScale``."""

    def __init__(self, group: str, version: str, kind: str, namespaced: bool) -> None:
        words = (group.removesuffix(".k8s.io").split(".") if group else ["core"])
        self.gv = "".join(w.capitalize() for w in words) + version.capitalize()
        self.kind = kind
        self.namespaced = namespaced

    def name(self, verb: str, suffix: str = "", all_namespaces: bool = False) -> str:
        if verb == "deletecollection":
            return f"delete{self.gv}Collection{self._scoped()}"
        if all_namespaces:
            return f"{verb}{self.gv}{self.kind}ForAllNamespaces"
        return f"{verb}{self.gv}{self._scoped()}{suffix}"

    def _scoped(self) -> str:
        return f"Namespaced{self.kind}" if self.namespaced else self.kind
