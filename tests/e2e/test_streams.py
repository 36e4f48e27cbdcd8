"""The real kubectl against real containers: logs, exec, attach, cp, port-forward.

One small cluster for the module (tests/streams/streams_support.py): an in-process
API server with the streaming subresources, the kubelet's streaming server over
TLS, and busybox containers in runc that the test starts itself.  Also the
official ``kubernetes`` client (websocket exec and port-forward).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import secrets
import shutil
import signal
import struct
import sys
import tempfile
import termios
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "streams"))

from streams_support import Container, StreamCluster, busybox_store  # noqa: E402

if os.geteuid() != 0:
    raise RuntimeError("the streaming end-to-end tests run runc containers: they need root")

pytestmark = pytest.mark.asyncio(loop_scope="module")

LOG_MAX_SIZE = 16 << 10    # small, so that a chatty container's log rotates
KUBECTL_1_27 = "/usr/lib/google-cloud-sdk/bin/kubectl.1.27"   # SPDY only, for exec and port-forward
HTTPD = ("mkdir -p /www && echo hello-from-pod > /www/index.html && "
         "exec httpd -f -v -p 8080 -h /www")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster() -> AsyncIterator[StreamCluster]:
    base = Path(tempfile.mkdtemp(prefix="skiff-streams-"))
    try:
        store, image = busybox_store(base)
        running = StreamCluster(base, store, image, log_max_size=LOG_MAX_SIZE, log_max_files=3)
        try:
            await running.start()
            yield running
        finally:
            await running.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


async def wait_for_log(cluster: StreamCluster, pod: str, container: str, text: bytes) -> None:
    """Until the container's log has a line ``text`` (inotify, no polling)."""
    assert cluster.runtime is not None
    cid = cluster.locator.current[("default", pod, container)]

    async def scan() -> None:
        assert cluster.runtime is not None
        async for record in cluster.runtime.logs(cid, follow=True):
            if record.content == text:
                return
        raise AssertionError(f"{pod}/{container} exited without logging {text!r}")

    await asyncio.wait_for(scan(), 20)


# -- logs ------------------------------------------------------------------------------------


