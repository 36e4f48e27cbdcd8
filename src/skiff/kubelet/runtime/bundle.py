"""The OCI runtime configuration (config.json) for one container.

A pure function of the container spec, its pod sandbox and the resolved user.
Defaults follow containerd's for Kubernetes, so workloads see what they would
see on any cluster:

* capabilities: CHOWN DAC_OVERRIDE FSETID FOWNER MKNOD NET_RAW SETGID SETUID SETFCAP
  SETPCAP NET_BIND_SERVICE SYS_CHROOT KILL AUDIT_WRITE, then securityContext
  ``drop`` (``ALL`` empties the set) and ``add`` (``ALL`` grants every one);
  privileged containers get all of them
* mounts: /proc, /dev (tmpfs), /dev/pts, /dev/mqueue, /sys (read-only), the
  cgroup tree (read-only), the pod's /dev/shm, /etc/hosts, /etc/hostname and
  /etc/resolv.conf, then the volumes (a volume on one of those paths replaces it)
* masked and read-only paths in /proc and /sys (none when privileged)
* namespaces: its own pid (unless hostPID or a shared pod pid namespace) and mount
  namespace; the pod's net, ipc and uts namespaces joined by path (the host's for
  hostNetwork / hostIPC)
* devices: everything denied but the standard set runc adds (all when privileged)
* cgroup resources: cpu shares/quota/period, memory limit (swap = limit, so none),
  pids limit
* ``noNewPrivileges`` when ``allowPrivilegeEscalation: false``
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .interface import ContainerSpec, Mount, Propagation
from .users import User

OCI_VERSION = "1.0.2-dev"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)
# by number: index i is capability i (see capabilities(7))
ALL_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
    "/sys/devices/virtual/powercap", "/proc/scsi",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


@dataclass(frozen=True)
class SandboxView:
    """What a container takes from its pod sandbox."""

    hostname: str
    hosts_file: Path
    hostname_file: Path
    resolv_conf: Path
    shm: Path | None                 # None: the host's /dev/shm (hostIPC)
    netns: Path | None = None        # None: the host's (hostNetwork)
    ipcns: Path | None = None        # None: the host's (hostIPC)
    utsns: Path | None = None        # None: the host's (hostNetwork)
    pidns: Path | None = None        # the pod's shared pid namespace, if any
    host_pid: bool = False
    sysctls: dict[str, str] = field(default_factory=dict)


def available_capabilities() -> tuple[str, ...]:
    """Every capability this process may hand out: its bounding set (as containerd does
    for privileged containers; a host may lack some, e.g. inside another sandbox)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapBnd:"):
                mask = int(line.split()[1], 16)
                return tuple(c for i, c in enumerate(ALL_CAPABILITIES) if mask >> i & 1)
    except (OSError, ValueError, IndexError):
        pass
    return ALL_CAPABILITIES


def _cap_name(name: str) -> str:
    name = name.strip().upper()
    return name if name.startswith("CAP_") or name == "ALL" else f"CAP_{name}"


def capability_set(spec: ContainerSpec) -> list[str]:
    known = available_capabilities()
    if spec.security.privileged:
        return list(known)
    drop = {_cap_name(c) for c in spec.security.capabilities_drop}
    add = {_cap_name(c) for c in spec.security.capabilities_add}
    caps = [] if "ALL" in drop else [c for c in DEFAULT_CAPABILITIES if c not in drop]
    for cap in known if "ALL" in add else sorted(add):
        if cap not in caps and cap in known:
            caps.append(cap)
    return caps


def _bind(source: Path, destination: str, read_only: bool,
          propagation: Propagation = Propagation.PRIVATE) -> dict[str, Any]:
    return {"destination": destination, "type": "bind", "source": str(source),
            "options": ["rbind", propagation.value, "ro" if read_only else "rw"]}


