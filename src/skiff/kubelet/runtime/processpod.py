"""Pod sandboxes of the process runtime: directories, no namespaces.

Without root there is nothing a pod's containers can share at the kernel level
that a directory cannot give: they all use the host's network (the pod IP is the
node's), and each container gets its own user/mount/pid/uts/ipc namespaces when
the node supports user namespaces (see .rootless).  A sandbox is therefore just::

    sandboxes/<id>/
      sandbox.json      the spec, creation time, state (ready / not-ready)
      hosts             /etc/hosts of containers that get no hosts mount from the kubelet
      hostname          /etc/hostname
      resolv.conf       /etc/resolv.conf (the spec's, else the host's)

(the same files the runc runtime keeps, minus namespaces, /dev/shm and cgroups).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .interface import ContainerConfigError, NotFound, SandboxSpec, SandboxState, SandboxStatus

DEFAULT_HOSTS = ("# Kubernetes-managed hosts file.\n"
                 "127.0.0.1\tlocalhost\n"
                 "::1\tlocalhost ip6-localhost ip6-loopback\n")


@dataclasses.dataclass(frozen=True)
class SandboxFiles:
    """What a container of the sandbox mounts from it."""

    hostname: str
    host_network: bool
    host_pid: bool
    host_ipc: bool
    hosts: Path
    hostname_file: Path
    resolv_conf: Path


class ProcessSandboxes:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def directory(self, sandbox_id: str) -> Path:
        if not sandbox_id or "/" in sandbox_id or sandbox_id.startswith("."):
            raise NotFound(f"sandbox {sandbox_id!r} not found")
        return self.root / sandbox_id

    def load(self, sandbox_id: str) -> dict[str, Any]:
        try:
            record: dict[str, Any] = json.loads((self.directory(sandbox_id) / "sandbox.json").read_bytes())
        except FileNotFoundError:
            raise NotFound(f"sandbox {sandbox_id!r} not found") from None
        return record

    def create(self, sandbox_id: str, spec: SandboxSpec) -> None:
        if spec.share_process_namespace:
            raise ContainerConfigError("shareProcessNamespace is not supported by the process runtime")
        directory = self.directory(sandbox_id)
        directory.mkdir(parents=True)
        try:
            hostname = socket.gethostname() if spec.host_network else (spec.hostname or spec.name)
            (directory / "hosts").write_text(spec.hosts_file or DEFAULT_HOSTS)
            (directory / "hostname").write_text(hostname + "\n")
            resolv = spec.resolv_conf
            if not resolv:
                try:
                    resolv = Path("/etc/resolv.conf").read_text()
                except OSError:
                    resolv = ""
            (directory / "resolv.conf").write_text(resolv)
            record = {"id": sandbox_id, "spec": dataclasses.asdict(spec), "createdAt": time.time(),
                      "state": SandboxState.READY.value}
            _write_json(directory / "sandbox.json", record)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def files(self, sandbox_id: str) -> SandboxFiles:
        record = self.load(sandbox_id)
        if record["state"] != SandboxState.READY.value:
            raise ContainerConfigError(f"sandbox {sandbox_id} is not ready")
        spec = record["spec"]
        directory = self.directory(sandbox_id)
        return SandboxFiles(
            hostname=(directory / "hostname").read_text().strip(),
            host_network=bool(spec["host_network"]), host_pid=bool(spec["host_pid"]),
            host_ipc=bool(spec["host_ipc"]), hosts=directory / "hosts",
            hostname_file=directory / "hostname", resolv_conf=directory / "resolv.conf")

    def mark_not_ready(self, sandbox_id: str) -> None:
        record = self.load(sandbox_id)
        record["state"] = SandboxState.NOT_READY.value
        _write_json(self.directory(sandbox_id) / "sandbox.json", record)

    def status(self, sandbox_id: str) -> SandboxStatus:
        record = self.load(sandbox_id)
        spec = record["spec"]
        return SandboxStatus(
            id=sandbox_id, name=spec["name"], namespace=spec["namespace"], uid=spec["uid"],
            state=SandboxState(record["state"]),
            created_at=datetime.fromtimestamp(record["createdAt"], timezone.utc),
            hostname=spec["hostname"] or spec["name"],
            netns_path=None,               # every pod is on the host's network
            labels=dict(spec["labels"]), annotations=dict(spec["annotations"]))

    def ids(self) -> list[str]:
        return sorted(d.name for d in self.root.iterdir()
                      if (d / "sandbox.json").exists() and not d.name.startswith("."))

    def destroy(self, sandbox_id: str) -> None:
        shutil.rmtree(self.directory(sandbox_id), ignore_errors=True)


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)
