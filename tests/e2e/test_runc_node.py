"""`skiff up --runtime runc`: real containers, pod networking, Services and DNS, through kubectl.

One cluster for the module (a real node owns the host's `skiff0` bridge and the
10.244.0.0/24 pod network, so only one runs at a time: the fixture holds the host-wide
lock RUNC_NODE_LOCK while its cluster lives, and anything else that starts
`skiff up --runtime runc` on this host - benches, other test runs - takes it too).  The busybox image is built
from Debian's busybox-static and imported, so nothing is pulled from the internet.
Every request goes to 127.0.0.1 or to addresses inside the cluster's own network.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import pytest

from e2e_support import LineReader, SkiffProcess, new_base, table

REPO = Path(__file__).resolve().parents[2]
#: Held (flock) by whoever runs the host's one runc node; see the module docstring.
RUNC_NODE_LOCK = Path("/tmp/skiff-runc-node.lock")

pytestmark = pytest.mark.e2e


def _skiff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "skiff", *args], check=True,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def node() -> Iterator[SkiffProcess]:
    with open(RUNC_NODE_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits for another run's node to finish
        yield from _runc_node()


def _runc_node() -> Iterator[SkiffProcess]:
    base = new_base("runc")
    image = base / "busybox.tar"
    subprocess.run([sys.executable, str(REPO / "tests" / "fixtures" / "busybox_image.py"), str(image)],
                   check=True, capture_output=True)
    cluster = SkiffProcess(base, "--runtime", "runc")
    _skiff("image", "import", str(image), "--name", "busybox:latest", "--data-dir", str(cluster.data_dir))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        leftovers = _leftovers(cluster.data_dir)
        cluster.remove()
        assert not leftovers, f"skiff up left these behind: {leftovers}"


def _leftovers(data_dir: Path) -> list[str]:
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if str(data_dir) in line]
    links = subprocess.run(["ip", "-o", "link", "show", "skiff0"], capture_output=True, text=True)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return (mounts + (["bridge skiff0"] if links.returncode == 0 else [])
            + [t for t in tables.splitlines() if "skiff" in t])


def _await(condition: "Callable[[], bool]", what: str, timeout: float = 30.0) -> None:
    """Poll an API-visible condition with a deadline (each poll is a kubectl round trip)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


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
    _await(lambda: len(node.get_json("endpoints", "hello").get("subsets", [{}])[0]
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
    _await(lambda: _http_get(f"http://127.0.0.1:{node_port}/").startswith("I am hello-"),
           "the NodePort to answer from the host's loopback")


def _http_get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return str(r.read().decode())
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            return ""
        raise


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
    _await(lambda: _http_get("http://127.0.0.1:8081/").startswith("lb lb-app-"),
           "the LoadBalancer address to answer")
