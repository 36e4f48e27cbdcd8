"""RBAC end to end with the real kubectl: ServiceAccounts, roles, tokens, can-i, whoami."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import yaml

from e2e_support import SkiffProcess


def token_kubectl(cluster: SkiffProcess, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl with a bearer token only: no client certificate (it would win, as in Kubernetes)."""
    ca = Path(cluster.base) / "ca.crt"
    if not ca.exists():
        cfg = yaml.safe_load(cluster.kubeconfig.read_text())
        ca.write_bytes(base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]))
    argv = ["kubectl", "--kubeconfig=/dev/null", f"--cache-dir={cluster.cache_dir}-token",
            f"--server={cluster.server}", f"--certificate-authority={ca}", f"--token={token}", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=cluster.kubectl_env(),
                          stdin=subprocess.DEVNULL, timeout=60)


def test_service_account_gets_what_its_role_grants(cluster: SkiffProcess, ns: str) -> None:
    user = f"system:serviceaccount:{ns}:foo"
    cluster.kubectl("create", "serviceaccount", "foo", "-n", ns)
    denied = cluster.kubectl("auth", "can-i", "list", "pods", "-n", ns, f"--as={user}", check=False)
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    cluster.kubectl("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", ns)
    cluster.kubectl("create", "rolebinding", "foo-reads", "--role=pod-reader",
                    f"--serviceaccount={ns}:foo", "-n", ns)
    allowed = cluster.kubectl("auth", "can-i", "list", "pods", "-n", ns, f"--as={user}", check=False)
    assert (allowed.returncode, allowed.stdout.strip()) == (0, "yes")
    listing = cluster.kubectl("auth", "can-i", "--list", "-n", ns, f"--as={user}").stdout
    assert any(line.split()[:1] == ["pods"] and "[get list]" in line for line in listing.splitlines())

    token = cluster.kubectl("create", "token", "foo", "-n", ns).stdout.strip()
    assert token.count(".") == 2
    pods = token_kubectl(cluster, token, "get", "pods", "-n", ns)
    assert pods.returncode == 0, pods.stderr
    secrets = token_kubectl(cluster, token, "get", "secrets", "-n", ns)
    assert secrets.returncode == 1
    assert secrets.stderr.strip() == (
        f'Error from server (Forbidden): secrets is forbidden: User "{user}" cannot list resource '
        f'"secrets" in API group "" in the namespace "{ns}"')
    whoami = token_kubectl(cluster, token, "auth", "whoami").stdout
    assert f"Username    {user}" in " ".join(whoami.split("  ")) or user in whoami
    assert "system:serviceaccounts:" + ns in whoami


def test_whoami_and_impersonation_as_admin(cluster: SkiffProcess, ns: str) -> None:
    whoami = cluster.kubectl("auth", "whoami").stdout.split("\n")
    assert whoami[1].split() == ["Username", "kubernetes-admin"]
    assert whoami[2].split() == ["Groups", "[system:masters", "system:authenticated]"]
    denied = cluster.kubectl("get", "pods", "-n", ns, "--as=jane", "--as-group=devs", check=False)
    assert denied.returncode == 1
    assert (f'pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the '
            f'namespace "{ns}"') in denied.stderr
    cluster.kubectl("create", "rolebinding", "devs-view", "--clusterrole=view", "--group=devs", "-n", ns)
    assert cluster.kubectl("get", "pods", "-n", ns, "--as=jane", "--as-group=devs").returncode == 0
    assert cluster.kubectl("auth", "can-i", "get", "pods/log", "-n", ns, "--as=jane",
                           "--as-group=devs").stdout.strip() == "yes"
    assert cluster.kubectl("auth", "can-i", "create", "pods/exec", "-n", ns, "--as=jane",
                           "--as-group=devs", check=False).stdout.strip() == "no"


def test_pods_get_token_volume_and_namespaces_the_root_ca(cluster: SkiffProcess, ns: str) -> None:
    cluster.kubectl("run", "web", "--image=busybox", "-n", ns, "--restart=Never")
    pod = cluster.get_json("pod", "web", "-n", ns)
    volume = next(v for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-"))
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}
    assert {"name": volume["name"], "readOnly": True,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"} \
        in pod["spec"]["containers"][0]["volumeMounts"]
    waited = cluster.kubectl("wait", "--for=create", "configmap/kube-root-ca.crt", "-n", ns, "--timeout=20s")
    assert waited.returncode == 0
    ca = cluster.get_json("configmap", "kube-root-ca.crt", "-n", ns)["data"]["ca.crt"]
    assert ca.startswith("-----BEGIN CERTIFICATE-----")


def test_rbac_example_grants_pod_reading_only(cluster: SkiffProcess, ns: str) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "rbac.yaml"
    cluster.kubectl("apply", "-n", ns, "-f", str(example))
    user = f"--as=system:serviceaccount:{ns}:pod-reader"
    for verb, resource, answer in (("list", "pods", "yes"), ("get", "pods/log", "yes"),
                                   ("list", "secrets", "no"), ("delete", "pods", "no")):
        res = cluster.kubectl("auth", "can-i", verb, resource, "-n", ns, user, check=False)
        assert res.stdout.strip() == answer, (verb, resource)
