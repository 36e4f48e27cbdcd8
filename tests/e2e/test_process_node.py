"""`skiff up --runtime process`: pods as processes of the node's user, through kubectl.

The rootless node (docs/process-runtime.md) shares the host's network: a pod's IP is
127.0.0.1 and Services answer on their NodePorts.  The busybox image is imported as
for the runc node; nothing is pulled from the internet.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import socket
import struct
import subprocess
import termios
import time
from typing import Iterator

import pytest

from e2e_support import SkiffProcess, await_condition, http_get, new_base

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="module")
def node() -> Iterator[SkiffProcess]:
    cluster = SkiffProcess(new_base("process"), "--runtime", "process", "--metric-resolution", "1s")
    cluster.import_busybox()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.remove()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_pod_runs_logs_and_execs_as_a_process(node: SkiffProcess) -> None:
    runtime = node.get_json("node", "skiff-node-0")["status"]["nodeInfo"]["containerRuntimeVersion"]
    assert runtime.startswith("process://")
    node.kubectl("run", "hello", "--image=busybox", "--image-pull-policy=Never", "--",
                 "sh", "-c", "echo hello from $(hostname); exec sleep 3600")
    node.kubectl("wait", "--for=condition=Ready", "pod/hello", "--timeout=60s")
    pod = node.get_json("pod", "hello")
    assert pod["status"]["podIP"] == "127.0.0.1"  # the host's network, as documented
    assert node.kubectl("logs", "hello").stdout == "hello from hello\n"
    assert node.kubectl("exec", "hello", "--", "sh", "-c", "exit 4", check=False).returncode == 4
    if "+userns" in runtime:  # its own pid namespace: only the pod's processes
        ps = node.kubectl("exec", "hello", "--", "ps", "-o", "comm").stdout.split()
        assert sorted(ps[1:]) == ["ps", "sleep"]


def test_a_deployment_answers_on_its_node_port(node: SkiffProcess) -> None:
    port = free_port()  # pods share the host's ports
    node.kubectl("create", "deployment", "web", "--image=busybox", "--port", str(port), "--",
                 "sh", "-c", f'mkdir -p /tmp/www; echo "web $(hostname)" > /tmp/www/index.html; '
                 f"exec httpd -f -p {port} -h /tmp/www")
    # httpd is pid 1 of its pid namespace (userns mode), where a signal without a handler
    # is ignored, as in any container: SIGTERM does not end it, the grace period does.
    node.kubectl("patch", "deployment", "web", "--type=json", "-p",
                 '[{"op":"add","path":"/spec/template/spec/containers/0/imagePullPolicy","value":"Never"},'
                 '{"op":"add","path":"/spec/template/spec/terminationGracePeriodSeconds","value":2}]')
    node.kubectl("rollout", "status", "deployment/web", "--timeout=60s")
    node.kubectl("expose", "deployment", "web", "--type=NodePort", "--port=80",
                 f"--target-port={port}")
    node_port = node.get_json("service", "web")["spec"]["ports"][0]["nodePort"]
    await_condition(lambda: http_get(f"http://127.0.0.1:{node_port}/").startswith("web web-"),
                    "the NodePort to answer through the userspace proxy")
    node.kubectl("delete", "deployment", "web", "--wait=true")
    await_condition(lambda: node.get_json("pods", "-l", "app=web")["items"] == [],
                    "the pods to be gone")


def test_kubectl_top_measures_a_process_pod(node: SkiffProcess) -> None:
    """No cgroups here: a container's usage is its main process's (docs/autoscaling.md)."""
    node.kubectl("run", "spin", "--image=busybox", "--image-pull-policy=Never", "--",
                 "sh", "-c", "while :; do :; done")
    node.kubectl("run", "rest", "--image=busybox", "--image-pull-policy=Never", "--", "sleep", "3600")
    try:
        node.kubectl("wait", "--for=condition=Ready", "pod/spin", "pod/rest", "--timeout=60s")
        usage: dict[str, int] = {}

        def measured() -> bool:
            result = node.kubectl("top", "pod", "--no-headers", check=False)
            rows = [line.split() for line in result.stdout.splitlines()] if result.returncode == 0 else []
            usage.update({row[0]: int(row[1].rstrip("m")) for row in rows if row[0] in ("spin", "rest")})
            return len(usage) == 2

        await_condition(measured, "metrics of pods spin and rest")
        assert usage["spin"] >= 100 and usage["rest"] <= 20, usage   # a busy loop against a sleep
    finally:
        node.kubectl("delete", "pod", "spin", "rest", "--grace-period=1", check=False)


def test_exec_it_gets_a_terminal_of_the_containers_own(node: SkiffProcess) -> None:
    """A tty exec: `tty` names a terminal that exists inside the container (userns mode:
    its own devpts) and the window size is the caller's."""
    node.kubectl("run", "term", "--image=busybox", "--image-pull-policy=Never", "--", "sleep", "3600")
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    proc = None
    try:
        node.kubectl("wait", "--for=condition=Ready", "pod/term", "--timeout=60s")
        proc = subprocess.Popen(node.kubectl_argv("exec", "-it", "term", "--", "sh"), env=node.kubectl_env(),
                                stdin=terminal, stdout=terminal, stderr=terminal, start_new_session=True)
        os.close(terminal)
        terminal = -1
        os.write(controller, b"echo tty=$(tty) size=$(stty size); exit 4\n")
        seen = b""
        deadline = time.monotonic() + 30
        while proc.poll() is None:
            assert time.monotonic() < deadline, f"no answer from the shell: {seen!r}"
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                try:
                    seen += os.read(controller, 4096)
                except OSError:
                    break
        assert proc.wait(timeout=10) == 4
        runtime = node.get_json("node", "skiff-node-0")["status"]["nodeInfo"]["containerRuntimeVersion"]
        assert b"size=40 100" in seen, seen
        if "+userns" in runtime:
            assert b"tty=/dev/pts/" in seen, seen
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)
        node.kubectl("delete", "pod", "term", "--grace-period=1", check=False)


def test_the_node_is_shown_as_the_control_plane(node: SkiffProcess) -> None:
    """`kubectl get nodes`: ROLES control-plane, as kind, minikube and k3s show their node."""
    result = node.kubectl("get", "nodes", "--no-headers")
    name, status, roles = result.stdout.split()[:3]
    assert (name, status, roles) == ("skiff-node-0", "Ready", "control-plane")
    assert "node-role.kubernetes.io/control-plane" in node.get_json("node", "skiff-node-0")["metadata"]["labels"]
