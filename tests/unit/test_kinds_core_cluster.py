"""Namespaces, Nodes, Events, ServiceAccounts, ConfigMaps, Secrets and the core RESOURCES list."""

from __future__ import annotations

import base64
import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.kinds.core import RESOURCES, events, nodes
from skiff.api.kinds.core.config import CONFIGMAPS, SECRETS
from skiff.api.kinds.core.events import EVENTS
from skiff.api.kinds.core.namespaces import NAMESPACES
from skiff.api.kinds.core.nodes import NODES
from skiff.api.kinds.core.serviceaccounts import SERVICE_ACCOUNTS

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
Obj = dict[str, Any]


def errors(info: Any, obj: Obj, old: Obj | None = None) -> list[str]:
    return [f"{c.field}: {c.message}" for c in info.validate(obj, old)]


def test_core_resources_are_unique_and_complete() -> None:
    plurals = [r.plural for r in RESOURCES]
    assert len(plurals) == len(set(plurals))
    assert set(plurals) >= {"namespaces", "pods", "services", "endpoints", "configmaps", "secrets",
                            "serviceaccounts", "events", "nodes", "replicationcontrollers", "persistentvolumes",
                            "persistentvolumeclaims", "limitranges", "resourcequotas"}
    for r in RESOURCES:
        assert (r.group, r.version) == ("", "v1")
        assert r.schema_type == f"io.k8s.api.core.v1.{r.kind}"
        if r.verbs != ("create",):
            assert r.columns[0].name in ("Name", "Last Seen")
    short = {r.plural: r.short_names for r in RESOURCES}
    assert short["limitranges"] == ("limits",) and short["resourcequotas"] == ("quota",)
    assert not {r.plural for r in RESOURCES if not r.namespaced} ^ {"componentstatuses", "namespaces", "nodes",
                                                                    "persistentvolumes"}


def test_every_row_matches_its_columns() -> None:
    obj = {"metadata": {"name": "x", "namespace": "d", "creationTimestamp": "2024-05-01T11:00:00Z"}}
    for r in RESOURCES:
        if r.verbs == ("create",):
            continue
        assert len(r.row(copy.deepcopy(obj))) == len(r.columns), r.plural


# --- Namespace ------------------------------------------------------------------


def test_namespace_lifecycle() -> None:
    ns = {"metadata": {"name": "team-a", "creationTimestamp": "2024-05-01T11:58:00Z"}, "status": {"phase": "Gone"}}
    NAMESPACES.prepare_create(ns)
    NAMESPACES.default(ns)
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}
    assert errors(NAMESPACES, ns) == []
    assert NAMESPACES.row(ns, NOW) == ["team-a", "Active", "2m"]  # type: ignore[call-arg]
    update = copy.deepcopy(ns)
    update["spec"] = {"finalizers": []}
    update["metadata"]["labels"] = {}
    NAMESPACES.prepare_update(update, ns)
    NAMESPACES.default(update)
    assert update["spec"] == {"finalizers": ["kubernetes"]}
    assert update["metadata"]["labels"]["kubernetes.io/metadata.name"] == "team-a"
    assert NAMESPACES.field_labels["status.phase"](ns) == "Active"


def test_namespace_names_are_labels() -> None:
    ns = {"metadata": {"name": "a.b"}}
    NAMESPACES.prepare_create(ns)
    NAMESPACES.default(ns)
    assert errors(NAMESPACES, ns) == ['metadata.name: Invalid value: "a.b": must not contain dots']
    bad_finalizer = {"metadata": {"name": "a"}, "spec": {"finalizers": ["custom"]}}
    assert errors(NAMESPACES, bad_finalizer) == [
        'spec.finalizers: Invalid value: "custom": name is neither a standard finalizer name nor is it fully '
        'qualified']


# --- Node -----------------------------------------------------------------------


def node(**status: Any) -> Obj:
    return {"metadata": {"name": "node-1", "creationTimestamp": "2024-04-28T12:00:00Z",
                         "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge"}},
            "spec": {}, "status": status}


