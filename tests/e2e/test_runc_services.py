"""Services in front of moving pods, on real containers, seen through kubectl (issue 6).

Runs on the session's runc cluster (conftest.py ``runc_node``).  Clients are busybox pods
that ``wget`` through the cluster's DNS and the node's nftables service proxy.
"""

from __future__ import annotations

import subprocess
import urllib.error
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e_support import SkiffProcess, await_condition, http_get

pytestmark = pytest.mark.e2e

Obj = dict[str, Any]

#: Each replica serves its own name; the readiness probe reads /tmp/ready.
SERVE_NAME = ('echo "$(hostname)" > /tmp/www/index.html; touch /tmp/ready; '
              "exec httpd -f -p 8080 -h /tmp/www")


@pytest.fixture
def node(runc_node: SkiffProcess) -> SkiffProcess:
    return runc_node


def apply(node: SkiffProcess, *docs: Obj) -> None:
    node.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))


def server_template(app: str) -> Obj:
    return {"metadata": {"labels": {"app": app}}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{
            "name": "web", "image": "busybox", "imagePullPolicy": "Never",
            "command": ["sh", "-c", "mkdir -p /tmp/www; " + SERVE_NAME],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]},
                               "periodSeconds": 1, "failureThreshold": 1}}]}}


def deployment(app: str, replicas: int) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                     "template": server_template(app)}}


def service(app: str, **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app},
            "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": "http"}], **spec}}


def client_pod(node: SkiffProcess, name: str) -> None:
    node.kubectl("run", name, "--image=busybox", "--image-pull-policy=Never", "--", "sleep", "3600")
    node.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s")


def answers(node: SkiffProcess, client: str, url: str, times: int) -> Counter[str]:
    loop = f"for i in $(seq {times}); do wget -q -O- {url}; done"
    out = node.kubectl("exec", client, "--", "sh", "-c", loop).stdout
    return Counter(line.strip() for line in out.splitlines() if line.strip())


def ready_addresses(node: SkiffProcess, name: str) -> set[str]:
    subsets = node.get_json("endpoints", name).get("subsets") or []
    return {a["targetRef"]["name"] for s in subsets for a in s.get("addresses") or []}


def test_an_unready_pod_leaves_the_endpoints_and_gets_no_traffic(node: SkiffProcess) -> None:
    apply(node, deployment("flaky", 2), service("flaky"))
    node.kubectl("rollout", "status", "deployment/flaky", "--timeout=90s")
    pods = sorted(p["metadata"]["name"] for p in node.get_json("pods", "-l", "app=flaky")["items"])
    await_condition(lambda: ready_addresses(node, "flaky") == set(pods), "both pods as endpoints")
    client_pod(node, "flaky-client")

    sick, healthy = pods
    node.kubectl("exec", sick, "--", "rm", "/tmp/ready")
    node.kubectl("wait", "--for=condition=Ready=false", f"pod/{sick}", "--timeout=30s")
    await_condition(lambda: ready_addresses(node, "flaky") == {healthy}, "the unready pod to leave")
    # The proxy follows the EndpointSlice within milliseconds; a few tries cover the gap.
    await_condition(lambda: set(answers(node, "flaky-client", "http://flaky/", 3)) == {healthy},
                    "traffic to avoid the unready pod")
    assert set(answers(node, "flaky-client", "http://flaky/", 30)) == {healthy}

    node.kubectl("exec", sick, "--", "touch", "/tmp/ready")
    await_condition(lambda: ready_addresses(node, "flaky") == set(pods), "the pod to rejoin")
    await_condition(lambda: set(answers(node, "flaky-client", "http://flaky/", 30)) == set(pods),
                    "both pods to answer again")


def test_session_affinity_client_ip_pins_a_client_to_one_replica(node: SkiffProcess) -> None:
    apply(node, deployment("sticky", 3), service("sticky", sessionAffinity="ClientIP"))
    node.kubectl("rollout", "status", "deployment/sticky", "--timeout=90s")
    await_condition(lambda: len(ready_addresses(node, "sticky")) == 3, "three endpoints")
    client_pod(node, "sticky-client")
    seen = answers(node, "sticky-client", "http://sticky/", 30)
    assert len(seen) == 1 and sum(seen.values()) == 30, seen
    assert next(iter(seen)).startswith("sticky-")


