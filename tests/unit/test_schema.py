"""The generated type table, its loader, and unknown-field detection."""

from __future__ import annotations

import subprocess
import sys

import pytest
from kubernetes import client as k8s_client

from skiff.api.schema import SCALARS, FieldDef, Schema, TypeDef, builtin_schema, unknown_fields
from skiff.api.schema_load import (
    find_unknown_fields, json_field, json_fields, load_builtin, strict_decoding_message,
    unknown_field_warning,
)

APPS = "io.k8s.api.apps.v1"
CORE = "io.k8s.api.core.v1"
META = "io.k8s.apimachinery.pkg.apis.meta.v1"


@pytest.fixture(scope="module")
def schema() -> Schema:
    return builtin_schema()


def test_loaded_once_and_shared() -> None:
    assert load_builtin() is load_builtin()
    assert builtin_schema() is builtin_schema()


def test_loads_quickly_in_a_fresh_interpreter() -> None:
    code = ("import time; t = time.perf_counter(); "
            "from skiff.api.schema import builtin_schema; builtin_schema(); "
            "print(time.perf_counter() - t)")
    seconds = float(subprocess.run([sys.executable, "-c", code], check=True,
                                   capture_output=True, text=True).stdout)
    assert seconds < 1.0  # about 0.07 s on an idle machine; generous for shared CI


def test_every_type_reference_resolves(schema: Schema) -> None:
    for name in schema.names():
        typedef = schema.type(name)
        assert typedef is not None
        for f in typedef.fields.values():
            assert f.type in SCALARS or schema.type(f.type) is not None, (name, f.name)
            if f.map_value is not None:
                assert f.map_value == f.type


def test_protobuf_numbers_are_unique_per_type(schema: Schema) -> None:
    for name in schema.names():
        typedef = schema.type(name)
        assert typedef is not None
        numbers = [f.number for f in typedef.fields.values() if f.number]
        assert len(numbers) == len(set(numbers)), name


def test_kinds_of_every_group(schema: Schema) -> None:
    expected = [
        ("", "v1", "Pod"), ("", "v1", "Namespace"), ("", "v1", "Service"),
        ("apps", "v1", "Deployment"), ("batch", "v1", "CronJob"),
        ("networking.k8s.io", "v1", "Ingress"), ("discovery.k8s.io", "v1", "EndpointSlice"),
        ("coordination.k8s.io", "v1", "Lease"), ("events.k8s.io", "v1", "Event"),
        ("storage.k8s.io", "v1", "StorageClass"), ("autoscaling", "v1", "Scale"),
        ("autoscaling", "v2", "HorizontalPodAutoscaler"), ("policy", "v1", "Eviction"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
        ("scheduling.k8s.io", "v1", "PriorityClass"),
        ("authorization.k8s.io", "v1", "SelfSubjectAccessReview"),
        ("authentication.k8s.io", "v1", "TokenReview"),
        ("certificates.k8s.io", "v1", "CertificateSigningRequest"),
        ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration"),
        ("node.k8s.io", "v1", "RuntimeClass"), ("", "v1", "Status"),
        ("meta.k8s.io", "v1", "Table"),
    ]
    for gvk in expected:
        typedef = schema.for_kind(*gvk)
        assert typedef is not None, gvk
        assert {"apiVersion", "kind"} <= set(typedef.fields)


def test_deployment_facts(schema: Schema) -> None:
    spec = schema.type(f"{APPS}.DeploymentSpec")
    assert spec is not None
    assert spec.fields["replicas"] == FieldDef("replicas", 1, "int32", omitempty=True, pointer=True)
    assert spec.fields["selector"].required and spec.fields["template"].required
    assert spec.fields["strategy"].patch_strategy == "retainKeys"


def test_list_merge_facts(schema: Schema) -> None:
    pod_spec = schema.type(f"{CORE}.PodSpec")
    container = schema.type(f"{CORE}.Container")
    assert pod_spec is not None and container is not None
    containers = pod_spec.fields["containers"]
    assert containers.repeated and containers.type == f"{CORE}.Container"
    assert (containers.patch_strategy, containers.patch_merge_key) == ("merge", "name")
    assert (containers.list_type, containers.list_map_keys) == ("map", ("name",))
    assert pod_spec.fields["volumes"].patch_strategy == "merge,retainKeys"
    ports = container.fields["ports"]
    assert ports.patch_merge_key == "containerPort"
    assert ports.list_map_keys == ("containerPort", "protocol")
    assert container.fields["name"].required and not container.fields["image"].required
    assert pod_spec.fields["nodeSelector"].map_value == "string"


def test_inline_fields(schema: Schema) -> None:
    volume = schema.type(f"{CORE}.Volume")
    probe = schema.type(f"{CORE}.Probe")
    assert volume is not None and probe is not None
    assert volume.fields["volumeSource"].inline
    assert probe.fields["handler"] == FieldDef("handler", 1, f"{CORE}.ProbeHandler", inline=True)
    assert json_field(schema, volume, "configMap") is not None
    assert json_field(schema, volume, "volumeSource") is None  # not a JSON key
    assert "httpGet" in json_fields(schema, probe) and "handler" not in json_fields(schema, probe)


def test_special_types(schema: Schema) -> None:
    specials = {
        f"{META}.Time": "time", f"{META}.MicroTime": "microtime", f"{META}.Duration": "duration",
        f"{META}.FieldsV1": "fieldsv1", "io.k8s.apimachinery.pkg.api.resource.Quantity": "quantity",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString": "intorstring",
        "io.k8s.apimachinery.pkg.runtime.RawExtension": "raw",
        "io.k8s.api.authentication.v1.ExtraValue": "list", f"{META}.Verbs": "list",
    }
    for name, special in specials.items():
        typedef = schema.type(name)
        assert typedef is not None and typedef.special == special, name


def _client_model(name: str) -> type | None:
    parts = name.split(".")
    version, kind = parts[-2], parts[-1]
    return getattr(k8s_client, version.capitalize() + kind, None)  # type: ignore[no-any-return]


def test_field_names_agree_with_the_official_python_client(schema: Schema) -> None:
    """The client's models are generated from Kubernetes' OpenAPI; ours from the Go types.

    The client may be newer than 1.32 (more fields), never the other way round.
    """
    compared = 0
    for name in schema.names():
        typedef = schema.type(name)
        model = _client_model(name)
        if typedef is None or typedef.special or model is None or not hasattr(model, "attribute_map"):
            continue
        ours = set(json_fields(schema, typedef))
        theirs = set(model.attribute_map.values())
        if not ours & theirs:
            continue  # a same-named model from another group (e.g. v1 Scale vs Preconditions)
        compared += 1
        assert ours <= theirs, (name, ours - theirs)
    assert compared > 300


DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": None},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "containers": [{"name": "web", "image": "nginx",
                            "livenessProbe": {"httpGet": {"port": 80}, "periodSeconds": 3},
                            "resources": {"limits": {"cpu": "1"}}}],
            "volumes": [{"name": "v", "configMap": {"name": "c"}}]}},
    },
    "status": {},
}


