"""Protobuf request bodies: kubectl's real bytes, round trips, malformed input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from skiff.api.errors import StatusError
from skiff.api.protobuf import (
    MAGIC, decode_object, encode_object, format_duration, format_time, parse_duration,
    parse_time,
)
from skiff.api.schema import Schema, builtin_schema

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"
CAPTURED = sorted(p.stem for p in FIXTURES.glob("*.pb"))


@pytest.fixture(scope="module")
def schema() -> Schema:
    return builtin_schema()


def without_nulls(value: Any) -> Any:
    """kubectl prints unset Times and nil lists as null; absent means the same."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def test_fixtures_were_captured() -> None:
    assert {"deployment", "secret", "service", "selfsubjectaccessreview"} <= set(CAPTURED)


@pytest.mark.parametrize("name", [n for n in CAPTURED if (FIXTURES / f"{n}.json").exists()])
def test_decodes_kubectl_bodies_to_kubectls_own_json(name: str, schema: Schema) -> None:
    body = (FIXTURES / f"{name}.pb").read_bytes()
    expected = without_nulls(json.loads((FIXTURES / f"{name}.json").read_text()))
    assert decode_object(body, schema) == expected


@pytest.mark.parametrize("name", CAPTURED)
def test_encoding_the_decoded_object_gives_kubectls_bytes(name: str, schema: Schema) -> None:
    body = (FIXTURES / f"{name}.pb").read_bytes()
    assert encode_object(decode_object(body, schema), schema) == body


def test_captured_deployment_details(schema: Schema) -> None:
    obj = decode_object((FIXTURES / "deployment.pb").read_bytes(), schema)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert obj["apiVersion"] == "apps/v1" and obj["kind"] == "Deployment"
    assert obj["spec"]["replicas"] == 2
    assert container["ports"] == [{"containerPort": 8080}]
    assert "creationTimestamp" not in obj["metadata"]


def test_pointer_zero_is_kept_but_omitempty_zero_is_dropped(schema: Schema) -> None:
    obj = decode_object((FIXTURES / "deployment_zero.pb").read_bytes(), schema)
    assert obj["spec"]["replicas"] == 0  # *int32 set to 0
    assert "minReadySeconds" not in obj["spec"]  # int32 omitempty, written as 0 on the wire
    assert obj["status"] == {}  # Go never omits a struct


def test_self_subject_access_review_from_auth_can_i(schema: Schema) -> None:
    obj = decode_object((FIXTURES / "selfsubjectaccessreview.pb").read_bytes(), schema)
    assert obj["kind"] == "SelfSubjectAccessReview"
    assert obj["spec"]["resourceAttributes"] == {
        "namespace": "default", "verb": "create", "resource": "pods"}
    assert obj["status"] == {"allowed": False}  # bool without omitempty stays


def roundtrip(obj: dict[str, Any], schema: Schema) -> dict[str, Any]:
    body = encode_object(obj, schema)
    assert body.startswith(MAGIC)
    return decode_object(body, schema)


DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "prod", "labels": {"app": "web", "tier": "front"},
                 "annotations": {"note": "ünïcode ✓"},
                 "creationTimestamp": "2024-05-06T07:08:09Z",
                 "ownerReferences": [{"apiVersion": "v1", "kind": "Thing", "name": "o",
                                      "uid": "u-1", "controller": True}]},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"},
                     "matchExpressions": [{"key": "tier", "operator": "In",
                                           "values": ["front", "edge"]}]},
        "strategy": {"type": "RollingUpdate",
                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{
                    "name": "web", "image": "nginx:1.27", "args": ["-g", "daemon off;"],
                    "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "MODE", "value": "prod"},
                            {"name": "POD", "valueFrom": {"fieldRef": {
                                "apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                    "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                                  "requests": {"cpu": "250m"}},
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"},
                                      "initialDelaySeconds": 3, "periodSeconds": 10},
                    "readinessProbe": {"tcpSocket": {"port": 80}, "failureThreshold": 1},
                    "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                    "securityContext": {"runAsUser": 0, "runAsNonRoot": False},
                }],
                "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                            {"name": "cfg", "configMap": {"name": "settings",
                                                          "defaultMode": 420}}],
                "terminationGracePeriodSeconds": 0,
                "nodeSelector": {"disk": "ssd"},
            },
        },
    },
    "status": {},
}