def test_statefulset_pods_resolve_through_their_headless_service(node: SkiffProcess) -> None:
    headless = service("db", clusterIP="None")
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"serviceName": "db", "replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                    "template": server_template("db")}}
    apply(node, headless, sts)
    node.kubectl("rollout", "status", "statefulset/db", "--timeout=90s")
    client_pod(node, "db-client")
    for ordinal in (0, 1):
        name = f"db-{ordinal}"
        ip = node.get_json("pod", name)["status"]["podIP"]
        # busybox's nslookup takes names as given; its wget resolves through the search path.
        looked_up = node.kubectl("exec", "db-client", "--", "nslookup",
                                 f"{name}.db.default.svc.cluster.local").stdout
        assert f"Address: {ip}" in looked_up, looked_up
        assert node.kubectl("exec", "db-client", "--", "wget", "-q", "-O-",
                            f"http://{name}.db:8080/").stdout.strip() == name
    # The headless name itself answers with every ready pod.
    every = node.kubectl("exec", "db-client", "--", "nslookup", "db.default.svc.cluster.local").stdout
    for ordinal in (0, 1):
        assert node.get_json("pod", f"db-{ordinal}")["status"]["podIP"] in every


def test_ingress_routes_paths_and_hosts_to_services(node: SkiffProcess) -> None:
    assert node.ingress_http is not None
    for app in ("apple", "banana", "cherry"):
        apply(node, deployment(app, 1), service(app))
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "fruit"},
               "spec": {"rules": [
                   {"http": {"paths": [
                       {"path": "/a", "pathType": "Prefix",
                        "backend": {"service": {"name": "apple", "port": {"number": 80}}}},
                       {"path": "/b", "pathType": "Prefix",
                        "backend": {"service": {"name": "banana", "port": {"number": 80}}}}]}},
                   {"host": "x.test", "http": {"paths": [
                       {"path": "/", "pathType": "Prefix",
                        "backend": {"service": {"name": "cherry", "port": {"number": 80}}}}]}}]}}
    apply(node, ingress)
    for app in ("apple", "banana", "cherry"):
        node.kubectl("rollout", "status", f"deployment/{app}", "--timeout=90s")
    node.kubectl("wait", "--for=jsonpath={.status.loadBalancer.ingress[0].ip}=127.0.0.1",
                 "ingress/fruit", "--timeout=30s")
    # busybox httpd serves /a/index.html from its -h directory: give each pod that path.
    for app, path in (("apple", "a"), ("banana", "b")):
        pod = node.get_json("pods", "-l", f"app={app}")["items"][0]["metadata"]["name"]
        node.kubectl("exec", pod, "--", "sh", "-c", f"mkdir -p /tmp/www/{path} && "
                     f"cp /tmp/www/index.html /tmp/www/{path}/index.html")
    base = node.ingress_http

    def answered_by(path: str, app: str, headers: dict[str, str] | None = None) -> bool:
        try:
            return http_get(base + path, headers).startswith(f"{app}-")
        except urllib.error.HTTPError:  # 503 until the endpoints reach the controller
            return False

    await_condition(lambda: answered_by("/a/", "apple"), "/a to reach apple")
    await_condition(lambda: answered_by("/b/", "banana"), "/b to reach banana")
    await_condition(lambda: answered_by("/", "cherry", {"Host": "x.test"}), "x.test to reach cherry")
    with pytest.raises(urllib.error.HTTPError) as missing:
        http_get(base + "/c/")
    assert missing.value.code == 404


def test_network_policy_default_deny_then_allow_by_label(node: SkiffProcess) -> None:
    apply(node, deployment("vault", 1), service("vault"))
    node.kubectl("rollout", "status", "deployment/vault", "--timeout=90s")
    await_condition(lambda: len(ready_addresses(node, "vault")) == 1, "the vault endpoint")
    client_pod(node, "stranger")
    node.kubectl("run", "friend", "--image=busybox", "--image-pull-policy=Never",
                 "--labels=access=vault", "--", "sleep", "3600")
    node.kubectl("wait", "--for=condition=Ready", "pod/friend", "--timeout=60s")

    def reaches(client: str) -> bool:
        return node.kubectl("exec", client, "--", "wget", "-q", "-O-", "http://vault/",
                            check=False).returncode == 0

    assert reaches("stranger") and reaches("friend")
    deny = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "vault-deny-all"},
            "spec": {"podSelector": {"matchLabels": {"app": "vault"}}, "policyTypes": ["Ingress"]}}
    apply(node, deny)
    await_condition(lambda: not reaches("friend"), "default deny to block")
    assert not reaches("stranger")
    allow = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
             "metadata": {"name": "vault-allow-friends"},
             "spec": {"podSelector": {"matchLabels": {"app": "vault"}},
                      "ingress": [{"from": [{"podSelector": {"matchLabels": {"access": "vault"}}}],
                                   "ports": [{"port": "http"}]}]}}
    apply(node, allow)
    await_condition(lambda: reaches("friend"), "the labelled client to be let through")
    assert not reaches("stranger")
    node.kubectl("delete", "networkpolicy", "vault-deny-all", "vault-allow-friends")
    await_condition(lambda: reaches("stranger"), "traffic to flow again without policies")


