"""Helpers for the process-runtime tests: a kubelet on the process runtime, pods, waits,
and the means to run things as an unprivileged user.

In-process tests run the kubelet as the test's user (root here) with user namespaces;
the ``nobody`` tests run a whole node (node_runner.py) as the unprivileged user
``nobody`` in a data directory it owns, which is what proves the runtime needs no root.
Every container command carries a per-test marker, so :func:`marked_processes` finds
anything left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from skiff.client.resources import EVENTS, PODS
from skiff.client.rest import ApiClient
from skiff.kubelet.agent import Kubelet
from skiff.kubelet.images.store import ImageStore
from skiff.kubelet.podnetworking import LoopbackNetwork
from skiff.kubelet.runtime.process import ProcessRuntime

Obj = dict[str, Any]
IMAGE = "busybox:test"
DEADLINE = 20.0
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
SRC = Path(__file__).resolve().parents[3] / "src"
MARKER_ENV = "SKIFF_TEST_MARKER"


class Node:
    """A Kubelet (``node-1``) on the process runtime, stoppable and restartable."""

    def __init__(self, client: ApiClient, root: Path, store: ImageStore, *,
                 isolation: str = "userns", name: str = "node-1") -> None:
        self.client, self.root, self.store, self.name = client, root, store, name
        self.isolation = isolation
        self.kubelet: Kubelet | None = None
        self.task: asyncio.Task[None] | None = None

    def runtime(self) -> ProcessRuntime:
        return ProcessRuntime(self.root / "runtime", isolation=self.isolation)

    async def start(self) -> Kubelet:
        self.kubelet = Kubelet(self.client, node_name=self.name, data_dir=self.root / "kubelet",
                               pod_cidr=None, runtime=self.runtime(), images=self.store,
                               network=LoopbackNetwork("127.0.0.1"), node_ip="127.0.0.1",
                               backoff_base=0.25, backoff_cap=2.0)
        self.task = asyncio.create_task(self.kubelet.run())
        ready = asyncio.ensure_future(self.kubelet.ready.wait())
        done, _ = await asyncio.wait([ready, self.task], timeout=DEADLINE,
                                     return_when=asyncio.FIRST_COMPLETED)
        if self.task in done:
            ready.cancel()
            self.task.result()
        assert ready in done, "the kubelet did not get ready"
        return self.kubelet

    async def stop(self) -> None:
        """Stop the kubelet only (containers keep running, as after a crash)."""
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
            self.task = None

    async def destroy(self) -> None:
        await self.stop()
        runtime = self.runtime()
        try:
            for container in await runtime.list():
                await runtime.remove(container.id)
            for sandbox in await runtime.list_sandboxes():
                await runtime.remove_sandbox(sandbox.id)
        finally:
            await runtime.close()


def pod(name: str, *containers: Obj, node: str = "node-1", **spec: Any) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 5,
                     "containers": list(containers), **spec}}


def container(name: str, script: str, marker: str, **fields: Any) -> Obj:
    """A busybox container running ``script``, marked by an environment variable (which
    its processes keep across exec, and pass on to their children)."""
    env = [{"name": MARKER_ENV, "value": marker}, *fields.pop("env", [])]
    return {"name": name, "image": IMAGE, "imagePullPolicy": "Never",
            "command": ["sh", "-c", script], "env": env, **fields}


async def wait_pod(client: ApiClient, name: str, check: Callable[[Obj], bool],
                   timeout: float = DEADLINE) -> Obj:
    """The pod once ``check`` holds (the current state counts, then every watch event)."""
    async def watch() -> Obj:
        while True:
            listing = await client.list(PODS, namespace="default", field_selector=f"metadata.name={name}")
            for item in listing.items:
                if check(item):
                    return item
            async with client.watch(PODS, namespace="default", resource_version=listing.resource_version,
                                    field_selector=f"metadata.name={name}", timeout_seconds=60) as events:
                async for type_, obj in events:
                    if type_ != "DELETED" and check(obj):
                        return obj
    try:
        return await asyncio.wait_for(watch(), timeout)
    except asyncio.TimeoutError:
        current = await client.list(PODS, namespace="default", field_selector=f"metadata.name={name}")
        raise AssertionError(f"pod {name} never matched; last: {current.items}") from None


async def wait_gone(client: ApiClient, name: str, timeout: float = DEADLINE) -> None:
    async def watch() -> None:
        listing = await client.list(PODS, namespace="default", field_selector=f"metadata.name={name}")
        if not listing.items:
            return
        async with client.watch(PODS, namespace="default", resource_version=listing.resource_version,
                                field_selector=f"metadata.name={name}") as events:
            async for type_, _ in events:
                if type_ == "DELETED":
                    return
    await asyncio.wait_for(watch(), timeout)


def state(pod: Obj, name: str) -> Obj:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status["name"] == name:
            return dict(status)
    return {}


def condition(pod: Obj, type_: str) -> str:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return str(cond["status"])
    return ""


def running(p: Obj) -> bool:
    statuses = (p.get("status") or {}).get("containerStatuses") or []
    return (p.get("status") or {}).get("phase") == "Running" and bool(statuses) and all(
        "running" in s["state"] for s in statuses)


async def wait_event(client: ApiClient, pod_name: str, reason: str, contains: str = "",
                     timeout: float = DEADLINE) -> Obj:
    async def look() -> Obj:
        while True:
            listing = await client.list(EVENTS, namespace="default")
            for event in listing.items:
                if event["involvedObject"].get("name") == pod_name and event["reason"] == reason \
                        and contains in event["message"]:
                    return dict(event)
            async with client.watch(EVENTS, namespace="default", resource_version=listing.resource_version,
                                    timeout_seconds=60) as events:
                async for type_, event in events:
                    if event["involvedObject"].get("name") == pod_name and event["reason"] == reason \
                            and contains in event["message"]:
                        return dict(event)
    return await asyncio.wait_for(look(), timeout)


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
