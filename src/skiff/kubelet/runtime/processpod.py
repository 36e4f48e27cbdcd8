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

(the same files the runc runtime keeps, minus namespaces, /dev/shm and cgroups;
the common part is .sandboxdir).
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
from pathlib import Path

from .interface import ContainerConfigError, SandboxSpec, SandboxState
from .sandboxdir import SandboxDirectories

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


class ProcessSandboxes(SandboxDirectories):
    default_hosts = DEFAULT_HOSTS

    def create(self, sandbox_id: str, spec: SandboxSpec) -> None:
        if spec.share_process_namespace:
            raise ContainerConfigError("shareProcessNamespace is not supported by the process runtime")
        directory = self.directory(sandbox_id)
        directory.mkdir(parents=True)
        try:
            hostname = socket.gethostname() if spec.host_network else (spec.hostname or spec.name)
            self.write_files(directory, spec, hostname)
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

    def destroy(self, sandbox_id: str) -> None:
        shutil.rmtree(self.directory(sandbox_id), ignore_errors=True)
