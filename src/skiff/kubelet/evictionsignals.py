"""The eviction signals of a real node, read from the kernel (the I/O half of .eviction).

::

    memory.available     MemTotal - working set of the root memory cgroup
                         (cgroup v1: memory.usage_in_bytes - total_inactive_file; cgroup v2
                         and no readable root: MemTotal - MemFree - Inactive(file), /proc/meminfo)
    nodefs.available     statvfs of the kubelet's data directory: f_bavail, f_blocks
    nodefs.inodesFree    the same file system: f_ffree, f_files
    imagefs.*            statvfs of the image store's directory
    pid.available        min(kernel.pid_max, kernel.threads-max) - tasks (/proc/loadavg)

Per pod, only when a pass has to rank pods (:meth:`NodeSignals.pod_usage`)::

    memory               each running container's cgroup working set: usage minus inactive
                         file pages (v1 memory.usage_in_bytes / memory.stat total_inactive_file,
                         v2 memory.current / memory.stat inactive_file)
    ephemeral-storage,   each container's writable layer (runc upper directory) and log
    inodes               directory, plus the pod's disk-backed emptyDir volumes
    pids                 the pod cgroup's pids.current

Cgroup paths are the runc runtime's (``/<parent>/pod<uid>/<container id>``, see
.runtime.cgroups).  A runtime without cgroups (the process runtime) gets each container's
main process's resident memory instead, and no process counts.  All file reads run in a
worker thread.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .containerstart import CONTAINER_NAME_LABEL
from .eviction import (IMAGEFS_AVAILABLE, IMAGEFS_INODES_FREE, MEMORY_AVAILABLE, NODEFS_AVAILABLE,
                       NODEFS_INODES_FREE, PID_AVAILABLE, ContainerUsage, Observation, PodUsage)
from .podsandbox import POD_UID_LABEL
from .runtime import cgroups
from .runtime.interface import ContainerState, ContainerStatus, Runtime

Obj = dict[str, Any]
EMPTY_DIR = Path("volumes") / "kubernetes.io~empty-dir"


def read_keyed(path: Path) -> dict[str, int]:
    """``key value`` lines (memory.stat) or ``Key:  value kB`` lines (/proc/meminfo), in bytes."""
    out: dict[str, int] = {}
    try:
        text = path.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.replace(":", " ").split()
        if len(parts) >= 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1]) * (1024 if parts[2:3] == ["kB"] else 1)
    return out


def read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def node_memory(root: Path = cgroups.CGROUP_MOUNT, meminfo: Path = Path("/proc/meminfo")) -> Observation:
    info = read_keyed(meminfo)
    capacity = info.get("MemTotal", 0)
    usage = None if cgroups.is_unified(root) else read_int(root / "memory" / "memory.usage_in_bytes")
    if usage is not None:
        working_set = usage - read_keyed(root / "memory" / "memory.stat").get("total_inactive_file", 0)
    else:
        working_set = capacity - info.get("MemFree", 0) - info.get("Inactive(file)", 0)
    working_set = max(0, working_set)
    return Observation(available=max(0, capacity - working_set), capacity=capacity)


def container_working_set(cgroup_path: str, root: Path = cgroups.CGROUP_MOUNT) -> int | None:
    relative = cgroup_path.strip("/")
    if cgroups.is_unified(root):
        usage = read_int(root / relative / "memory.current")
        inactive = read_keyed(root / relative / "memory.stat").get("inactive_file", 0)
    else:
        usage = read_int(root / "memory" / relative / "memory.usage_in_bytes")
        inactive = read_keyed(root / "memory" / relative / "memory.stat").get("total_inactive_file", 0)
    return None if usage is None else max(0, usage - inactive)


def resident_memory(pid: int | None, proc: Path = Path("/proc")) -> int | None:
    """A process's resident set (statm), when there is no cgroup to ask."""
    if pid is None:
        return None
    try:
        pages = int((proc / str(pid) / "statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def pod_processes(pod_cgroup: str, root: Path = cgroups.CGROUP_MOUNT) -> int:
    relative = pod_cgroup.strip("/")
    base = root / relative if cgroups.is_unified(root) else root / "pids" / relative
    return read_int(base / "pids.current") or 0


def file_systems(signals: tuple[str, str], path: Path) -> dict[str, Observation]:
    try:
        fs = os.statvfs(path)
    except OSError:
        return {}
    out = {signals[0]: Observation(fs.f_bavail * fs.f_frsize, fs.f_blocks * fs.f_frsize)}
    if fs.f_files:
        out[signals[1]] = Observation(fs.f_ffree, fs.f_files)
    return out


def pids() -> Observation | None:
    limits = [read_int(Path("/proc/sys/kernel/pid_max")), read_int(Path("/proc/sys/kernel/threads-max"))]
    known = [n for n in limits if n]
    try:
        tasks = int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])
    except (OSError, ValueError, IndexError):
        return None
    if not known:
        return None
    maximum = min(known)
    return Observation(available=maximum - tasks, capacity=maximum)