def mounts(spec: ContainerSpec, sandbox: SandboxView) -> list[dict[str, Any]]:
    privileged = spec.security.privileged
    read_only_sys = [] if privileged else ["ro"]
    base: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", *read_only_sys]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", *read_only_sys]},
        _bind(sandbox.shm or Path("/dev/shm"), "/dev/shm", False),
        _bind(sandbox.hosts_file, "/etc/hosts", spec.security.read_only_root_filesystem),
        _bind(sandbox.hostname_file, "/etc/hostname", spec.security.read_only_root_filesystem),
        _bind(sandbox.resolv_conf, "/etc/resolv.conf", spec.security.read_only_root_filesystem),
    ]
    taken = {os.path.normpath(m.container_path) for m in spec.mounts}
    result = [m for m in base if m["destination"] not in taken]
    result.extend(_volume(m) for m in spec.mounts)
    return result


def _volume(mount: Mount) -> dict[str, Any]:
    return _bind(mount.host_path, os.path.normpath(mount.container_path), mount.read_only,
                 mount.propagation)


def namespaces(sandbox: SandboxView) -> list[dict[str, str]]:
    result = [{"type": "mount"}]
    if sandbox.pidns is not None:
        result.append({"type": "pid", "path": str(sandbox.pidns)})
    elif not sandbox.host_pid:
        result.append({"type": "pid"})
    for kind, path in (("network", sandbox.netns), ("ipc", sandbox.ipcns), ("uts", sandbox.utsns)):
        if path is not None:
            result.append({"type": kind, "path": str(path)})
    return result


def environment(spec: ContainerSpec, hostname: str) -> list[str]:
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    if hostname:
        env.setdefault("HOSTNAME", hostname)
    if spec.tty:
        env.setdefault("TERM", "xterm")
    return [f"{k}={v}" for k, v in env.items()]


def host_devices() -> list[dict[str, Any]]:
    """Every device node directly under the host's /dev (for privileged containers)."""
    devices = []
    for entry in sorted(os.listdir("/dev")):
        path = f"/dev/{entry}"
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            if entry in ("ptmx", "console", "tty") or entry.startswith("pts"):
                continue
            devices.append({"path": path, "type": "c" if stat.S_ISCHR(st.st_mode) else "b",
                            "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                            "fileMode": stat.S_IMODE(st.st_mode), "uid": 0, "gid": 0})
    return devices


def resources(spec: ContainerSpec) -> dict[str, Any]:
    r = spec.resources
    allow_all = spec.security.privileged
    out: dict[str, Any] = {"devices": [{"allow": allow_all, "access": "rwm"}]}
    if r.memory_limit is not None:
        out["memory"] = {"limit": r.memory_limit, "swap": r.memory_limit}
    cpu: dict[str, Any] = {}
    if r.cpu_shares is not None:
        cpu["shares"] = r.cpu_shares
    if r.cpu_quota is not None:
        cpu["quota"] = r.cpu_quota
        cpu["period"] = r.cpu_period
    if cpu:
        out["cpu"] = cpu
    if r.pids_limit is not None:
        out["pids"] = {"limit": r.pids_limit}
    return out


def build_config(spec: ContainerSpec, sandbox: SandboxView, user: User,
                 cgroups_path: str, oci_mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """config.json for ``spec`` (the rootfs is ``rootfs/`` next to it); ``oci_mounts`` is
    ``mounts(spec, sandbox)`` when the caller has it already."""
    caps = capability_set(spec)
    process: dict[str, Any] = {
        "terminal": spec.tty,
        "user": {"uid": user.uid, "gid": user.gid,
                 **({"additionalGids": list(user.additional_gids)} if user.additional_gids else {})},
        "args": list(spec.command),
        "env": environment(spec, sandbox.hostname if sandbox.utsns else ""),
        "cwd": spec.working_dir or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": not spec.security.allow_privilege_escalation,
    }
    if spec.resources.oom_score_adj is not None:
        process["oomScoreAdj"] = spec.resources.oom_score_adj
    linux: dict[str, Any] = {
        "cgroupsPath": cgroups_path,
        "namespaces": namespaces(sandbox),
        "resources": resources(spec),
    }
    if spec.security.privileged:
        linux["devices"] = host_devices()
    else:
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    if sandbox.sysctls:
        linux["sysctl"] = dict(sandbox.sysctls)
    config: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": "rootfs", "readonly": spec.security.read_only_root_filesystem},
        "mounts": mounts(spec, sandbox) if oci_mounts is None else oci_mounts,
        "linux": linux,
    }
    if sandbox.utsns is not None and sandbox.hostname:
        config["hostname"] = sandbox.hostname
    return config
