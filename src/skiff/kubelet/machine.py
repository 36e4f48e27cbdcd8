"""What the node is made of, read from the machine: capacity, allocatable, pressure.

::

    capacity      cpu = os.cpu_count(), memory = MemTotal, ephemeral-storage = the data
                  directory's file system, pods = 110, hugepages 0
    allocatable   capacity minus the kubelet's default hard eviction thresholds:
                  memory.available < 100Mi, nodefs.available < 10%
    conditions    MemoryPressure  MemAvailable below 100Mi
                  DiskPressure    less than 10% of the data directory's file system free
                  PIDPressure     more than 90% of kernel.pid_max in use
                  Ready           the runtime answers
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .node_status import timestamp

Obj = dict[str, Any]
MAX_PODS = 110
EVICTION_MEMORY = 100 << 20
EVICTION_DISK_FRACTION = 0.10
PID_FRACTION = 0.90


@dataclass(frozen=True)
class Machine:
    cpus: int
    memory: int              # bytes
    storage: int             # bytes of the data directory's file system

    @classmethod
    def read(cls, data_dir: Path) -> "Machine":
        fs = os.statvfs(data_dir)
        return cls(cpus=os.cpu_count() or 1, memory=_meminfo().get("MemTotal", 1 << 30),
                   storage=fs.f_blocks * fs.f_frsize)

    def capacity(self) -> dict[str, str]:
        return {"cpu": str(self.cpus), "memory": f"{self.memory // 1024}Ki",
                "ephemeral-storage": f"{self.storage // 1024}Ki", "pods": str(MAX_PODS),
                "hugepages-1Gi": "0", "hugepages-2Mi": "0"}

    def allocatable(self) -> dict[str, str]:
        storage = int(self.storage * (1 - EVICTION_DISK_FRACTION))
        return {**self.capacity(), "memory": f"{max(0, self.memory - EVICTION_MEMORY) // 1024}Ki",
                "ephemeral-storage": str(storage)}


def _meminfo() -> dict[str, int]:
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            fields = rest.split()
            if fields:
                out[key] = int(fields[0]) * (1024 if len(fields) > 1 else 1)
    except (OSError, ValueError):
        pass
    return out


@dataclass(frozen=True)
class Pressure:
    memory: bool = False
    disk: bool = False
    pid: bool = False


def read_pressure(data_dir: Path) -> Pressure:
    available = _meminfo().get("MemAvailable")
    fs = os.statvfs(data_dir)
    free = fs.f_bavail / fs.f_blocks if fs.f_blocks else 1.0
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        used = sum(1 for entry in os.listdir("/proc") if entry.isdigit())
    except (OSError, ValueError):
        pid_max, used = 1, 0
    return Pressure(memory=available is not None and available < EVICTION_MEMORY,
                    disk=free < EVICTION_DISK_FRACTION, pid=used > PID_FRACTION * pid_max)


def os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "Linux"


def kernel_version() -> str:
    return platform.release()


_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available",
     "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure",
     "KubeletHasDiskPressure", "kubelet has disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available",
     "KubeletHasInsufficientPID", "kubelet has insufficient PID available"),
)


def node_conditions(now: float, pressure: Pressure, ready: bool,
                    previous: Sequence[Mapping[str, Any]] = ()) -> list[Obj]:
    """The four node conditions, ``lastTransitionTime`` kept while a status holds."""
    before = {c.get("type"): c for c in previous}
    stamp = timestamp(now)
    flags = {"MemoryPressure": pressure.memory, "DiskPressure": pressure.disk, "PIDPressure": pressure.pid}
    rows = [(type_, "True" if flags[type_] else "False", bad_reason if flags[type_] else ok_reason,
             bad_message if flags[type_] else ok_message)
            for type_, ok_reason, ok_message, bad_reason, bad_message in _CONDITIONS]
    rows.append(("Ready", "True" if ready else "False", "KubeletReady" if ready else "KubeletNotReady",
                 "kubelet is posting ready status" if ready else "container runtime is down"))
    out = []
    for type_, status, reason, message in rows:
        old = before.get(type_)
        transition = old.get("lastTransitionTime") if old and old.get("status") == status else None
        out.append({"type": type_, "status": status, "lastHeartbeatTime": stamp,
                    "lastTransitionTime": transition or stamp, "reason": reason, "message": message})
    return out
