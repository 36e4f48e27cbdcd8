"""`kind: List` files (what `kubectl get -o yaml` writes for several objects) with
`kubectl create|apply|replace -f`: kubectl validates each item client-side against
/openapi/v2, as it does against a real cluster, then writes them one by one."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from e2e_support import SkiffProcess

LIST = """apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: settings}
  data: {mode: fast}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: web, labels: {app: web}}
  spec:
    replicas: 0
    selector: {matchLabels: {app: web}}
    template:
      metadata: {labels: {app: web}}
      spec:
        containers:
        - name: web
          image: nginx:1.27
          ports: [{containerPort: 80}]
          resources: {limits: {cpu: 1, memory: 64Mi}}
"""


def test_apply_list_creates_then_leaves_unchanged(cluster: SkiffProcess, ns: str,
                                                  tmp_path: Path) -> None:
    manifest = tmp_path / "list.yaml"
    manifest.write_text(LIST)

    out = cluster.kubectl("apply", "-n", ns, "-f", str(manifest)).stdout.splitlines()
    assert out == ["configmap/settings created", "deployment.apps/web created"]
    again = cluster.kubectl("apply", "-n", ns, "-f", str(manifest)).stdout.splitlines()
    assert again == ["configmap/settings unchanged", "deployment.apps/web unchanged"]

    assert cluster.get_json("configmap", "settings", "-n", ns)["data"] == {"mode": "fast"}
    deploy = cluster.get_json("deployment", "web", "-n", ns)
    [container] = deploy["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["memory"] == "64Mi"  # cpu: a number, valid too
    applied = json.loads(deploy["metadata"]["annotations"][
        "kubectl.kubernetes.io/last-applied-configuration"])
    assert applied["kind"] == "Deployment" and applied["metadata"]["namespace"] == ns


def test_create_list_with_mistakes_is_refused_before_any_write(cluster: SkiffProcess, ns: str,
                                                               tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(LIST.replace("replicas: 0", "replicas: 0\n    replicaz: 3")
                        .replace("containerPort: 80", 'containerPort: "eighty"'))

    res = cluster.kubectl("create", "-n", ns, "-f", str(manifest), check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f'error: error validating "{manifest}": error validating data: ['
        'ValidationError(Deployment.spec): unknown field "replicaz" in '
        'io.k8s.api.apps.v1.DeploymentSpec, '
        'ValidationError(Deployment.spec.template.spec.containers[0].ports[0].containerPort): '
        'invalid type for io.k8s.api.core.v1.ContainerPort.containerPort: got "string", '
        'expected "integer"]; '
        'if you choose to ignore these errors, turn validation off with --validate=false')
    for kind_name in ("configmap/settings", "deployment/web"):  # neither item was written
        missing = cluster.kubectl("get", kind_name, "-n", ns, check=False)
        assert missing.returncode == 1 and "NotFound" in missing.stderr, missing.stderr

    fixed = tmp_path / "unknown-only.yaml"
    fixed.write_text(LIST.replace("replicas: 0", "replicas: 0\n    replicaz: 3"))
    out = cluster.kubectl("create", "-n", ns, "-f", str(fixed), "--validate=false").stdout
    assert out.splitlines() == ["configmap/settings created", "deployment.apps/web created"]
    assert cluster.get_json("deployment", "web", "-n", ns)["spec"]["replicas"] == 0


def test_exported_list_replaces_cleanly(cluster: SkiffProcess, ns: str, tmp_path: Path) -> None:
    """What the server adds (uid, resourceVersion, timestamps, defaults) is valid against
    the v2 document: `get -o yaml` output goes straight back in."""
    manifest = tmp_path / "list.yaml"
    manifest.write_text(LIST)
    cluster.kubectl("create", "-n", ns, "-f", str(manifest))
    exported = cluster.kubectl("get", "configmap/settings", "deployment/web", "-n", ns,
                               "-o", "yaml").stdout
    listing = yaml.safe_load(exported)
    assert listing["kind"] == "List"
    written = listing["items"][1]["metadata"]
    assert {"uid", "resourceVersion", "creationTimestamp", "generation"} <= set(written)
    dump = tmp_path / "exported.yaml"
    dump.write_text(exported.replace("mode: fast", "mode: slow"))

    out = cluster.kubectl("replace", "-f", str(dump)).stdout.splitlines()
    assert out == ["configmap/settings replaced", "deployment.apps/web replaced"]
    assert cluster.get_json("configmap", "settings", "-n", ns)["data"] == {"mode": "slow"}


def test_openapi_v2_json_and_explain(cluster: SkiffProcess) -> None:
    doc = json.loads(cluster.kubectl("get", "--raw", "/openapi/v2").stdout)
    assert doc["swagger"] == "2.0"
    assert doc["definitions"]["io.k8s.api.apps.v1.Deployment"][
        "x-kubernetes-group-version-kind"] == [{"group": "apps", "kind": "Deployment",
                                                "version": "v1"}]
    v3 = cluster.kubectl("explain", "deployment.spec.replicas").stdout
    assert "FIELD: replicas <integer>" in v3
    v2 = cluster.kubectl("explain", "--output", "plaintext-openapiv2",
                         "deployment.spec.replicas").stdout
    assert "FIELD:    replicas <integer>" in v2