def test_node_row() -> None:
    obj = node(conditions=[{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
               addresses=[{"type": "Hostname", "address": "node-1"}, {"type": "InternalIP", "address": "10.0.0.4"}],
               nodeInfo={"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": "6.1.0", "containerRuntimeVersion": "skiff://0.1.0"})
    assert nodes.node_row(obj, NOW) == ["node-1", "Ready", "control-plane,edge", "3d", "v1.32.0", "10.0.0.4",
                                        "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0", "skiff://0.1.0"]
    obj["spec"]["unschedulable"] = True
    obj["status"]["conditions"][1]["status"] = "Unknown"
    assert nodes.node_row(obj, NOW)[1] == "NotReady,SchedulingDisabled"
    bare = node()
    bare["metadata"]["labels"] = {}
    assert nodes.node_row(bare, NOW)[1:3] == ["Unknown", "<none>"]
    assert nodes.node_row(bare, NOW)[7:] == ["<unknown>", "<unknown>", "<unknown>"]
    assert NODES.field_labels["spec.unschedulable"](obj) == "true"


def test_node_defaults_and_validation() -> None:
    obj = node(capacity={"cpu": "4", "pods": "110"})
    obj["spec"]["podCIDR"] = "10.244.1.0/24"
    NODES.default(obj)
    assert obj["status"]["allocatable"] == {"cpu": "4", "pods": "110"}
    assert obj["spec"]["podCIDRs"] == ["10.244.1.0/24"]
    assert errors(NODES, obj) == []
    tainted = copy.deepcopy(obj)
    tainted["spec"]["taints"] = [{"key": "k", "effect": "NoSchedule"}, {"key": "k", "effect": "NoSchedule"},
                                 {"key": "x", "effect": "Sometimes"}]
    assert errors(NODES, tainted) == [
        'spec.taints[1]: Duplicate value: core.Taint{Key:"k", Value:"", Effect:"NoSchedule", TimeAdded:<nil>}: '
        'taints must be unique by key and effect pair',
        'spec.taints[2].effect: Unsupported value: "Sometimes": supported values: "NoSchedule", '
        '"PreferNoSchedule", "NoExecute"']
    moved = copy.deepcopy(obj)
    moved["spec"].update({"podCIDR": "10.244.2.0/24", "podCIDRs": ["10.244.2.0/24"]})
    assert errors(NODES, moved, obj) == [
        'spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid']
    cordoned = copy.deepcopy(obj)
    cordoned["spec"]["unschedulable"] = True
    assert errors(NODES, cordoned, obj) == []


# --- Event ----------------------------------------------------------------------


def event(**extra: Any) -> Obj:
    return {"metadata": {"name": "web.17a", "namespace": "default", "creationTimestamp": "2024-05-01T11:00:00Z"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u1",
                               "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
            "reason": "Pulled", "message": "Successfully pulled image \"nginx\"\n", "type": "Normal",
            "source": {"component": "kubelet", "host": "node-1"}, **extra}


def test_event_rows() -> None:
    obj = event(firstTimestamp="2024-05-01T11:50:00Z", lastTimestamp="2024-05-01T11:59:00Z", count=3)
    assert events.event_row(obj, NOW) == ["60s", "Normal", "Pulled", "pod/web", "spec.containers{app}",
                                          "kubelet, node-1", 'Successfully pulled image "nginx"', "10m", 3,
                                          "web.17a"]
    new_style = event(eventTime="2024-05-01T11:58:00.000000Z", series={"count": 5,
                                                                       "lastObservedTime": "2024-05-01T11:59:30.5Z"},
                      source={}, reportingComponent="default-scheduler", reportingInstance="sched-1")
    row = events.event_row(new_style, NOW)
    assert (row[0], row[5], row[7], row[8]) == ("29s", "default-scheduler, sched-1", "2m", 5)
    single = event(eventTime="2024-05-01T11:58:00.000000Z")
    assert events.event_row(single, NOW)[0] == "2m" and events.event_row(single, NOW)[8] == 1
    assert [c.name for c in EVENTS.columns if c.priority == 0] == ["Last Seen", "Type", "Reason", "Object",
                                                                   "Message"]


def test_event_validation_and_field_labels() -> None:
    assert errors(EVENTS, event()) == []
    other_ns = event()
    other_ns["involvedObject"]["namespace"] = "kube-system"
    assert errors(EVENTS, other_ns) == [
        'involvedObject.namespace: Invalid value: "kube-system": does not match event.namespace']
    new_style = event(eventTime="2024-05-01T11:58:00.000000Z")
    got = errors(EVENTS, new_style)
    # as in Kubernetes, an empty reportingComponent is also reported as an invalid qualified name
    assert [e for e in got if "Required value" in e] == ["reportingComponent: Required value",
                                                         "reportingInstance: Required value", "action: Required value"]
    assert 'reportingComponent: Invalid value: "": name part must be non-empty' in got
    labels = {k: f(event()) for k, f in EVENTS.field_labels.items()}
    assert labels["involvedObject.name"] == "web" and labels["involvedObject.uid"] == "u1"
    assert labels["source"] == "kubelet" and labels["type"] == "Normal" and labels["reason"] == "Pulled"


# --- ServiceAccount ---------------------------------------------------------------


def test_service_account() -> None:
    sa = {"metadata": {"name": "default", "namespace": "d", "creationTimestamp": "2024-05-01T11:00:00Z"},
          "secrets": [{"name": "a"}]}
    assert SERVICE_ACCOUNTS.row(sa, NOW) == ["default", 1, "60m"]  # type: ignore[call-arg]
    assert errors(SERVICE_ACCOUNTS, sa) == []
    token = SERVICE_ACCOUNTS.subresources[0]
    assert (token.name, token.kind, token.group, token.verbs) == ("token", "TokenRequest", "authentication.k8s.io",
                                                                  ("create",))


# --- ConfigMap / Secret -------------------------------------------------------------


def cm(**body: Any) -> Obj:
    return {"metadata": {"name": "conf", "namespace": "d", "creationTimestamp": "2024-05-01T11:00:00Z"}, **body}


def test_configmap() -> None:
    obj = cm(data={"a": "1", "b.conf": "x"}, binaryData={"c": base64.b64encode(b"\x00").decode()})
    assert CONFIGMAPS.row(obj, NOW) == ["conf", 3, "60m"]  # type: ignore[call-arg]
    assert errors(CONFIGMAPS, obj) == []
    assert errors(CONFIGMAPS, cm(data={"a b": "1"}))[0].startswith(
        'data[a b]: Invalid value: "a b": a valid config key must consist of alphanumeric characters')
    assert errors(CONFIGMAPS, cm(data={"a": "1"}, binaryData={"a": "AA=="})) == [
        'binaryData[a]: Invalid value: "a": duplicate of key present in data']
    assert errors(CONFIGMAPS, cm(data={"big": "x" * (1024 * 1024)})) == [
        ": Too long: may not be more than 1048576 bytes"]


def test_immutable_configmap() -> None:
    old = cm(data={"a": "1"}, immutable=True)
    assert errors(CONFIGMAPS, cm(data={"a": "1"}, immutable=True), old) == []
    assert errors(CONFIGMAPS, cm(data={"a": "2"}, immutable=True), old) == [
        "data: Forbidden: field is immutable when `immutable` is set"]
    assert errors(CONFIGMAPS, cm(data={"a": "1"}, immutable=False), old) == [
        "immutable: Forbidden: field is immutable when `immutable` is set"]


def test_secret_defaults_and_rows() -> None:
    obj = cm(stringData={"password": "s3cret"}, data={"user": base64.b64encode(b"admin").decode()})
    SECRETS.default(obj)
    assert obj["type"] == "Opaque" and "stringData" not in obj
    assert base64.b64decode(obj["data"]["password"]) == b"s3cret"
    assert SECRETS.row(obj, NOW) == ["conf", "Opaque", 2, "60m"]  # type: ignore[call-arg]
    assert errors(SECRETS, obj) == []
    assert SECRETS.field_labels["type"](obj) == "Opaque"


@pytest.mark.parametrize("secret_type, data, expected", [
    ("kubernetes.io/tls", {"tls.crt": "QQ=="}, ["data[tls.key]: Required value"]),
    ("kubernetes.io/dockerconfigjson", {}, ["data[.dockerconfigjson]: Required value"]),
    ("kubernetes.io/service-account-token", {},
     ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]),
    ("Opaque", {"k": "not base64!"}, ['data[k]: Invalid value: "<value omitted>": illegal base64 data at input '
                                      'byte 3']),
])
def test_secret_validation(secret_type: str, data: Obj, expected: list[str]) -> None:
    obj = cm(type=secret_type, data=data)
    assert errors(SECRETS, obj) == expected


def test_secret_update_rules() -> None:
    old = cm(type="Opaque", data={"a": "QQ=="}, immutable=True)
    changed = cm(type="kubernetes.io/tls", data={"a": "Qg==", "tls.crt": "QQ==", "tls.key": "QQ=="},
                 immutable=True)
    assert errors(SECRETS, changed, old) == ['type: Invalid value: "kubernetes.io/tls": field is immutable',
                                             "data: Forbidden: field is immutable when `immutable` is set"]
