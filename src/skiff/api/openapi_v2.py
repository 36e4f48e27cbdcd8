"""The OpenAPI v2 (Swagger 2.0) document served at ``/openapi/v2``.

kubectl reads OpenAPI v3 for almost everything, but falls back to v2 for
client-side schema validation: when the server cannot validate a kind itself
(``kind: List`` files, as ``kubectl get -o yaml`` writes them), ``kubectl
create|apply|replace -f`` with the default ``--validate=strict`` fetches::

    GET /openapi/v2
    Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf

decodes it as gnostic's ``openapi.v2.Document`` (see :mod:`skiff.api.gnostic`)
and checks every item of the List against the definition whose
``x-kubernetes-group-version-kind`` names the item's kind.  Unknown fields,
wrong types and missing required fields are reported with the definition
names, e.g. ``unknown field "foo" in io.k8s.api.apps.v1.DeploymentSpec``.
(``kubectl explain --output plaintext-openapiv2`` reads the same document.)

The document, built from the same type schema as the v3 documents::

    {"swagger": "2.0", "info": {...},
     "paths": {"/apis/apps/v1/namespaces/{namespace}/deployments/{name}":
                 {"patch": {...x-kubernetes-group-version-kind, fieldValidation...}}},
     "definitions": {"io.k8s.api.apps.v1.Deployment": {"type": "object",
                       "properties": {"spec": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"}},
                       "x-kubernetes-group-version-kind": [{"group": "apps", ...}]}, ...}}

* definitions: every type reachable from a served kind (and its List and
  subresource kinds), in v2 form: a property naming another type is a bare
  ``{"$ref": ...}`` (kubectl's v2 parser refuses anything beside a ``$ref``
  but extensions); Quantity is a string, IntOrString a string of format
  ``int-or-string``, Time a ``date-time`` string, RawExtension/FieldsV1 plain
  objects; a struct without fields is a plain object (any keys).
* paths: only the PATCH operation of each served resource, which is all
  kubectl reads from v2 paths (which patch types a kind takes, and whether it
  accepts ``fieldValidation``).

Content negotiation and caching follow kube-apiserver: JSON unless Accept
asks for protobuf (first matching Accept clause wins, 406 when none does), an
``ETag`` equal to the upper-case hex SHA-512 of the JSON bytes for both forms.
Documents are pure functions of their inputs and cached.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any, Iterable

import orjson

from .. import KUBERNETES_VERSION
from .gnostic import encode_document
from .openapi import Definitions, Dialect, Facts, OperationNamer, group_version_path, resource_facts
from .resource import ResourceInfo
from .schema import Schema

REF = "#/definitions/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
PROTOBUF_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
JSON_CONTENT_TYPE = "application/json"
# Accept media types that select each form (the "@" one is what client-go sends).
_PROTOBUF_SUBTYPES = ("com.github.proto-openapi.spec.v2@v1.0+protobuf",
                      "com.github.proto-openapi.spec.v2.v1.0+protobuf")
_PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml"]
_PRODUCES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]

Doc = dict[str, Any]

V2 = Dialect(ref_prefix=REF, quantity={"type": "string"},
             int_or_string={"type": "string", "format": "int-or-string"},
             wrap_refs=False, empty_properties=False)


# --------------------------------------------------------------------------- public


def openapi_v2_document(resources: Iterable[ResourceInfo],
                        schema: Schema) -> tuple[bytes, bytes, str]:
    """``(protobuf bytes, JSON bytes, etag)`` of the document for these resources.

    The etag is unquoted (an HTTP ``ETag`` header carries it in double quotes).
    Cached: repeated calls with the same resources cost a dictionary lookup.
    """
    return _serialized(resource_facts(resources), schema)


def openapi_v2(resources: Iterable[ResourceInfo], schema: Schema) -> Doc:
    """The document as a dict (shared and cached: do not mutate it)."""
    return _build(resource_facts(resources), schema)


def negotiate(accept: str) -> str | None:
    """The Content-Type to answer for an ``Accept`` header, or None for 406.

    Like kube-apiserver: clauses are tried in the order written (q-values are
    not weighed), ``*`` matches anything, an empty header means ``*/*``.
    """
    for clause in (accept or "*/*").split(","):
        media = clause.split(";", 1)[0].strip().lower()
        main, _, sub = media.partition("/")
        if main not in ("application", "*"):
            continue
        if sub in ("json", "*"):
            return JSON_CONTENT_TYPE
        if sub in _PROTOBUF_SUBTYPES:
            return PROTOBUF_CONTENT_TYPE
    return None


# --------------------------------------------------------------------------- caching


@lru_cache(maxsize=8)
def _serialized(facts: tuple[Facts, ...], schema: Schema) -> tuple[bytes, bytes, str]:
    doc = _build(facts, schema)
    body = orjson.dumps(doc)
    return encode_document(doc), body, hashlib.sha512(body).hexdigest().upper()


@lru_cache(maxsize=8)
def _build(facts: tuple[Facts, ...], schema: Schema) -> Doc:
    definitions = Definitions(schema, V2)
    paths: Doc = {}
    for fact in facts:
        group, version, kind, plural, namespaced, schema_type, verbs, subresources, _ = fact
        type_name = schema_type or _type_for(schema, group, version, kind)
        if type_name is None or schema.type(type_name) is None:
            continue  # a kind without a schema has nothing to validate against
        definitions.add(type_name)
        if schema.type(type_name + "List") is not None:
            definitions.add(type_name + "List")
        for sub in subresources:
            sub_type = _type_for(schema, sub.group or group, sub.version or version, sub.kind)
            if sub_type is not None:
                definitions.add(sub_type)
        if "patch" in verbs:
            path, item = _patch_path(fact, type_name, definitions)
            paths[path] = item
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": dict(sorted(paths.items())),
        "definitions": dict(sorted(definitions.defs.items())),
    }


def _type_for(schema: Schema, group: str, version: str, kind: str) -> str | None:
    typedef = schema.for_kind(group, version, kind)
    return typedef.name if typedef is not None else None


# --------------------------------------------------------------------------- paths


def _patch_path(fact: Facts, type_name: str, definitions: Definitions) -> tuple[str, Doc]:
    group, version, kind, plural, namespaced, _, _, _, _ = fact
    base = "/" + group_version_path(group, version)
    scoped = f"{base}/namespaces/{{namespace}}/{plural}" if namespaced else f"{base}/{plural}"
    item = definitions.ref(type_name)
    body = {"name": "body", "in": "body", "required": True, "schema": definitions.ref(f"{META}.Patch")}
    operation: Doc = {
        "consumes": list(_PATCH_TYPES),
        "produces": list(_PRODUCES),
        "schemes": ["https"],
        "operationId": OperationNamer(group, version, kind, namespaced).name("patch"),
        "parameters": [body, _query("dryRun"), _query("fieldManager"),
                       _query("fieldValidation"), _query("force", "boolean")],
        "responses": {"200": {"description": "OK", "schema": item},
                      "201": {"description": "Created", "schema": item},
                      "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": group, "kind": kind, "version": version},
    }
    parameters = [_path_param("name")]
    if namespaced:
        parameters.append(_path_param("namespace"))
    parameters.append(_query("pretty"))
    return f"{scoped}/{{name}}", {"patch": operation, "parameters": parameters}


def _query(name: str, type_: str = "string") -> Doc:
    return {"name": name, "in": "query", "type": type_, "uniqueItems": True}


def _path_param(name: str) -> Doc:
    return {"name": name, "in": "path", "required": True, "type": "string", "uniqueItems": True}
