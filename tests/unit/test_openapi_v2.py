"""OpenAPI v2 (/openapi/v2): the document, its gnostic protobuf form, and the real
kubectl validating ``kind: List`` files with it (client-side, as against a real cluster)."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest
import yaml
from aiohttp import web

from fake_kubectl_server import RESOURCES, FakeServer
from skiff.api.gnostic import encode_document
from skiff.api.openapi_v2 import (
    JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, negotiate, openapi_v2, openapi_v2_document,
)
from skiff.api.resource import ResourceInfo
from skiff.api.schema import Schema, builtin_schema

APPS = "io.k8s.api.apps.v1"
CORE = "io.k8s.api.core.v1"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
REF = "#/definitions/"
CLIENT_GO_ACCEPT = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"


@pytest.fixture(scope="module")
def schema() -> Schema:
    return builtin_schema()


@pytest.fixture(scope="module")
def doc(schema: Schema) -> dict[str, Any]:
    return openapi_v2(RESOURCES, schema)


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


# ------------------------------------------------------------------ the document


def test_kinds_are_found_by_their_group_version_kind(doc: dict[str, Any]) -> None:
    definitions = doc["definitions"]
    assert doc["swagger"] == "2.0"
    assert definitions[f"{APPS}.Deployment"]["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert definitions[f"{CORE}.ConfigMap"]["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "ConfigMap", "version": "v1"}]
    assert f"{APPS}.DeploymentList" in definitions  # List kinds of served resources
    assert "io.k8s.api.autoscaling.v1.Scale" in definitions  # subresource kinds
    assert "io.k8s.api.apps.v1.StatefulSet" not in definitions  # not served here
    assert list(definitions) == sorted(definitions)


def test_v2_schema_shapes(doc: dict[str, Any]) -> None:
    definitions = doc["definitions"]
    deployment = definitions[f"{APPS}.Deployment"]
    # a property naming a type is a bare $ref: kubectl's v2 parser rejects anything else
    assert deployment["properties"]["spec"] == {"$ref": f"{REF}{APPS}.DeploymentSpec"}
    spec = definitions[f"{APPS}.DeploymentSpec"]
    assert spec["required"] == ["selector", "template"]
    assert spec["properties"]["replicas"] == {"type": "integer", "format": "int32"}
    assert definitions[f"{CORE}.PodSpec"]["properties"]["containers"] == {
        "type": "array", "items": {"$ref": f"{REF}{CORE}.Container"},
        "x-kubernetes-list-map-keys": ["name"], "x-kubernetes-list-type": "map",
        "x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"}
    assert definitions[f"{CORE}.ConfigMap"]["properties"]["data"] == {
        "type": "object", "additionalProperties": {"type": "string"}}
    assert definitions["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {
        "type": "string", "format": "int-or-string"}
    assert definitions["io.k8s.apimachinery.pkg.api.resource.Quantity"] == {"type": "string"}
    assert definitions[f"{META}.Time"] == {"type": "string", "format": "date-time"}
    assert definitions[f"{META}.FieldsV1"] == {"type": "object"}
    volume = definitions[f"{CORE}.Volume"]["properties"]
    assert "configMap" in volume and "volumeSource" not in volume  # inlined structs flattened


def test_every_reference_resolves_and_structs_without_fields_take_any_keys(
        doc: dict[str, Any], schema: Schema) -> None:
    definitions = doc["definitions"]
    for ref in refs(doc):
        assert ref.startswith(REF) and ref[len(REF):] in definitions, ref
    for name, definition in definitions.items():
        if "properties" in definition:
            assert definition["properties"], name  # never an empty (closed) property set
    empty = [name for name in definitions
             if (t := schema.type(name)) is not None and not t.fields and t.special is None]
    assert empty  # e.g. meta.v1.Patch, which declares no fields
    for name in empty:
        assert definitions[name] == {"type": "object"}, name


def test_patch_operations_carry_kind_and_field_validation(doc: dict[str, Any]) -> None:
    item = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = item["patch"]
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps", "kind": "Deployment", "version": "v1"}
    assert "application/strategic-merge-patch+json" in patch["consumes"]
    assert {p["name"]: p["in"] for p in patch["parameters"]}["fieldValidation"] == "query"
    assert patch["responses"]["200"]["schema"] == {"$ref": f"{REF}{APPS}.Deployment"}
    assert [p["name"] for p in item["parameters"]] == ["name", "namespace", "pretty"]
    cluster = doc["paths"]["/api/v1/namespaces/{name}"]
    assert cluster["patch"]["operationId"] == "patchCoreV1Namespace"
    review = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews/{name}"
    assert review not in doc["paths"]  # create-only kinds have no PATCH


def test_serialized_forms_are_cached_and_tagged(schema: Schema) -> None:
    proto, body, etag = openapi_v2_document(RESOURCES, schema)
    assert openapi_v2_document(list(RESOURCES), schema)[0] is proto
    assert orjson.loads(body) == openapi_v2(RESOURCES, schema)
    assert etag == hashlib.sha512(body).hexdigest().upper()
    assert proto == encode_document(openapi_v2(RESOURCES, schema))
    more = RESOURCES + (ResourceInfo("apps", "v1", "StatefulSet", "statefulsets", "statefulset",
                                     True, f"{APPS}.StatefulSet"),)
    assert openapi_v2_document(more, schema)[2] != etag


@pytest.mark.parametrize(("accept", "expected"), [
    (CLIENT_GO_ACCEPT, PROTOBUF_CONTENT_TYPE),
    ("application/com.github.proto-openapi.spec.v2.v1.0+protobuf", PROTOBUF_CONTENT_TYPE),
    ("application/json", JSON_CONTENT_TYPE),
    ("", JSON_CONTENT_TYPE),
    ("*/*", JSON_CONTENT_TYPE),
    ("application/json, */*", JSON_CONTENT_TYPE),
    (f"{CLIENT_GO_ACCEPT}, application/json", PROTOBUF_CONTENT_TYPE),
    ("text/html", None),
    ("application/xml", None),
])
def test_negotiation_takes_the_first_matching_clause(accept: str, expected: str | None) -> None:
    assert negotiate(accept) == expected


# ------------------------------------------------------------------ gnostic protobuf


Wire = tuple[int, int, Any]


def wire_fields(data: bytes) -> list[Wire]:
    """(number, wire type, value) of each field; an independent reader for the checks."""
    out: list[Wire] = []
    pos = 0

    def varint() -> int:
        nonlocal pos
        value, shift = 0, 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            out.append((number, wire, varint()))
        elif wire == 1:
            out.append((number, wire, struct.unpack("<d", data[pos:pos + 8])[0]))
            pos += 8
        elif wire == 2:
            length = varint()
            out.append((number, wire, data[pos:pos + length]))
            pos += length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def values(data: bytes, number: int) -> list[Any]:
    return [v for n, _, v in wire_fields(data) if n == number]


def named(data: bytes, entry_number: int) -> dict[str, bytes]:
    """Repeated Named<X> {1: name, 2: value} entries at ``entry_number``."""
    out = {}
    for entry in values(data, entry_number):
        (name,), (value,) = values(entry, 1), values(entry, 2)
        out[name.decode()] = value
    return out


def test_document_field_numbers() -> None:
    assert encode_document({"swagger": "2.0"}) == b"\x0a\x032.0"
    data = encode_document({"swagger": "2.0", "info": {"title": "T", "version": "v9"},
                            "definitions": {"b": {"type": "string"}, "a": {}}})
    assert [n for n, _, _ in wire_fields(data)] == [1, 2, 9]
    (info,) = values(data, 2)
    assert values(info, 1) == [b"T"] and values(info, 2) == [b"v9"]
    (definitions,) = values(data, 9)
    assert list(named(definitions, 1)) == ["b", "a"]  # the document's order
    assert named(definitions, 1)["a"] == b""  # an empty schema is present, with no fields


def test_schema_fields_and_vendor_extensions() -> None:
    schema = {"$ref": "#/definitions/X"} | {"x-kubernetes-patch-strategy": "merge"}
    kind = {"type": "object", "required": ["spec"], "description": "d",
            "properties": {"spec": schema, "n": {"type": "integer", "format": "int64",
                                                 "minimum": -1.5, "maxLength": 3}},
            "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}]}
    data = encode_document({"definitions": {"io.k8s.api.core.v1.Pod": kind}})
    pod = named(values(data, 9)[0], 1)["io.k8s.api.core.v1.Pod"]
    assert [n for n, _, _ in wire_fields(pod)] == [4, 19, 22, 25, 31]  # number order
    assert values(pod, 4) == [b"d"]
    assert values(values(pod, 22)[0], 1) == [b"object"]  # TypeItem
    assert values(pod, 19) == [b"spec"]
    (extension,) = values(pod, 31)  # NamedAny {name, Any {2: yaml}}
    assert values(extension, 1) == [b"x-kubernetes-group-version-kind"]
    (any_value,) = values(extension, 2)
    assert yaml.safe_load(values(any_value, 2)[0]) == kind["x-kubernetes-group-version-kind"]
    properties = named(values(pod, 25)[0], 1)
    assert values(properties["spec"], 1) == [b"#/definitions/X"]
    (strategy,) = values(properties["spec"], 31)
    assert values(values(strategy, 2)[0], 2) == [b'"merge"']
    number = properties["n"]
    assert values(number, 9) == [-1.5] and values(number, 11) == [3]
    assert values(number, 2) == [b"int64"]


def test_items_additional_properties_and_negative_integers() -> None:
    data = encode_document({"definitions": {
        "m": {"type": "object", "additionalProperties": False},
        "a": {"type": "array", "items": {"type": "string"}, "minLength": -2}}})
    definitions = named(values(data, 9)[0], 1)
    (additional,) = values(definitions["m"], 21)
    assert wire_fields(additional) == [(2, 0, 0)]  # a oneof member: false is still written
    (items,) = values(definitions["a"], 23)
    (item,) = values(items, 1)  # ItemsItem {1: repeated Schema}
    assert values(values(item, 22)[0], 1) == [b"string"]
    assert values(definitions["a"], 12) == [(1 << 64) - 2]  # int64 two's complement


def test_paths_parameters_and_responses(doc: dict[str, Any]) -> None:
    data = encode_document(doc)
    paths = named(values(data, 8)[0], 2)  # Paths {2: NamedPathItem}
    item = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    (patch,) = values(item, 8)
    extensions = {values(e, 1)[0]: values(values(e, 2)[0], 2)[0] for e in values(patch, 13)}
    assert orjson.loads(extensions[b"x-kubernetes-group-version-kind"]) == {
        "group": "apps", "kind": "Deployment", "version": "v1"}
    parameters = values(patch, 8)  # ParametersItem {1: Parameter}
    body = values(values(parameters[0], 1)[0], 1)[0]  # Parameter {1: BodyParameter}
    assert values(body, 2) == [b"body"] and values(body, 4) == [1]
    query_names = []
    for p in parameters[1:]:
        non_body = values(values(p, 1)[0], 2)[0]  # Parameter {2: NonBodyParameter}
        query = values(non_body, 3)[0]  # NonBodyParameter {3: QueryParameterSubSchema}
        query_names.append(values(query, 4)[0])
    assert b"fieldValidation" in query_names
    first = values(item, 9)[0]  # PathItem.parameters: ParametersItem {1: Parameter}
    path_param = values(values(values(first, 1)[0], 2)[0], 4)[0]  # NonBodyParameter {4: path}
    assert values(path_param, 4) == [b"name"] and values(path_param, 1) == [1]
    responses = named(values(patch, 9)[0], 1)  # Responses {1: NamedResponseValue}
    ok = values(values(responses["200"], 1)[0], 2)[0]  # ResponseValue {1: Response}.schema
    schema = values(ok, 1)[0]  # SchemaItem {1: Schema}
    assert values(schema, 1) == [f"{REF}{APPS}.Deployment".encode()]


def test_unknown_keys_are_refused_not_dropped() -> None:
    with pytest.raises(ValueError, match="Schema has no field 'xml'"):
        encode_document({"definitions": {"a": {"xml": {"name": "x"}}}})
    with pytest.raises(ValueError, match="Document.swagger"):
        encode_document({"swagger": 2})


# ------------------------------------------------------------------ the real kubectl


@dataclass
class V2Server(FakeServer):
    """The test server of test_openapi.py, also answering /openapi/v2 like kube-apiserver."""

    v2_accepts: list[str] = field(default_factory=list)

    def _get(self, path: str, request: web.Request) -> web.StreamResponse:
        if path != "/openapi/v2":
            return super()._get(path, request)
        accept = request.headers.get("Accept", "")
        self.v2_accepts.append(accept)
        content_type = negotiate(accept)
        if content_type is None:
            return web.Response(status=406)
        proto, body, etag = openapi_v2_document(self.resources, builtin_schema())
        return web.Response(body=proto if content_type == PROTOBUF_CONTENT_TYPE else body,
                            headers={"Content-Type": content_type, "ETag": f'"{etag}"'})


LIST = """apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: settings}
  data: {mode: fast}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web}
  spec:
    replicas: 2
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}}
      spec:
        containers:
        - name: web
          image: nginx
          ports: [{containerPort: 80}]
          resources: {limits: {cpu: 1, memory: 64Mi}}
          livenessProbe: {httpGet: {path: /, port: 80}}
