"""`kubectl create <kind>` subcommands: kubectl builds the object itself and POSTs it as
a protobuf body; each result is read back with `get -o json`."""

from __future__ import annotations

import base64
import json
from typing import Iterator

import pytest

from e2e_support import SkiffProcess, unique


def test_create_deployment(cluster: SkiffProcess, ns: str) -> None:
    out = cluster.kubectl("create", "deployment", "web", "-n", ns, "--image=busybox",
                          "--replicas=2").stdout.strip()
    assert out == "deployment.apps/web created"
    d = cluster.get_json("deployment", "web", "-n", ns)
    assert d["apiVersion"] == "apps/v1" and d["kind"] == "Deployment"
    assert d["metadata"]["labels"] == {"app": "web"}
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert d["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    [c] = d["spec"]["template"]["spec"]["containers"]
    assert (c["name"], c["image"]) == ("busybox", "busybox")
    # Defaults a user sees on every Deployment.
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"
    assert d["spec"]["revisionHistoryLimit"] == 10
    assert d["spec"]["progressDeadlineSeconds"] == 600
    assert c["imagePullPolicy"] == "Always"  # untagged image means :latest
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert d["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    assert d["metadata"]["generation"] == 1


def test_create_configmap(cluster: SkiffProcess, ns: str) -> None:
    out = cluster.kubectl("create", "configmap", "x", "-n", ns, "--from-literal=a=b",
                          "--from-literal=c=d e").stdout.strip()
    assert out == "configmap/x created"
    cm = cluster.get_json("configmap", "x", "-n", ns)
    assert cm["data"] == {"a": "b", "c": "d e"}


def test_create_secret_generic(cluster: SkiffProcess, ns: str) -> None:
    out = cluster.kubectl("create", "secret", "generic", "s", "-n", ns,
                          "--from-literal=p=q").stdout.strip()
    assert out == "secret/s created"
    s = cluster.get_json("secret", "s", "-n", ns)
    assert s["type"] == "Opaque"
    assert s["data"] == {"p": base64.b64encode(b"q").decode()}


@pytest.fixture
def new_namespace(cluster: SkiffProcess) -> Iterator[str]:
    name = unique("e2e-created")
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found",
                        check=False)


def test_create_namespace(cluster: SkiffProcess, new_namespace: str) -> None:
    out = cluster.kubectl("create", "namespace", new_namespace).stdout.strip()
    assert out == f"namespace/{new_namespace} created"
    n = cluster.get_json("namespace", new_namespace)
    assert n["status"]["phase"] == "Active"
    assert n["spec"]["finalizers"] == ["kubernetes"]
    assert n["metadata"]["labels"]["kubernetes.io/metadata.name"] == new_namespace


def test_create_service_clusterip(cluster: SkiffProcess, ns: str) -> None:
    out = cluster.kubectl("create", "service", "clusterip", "web", "-n", ns,
                          "--tcp=80:8080").stdout.strip()
    assert out == "service/web created"
    svc = cluster.get_json("service", "web", "-n", ns)
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["selector"] == {"app": "web"}
    assert svc["spec"]["ports"] == [
        {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    ip = svc["spec"]["clusterIP"]
    assert ip and ip != "None" and svc["spec"]["clusterIPs"] == [ip]
    assert svc["spec"]["sessionAffinity"] == "None"


def test_create_serviceaccount(cluster: SkiffProcess, ns: str) -> None:
    out = cluster.kubectl("create", "serviceaccount", "robot", "-n", ns).stdout.strip()
    assert out == "serviceaccount/robot created"
    sa = cluster.get_json("serviceaccount", "robot", "-n", ns)
    assert sa["kind"] == "ServiceAccount" and sa["metadata"]["namespace"] == ns


def test_create_job(cluster: SkiffProcess, ns: str) -> None:
    out = cluster.kubectl("create", "job", "once", "-n", ns, "--image=busybox",
                          "--", "echo", "hi").stdout.strip()
    assert out == "job.batch/once created"
    job = cluster.get_json("job", "once", "-n", ns)
    pod_spec = job["spec"]["template"]["spec"]
    [c] = pod_spec["containers"]
    assert (c["name"], c["image"], c["command"]) == ("once", "busybox", ["echo", "hi"])
    assert pod_spec["restartPolicy"] == "Never"
    # Defaults and the selector the API server generates.
    assert job["spec"]["backoffLimit"] == 6
    assert job["spec"]["completions"] == 1 and job["spec"]["parallelism"] == 1
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"] == uid
    assert job["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "once"


def test_create_cronjob(cluster: SkiffProcess, ns: str) -> None:
    out = cluster.kubectl("create", "cronjob", "nightly", "-n", ns, "--image=busybox",
                          "--schedule=*/5 * * * *", "--", "echo", "hi").stdout.strip()
    assert out == "cronjob.batch/nightly created"
    cj = cluster.get_json("cronjob", "nightly", "-n", ns)
    assert cj["spec"]["schedule"] == "*/5 * * * *"
    assert cj["spec"]["concurrencyPolicy"] == "Allow"
    assert cj["spec"]["suspend"] is False
    pod_spec = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod_spec["restartPolicy"] == "OnFailure"
    assert pod_spec["containers"][0]["command"] == ["echo", "hi"]


def test_create_role_and_rolebinding(cluster: SkiffProcess, ns: str) -> None:
    out = cluster.kubectl("create", "role", "reader", "-n", ns, "--verb=get,list",
                          "--resource=pods,deployments.apps").stdout.strip()
    assert out == "role.rbac.authorization.k8s.io/reader created"
    role = cluster.get_json("role", "reader", "-n", ns)
    rules = sorted(role["rules"], key=lambda r: r["apiGroups"])
    assert rules == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list"]},
    ]

    cluster.kubectl("create", "serviceaccount", "robot", "-n", ns)
    out = cluster.kubectl("create", "rolebinding", "read-pods", "-n", ns, "--role=reader",
                          "--user=alice", f"--serviceaccount={ns}:robot").stdout.strip()
    assert out == "rolebinding.rbac.authorization.k8s.io/read-pods created"
    rb = cluster.get_json("rolebinding", "read-pods", "-n", ns)
    assert rb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                             "name": "reader"}
    assert sorted(rb["subjects"], key=lambda s: s["kind"]) == [
        {"kind": "ServiceAccount", "name": "robot", "namespace": ns},
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
    ]


def test_create_quota(cluster: SkiffProcess, ns: str) -> None:
    out = cluster.kubectl("create", "quota", "small", "-n", ns,
                          "--hard=pods=10,cpu=2,memory=1Gi").stdout.strip()
    assert out == "resourcequota/small created"
    q = cluster.get_json("resourcequota", "small", "-n", ns)
    assert q["spec"]["hard"] == {"pods": "10", "cpu": "2", "memory": "1Gi"}


@pytest.fixture
def priority_class_name(cluster: SkiffProcess) -> Iterator[str]:
    name = unique("e2e-pc")
    try:
        yield name
    finally:
        cluster.kubectl("delete", "priorityclass", name, "--ignore-not-found", check=False)


def test_create_priorityclass(cluster: SkiffProcess, priority_class_name: str) -> None:
    out = cluster.kubectl("create", "priorityclass", priority_class_name, "--value=1000",
                          "--description=for e2e").stdout.strip()
    assert out == f"priorityclass.scheduling.k8s.io/{priority_class_name} created"
    pc = cluster.get_json("priorityclass", priority_class_name)
    assert pc["value"] == 1000
    assert pc["description"] == "for e2e"
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"
    assert pc.get("globalDefault", False) is False


def test_create_dry_run_server_writes_nothing(cluster: SkiffProcess, ns: str) -> None:
    out = cluster.kubectl("create", "configmap", "ghost", "-n", ns, "--from-literal=a=b",
                          "--dry-run=server", "-o", "name").stdout.strip()
    assert out == "configmap/ghost"
    res = cluster.kubectl("get", "configmap", "ghost", "-n", ns, check=False)
    assert res.returncode == 1 and 'configmaps "ghost" not found' in res.stderr


def test_create_from_a_list(cluster: SkiffProcess, ns: str) -> None:
    """A `kind: List` file: kubectl validates it (OpenAPI) and creates each item."""
    items = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": {"id": n}}
             for n in ("one", "two")]
    doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    out = cluster.kubectl("create", "-n", ns, "-f", "-", input=doc).stdout.splitlines()
    assert out == ["configmap/one created", "configmap/two created"]
    assert cluster.get_json("configmap", "two", "-n", ns)["data"] == {"id": "two"}