def test_a_pod_calls_the_api_server_with_its_service_account_token(node: SkiffProcess) -> None:
    """In-cluster config: https://kubernetes.default.svc with the pod's token and CA.

    busybox's TLS offers no ECDSA signature algorithms and skiff's certificates are
    ECDSA, so the client is the host's curl run in the pod's network namespace (the
    pod's view of the network: its resolv.conf is not used, the ClusterIP is)."""
    node.kubectl("create", "serviceaccount", "lister")
    node.kubectl("create", "role", "pod-lister", "--verb=list", "--resource=pods")
    node.kubectl("create", "rolebinding", "lister-lists", "--role=pod-lister",
                 "--serviceaccount=default:lister")
    node.kubectl("run", "in-cluster", "--image=busybox", "--image-pull-policy=Never",
                 "--overrides", '{"spec": {"serviceAccountName": "lister"}}', "--", "sleep", "86397")
    node.kubectl("wait", "--for=condition=Ready", "pod/in-cluster", "--timeout=60s")
    mounted = "/var/run/secrets/kubernetes.io/serviceaccount"
    token = node.kubectl("exec", "in-cluster", "--", "cat", f"{mounted}/token").stdout
    ca = node.base / "in-cluster-ca.crt"
    ca.write_text(node.kubectl("exec", "in-cluster", "--", "cat", f"{mounted}/ca.crt").stdout)
    netns = f"/proc/{_pid_of(node, 'in-cluster')}/ns/net"

    def call(what: str) -> tuple[int, str]:
        done = subprocess.run(
            ["nsenter", f"--net={netns}", "curl", "-s", "-o", "-", "-w", "\\n%{http_code}",
             "--cacert", str(ca), "--resolve", f"kubernetes.default.svc:443:{KUBERNETES_IP}",
             "-H", f"Authorization: Bearer {token}",
             f"https://kubernetes.default.svc/api/v1/namespaces/default/{what}"],
            capture_output=True, text=True, timeout=30)
        body, _, code = done.stdout.rpartition("\n")
        return int(code or 0), body

    code, body = call("pods")
    assert code == 200 and '"kind":"PodList"' in body.replace(" ", ""), (code, body)
    assert "in-cluster" in body
    code, body = call("secrets")
    assert code == 403 and 'cannot list resource \\"secrets\\"' in body, (code, body)


KUBERNETES_IP = "10.96.0.1"


def _pid_of(node: SkiffProcess, pod: str) -> int:
    """The host pid of the pod's (only) container process, found by its pod UID's cgroup."""
    uid = node.get_json("pod", pod)["metadata"]["uid"]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if uid in (entry / "cgroup").read_text() and (entry / "cmdline").read_bytes().startswith(b"sleep"):
                    return int(entry.name)
            except OSError:
                continue
    raise AssertionError(f"no process of pod {pod}")


def test_the_api_server_proxies_to_pods_services_and_the_kubelet(node: SkiffProcess) -> None:
    """pods/proxy, services/proxy, nodes/proxy, as `kubectl proxy` users reach them."""
    apply(node, deployment("proxied", 2), service("proxied"))
    try:
        node.kubectl("rollout", "status", "deployment/proxied", "--timeout=60s")
        pods = [p["metadata"]["name"] for p in node.get_json("pods", "-l", "app=proxied")["items"]]
        await_condition(lambda: len(ready_addresses(node, "proxied")) == 2, "both endpoints ready")

        base = "/api/v1/namespaces/default"
        assert node.kubectl("get", "--raw", f"{base}/pods/{pods[0]}:8080/proxy/").stdout.strip() == pods[0]
        seen = {node.kubectl("get", "--raw", f"{base}/services/proxied:80/proxy/").stdout.strip()
                for _ in range(12)}
        assert seen <= set(pods) and seen, seen          # random over the ready endpoints
        assert node.kubectl("get", "--raw", f"{base}/services/http:proxied:/proxy/").stdout.strip() in pods
        metrics = node.kubectl("get", "--raw", "/api/v1/nodes/skiff-node-0/proxy/metrics/resource").stdout
        assert "node_cpu_usage_seconds_total" in metrics

        missing = node.kubectl("get", "--raw", f"{base}/services/proxied:9999/proxy/", check=False)
        assert missing.returncode == 1
        assert "(ServiceUnavailable)" in missing.stderr and "no endpoints available for service" in missing.stderr

        # kubectl proxy: the same paths on a local port, no credentials needed
        proxy = subprocess.Popen(node.kubectl_argv("proxy", "--port=0"), env=node.kubectl_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proxy.stdout is not None
            line = proxy.stdout.readline()                 # "Starting to serve on 127.0.0.1:NNNNN"
            port = line.strip().rsplit(":", 1)[1]
            assert http_get(f"http://127.0.0.1:{port}{base}/services/proxied:80/proxy/").strip() in pods
        finally:
            proxy.kill()
            proxy.wait()
            for stream in (proxy.stdout, proxy.stderr):
                if stream is not None:
                    stream.close()
    finally:
        node.kubectl("delete", "deployment,service", "proxied", "--wait=false", check=False)
