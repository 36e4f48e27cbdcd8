"""Helpers for the process-runtime tests: a kubelet on the process runtime, pods, waits,
and the means to run things as an unprivileged user.

In-process tests run the kubelet as the test's user (root here) with user namespaces;
the ``nobody`` tests run a whole node (node_runner.py) as the unprivileged user
``nobody`` in a data directory it owns, which is what proves the runtime needs no root.
Every container command carries a per-test marker, so :func:`marked_processes` finds
anything left behind.  The kubelet harness, pod builders and waits are kubelet_node_support's.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from kubelet_node_support import (IMAGE, KubeletNode, Obj, condition, pod, state, wait_event, wait_gone,
                                  wait_pod)
from kubelet_node_support import container as busybox_container
from kubelet_node_support import running as every_container_running
from skiff.client.rest import ApiClient
from skiff.kubelet.images.store import ImageStore
from skiff.kubelet.podnetworking import LoopbackNetwork
from skiff.kubelet.runtime.process import ProcessRuntime

__all__ = ["IMAGE", "MARKER_ENV", "Node", "condition", "container", "kill_marked", "marked_processes",
           "new_marker", "nobody_dir", "nobody_python", "pod", "running", "state", "wait_event",
           "wait_gone", "wait_pod"]

NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
SRC = Path(__file__).resolve().parents[3] / "src"
MARKER_ENV = "SKIFF_TEST_MARKER"


class Node(KubeletNode):
    """A Kubelet (``node-1``) on the process runtime, stoppable and restartable."""

    def __init__(self, client: ApiClient, root: Path, store: ImageStore, *,
                 isolation: str = "userns", name: str = "node-1") -> None:
        super().__init__(client, root, store, name=name, pod_cidr=None,
                         network=LoopbackNetwork("127.0.0.1"))
        self.isolation = isolation

    def runtime(self) -> ProcessRuntime:
        return ProcessRuntime(self.root / "runtime", isolation=self.isolation)


def container(name: str, script: str, marker: str, **fields: Any) -> Obj:
    """A busybox container running ``script``, marked by an environment variable (which
    its processes keep across exec, and pass on to their children)."""
    env = [{"name": MARKER_ENV, "value": marker}, *fields.pop("env", [])]
    return busybox_container(name, script, env=env, **fields)


#: The pod is Running with every container running.
running = every_container_running()


def marked_processes(marker: str) -> list[str]:
    """Live processes with ``marker`` in their environment or command line (container
    processes carry it in MARKER_ENV; shims name their node's directory)."""
    found = []
    needle = marker.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as source:
                if source.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as source:
                cmdline = source.read()
            with open(f"/proc/{entry}/environ", "rb") as source:
                environ = source.read()
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry}: {command}")
    return found


def kill_marked(marker: str) -> list[str]:
    """SIGKILL whatever still carries ``marker`` (after a failed test); what it found."""
    found = marked_processes(marker)
    for line in found:
        with contextlib.suppress(OSError):
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
    return found


def new_marker() -> str:
    return f"skiff-test-{secrets.token_hex(6)}"


# -- the unprivileged user ---------------------------------------------------------------------


def nobody_dir() -> Path:
    """A fresh directory owned by ``nobody`` (removed by the caller with shutil.rmtree)."""
    path = Path(tempfile.mkdtemp(prefix="skiff-process-"))
    os.chmod(path, 0o755)
    shutil.chown(path, "nobody", "nogroup")
    return path


def nobody_python() -> list[str]:
    """An interpreter ``nobody`` can run with skiff and its dependencies importable
    (this machine's virtualenv lives under /root, which nobody cannot enter)."""
    site = next(p for p in sys.path if p.endswith("site-packages") and "venv" in p)
    env = ["env", f"PYTHONPATH={SRC}:{site}", "PYTHONDONTWRITEBYTECODE=1"]
    for candidate in (sys.executable, "/usr/bin/python3.11", "/usr/bin/python3"):
        probe = subprocess.run([*NOBODY, *env, "sh", "-c", '"$0" -c "import skiff, aiohttp"', candidate],
                               capture_output=True)
        if probe.returncode == 0:
            return [*NOBODY, *env, candidate]
    raise RuntimeError("no Python interpreter that nobody can run")
