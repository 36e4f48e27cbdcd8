"""OpenAPI v3 documents, checked by shape and by the real kubectl (explain, apply)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

from fake_kubectl_server import RESOURCES, FakeServer
from skiff.api.openapi import (
    openapi_v3_document, openapi_v3_group_version, openapi_v3_index,
)
from skiff.api.resource import ResourceInfo
from skiff.api.schema import Schema, builtin_schema

APPS = "io.k8s.api.apps.v1"
CORE = "io.k8s.api.core.v1"
REF = "#/components/schemas/"


@pytest.fixture(scope="module")
def schema() -> Schema:
    return builtin_schema()


@pytest.fixture(scope="module")
def apps(schema: Schema) -> dict[str, Any]:
    return openapi_v3_group_version("apps", "v1", RESOURCES, schema)


@pytest.fixture(scope="module")
def core(schema: Schema) -> dict[str, Any]:
    return openapi_v3_group_version("", "v1", RESOURCES, schema)


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


def test_index_lists_each_group_version_with_its_hash(schema: Schema) -> None:
    index = openapi_v3_index(RESOURCES, schema)
    assert list(index["paths"])[:2] == ["api/v1", "apis/apps/v1"]
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    body, digest = openapi_v3_document("apps", "v1", RESOURCES, schema)
    assert url == f"/openapi/v3/apis/apps/v1?hash={digest}"
    assert digest == hashlib.sha512(body).hexdigest().upper()
    assert orjson.loads(body) == openapi_v3_group_version("apps", "v1", RESOURCES, schema)


def test_documents_are_cached_and_change_with_their_inputs(schema: Schema) -> None:
    first = openapi_v3_group_version("apps", "v1", RESOURCES, schema)
    assert openapi_v3_group_version("apps", "v1", list(RESOURCES), schema) is first
    _, digest = openapi_v3_document("apps", "v1", RESOURCES, schema)
    more = RESOURCES + (ResourceInfo("apps", "v1", "StatefulSet", "statefulsets", "statefulset",
                                     True, f"{APPS}.StatefulSet"),)
    _, other = openapi_v3_document("apps", "v1", more, schema)
    assert other != digest
    assert f"{APPS}.StatefulSet" in openapi_v3_group_version("apps", "v1", more, schema)[
        "components"]["schemas"]


def test_every_reference_resolves(apps: dict[str, Any], core: dict[str, Any]) -> None:
    for doc in (apps, core):
        schemas = doc["components"]["schemas"]
        for ref in refs(doc):
            assert ref.startswith(REF) and ref[len(REF):] in schemas, ref


def test_kind_schema_and_merge_extensions(apps: dict[str, Any]) -> None:
    schemas = apps["components"]["schemas"]
    deployment = schemas[f"{APPS}.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deployment["properties"]["spec"] == {"allOf": [{"$ref": f"{REF}{APPS}.DeploymentSpec"}]}
    spec = schemas[f"{APPS}.DeploymentSpec"]
    assert spec["required"] == ["selector", "template"]
    assert spec["properties"]["replicas"] == {"type": "integer", "format": "int32"}
    containers = schemas[f"{CORE}.PodSpec"]["properties"]["containers"]
    assert containers == {
        "type": "array", "items": {"$ref": f"{REF}{CORE}.Container"},
        "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name",
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}
    ports = schemas[f"{CORE}.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]


def test_special_types_and_inlined_structs(apps: dict[str, Any]) -> None:
    schemas = apps["components"]["schemas"]
    int_or_string = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert int_or_string["x-kubernetes-int-or-string"] is True
    assert int_or_string["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"] == {
        "type": "string", "format": "date-time"}
    assert schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]["oneOf"][0] == {"type": "string"}
    limits = schemas[f"{CORE}.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"] == {
        "$ref": f"{REF}io.k8s.apimachinery.pkg.api.resource.Quantity"}
    volume = schemas[f"{CORE}.Volume"]["properties"]
    assert "configMap" in volume and "volumeSource" not in volume
    probe = schemas[f"{CORE}.Probe"]["properties"]
    assert "httpGet" in probe and "handler" not in probe


def test_patch_operations_invite_server_side_validation(apps: dict[str, Any]) -> None:
    item = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]
    patch = item["patch"]
    assert patch["operationId"] == "patchAppsV1NamespacedDeployment"
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "apps", "kind": "Deployment", "version": "v1"}
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    scale = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["patch"]["x-kubernetes-group-version-kind"]["group"] == "autoscaling"
    assert "get" in apps["paths"]["/apis/apps/v1/deployments"]


def test_cluster_scoped_paths(core: dict[str, Any]) -> None:
    assert "/api/v1/namespaces/{name}" in core["paths"]
    assert core["paths"]["/api/v1/namespaces"]["post"]["operationId"] == "createCoreV1Namespace"
    eviction = core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]
    assert eviction["operationId"] == "createCoreV1NamespacedPodEviction"


# ------------------------------------------------------------------ the real kubectl


async def test_kubectl_explain_uses_the_documents() -> None:
    async with FakeServer() as server:
        _, spec, _ = await server.kubectl("explain", "deployment.spec")
        _, containers, _ = await server.kubectl("explain", "pods.spec.containers")
        _, surge, _ = await server.kubectl("explain", "deploy.spec.strategy.rollingUpdate.maxSurge")
    assert "GROUP:      apps\nKIND:       Deployment\nVERSION:    v1" in spec
    assert "FIELD: spec <DeploymentSpec>" in spec
    assert "selector\t<LabelSelector> -required-" in spec
    assert "replicas\t<integer>\n" in spec
    assert "FIELD: containers <[]Container>" in containers
    assert "name\t<string> -required-" in containers
    assert "ports\t<[]ContainerPort>" in containers
    assert "FIELD: maxSurge <IntOrString>" in surge


async def test_kubectl_apply_validates_on_the_server(tmp_path: Path) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
        "spec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n"
        "  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: web, image: nginx}]}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(manifest.read_text().replace("replicas:", "replicasx:"))
    async with FakeServer() as server:
        _, out, _ = await server.kubectl("apply", "-f", str(manifest))
        code, _, err = await server.kubectl("apply", "-f", str(bad), check=False)
        posts = [w for w in server.writes if w.method == "POST"]
    assert out.strip() == "deployment.apps/web created"
    assert posts[0].query["fieldValidation"] == "Strict"
    assert posts[0].content_type == "application/json"
    assert code == 1
    assert err.strip() == (
        f'Error from server (BadRequest): error when creating "{bad}": Deployment in version '
        '"v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replicasx"')


def test_named_slices_are_plain_arrays(schema: Schema) -> None:
    review = ResourceInfo("authorization.k8s.io", "v1", "SubjectAccessReview",
                          "subjectaccessreviews", "subjectaccessreview", False,
                          "io.k8s.api.authorization.v1.SubjectAccessReview", verbs=("create",))
    doc = openapi_v3_group_version("authorization.k8s.io", "v1", [review], schema)
    spec = doc["components"]["schemas"]["io.k8s.api.authorization.v1.SubjectAccessReviewSpec"]
    assert spec["properties"]["extra"] == {
        "type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}
    assert list(doc["paths"]) == ["/apis/authorization.k8s.io/v1/subjectaccessreviews"]
