"""Shared by the benchmarks: start a real ``skiff up`` process and talk to it over HTTPS."""

from __future__ import annotations

import base64
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import yaml

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def skiff_up(*extra: str, nodes: int = 1, announced: bool = True) -> Iterator["Running"]:
    """``skiff up --runtime fake`` (no ingress controller), yielded once it printed its
    KUBECONFIG line (its nodes have registered) or, with ``announced=False``, as soon
    as the kubeconfig exists (the API answers: what a cold start measures)."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        # A SIGTERM to the bench unwinds like an exception, so the finally below stops skiff.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    data = Path(tempfile.mkdtemp(prefix="skiff-bench-"))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "skiff", "up", "--runtime", "fake", "--nodes", str(nodes),
         "--port", "0", "--ingress-http-port", "-1", "--data-dir", str(data),
         "--log-level", "WARNING", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        if announced:
            for line in proc.stdout:
                if line.startswith("export KUBECONFIG="):
                    break
            else:
                raise RuntimeError("skiff up exited: " + (proc.stderr.read() if proc.stderr else ""))
        else:
            while not (data / "kubeconfig").exists():  # written atomically once the API answers
                if proc.poll() is not None:
                    raise RuntimeError("skiff up exited: " + (proc.stderr.read() if proc.stderr else ""))
                time.sleep(0.002)
        yield Running(proc, data, started)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run(["rm", "-rf", str(data)], check=False)


class Running:
    def __init__(self, proc: subprocess.Popen[str], data: Path, started: float) -> None:
        self.proc = proc
        self.data = data
        self.started = started
        cfg = yaml.safe_load((data / "kubeconfig").read_text())
        self.url = cfg["clusters"][0]["cluster"]["server"]
        self.kubeconfig = data / "kubeconfig"

    def ssl_context(self) -> ssl.SSLContext:
        pki = self.data / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        return ctx

    def rss_mb(self) -> float:
        """RSS of the ``skiff up`` process itself (the server)."""
        return _memory_mb(self.proc.pid, "Rss")

    def tree_memory_mb(self) -> tuple[float, float]:
        """(sum of RSS, sum of PSS) over ``skiff up`` and its component processes.  PSS
        counts a page shared by several processes once in all (each its share)."""
        pids = [self.proc.pid, *component_processes(self.proc.pid).values()]
        return (sum(_memory_mb(p, "Rss") for p in pids), sum(_memory_mb(p, "Pss") for p in pids))


def component_processes(pid: int) -> dict[str, int]:
    """``scheduler`` / ``node agent`` -> pid, for the child processes of the ``skiff up``
    whose pid is ``pid`` (none with ``--single-process``)."""
    found: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:  # a thread that just ended
            continue
        for child in children:
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:  # a child that just ended
                continue
            if b"skiff.scheduler" in argv:
                found["scheduler"] = int(child)
            elif b"agent" in argv:
                found["node agent"] = int(child)
    return found


def _memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, int(round(p / 100 * (len(ordered) - 1)))))
    return ordered[k]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