async def test_logs_options_containers_and_deployments(cluster: StreamCluster) -> None:
    pod = name("logs")
    await cluster.run_pod(pod, Container("app", ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; "
                                                 "exec sleep 1000"]),
                          Container("side", ["sh", "-c", "echo side says hi >&2; exec sleep 1000"]),
                          labels={"app": pod})
    await wait_for_log(cluster, pod, "app", b"line 5")
    await wait_for_log(cluster, pod, "side", b"side says hi")
    lines = "".join(f"line {i}\n" for i in range(1, 6))
    assert await cluster.kubectl_ok("logs", pod, "-c", "app") == lines
    defaulted = await cluster.kubectl("logs", pod)
    assert defaulted.stdout == lines
    assert f'Defaulted container "app" out of: app, side' in defaulted.stderr
    assert await cluster.kubectl_ok("logs", pod, "-c", "app", "--tail=2") == "line 4\nline 5\n"
    stamped = await cluster.kubectl_ok("logs", pod, "-c", "app", "--tail=1", "--timestamps")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z line 5\n", stamped), stamped
    assert await cluster.kubectl_ok("logs", pod, "-c", "app", "--limit-bytes=8") == "line 1\nl"
    assert await cluster.kubectl_ok("logs", pod, "-c", "app", "--since=1h") == lines
    future = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await cluster.kubectl_ok("logs", pod, "-c", "app", f"--since-time={future}") == ""
    both = await cluster.kubectl_ok("logs", pod, "--all-containers", "--prefix")
    # kubectl walks the containers in no fixed order (a Go map); each one's lines stay in order.
    lines = both.splitlines()
    assert [ln for ln in lines if ln.startswith(f"[pod/{pod}/app]")] == \
        [f"[pod/{pod}/app] line {i}" for i in range(1, 6)]
    assert [ln for ln in lines if not ln.startswith(f"[pod/{pod}/app]")] == \
        [f"[pod/{pod}/side] side says hi"]
    wrong = await cluster.kubectl("logs", pod, "-c", "nope")
    assert wrong.returncode == 1
    assert f"container nope is not valid for pod {pod}" in wrong.stderr

    assert cluster.client is not None
    await cluster.client.request("POST", "/apis/apps/v1/namespaces/default/deployments", body={
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": pod},
        "spec": {"selector": {"matchLabels": {"app": pod}},
                 "template": {"metadata": {"labels": {"app": pod}},
                              "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}})
    assert await cluster.kubectl_ok("logs", f"deployment/{pod}", "-c", "side") == "side says hi\n"


async def test_logs_read_across_rotated_files(cluster: StreamCluster) -> None:
    pod = name("chatty")
    await cluster.run_pod(pod, Container("c", ["sh", "-c", "for i in $(seq 1 2000); do echo line $i; done; "
                                               "exec sleep 1000"]))
    await wait_for_log(cluster, pod, "c", b"line 2000")
    numbers = [int(line.removeprefix("line ")) for line in (await cluster.kubectl_ok("logs", pod)).split("\n")
               if line]
    assert numbers == list(range(numbers[0], 2001))        # whole lines, in order, up to the last
    assert numbers[0] > 1                                    # the oldest files were dropped ...
    assert len(numbers) * len("2024-05-01T12:00:00.123456789Z stdout F line 1000\n") > LOG_MAX_SIZE
    assert await cluster.kubectl_ok("logs", pod, "--tail=2") == "line 1999\nline 2000\n"


async def test_logs_follow_and_previous(cluster: StreamCluster) -> None:
    pod = name("follow")
    first = Container("c", ["sh", "-c", "mkfifo /tmp/stop; echo first; read x < /tmp/stop; echo bye"])
    await cluster.run_pod(pod, first)
    await wait_for_log(cluster, pod, "c", b"first")
    follower = await asyncio.create_subprocess_exec(
        *cluster.kubectl_argv("logs", "-f", pod), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=cluster.kubectl_env())
    try:
        assert follower.stdout is not None
        assert await asyncio.wait_for(follower.stdout.readline(), 20) == b"first\n"
        # the container writes another line while kubectl follows
        await cluster.kubectl_ok("exec", pod, "--", "sh", "-c", "echo second > /proc/1/fd/1")
        assert await asyncio.wait_for(follower.stdout.readline(), 20) == b"second\n"
        await cluster.kubectl_ok("exec", pod, "--", "sh", "-c", "echo > /tmp/stop")
        rest, errors = await asyncio.wait_for(follower.communicate(), 20)
        assert (follower.returncode, rest, errors) == (0, b"bye\n", b"")   # ends with the container
    finally:
        if follower.returncode is None:
            follower.kill()
            await follower.wait()

    missing = await cluster.kubectl("logs", pod, "--previous")
    assert missing.returncode == 1
    assert f'previous terminated container "c" in pod "{pod}" not found' in missing.stderr
    await cluster.restart("default", pod, Container("c", ["sh", "-c", "echo again; exec sleep 1000"]))
    await wait_for_log(cluster, pod, "c", b"again")
    assert await cluster.kubectl_ok("logs", pod, "--previous") == "first\nsecond\nbye\n"
    assert await cluster.kubectl_ok("logs", pod) == "again\n"


# -- exec, attach, cp -----------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
async def test_exec(cluster: StreamCluster, transport: str) -> None:
    env = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"} if transport == "spdy" else None
    pod = name("exec")
    await cluster.run_pod(pod, Container("c", ["sleep", "1000"]))
    assert await cluster.kubectl_ok("exec", pod, "--", "echo", "hi", env=env) == "hi\n"
    failed = await cluster.kubectl("exec", pod, "--", "sh", "-c", "echo out; echo err >&2; exit 3", env=env)
    assert (failed.returncode, failed.stdout) == (3, "out\n")
    assert failed.stderr == "err\ncommand terminated with exit code 3\n"
    upper = await cluster.kubectl_ok("exec", "-i", pod, "--", "tr", "a-z", "A-Z",
                                     input=b"stdin reaches the container\n", env=env)
    assert upper == "STDIN REACHES THE CONTAINER\n"
    processes = await cluster.kubectl_ok("exec", pod, "--", "ps", "-o", "pid,args", env=env)
    rows = [line.split(None, 1) for line in processes.splitlines()[1:]]
    assert [args for _, args in rows] == ["sleep 1000", "ps -o pid,args"]   # only the pod's
    wrong = await cluster.kubectl("exec", pod, "-c", "nope", "--", "true", env=env)
    assert wrong.returncode == 1
    assert f"container nope is not valid for pod {pod}" in wrong.stderr


async def test_exec_refused_in_a_completed_pod(cluster: StreamCluster) -> None:
    pod = name("done")
    await cluster.run_pod(pod, Container("c", ["true"]))
    assert cluster.client is not None
    current = await cluster.client.request("GET", f"/api/v1/namespaces/default/pods/{pod}")
    current["status"]["phase"] = "Succeeded"
    await cluster.client.request("PUT", f"/api/v1/namespaces/default/pods/{pod}/status", body=current)
    refused = await cluster.kubectl("exec", pod, "--", "true")
    assert refused.returncode == 1
    assert "cannot exec into a container in a completed pod; current phase is Succeeded" in refused.stderr


class Terminal:
    """kubectl on a pseudo-terminal, as a user's shell would run it."""

    def __init__(self, columns: int, rows: int) -> None:
        self.master, self.slave = pty.openpty()
        self.resize(columns, rows, fd=self.slave)
        self.output = bytearray()
        self.changed = asyncio.Event()
        asyncio.get_running_loop().add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
        self.output += data
        self.changed.set()

    def resize(self, columns: int, rows: int, fd: int | None = None) -> None:
        fcntl.ioctl(self.master if fd is None else fd, termios.TIOCSWINSZ,
                    struct.pack("HHHH", rows, columns, 0, 0))

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    async def expect(self, pattern: str) -> None:
        while not re.search(pattern.encode(), bytes(self.output)):
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 20)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)


async def test_exec_with_a_terminal(cluster: StreamCluster) -> None:
    pod = name("tty")
    await cluster.run_pod(pod, Container("c", ["sleep", "1000"]))
    terminal = Terminal(columns=111, rows=33)
    kubectl = await asyncio.create_subprocess_exec(
        *cluster.kubectl_argv("exec", "-it", pod, "--", "sh"), stdin=terminal.slave,
        stdout=terminal.slave, stderr=terminal.slave, env=cluster.kubectl_env(),
        start_new_session=True)
    os.close(terminal.slave)
    try:
        # Type once the shell prompts: kubectl sends the window size when it connects, and
        # input typed earlier could reach the shell before the size did (stty: 0 0).
        await terminal.expect(r"# ")
        terminal.type("tty; stty size; echo $((6 * 7))\r")
        await terminal.expect(r"/dev/pts/\d+\r\r?\n33 111\r\r?\n42")
        terminal.resize(columns=122, rows=44)
        kubectl.send_signal(signal.SIGWINCH)         # what the terminal does when resized
        terminal.type("stty size\r")
        await terminal.expect(r"44 122")
        terminal.type("exit 5\r")
        assert await asyncio.wait_for(kubectl.wait(), 20) == 5
        await terminal.expect("command terminated with exit code 5")
    finally:
        if kubectl.returncode is None:
            kubectl.kill()
            await kubectl.wait()
        terminal.close()


async def test_attach(cluster: StreamCluster) -> None:
    pod = name("attach")
    # The container lingers a moment after answering, so its last output is not raced by
    # its own exit.
    await cluster.run_pod(pod, Container("c", ["sh", "-c", "read line; echo got $line; echo bye >&2; sleep 1"],
                                         stdin=True))
    attached = await cluster.kubectl("attach", "-i", pod, input=b"hello\n")
    assert (attached.returncode, attached.stdout) == (0, "got hello\n")
    assert attached.stderr.endswith("bye\n")


async def test_cp_both_ways(cluster: StreamCluster, tmp_path: Path) -> None:
    pod = name("cp")
    await cluster.run_pod(pod, Container("c", ["sleep", "1000"]))
    payload = os.urandom(300_000)
    (tmp_path / "blob.bin").write_bytes(payload)
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "note.txt").write_text("a note\n")
    await cluster.kubectl_ok("cp", str(tmp_path / "blob.bin"), f"{pod}:/tmp/blob.bin")
    await cluster.kubectl_ok("cp", str(tmp_path / "dir"), f"{pod}:/tmp/dir")
    listing = await cluster.kubectl_ok("exec", pod, "--", "sh", "-c", "wc -c < /tmp/blob.bin; cat /tmp/dir/note.txt")
    assert listing.split() == [str(len(payload)), "a", "note"]
    await cluster.kubectl_ok("cp", f"{pod}:/tmp/blob.bin", str(tmp_path / "back.bin"))
    await cluster.kubectl_ok("cp", f"{pod}:/tmp/dir", str(tmp_path / "dir-back"))
    assert (tmp_path / "back.bin").read_bytes() == payload
    assert (tmp_path / "dir-back" / "note.txt").read_text() == "a note\n"


# -- port-forward -----------------------------------------------------------------------------


async def http_get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.0\r\nHost: pod\r\n\r\n".encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 20)
    finally:
        writer.close()


@pytest.mark.parametrize("transport", ["websocket", "spdy"])
async def test_port_forward(cluster: StreamCluster, transport: str) -> None:
    env = {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"} if transport == "spdy" else None
    pod = name("pf")
    await cluster.run_pod(pod, Container("web", ["sh", "-c", HTTPD]))
    forward = await asyncio.create_subprocess_exec(
        *cluster.kubectl_argv("port-forward", f"pod/{pod}", ":8080", ":9999"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cluster.kubectl_env(env))
    try:
        assert forward.stdout is not None
        ports = {}
        while len(ports) < 2:
            line = (await asyncio.wait_for(forward.stdout.readline(), 20)).decode()
            match = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", line)
            if match:
                ports[int(match.group(2))] = int(match.group(1))
        for _ in range(3):
            answer = await http_get(ports[8080], "/index.html")
            assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\nhello-from-pod\n")
        # nothing listens on 9999 in the pod: kubectl reports it and gives up
        assert await http_get(ports[9999], "/") == b""
        _, errors = await asyncio.wait_for(forward.communicate(), 20)
        assert b"error forwarding port 9999 to pod" in errors
        assert b"lost connection to pod" in errors
    finally:
        if forward.returncode is None:
            forward.kill()
            await forward.wait()
    logs = await cluster.kubectl_ok("logs", pod)
    assert logs.count("response:200") == 3      # httpd -v logged each forwarded request


async def test_the_python_client(cluster: StreamCluster) -> None:
    pod = name("py")
    await cluster.run_pod(pod, Container("web", ["sh", "-c", HTTPD]))

    def use_client() -> tuple[int | None, str, str, bytes]:
        from kubernetes import client, config
        from kubernetes.stream import portforward, stream

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
        core = client.CoreV1Api(client.ApiClient(configuration))
        session = stream(core.connect_get_namespaced_pod_exec, pod, "default",
                         command=["sh", "-c", "echo out; echo err >&2; exit 2"],
                         stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False)
        session.run_forever(timeout=20)
        out, err = session.read_stdout(), session.read_stderr()
        code = session.returncode
        session.close()
        forwarded = portforward(core.connect_get_namespaced_pod_portforward, pod, "default", ports="8080")
        sock = forwarded.socket(8080)
        sock.setblocking(True)
        sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        sock.close()
        forwarded.close()
        return code, out, err, answer

    code, out, err, answer = await asyncio.wait_for(asyncio.to_thread(use_client), 60)
    assert (code, out, err) == (2, "out\n", "err\n")
    assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"hello-from-pod\n")


async def test_an_older_kubectl_speaking_only_spdy(cluster: StreamCluster) -> None:
    pod = name("skew")
    await cluster.run_pod(pod, Container("web", ["sh", "-c", HTTPD]))
    result = await cluster.kubectl("exec", "-i", pod, "--", "sh", "-c", "cat; exit 4", input=b"old client\n",
                                   kubectl=KUBECTL_1_27)
    assert (result.returncode, result.stdout, result.stderr) == (
        4, "old client\n", "command terminated with exit code 4\n")
    forward = await asyncio.create_subprocess_exec(
        *cluster.kubectl_argv("port-forward", f"pod/{pod}", ":8080", kubectl=KUBECTL_1_27),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cluster.kubectl_env())
    try:
        assert forward.stdout is not None
        line = (await asyncio.wait_for(forward.stdout.readline(), 20)).decode()
        match = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
        assert match, line
        assert (await http_get(int(match.group(1)), "/index.html")).endswith(b"hello-from-pod\n")
    finally:
        forward.kill()
        await forward.wait()