def test_deployment_round_trip(schema: Schema) -> None:
    assert roundtrip(DEPLOYMENT, schema) == DEPLOYMENT


def test_inline_fields_are_flattened_in_json_and_nested_on_the_wire(schema: Schema) -> None:
    obj = roundtrip(DEPLOYMENT, schema)
    spec = obj["spec"]["template"]["spec"]
    assert spec["volumes"][1] == {"name": "cfg", "configMap": {"name": "settings",
                                                               "defaultMode": 420}}
    assert "volumeSource" not in spec["volumes"][1]
    assert "handler" not in spec["containers"][0]["livenessProbe"]
    # Volume{1: "cfg", 2: VolumeSource{19: ConfigMapVolumeSource{1: LocalObjectReference{
    #   1: "settings"}, 3: 420}}}: the inlined structs are nested messages on the wire.
    body = encode_object({"apiVersion": "v1", "kind": "Pod",
                          "spec": {"volumes": [spec["volumes"][1]], "containers": []}}, schema)
    config_map = b"\x0a\x0a" + b"\x0a\x08settings" + b"\x18\xa4\x03"
    volume = b"\x0a\x03cfg" + b"\x12\x12" + b"\x9a\x01\x0f" + config_map
    assert b"\x0a" + bytes([len(volume)]) + volume in body


def test_intorstring_and_pointer_zeros(schema: Schema) -> None:
    obj = roundtrip(DEPLOYMENT, schema)
    container = obj["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["port"] == "http"
    assert container["readinessProbe"]["tcpSocket"]["port"] == 80
    assert obj["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}
    assert obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 0
    assert container["securityContext"] == {"runAsUser": 0, "runAsNonRoot": False}


def test_secret_bytes_are_base64_in_json(schema: Schema) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "type": "Opaque", "data": {"bin": "AAEC/w==", "empty": ""},
              "stringData": {"plain": "text"}}
    body = encode_object(secret, schema)
    assert b"\x00\x01\x02\xff" in body
    assert decode_object(body, schema) == secret


def test_negative_numbers_and_doubles(schema: Schema) -> None:
    pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
          "metadata": {"name": "low"}, "value": -5, "globalDefault": True}
    assert roundtrip(pc, schema) == pc


def test_times_durations_and_micro_times(schema: Schema) -> None:
    event = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
             "metadata": {"name": "e", "namespace": "default",
                          "deletionTimestamp": "2024-01-01T00:00:00Z"},
             "eventTime": "2024-05-06T07:08:09.123456Z", "reason": "Started",
             "regarding": {"kind": "Pod", "name": "p"},
             "series": {"count": 2, "lastObservedTime": "2024-05-06T07:08:10.000001Z"},
             "type": "Normal", "action": "Start", "reportingController": "kubelet",
             "reportingInstance": "node-1", "deprecatedCount": 0}
    expected = copy.deepcopy(event)
    del expected["deprecatedCount"]  # int32 omitempty
    expected["deprecatedSource"] = {}  # a non-pointer struct: Go prints it even when empty
    assert roundtrip(event, schema) == expected


def test_list_wrappers_and_maps_of_lists(schema: Schema) -> None:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "metadata": {},
              "spec": {"user": "alice", "groups": ["dev"],
                       "extra": {"scopes": ["a", "b"], "team": ["x"]},
                       "nonResourceAttributes": {"path": "/healthz", "verb": "get"}},
              "status": {"allowed": True, "reason": "ok"}}
    assert roundtrip(review, schema) == review


def test_quantities_in_resource_quota(schema: Schema) -> None:
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
             "spec": {"hard": {"cpu": "1", "memory": "1Gi", "pods": "10"},
                      "scopes": ["NotBestEffort"]},
             "status": {"used": {"cpu": "0"}}}
    assert roundtrip(quota, schema) == quota


