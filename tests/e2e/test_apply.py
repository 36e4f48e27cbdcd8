"""`kubectl apply`: client-side (three-way strategic merge) and server-side.

What a user sees: one line per object (`deployment.apps/web created`, `configured`,
`unchanged`, `serverside-applied`) and objects whose unmentioned parts survive a
re-apply.
"""

from __future__ import annotations

import base64
from typing import Iterator

import pytest
import yaml

from e2e_support import REPO, SkiffProcess, render, unique


@pytest.fixture
def app_ns(cluster: SkiffProcess) -> Iterator[str]:
    """A namespace name the manifest itself creates (it holds a Namespace document)."""
    name = unique("e2e-apply")
    try:
        yield name
    finally:
        cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found",
                        check=False)


def _containers(deploy: dict) -> dict[str, dict]:
    return {c["name"]: c for c in deploy["spec"]["template"]["spec"]["containers"]}


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_apply_multi_document_file_creates_every_object(cluster: SkiffProcess, app_ns: str,
                                                        tmp_path) -> None:
    manifest = tmp_path / "web-app.yaml"
    manifest.write_text(render("web-app.yaml", ns=app_ns))

    out = cluster.kubectl("apply", "-f", str(manifest)).stdout.splitlines()
    assert out == [
        f"namespace/{app_ns} created",
        "configmap/web-config created",
        "secret/web-secret created",
        "service/web created",
        "deployment.apps/web created",
    ]

    cm = cluster.get_json("configmap", "web-config", "-n", app_ns)
    assert cm["data"] == {"greeting": "hello", "index.html": "<h1>hello</h1>"}
    secret = cluster.get_json("secret", "web-secret", "-n", app_ns)
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["password"]) == b"s3cret"
    svc = cluster.get_json("service", "web", "-n", app_ns)
    assert svc["spec"]["selector"] == {"app": "web"}
    assert [(p["name"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]] == [("http", 80, 8080)]

    deploy = cluster.get_json("deployment", "web", "-n", app_ns)
    annotations = deploy["metadata"].get("annotations", {})
    last_applied = yaml.safe_load(annotations["kubectl.kubernetes.io/last-applied-configuration"])
    assert last_applied["kind"] == "Deployment" and last_applied["spec"]["replicas"] == 2
    containers = _containers(deploy)
    assert list(containers) == ["app", "sidecar"]
    assert containers["app"]["image"] == "busybox:1.36"
    assert list(_env(containers["app"])) == ["GREETING", "MODE"]
    assert _env(containers["app"])["GREETING"]["valueFrom"]["configMapKeyRef"] == {
        "name": "web-config", "key": "greeting"}
    assert list(_env(containers["sidecar"])) == ["PASSWORD", "ROLE"]


def test_reapply_changed_image_is_a_strategic_merge(cluster: SkiffProcess, app_ns: str,
                                                    tmp_path) -> None:
    v1 = tmp_path / "web-app.yaml"
    v1.write_text(render("web-app.yaml", ns=app_ns))
    v2 = tmp_path / "web-app-v2.yaml"
    v2.write_text(render("web-app-v2.yaml", ns=app_ns))
    cluster.kubectl("apply", "-f", str(v1))

    # Applying the same file again changes nothing and says so.
    out = cluster.kubectl("apply", "-f", str(v1)).stdout.splitlines()
    assert out == [
        f"namespace/{app_ns} unchanged",
        "configmap/web-config unchanged",
        "secret/web-secret unchanged",
        "service/web unchanged",
        "deployment.apps/web unchanged",
    ]

    # Another writer adds an env var the file does not know about.
    res = cluster.kubectl("set", "env", "deployment/web", "-n", app_ns, "-c", "sidecar", "EXTRA=added")
    assert res.stdout.strip() == "deployment.apps/web env updated"
    before = cluster.get_json("deployment", "web", "-n", app_ns)

    # v2 differs only in the image of container "app".
    out = cluster.kubectl("apply", "-f", str(v2)).stdout.splitlines()
    assert out == [
        f"namespace/{app_ns} unchanged",
        "configmap/web-config unchanged",
        "secret/web-secret unchanged",
        "service/web unchanged",
        "deployment.apps/web configured",
    ]
    deploy = cluster.get_json("deployment", "web", "-n", app_ns)
    containers = _containers(deploy)
    assert list(containers) == ["app", "sidecar"]
    assert containers["app"]["image"] == "busybox:1.37"
    assert containers["sidecar"]["image"] == "busybox:1.36"
    assert containers["app"]["command"] == ["httpd", "-f", "-p", "8080"]
    assert containers["app"]["ports"][0]["containerPort"] == 8080
    assert list(_env(containers["app"])) == ["GREETING", "MODE"]
    assert _env(containers["app"])["MODE"]["value"] == "production"
    # The sidecar keeps both its own env and the one another writer added.
    assert list(_env(containers["sidecar"])) == ["PASSWORD", "ROLE", "EXTRA"]
    assert _env(containers["sidecar"])["EXTRA"]["value"] == "added"
    assert deploy["metadata"]["generation"] > before["metadata"]["generation"]
    last_applied = yaml.safe_load(
        deploy["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last_applied["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37"

    # Applying v2 again: kubectl still sends a patch (it re-asserts the order of the
    # sidecar's env, which now has an entry the file lacks), but nothing changes, so
    # the desired state stays as it was: same spec, same generation.  (The Deployment
    # controller keeps writing status meanwhile, so the resourceVersion may move.)
    cluster.kubectl("apply", "-f", str(v2))
    again = cluster.get_json("deployment", "web", "-n", app_ns)
    assert again["spec"] == deploy["spec"]
    assert again["metadata"]["generation"] == deploy["metadata"]["generation"]


def test_apply_removes_a_field_dropped_from_the_file(cluster: SkiffProcess, ns: str) -> None:
    doc = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "drop", "namespace": ns}, "data": {"keep": "1", "drop": "2"}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    cluster.kubectl("patch", "configmap", "drop", "-n", ns, "--type=merge",
                    "-p", '{"data":{"foreign":"3"}}')
    del doc["data"]["drop"]
    out = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc)).stdout.strip()
    assert out == "configmap/drop configured"
    # "drop" was in the last applied configuration and is gone from the file: removed.
    # "foreign" was never applied: kept.
    assert cluster.get_json("configmap", "drop", "-n", ns)["data"] == {"keep": "1", "foreign": "3"}


