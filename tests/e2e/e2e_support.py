"""Driving a real ``skiff up`` process the way a user does (used by tests/e2e).

Nothing here imports skiff: the cluster is a subprocess, an HTTPS port on loopback and
the admin kubeconfig it writes::

    skiff up --runtime fake --nodes 1 --port 0 --data-dir TMP   (own process group)
      │ prints "export KUBECONFIG=TMP/kubeconfig" once the API answers
      ▼
    SkiffProcess.start() ── sees that line, then GET /readyz answers 200
      │
      ├── .kubectl(*args)   the real kubectl, isolated HOME and --cache-dir
      ├── .api_client()     the official `kubernetes` client (load_kube_config)
      ├── .restart()        SIGTERM, then start again on the same data dir
      └── .kill()           SIGKILL the whole process group (crash tests)

Also: :func:`unique` names, :func:`render` for manifests with ``__KEY__``
placeholders, :func:`table` to read kubectl's column output, and
:class:`LineReader` to read a long-running kubectl's stdout against a deadline.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Callable

import yaml

MANIFESTS = Path(__file__).parent / "manifests"
REPO = Path(__file__).resolve().parents[2]

START_TIMEOUT = 30.0  # seconds for `skiff up` to print its KUBECONFIG line and be ready
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
KUBECTL_TIMEOUT = 60.0


def _skiff_command() -> list[str]:
    """The installed console script next to this interpreter, else ``python -m skiff``."""
    script = Path(sys.executable).with_name("skiff")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "skiff"]


class SkiffProcess:
    """One ``skiff up`` subprocess plus everything needed to drive it."""

    def __init__(self, base: Path, *extra_args: str, nodes: int = 1) -> None:
        self.base = base
        self.data_dir = base / "data"
        self.kubeconfig = self.data_dir / "kubeconfig"
        self.home = base / "home"  # HOME for kubectl: no ~/.kube leaks in or out
        self.cache_dir = base / "kube-cache"
        self.extra_args = extra_args
        self.nodes = nodes
        self.ingress_http: str | None = None   # the ingress controller's URLs, once announced
        self.ingress_https: str | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.server = ""
        self._stderr_path = base / "skiff.stderr"
        self._stderr_file: Any = None
        self._stdout_tail: deque[str] = deque(maxlen=200)
        self.starts = 0
        for d in (self.data_dir, self.home, self.cache_dir):
            d.mkdir(parents=True, exist_ok=True)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        assert self.proc is None, "already running"
        # A stale kubeconfig from a previous run must not be mistaken for readiness.
        self.kubeconfig.unlink(missing_ok=True)
        self._stderr_file = open(self._stderr_path, "a")
        self._stderr_file.write(f"\n===== start #{self.starts + 1} =====\n")
        self._stderr_file.flush()
        cmd = [*_skiff_command(), "up", "--runtime", "fake", "--nodes", str(self.nodes),
               "--port", "0", "--ingress-http-port", "0", "--ingress-https-port", "0",
               "--data-dir", str(self.data_dir), *self.extra_args]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr_file,
            text=True, start_new_session=True, cwd=str(self.base))
        self.starts += 1
        announced: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain_stdout, args=(self.proc, announced),
                         daemon=True, name="skiff-stdout").start()
        deadline = time.monotonic() + START_TIMEOUT
        try:
            # Event-driven: the CLI prints "export KUBECONFIG=..." once the API answers.
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(f"skiff up did not announce its kubeconfig within "
                                       f"{START_TIMEOUT:.0f}s\n{self.stderr_tail()}")
                try:
                    line = announced.get(timeout=remaining)
                except queue.Empty:
                    continue
                if line is None:
                    raise RuntimeError(f"skiff up exited with {self.proc.wait()} before it was "
                                       f"ready\n{self.stderr_tail()}")
                if line.startswith("ingress: "):
                    self.ingress_http, self.ingress_https = line.split()[1:3]
                if line.startswith("export KUBECONFIG="):
                    break
            assert self.kubeconfig.exists(), "KUBECONFIG announced but the file is missing"
            self.server = yaml.safe_load(self.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
            self._await_readyz(deadline)
        except BaseException:
            self.stop()
            raise

    def _drain_stdout(self, proc: subprocess.Popen[str], announced: "queue.Queue[str | None]") -> None:
        assert proc.stdout is not None
        for line in proc.stdout:  # keeps draining for the life of the process
            self._stdout_tail.append(line)
            announced.put(line.strip())
        announced.put(None)

    def _await_readyz(self, deadline: float) -> None:
        ctx = self.ssl_context()
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.server + "/readyz", context=ctx, timeout=5) as r:
                    if r.status == 200:
                        return
            except Exception as exc:  # noqa: BLE001 - reported below if it never succeeds
                last = exc
            assert self.proc is not None
            if self.proc.poll() is not None:
                break
            # The kubeconfig line is printed after the API answers, so this is a rare
            # retry; wait on the process (not a bare sleep) so an exit is seen at once.
            try:
                self.proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                pass
        raise RuntimeError(f"/readyz never answered 200 ({last!r})\n{self.stderr_tail()}")

    def stop(self) -> None:
        """SIGTERM the process group; SIGKILL it if it has not exited within the bound."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait()
        self._close_pipes(proc)

    def kill(self) -> None:
        """SIGKILL the whole process group at once: a crash, not a shutdown."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        self._signal_group(proc, signal.SIGKILL)
        proc.wait()
        self._close_pipes(proc)

    def import_busybox(self) -> None:
        """Build the busybox image from the host's busybox-static and import it into this
        cluster's data dir as busybox:latest (nothing is pulled from the internet)."""
        image = self.base / "busybox.tar"
        subprocess.run([sys.executable, str(REPO / "tests" / "fixtures" / "busybox_image.py"),
                        str(image)], check=True, capture_output=True)
        subprocess.run([sys.executable, "-m", "skiff", "image", "import", str(image), "--name",
                        "busybox:latest", "--data-dir", str(self.data_dir)],
                       check=True, capture_output=True, text=True)

    def crash(self) -> None:
        """SIGKILL the skiff process alone (not its group): what a crashed agent looks like.
        Whatever it started in sessions of their own (containers) keeps running."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.kill()
        proc.wait()
        self._close_pipes(proc)

    def restart(self) -> None:
        self.stop()
        self.start()

    @staticmethod
    def _signal_group(proc: subprocess.Popen[str], sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)  # start_new_session=True: the group id is our child's pid
        except ProcessLookupError:
            pass

    def _close_pipes(self, proc: subprocess.Popen[str]) -> None:
        if proc.stdout is not None:
            proc.stdout.close()
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- diagnostics -------------------------------------------------------------------

    def stderr_tail(self, lines: int = 60) -> str:
        try:
            text = self._stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no stderr)"
        return "\n".join(text.splitlines()[-lines:])

    # -- clients -----------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context built from the kubeconfig alone (CA + admin cert)."""
        cfg = yaml.safe_load(self.kubeconfig.read_text())
        user = cfg["users"][0]["user"]
        pem_dir = self.base / "client-pem"
        pem_dir.mkdir(exist_ok=True)
        cert, key = pem_dir / "admin.crt", pem_dir / "admin.key"
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        ca = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        ctx = ssl.create_default_context(cadata=ca)
        ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def kubectl_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
        env["HOME"] = str(self.home)
        env.pop("EDITOR", None)
        env.pop("VISUAL", None)
        if extra:
            env.update(extra)
        return env

    def kubectl_argv(self, *args: str) -> list[str]:
        return ["kubectl", f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}", *args]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                env: dict[str, str] | None = None,
                timeout: float = KUBECTL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster; with check, a non-zero exit fails
        the test with the command, its output and the server's stderr tail."""
        argv = self.kubectl_argv(*args)
        res = subprocess.run(argv, input=input, capture_output=True, text=True,
                             env=self.kubectl_env(env), timeout=timeout,
                             stdin=None if input is not None else subprocess.DEVNULL)
        if check and res.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {res.returncode}\n"
                f"--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}")
        return res

    def get_json(self, *args: str) -> Any:
        """``kubectl get ARGS -o json``, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def kubectl_popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start a long-running kubectl (``get -w``, ``wait``); the caller stops it."""
        return subprocess.Popen(self.kubectl_argv(*args), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.kubectl_env(env))

    def api_client(self) -> Any:
        """An ApiClient of the official ``kubernetes`` package, from the kubeconfig."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig),
                                client_configuration=configuration)
        configuration.connection_pool_maxsize = 16
        return client.ApiClient(configuration)


def new_base(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"skiff-e2e-{prefix}-"))


def unique(prefix: str) -> str:
    """A DNS-1123 name that no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def dns_label(text: str) -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return label[:40].strip("-") or "t"