"""


async def test_kubectl_validates_a_list_against_v2_and_creates_it(tmp_path: Path) -> None:
    good = tmp_path / "list.yaml"
    good.write_text(LIST)
    async with V2Server() as server:
        _, out, _ = await server.kubectl("create", "-f", str(good))
        posts = [(w.path, w.query.get("fieldValidation")) for w in server.writes]
        accepts = list(server.v2_accepts)
    assert out.splitlines() == ["configmap/settings created", "deployment.apps/web created"]
    assert accepts == [CLIENT_GO_ACCEPT]
    assert [path for path, _ in posts] == ["/api/v1/namespaces/default/configmaps",
                                           "/apis/apps/v1/namespaces/default/deployments"]


async def test_kubectl_reports_list_items_like_a_real_cluster(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(LIST.replace("replicas: 2", 'replicas: "two"\n    paused2: true')
                   .replace("- name: web", "- nam: web"))
    async with V2Server() as server:
        code, _, err = await server.kubectl("create", "-f", str(bad), check=False)
        writes_after_refusal = len(server.writes)
        _, out, _ = await server.kubectl("create", "-f", str(bad), "--validate=false")
        ignored = [w.query.get("fieldValidation") for w in server.writes]
    assert code == 1
    assert err.strip() == (
        f'error: error validating "{bad}": error validating data: ['
        'ValidationError(Deployment.spec): unknown field "paused2" in '
        'io.k8s.api.apps.v1.DeploymentSpec, '
        'ValidationError(Deployment.spec.replicas): invalid type for '
        'io.k8s.api.apps.v1.DeploymentSpec.replicas: got "string", expected "integer", '
        'ValidationError(Deployment.spec.template.spec.containers[0]): unknown field "nam" '
        'in io.k8s.api.core.v1.Container, '
        'ValidationError(Deployment.spec.template.spec.containers[0]): missing required '
        'field "name" in io.k8s.api.core.v1.Container]; '
        'if you choose to ignore these errors, turn validation off with --validate=false')
    assert writes_after_refusal == 0
    assert out.splitlines() == ["configmap/settings created", "deployment.apps/web created"]
    assert ignored == ["Ignore", "Ignore"]


async def test_kubectl_explain_reads_the_v2_document() -> None:
    async with V2Server() as server:
        _, out, _ = await server.kubectl("explain", "--output", "plaintext-openapiv2",
                                         "deployment.spec.template.spec.containers")
    assert "KIND:     Deployment\nVERSION:  apps/v1" in out
    assert "RESOURCE: containers <[]Object>" in out
    assert "name\t<string> -required-" in out
    assert "ports\t<[]Object>" in out