def disk_usage(top: Path) -> tuple[int, int]:
    """(bytes, inodes) below ``top``, staying on its file system (so tmpfs mounts are skipped)."""
    try:
        device = top.lstat().st_dev
    except OSError:
        return 0, 0
    size = inodes = 0
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if st.st_dev != device:
                if name in dirnames:
                    dirnames.remove(name)
                continue
            size += st.st_blocks * 512
            inodes += 1
    return size, inodes


class NodeSignals:
    """:class:`~.eviction.SignalReader` for this machine."""

    def __init__(self, *, data_dir: Path, image_dir: Path, runtime: Runtime,
                 cgroup_parent: str | None = None,
                 writable_layer: Callable[[str], Path] | None = None,
                 cgroup_root: Path = cgroups.CGROUP_MOUNT) -> None:
        self.data_dir = data_dir
        self.cgroup_root = cgroup_root
        self.image_dir = image_dir
        self.runtime = runtime
        self.cgroup_parent = cgroup_parent
        self.writable_layer = writable_layer   # container ID -> its overlay upper directory

    @classmethod
    def for_runtime(cls, runtime: Runtime, *, data_dir: Path, image_dir: Path) -> "NodeSignals":
        """Cgroup parent and writable layers from the runc runtime, when it is one."""
        from .runtime.runc import RuncRuntime
        if isinstance(runtime, RuncRuntime):
            return cls(data_dir=data_dir, image_dir=image_dir, runtime=runtime,
                       cgroup_parent=runtime.cgroup_parent, writable_layer=runtime.writable_layer)
        return cls(data_dir=data_dir, image_dir=image_dir, runtime=runtime)

    async def observe(self) -> dict[str, Observation]:
        return await asyncio.to_thread(self._observe)

    def _observe(self) -> dict[str, Observation]:
        out = {MEMORY_AVAILABLE: node_memory(self.cgroup_root)}
        out.update(file_systems((NODEFS_AVAILABLE, NODEFS_INODES_FREE), self.data_dir))
        out.update(file_systems((IMAGEFS_AVAILABLE, IMAGEFS_INODES_FREE), self.image_dir))
        pid = pids()
        if pid is not None:
            out[PID_AVAILABLE] = pid
        return out

    async def pod_usage(self, pods: Sequence[Obj], resource: str) -> dict[str, PodUsage]:
        wanted = {str(p["metadata"]["uid"]): p for p in pods}
        running: dict[str, list[ContainerStatus]] = {uid: [] for uid in wanted}
        for container in await self.runtime.list():
            uid = container.labels.get(POD_UID_LABEL, "")
            if uid in running and container.state == ContainerState.RUNNING:
                running[uid].append(container)
        return await asyncio.to_thread(self._pod_usage, running, resource)

    def _pod_usage(self, running: dict[str, list[ContainerStatus]], resource: str) -> dict[str, PodUsage]:
        out = {}
        parent = self.cgroup_parent
        for uid, containers in running.items():
            usages = []
            for container in containers:
                name = container.labels.get(CONTAINER_NAME_LABEL, container.name)
                if resource == "memory" and parent is None:
                    usages.append(ContainerUsage(name, memory=resident_memory(container.pid)))
                elif resource == "memory" and parent is not None:
                    path = cgroups.container_path(parent, uid, container.id)
                    usages.append(ContainerUsage(name, memory=container_working_set(path, self.cgroup_root)))
                elif resource in ("ephemeral-storage", "inodes"):
                    size, inodes = self._container_disk(container)
                    usages.append(ContainerUsage(name, disk=size, inodes=inodes))
                else:
                    usages.append(ContainerUsage(name))
            volume_disk = volume_inodes = processes = 0
            if resource in ("ephemeral-storage", "inodes"):
                volume_root = self.data_dir / "pods" / uid / EMPTY_DIR
                if volume_root.is_dir():
                    for volume in volume_root.iterdir():
                        size, inodes = disk_usage(volume)
                        volume_disk += size
                        volume_inodes += inodes
            if resource == "pids" and parent is not None:
                processes = pod_processes(cgroups.pod_path(parent, uid), self.cgroup_root)
            out[uid] = PodUsage(tuple(usages), volume_disk, volume_inodes, processes)
        return out

    def _container_disk(self, container: ContainerStatus) -> tuple[int, int]:
        size = inodes = 0
        if self.writable_layer is not None:
            size, inodes = disk_usage(self.writable_layer(container.id))
        if container.log_path is not None:
            logs = disk_usage(container.log_path.parent)
            size, inodes = size + logs[0], inodes + logs[1]
        return size, inodes
