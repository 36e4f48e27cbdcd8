"""Pod sandboxes on disk: what a pod's containers share, without a pause container.

::

    sandboxes/<id>/
      sandbox.json       the spec, creation time, state (ready / not-ready)
      ns/net ns/ipc ns/uts   namespaces, bind-mounted in the namespace keeper's mount
                         namespace (see .namespaces, .nskeeper; sandbox.json says
                         "nsKeeper": true); absent for hostNetwork (net, uts) and
                         hostIPC (ipc)
      shm/               the pod's /dev/shm: one tmpfs, bind-mounted into every
                         container (absent with hostIPC: the host's /dev/shm)
      hosts hostname resolv.conf   bind-mounted at /etc/… in every container

With ``shareProcessNamespace: true`` the pod also gets a head process (.pause): pid 1
of a pid namespace every container joins (sandbox.json ``pidNamespaceHead``: its pid
and start time); removing the sandbox kills it.  That is the one process a pod
sandbox has, and only pods asking for a shared process namespace pay for it.

Removing a sandbox (after its containers) unmounts all of that, deletes the
directory and the pod's cgroup directory when no process is left in it; pod cgroups
left over that way are removed when the runtime starts next.
Naming, reading, listing and the sandbox.json / /etc files are .sandboxdir's
(shared with the process runtime's sandboxes).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import cgroups
from .bundle import SandboxView
from .interface import ContainerConfigError, NotFound, SandboxSpec, SandboxState
from .mounts import mount_tmpfs, unmount_all_at
from ..freshthread import on_fresh_thread
from .namespaces import create_here, remove_namespaces
from .nskeeper import NamespaceKeeper
from .sandboxdir import SandboxDirectories
from .shim import process_start_time
from .shimmed import process_alive

DEFAULT_HOSTS = ("# Kubernetes-managed hosts file.\n"
                 "127.0.0.1\tlocalhost\n"
                 "::1\tlocalhost ip6-localhost ip6-loopback\n"
                 "fe00::0\tip6-localnet\n"
                 "fe00::0\tip6-mcastprefix\n"
                 "fe00::1\tip6-allnodes\n"
                 "fe00::2\tip6-allrouters\n")


class Sandboxes(SandboxDirectories):
    default_hosts = DEFAULT_HOSTS

    def __init__(self, root: Path, cgroup_parent: str, keeper: NamespaceKeeper | None = None) -> None:
        super().__init__(root)
        self.cgroup_parent = cgroup_parent
        self.keeper = keeper
        self._uids: dict[str, str] = {}     # sandbox id -> pod uid

    async def create(self, sandbox_id: str, spec: SandboxSpec) -> None:
        directory = self.directory(sandbox_id)
        hostname = spec.hostname or spec.name
        kinds = ([] if spec.host_network else ["net", "uts"]) + ([] if spec.host_ipc else ["ipc"])
        head: dict[str, int] = {}

        def make() -> None:          # on a thread of its own: it ends in the pod's namespaces
            directory.mkdir(parents=True)
            keeper = self.keeper if kinds else None
            create_here(directory / "ns", kinds, hostname, keeper)
            if not spec.host_ipc:
                (directory / "shm").mkdir()
                mount_tmpfs(directory / "shm")
            record: dict[str, Any] = {"nsKeeper": True} if keeper else {}
            if head:
                record["pidNamespaceHead"] = head
            self.write_files(directory, spec, hostname, **record)

        try:
            if spec.share_process_namespace and not spec.host_pid:
                head.update(await asyncio.to_thread(start_pid_namespace_head))
            await on_fresh_thread(make)
        except BaseException:
            await asyncio.to_thread(self._destroy, directory, None, head or None)
            raise

    def view(self, sandbox_id: str) -> SandboxView:
        record = self.load(sandbox_id)
        directory = self.directory(sandbox_id)
        spec = record["spec"]
        if record["state"] != SandboxState.READY.value:
            raise ContainerConfigError(f"sandbox {sandbox_id} is not ready")
        ns = self._namespaces(record, directory)
        head = record.get("pidNamespaceHead")
        if head is not None and not process_alive(head["pid"], head["startTime"]):
            raise ContainerConfigError(f"the process namespace of sandbox {sandbox_id} is gone "
                                       "(its head process ended)")
        return SandboxView(
            hostname=spec["hostname"] or spec["name"],
            hosts_file=directory / "hosts", hostname_file=directory / "hostname",
            resolv_conf=directory / "resolv.conf",
            shm=None if spec["host_ipc"] else directory / "shm",
            netns=None if spec["host_network"] else ns / "net",
            utsns=None if spec["host_network"] else ns / "uts",
            ipcns=None if spec["host_ipc"] else ns / "ipc",
            pidns=Path(f"/proc/{head['pid']}/ns/pid") if head is not None else None,
            host_pid=spec["host_pid"], sysctls=dict(spec["sysctls"]))

    def pod_uid(self, sandbox_id: str) -> str:
        return str(self.load(sandbox_id)["spec"]["uid"])

    def netns_path(self, sandbox_id: str, spec: dict[str, Any]) -> Path | None:
        if spec["host_network"]:
            return None
        return self._namespaces(self.load(sandbox_id), self.directory(sandbox_id)) / "net"

    def _namespaces(self, record: dict[str, Any], directory: Path) -> Path:
        """Where the host opens the sandbox's namespace files."""
        if record.get("nsKeeper") and self.keeper is not None:
            return self.keeper.path(directory / "ns")
        return directory / "ns"

    def keep_namespaces(self) -> None:
        """A live keeper whenever its namespace holds pods' namespaces (after a node agent
        restart, or the keeper was killed): their paths lead through it."""
        if self.keeper is not None and self.keeper.pinned():
            self.keeper.ensure()

    def stop_keeper_if_unused(self) -> None:
        """End the namespace keeper when no sandbox is left (a node taken down, a test)."""
        if self.keeper is not None and not (self.root.is_dir() and any(self.root.iterdir())):
            self.keeper.stop()

    async def destroy(self, sandbox_id: str) -> None:
        directory = self.directory(sandbox_id)
        if not directory.exists():
            return
        try:
            record = self.load(sandbox_id)
            uid: str | None = str(record["spec"]["uid"])
            head = record.get("pidNamespaceHead")
        except (NotFound, KeyError, ValueError):
            uid, head = None, None
        await asyncio.to_thread(self._destroy, directory, uid, head)

    def _destroy(self, directory: Path, pod_uid: str | None, head: dict[str, int] | None = None) -> None:
        if head is not None:      # ending pid 1 ends whatever is left in the namespace
            stop_pid_namespace_head(head)
        # A sandbox's mounts are its namespace files and its /dev/shm, nothing else: one
        # umount2 each, no scan of the (with many pods, long) mount table.
        remove_namespaces(directory / "ns", self.keeper)
        unmount_all_at(directory / "shm")
        shutil.rmtree(directory, ignore_errors=True)
        self._uids.pop(directory.name, None)
        if pod_uid is not None:
            others = any(self._uid_of(d) == pod_uid for d in self.root.iterdir() if d != directory)
            if not others:
                cgroups.remove(cgroups.pod_path(self.cgroup_parent, pod_uid))

    def remove_stale_pod_cgroups(self) -> None:
        """Remove the pod cgroups no sandbox here accounts for (a crash, or a removal that
        found a process still in them), as a kubelet removes orphaned pod cgroups when it
        starts; one still holding a process stays."""
        live = {self._uid_of(d) for d in self.root.iterdir()} if self.root.is_dir() else set()
        for uid in cgroups.pod_uids(self.cgroup_parent) - live:
            cgroups.remove(cgroups.pod_path(self.cgroup_parent, uid))

    def _uid_of(self, directory: Path) -> str | None:
        """The pod a sandbox directory belongs to (remembered: it never changes)."""
        uid = self._uids.get(directory.name)
        if uid is None:
            try:
                uid = str(json.loads((directory / "sandbox.json").read_text())["spec"]["uid"])
            except (OSError, ValueError, KeyError):
                return None
            self._uids[directory.name] = uid
        return uid


PAUSE = Path(__file__).with_name("pause.py")


def start_pid_namespace_head() -> dict[str, int]:
    """A pod's shared pid namespace: its head process (.pause), by pid and start time."""
    done = subprocess.run([sys.executable, "-I", "-S", str(PAUSE)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, close_fds=True, start_new_session=True,
                          cwd="/", timeout=30)
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise ContainerConfigError(f"cannot make the pod's process namespace: {done.stderr.strip()}")
    pid = int(done.stdout.strip())
    return {"pid": pid, "startTime": process_start_time(str(pid))}


def stop_pid_namespace_head(head: dict[str, int]) -> None:
    if process_alive(head["pid"], head["startTime"]):
        try:
            os.kill(head["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