def render(manifest: str, **values: str) -> str:
    """Read tests/e2e/manifests/<manifest> and replace ``__KEY__`` placeholders."""
    text = (MANIFESTS / manifest).read_text()
    for key, value in values.items():
        text = text.replace(f"__{key.upper()}__", value)
    leftover = re.findall(r"__[A-Z]+__", text)
    assert not leftover, f"{manifest}: unfilled placeholders {leftover}"
    return text


def table(output: str) -> tuple[list[str], list[list[str]]]:
    """Split kubectl's column output into (header, rows).

    kubectl pads columns with at least three spaces, and header names contain at
    most single spaces ("LAST SEEN", "ACCESS MODES"), so two or more spaces separate
    cells.  Empty cells do not occur in kubectl tables (it prints <none>)."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert lines, "no output"
    split = [re.split(r" {2,}", ln.strip()) for ln in lines]
    return split[0], split[1:]


class LineReader:
    """Reads one output stream of a subprocess on a thread, so a test can wait for a
    line with a deadline instead of sleeping."""

    def __init__(self, proc: subprocess.Popen[str], stream: str = "stdout") -> None:
        self.proc = proc
        self.stream = getattr(proc, stream)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True, name=f"kubectl-{stream}").start()

    def _pump(self) -> None:
        assert self.stream is not None
        for line in self.stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> str:
        """The first new line for which predicate(line) is true; fails at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching line within {timeout}s; got {self.lines!r}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"the stream ended; lines {self.lines!r}")
            self.lines.append(line)
            if predicate(line):
                return line

    def stop(self) -> None:
        """Kill the process (the one the test started, by its pid) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def await_condition(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll an API-visible condition with a deadline (each poll is a kubectl round trip)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"


def http_get(url: str, headers: dict[str, str] | None = None) -> str:
    """The body of a GET, or "" when the connection is refused (nothing listens yet)."""
    try:
        request = urllib.request.Request(url, headers=headers or {})
        with urllib.request.urlopen(request, timeout=5) as r:
            return str(r.read().decode())
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            return ""
        raise