def test_a_valid_object_has_no_unknown_fields(schema: Schema) -> None:
    assert find_unknown_fields(schema, f"{APPS}.Deployment", DEPLOYMENT) == []


def test_unknown_field_paths_are_spelled_like_kubernetes(schema: Schema) -> None:
    obj = {
        **DEPLOYMENT,
        "extra": 1,
        "spec": {**DEPLOYMENT["spec"], "replicasx": 3, "template": {"spec": {
            "containers": [{"name": "a"}, {"name": "b", "imagex": "nginx",
                                           "livenessProbe": {"httpGet": {"port": 1, "hostx": ""}}}],
            "volumes": [{"name": "v", "volumeSource": {}, "emptyDir": {"medium": "", "sizex": 1}}],
        }}},
    }
    assert find_unknown_fields(schema, f"{APPS}.Deployment", obj) == [  # in document order
        "spec.template.spec.containers[1].imagex",
        "spec.template.spec.containers[1].livenessProbe.httpGet.hostx",
        "spec.template.spec.volumes[0].volumeSource",
        "spec.template.spec.volumes[0].emptyDir.sizex",
        "spec.replicasx",
        "extra",
    ]
    assert unknown_fields(schema, f"{APPS}.DeploymentSpec", {"foo": 1}, "spec") == ["spec.foo"]


def test_contents_of_special_types_are_not_inspected(schema: Schema) -> None:
    revision = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "revision": 1,
                "data": {"anything": {"goes": True}},
                "metadata": {"managedFields": [{"fieldsV1": {"f:spec": {}}, "time": "x"}]}}
    assert find_unknown_fields(schema, f"{APPS}.ControllerRevision", revision) == []


def test_map_values_of_struct_type_use_dotted_keys() -> None:
    inner = TypeDef("t.Inner", {"a": FieldDef("a", 1, "string")})
    outer = TypeDef("t.Outer", {"byName": FieldDef("byName", 1, "t.Inner", map_value="t.Inner")})
    synthetic = Schema({"t.Inner": inner, "t.Outer": outer})
    obj = {"byName": {"x": {"a": "1"}, "y.z": {"b": 2}}}
    assert find_unknown_fields(synthetic, "t.Outer", obj) == ["byName.y.z.b"]


def test_values_of_the_wrong_shape_are_left_to_other_checks(schema: Schema) -> None:
    obj = {"spec": {"template": "nope", "selector": [1, 2]}, "metadata": None}
    assert find_unknown_fields(schema, f"{APPS}.Deployment", obj) == []
    assert find_unknown_fields(schema, "no.such.Type", {"a": 1}) == []


def test_strict_messages() -> None:
    assert unknown_field_warning("spec.replicasx") == 'unknown field "spec.replicasx"'
    assert strict_decoding_message("Deployment", "v1", "Deployment",
                                   ["spec.replicasx", "spec.foo"]) == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.replicasx", unknown field "spec.foo"')
    assert unknown_field_warning('metadata.labels.a"b') == r'unknown field "metadata.labels.a\"b"'
