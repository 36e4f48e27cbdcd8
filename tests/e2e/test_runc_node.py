"""`skiff up --runtime runc`: real containers, pod networking, Services and DNS, through kubectl.

The session's one runc cluster (conftest.py ``runc_node``: it owns the host's `skiff0`
bridge and the 10.244.0.0/24 pod network, so only one runs at a time).  The busybox image is
built from Debian's busybox-static and imported, so nothing is pulled from the internet.
Every request goes to 127.0.0.1 or to addresses inside the cluster's own network.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from e2e_support import LineReader, SkiffProcess, await_condition, http_get, table

pytestmark = pytest.mark.e2e


@pytest.fixture
def node(runc_node: SkiffProcess) -> SkiffProcess:
    return runc_node


def _run_busybox(node: SkiffProcess, name: str, *command: str) -> None:
    node.kubectl("run", name, "--image=busybox", "--image-pull-policy=Never", "--", *command)
    node.kubectl("wait", "--for=condition=Ready", f"pod/{name}", "--timeout=60s")


def test_a_pod_runs_isolated_and_answers_through_port_forward(node: SkiffProcess) -> None:
    _run_busybox(node, "web", "httpd", "-f", "-vv", "-p", "8080")
    pod = node.get_json("pod", "web")
    assert pod["status"]["podIP"].startswith("10.244.0.")
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("runc://")

    ps = node.kubectl("exec", "web", "--", "ps").stdout.splitlines()
    commands = [line.split(None, 2)[2] for line in ps[1:]]
    assert commands == ["httpd -f -vv -p 8080", "ps"]  # only the pod's own processes
    assert node.kubectl("exec", "web", "--", "sh", "-c", "exit 3", check=False).returncode == 3

    forward = node.kubectl_popen("port-forward", "pod/web", ":8080")
    try:
        line = LineReader(forward).wait_for(lambda ln: ln.startswith("Forwarding from 127.0.0.1:"))
        port = int(line.split("127.0.0.1:")[1].split()[0])
        with pytest.raises(urllib.error.HTTPError) as answer:  # httpd has no index page: 404
            urllib.request.urlopen(f"http://127.0.0.1:{port}/hello", timeout=10)
        assert answer.value.code == 404
    finally:
        forward.kill()
        forward.wait()
    logs = node.kubectl("logs", "web").stdout
    assert "url:/hello" in logs and "response:404" in logs  # the request, as the pod logged it


def test_a_service_balances_over_its_pods_by_name_and_cluster_ip(node: SkiffProcess) -> None:
    script = 'echo "I am $(hostname)" > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "hello"}},
                 "template": {"metadata": {"labels": {"app": "hello"}}, "spec": {"containers": [{
                     "name": "hello", "image": "busybox", "imagePullPolicy": "Never",
                     "command": ["sh", "-c", script], "ports": [{"containerPort": 8080}],
                     "readinessProbe": {"httpGet": {"path": "/index.html", "port": 8080},
                                        "periodSeconds": 1}}]}}}}
    node.kubectl("apply", "-f", "-", input=json.dumps(deployment))
    node.kubectl("expose", "deployment", "hello", "--port=80", "--target-port=8080")
    node.kubectl("rollout", "status", "deployment/hello", "--timeout=90s")
    await_condition(lambda: len(node.get_json("endpoints", "hello").get("subsets", [{}])[0]
                       .get("addresses", [])) == 3, "three ready endpoints")
    _run_busybox(node, "client", "sleep", "3600")
    cluster_ip = node.get_json("service", "hello")["spec"]["clusterIP"]

    for target in ("hello", "hello.default", "hello.default.svc.cluster.local", cluster_ip):
        out = node.kubectl("exec", "client", "--", "wget", "-q", "-O-", f"http://{target}/").stdout
        assert out.startswith("I am hello-"), (target, out)

    pods = {p["metadata"]["name"] for p in node.get_json("pods", "-l", "app=hello")["items"]}
    loop = "for i in $(seq 60); do wget -q -O- http://hello/; done"
    answers = node.kubectl("exec", "client", "--", "sh", "-c", loop).stdout.split("\n")
    seen = {a.removeprefix("I am ").strip() for a in answers if a.strip()}
    assert seen == pods  # every replica answered at least once over 60 requests

    node.kubectl("expose", "deployment", "hello", "--name=hello-np", "--type=NodePort",
                 "--port=80", "--target-port=8080")
    node_port = node.get_json("service", "hello-np")["spec"]["ports"][0]["nodePort"]
    # Until its EndpointSlice reaches the proxy, the new Service rejects connections at
    # once (as kube-proxy does); then it answers.
    await_condition(lambda: http_get(f"http://127.0.0.1:{node_port}/").startswith("I am hello-"),
           "the NodePort to answer from the host's loopback")


def test_pods_table_shows_real_node_and_ip(node: SkiffProcess) -> None:
    header, rows = table(node.kubectl("get", "nodes", "-o", "wide").stdout)
    assert rows[0][header.index("STATUS")] == "Ready"
    assert rows[0][header.index("CONTAINER-RUNTIME")].startswith("runc://")


def test_a_load_balancer_service_answers_on_its_address(node: SkiffProcess) -> None:
    node.kubectl("create", "deployment", "lb-app", "--image=busybox", "--", "sh", "-c",
                 'echo "lb $(hostname)" > /tmp/index.html; exec httpd -f -p 8080 -h /tmp')
    node.kubectl("patch", "deployment", "lb-app", "--type=json", "-p",
                 '[{"op":"add","path":"/spec/template/spec/containers/0/imagePullPolicy","value":"Never"}]')
    node.kubectl("rollout", "status", "deployment/lb-app", "--timeout=60s")
    node.kubectl("expose", "deployment", "lb-app", "--type=LoadBalancer", "--port=8081",
                 "--target-port=8080")
    node.kubectl("wait", "--for=jsonpath={.status.loadBalancer.ingress[0].ip}=127.0.0.1",
                 "service/lb-app", "--timeout=30s")
    await_condition(lambda: http_get("http://127.0.0.1:8081/").startswith("lb lb-app-"),
           "the LoadBalancer address to answer")