def _ssa_configmap(ns: str, data: dict[str, str]) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "ssa", "namespace": ns}, "data": data})


def test_server_side_apply_creates_updates_and_prunes_owned_fields(cluster: SkiffProcess,
                                                                   ns: str) -> None:
    out = cluster.kubectl("apply", "--server-side", "-f", "-",
                          input=_ssa_configmap(ns, {"a": "1", "b": "2"})).stdout.strip()
    assert out == "configmap/ssa serverside-applied"
    cm = cluster.get_json("configmap", "ssa", "-n", ns, "--show-managed-fields")
    assert cm["data"] == {"a": "1", "b": "2"}
    managers = {(m["manager"], m["operation"]) for m in cm["metadata"]["managedFields"]}
    assert ("kubectl", "Apply") in managers
    # Server-side apply keeps no last-applied annotation.
    assert "kubectl.kubernetes.io/last-applied-configuration" not in cm["metadata"].get("annotations", {})

    # Change a, stop applying b: the apply owner's dropped field is removed.
    out = cluster.kubectl("apply", "--server-side", "-f", "-",
                          input=_ssa_configmap(ns, {"a": "10", "c": "3"})).stdout.strip()
    assert out == "configmap/ssa serverside-applied"
    assert cluster.get_json("configmap", "ssa", "-n", ns)["data"] == {"a": "10", "c": "3"}


def test_server_side_apply_of_the_web_app(cluster: SkiffProcess, app_ns: str, tmp_path) -> None:
    manifest = tmp_path / "web-app.yaml"
    manifest.write_text(render("web-app.yaml", ns=app_ns))
    out = cluster.kubectl("apply", "--server-side", "-f", str(manifest)).stdout.splitlines()
    assert out == [
        f"namespace/{app_ns} serverside-applied",
        "configmap/web-config serverside-applied",
        "secret/web-secret serverside-applied",
        "service/web serverside-applied",
        "deployment.apps/web serverside-applied",
    ]
    manifest.write_text(render("web-app-v2.yaml", ns=app_ns))
    cluster.kubectl("apply", "--server-side", "-f", str(manifest))
    containers = _containers(cluster.get_json("deployment", "web", "-n", app_ns))
    assert containers["app"]["image"] == "busybox:1.37"
    assert containers["sidecar"]["image"] == "busybox:1.36"
    assert list(_env(containers["sidecar"])) == ["PASSWORD", "ROLE"]


def test_server_side_apply_conflict_between_managers(cluster: SkiffProcess, ns: str) -> None:
    cluster.kubectl("apply", "--server-side", "--field-manager=alice", "-f", "-",
                    input=_ssa_configmap(ns, {"k": "from-alice"}))
    res = cluster.kubectl("apply", "--server-side", "--field-manager=bob", "-f", "-",
                          input=_ssa_configmap(ns, {"k": "from-bob"}), check=False)
    assert res.returncode == 1
    assert 'conflict with "alice"' in res.stderr and ".data.k" in res.stderr
    assert cluster.get_json("configmap", "ssa", "-n", ns)["data"] == {"k": "from-alice"}

    out = cluster.kubectl("apply", "--server-side", "--field-manager=bob", "--force-conflicts",
                          "-f", "-", input=_ssa_configmap(ns, {"k": "from-bob"})).stdout.strip()
    assert out == "configmap/ssa serverside-applied"
    assert cluster.get_json("configmap", "ssa", "-n", ns)["data"] == {"k": "from-bob"}


def test_example_web_app_applies(cluster: SkiffProcess, app_ns: str) -> None:
    """examples/web-app.yaml stays valid (its namespace renamed to keep tests apart)."""
    docs = list(yaml.safe_load_all((REPO / "examples" / "web-app.yaml").read_text()))
    for doc in docs:
        if doc["kind"] == "Namespace":
            doc["metadata"]["name"] = app_ns
        else:
            doc["metadata"]["namespace"] = app_ns
    out = cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs)).stdout.splitlines()
    assert out == [
        f"namespace/{app_ns} created",
        "configmap/web-config created",
        "secret/web-secret created",
        "service/web created",
        "deployment.apps/web created",
    ]