def test_delete_options_and_eviction(schema: Schema) -> None:
    options = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
               "propagationPolicy": "Foreground", "dryRun": ["All"],
               "preconditions": {"uid": "abc"}}
    assert roundtrip(options, schema) == options
    in_group = {**options, "apiVersion": "apps/v1"}  # meta kinds exist in every group
    assert roundtrip(in_group, schema) == in_group
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": "web-1", "namespace": "default"},
                "deleteOptions": {"gracePeriodSeconds": 30}}
    assert roundtrip(eviction, schema) == eviction


def test_rbac_and_cronjob(schema: Schema) -> None:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "r"},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                      {"verbs": ["get"], "nonResourceURLs": ["/metrics"]}],
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]}}
    assert roundtrip(role, schema) == role
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "0 * * * *", "suspend": False, "jobTemplate": {
                "metadata": {},
                "spec": {"backoffLimit": 0, "template": {"metadata": {}, "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "resources": {}}]}}}}},
            "status": {}}
    assert roundtrip(cron, schema) == cron


def test_managed_fields_carry_json(schema: Schema) -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace",
          "metadata": {"name": "n", "managedFields": [{
              "manager": "kubectl", "operation": "Update", "apiVersion": "v1",
              "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
              "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]},
          "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    assert roundtrip(ns, schema) == ns


def test_unknown_kind_is_a_bad_request(schema: Schema) -> None:
    body = encode_object({"apiVersion": "v1", "kind": "Namespace"}, schema)
    body = body.replace(b"Namespace", b"Nomespace")
    with pytest.raises(StatusError) as err:
        decode_object(body, schema)
    assert err.value.code == 400 and err.value.reason == "BadRequest"


@pytest.mark.parametrize("body", [b"", b"k8s", b"{}", b"k8s\x00\xff", b"k8s\x00\x0a\x05ab",
                                  b"k8s\x00\x0b", b"k8s\x00\x0a\x02\x08\x01"])
def test_garbage_is_a_bad_request(body: bytes, schema: Schema) -> None:
    with pytest.raises(StatusError) as err:
        decode_object(body, schema)
    assert err.value.code == 400


def test_truncated_or_corrupted_bodies_never_raise_anything_else(schema: Schema) -> None:
    decoded = 0
    for name in CAPTURED:
        body = (FIXTURES / f"{name}.pb").read_bytes()
        variants = [body[:n] for n in range(len(body))]
        variants += [body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1:]
                     for i in range(len(MAGIC), len(body))]
        for variant in variants:
            try:
                decode_object(variant, schema)
                decoded += 1
            except StatusError as e:
                assert e.code == 400
    assert decoded > 0  # some corruptions still parse (e.g. a flipped string byte)


def test_encode_rejects_values_of_the_wrong_type(schema: Schema) -> None:
    bad = copy.deepcopy(DEPLOYMENT)
    bad["spec"]["replicas"] = "three"
    with pytest.raises(ValueError, match="spec.replicas"):
        encode_object(bad, schema)


def test_go_time_and_duration_forms() -> None:
    assert format_time(0, 0) == "1970-01-01T00:00:00Z"
    assert format_time(*parse_time("2024-02-29T23:59:59+01:00")) == "2024-02-29T22:59:59Z"
    assert format_time(*parse_time("2024-01-02T03:04:05.5Z"), micro=True) == \
        "2024-01-02T03:04:05.500000Z"
    cases = {0: "0s", 1500: "1.5\u00b5s", 300_000_000: "300ms", 1_500_000_000: "1.5s",
             90_000_000_000: "1m30s", 3_600_000_000_000: "1h0m0s", -61_000_000_000: "-1m1s"}
    for nanos, text in cases.items():
        assert format_duration(nanos) == text
        assert parse_duration(text) == nanos
    assert parse_duration("1h2m3.25s") == 3_723_250_000_000
    for bad in ("", "1", "1x", "h", "--1s"):
        with pytest.raises(ValueError):
            parse_duration(bad)
