"""The container runtime interface the kubelet programs against.

Modelled on the OCI runtime verbs (and on Kubernetes' CRI, which wraps them), with
a *pod sandbox* that owns what a pod's containers share::

    run_sandbox(SandboxSpec) -> sandbox id       net, ipc, uts namespaces; /etc/hosts,
         │                                      /etc/resolv.conf, /etc/hostname; /dev/shm
         ├── create(ContainerSpec) -> container id      rootfs + config, nothing runs yet
         │        │
         │     start(id)  ──────────────▶ RUNNING ── exits / stop(id, grace) / kill(id, sig)
         │        │                                       │
         │     CREATED                                 EXITED (exit code, reason, times)
         │                                                │
         │                                             remove(id)   rootfs, cgroup, logs meta
         ├── exec(id, argv) / attach(id)   streams: stdin, stdout, stderr, tty + resize
         ├── logs(id, follow, tail_lines, since)   a CRI log file per container (.logs)
    stop_sandbox(id)  -> every container stopped        remove_sandbox(id) -> all gone

A runtime is also the source of truth after a kubelet restart: ``list_sandboxes``
and ``list`` return what is still there (running or exited), from the runtime's
own on-disk state.

Specs are plain data built by the kubelet: it resolves the image (layers, config),
combines ``command``/``args`` with the image's Entrypoint/Cmd, and merges env, so a
runtime only has to run exactly what it is given.

Errors form one tree (:class:`RuntimeFailure`); expected outcomes (a container
exiting non-zero, being OOM-killed) are statuses, not exceptions.
"""

from __future__ import annotations

import builtins
import enum
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from .logs import LogRecord

# -- errors -------------------------------------------------------------------------------


class RuntimeFailure(Exception):
    """Base of every runtime error."""


class NotFound(RuntimeFailure, LookupError):
    """No container or sandbox with that ID."""


class ContainerConfigError(RuntimeFailure):
    """The spec cannot be run as asked (the kubelet's CreateContainerConfigError),
    e.g. runAsNonRoot with an image that runs as root."""


class StartFailed(RuntimeFailure):
    """The runtime could not start the process (the kubelet's RunContainerError),
    e.g. the executable does not exist in the image."""


class InvalidState(RuntimeFailure):
    """The verb does not apply in the container's current state."""


# -- specs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxSpec:
    name: str
    namespace: str
    uid: str
    hostname: str = ""                 # default: the pod name
    host_network: bool = False
    host_ipc: bool = False
    host_pid: bool = False
    share_process_namespace: bool = False
    hosts_file: str = ""               # /etc/hosts content; default: localhost + hostname
    resolv_conf: str = ""              # /etc/resolv.conf content; default: the host's
    sysctls: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


class Propagation(enum.Enum):
    PRIVATE = "rprivate"                   # mountPropagation: None
    HOST_TO_CONTAINER = "rslave"
    BIDIRECTIONAL = "rshared"


@dataclass(frozen=True)
class Mount:
    host_path: Path
    container_path: str
    read_only: bool = False
    propagation: Propagation = Propagation.PRIVATE


@dataclass(frozen=True)
class Resources:
    cpu_shares: int | None = None      # cgroup cpu.shares (from requests)
    cpu_quota: int | None = None       # microseconds per period (from limits)
    cpu_period: int = 100_000
    memory_limit: int | None = None    # bytes
    pids_limit: int | None = None
    oom_score_adj: int | None = None   # the kubelet's QoS-based value

    @classmethod
    def from_kubernetes(cls, *, cpu_request_milli: int | None = None,
                        cpu_limit_milli: int | None = None, memory_limit: int | None = None,
                        pids_limit: int | None = None) -> "Resources":
        """Kubernetes' conversion: shares = request*1024/1000 (at least 2), quota =
        limit*period/1000 (at least 1ms).  A limit without a request requests the limit."""
        request = cpu_request_milli if cpu_request_milli is not None else cpu_limit_milli
        shares = max(2, request * 1024 // 1000) if request is not None else None
        quota = max(1000, cpu_limit_milli * 100_000 // 1000) if cpu_limit_milli else None
        return cls(cpu_shares=shares, cpu_quota=quota, memory_limit=memory_limit,
                   pids_limit=pids_limit)


@dataclass(frozen=True)
class SecurityContext:
    privileged: bool = False
    read_only_root_filesystem: bool = False
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool = False
    supplemental_groups: tuple[int, ...] = ()
    capabilities_add: tuple[str, ...] = ()     # "NET_ADMIN" or "CAP_NET_ADMIN"; "ALL"
    capabilities_drop: tuple[str, ...] = ()
    allow_privilege_escalation: bool = True    # False sets no_new_privs


@dataclass(frozen=True)
class ContainerSpec:
    sandbox_id: str
    name: str
    image: str                          # as the pod names it (reported back in statuses)
    image_id: str                       # the image's ID (config digest)
    layers: tuple[Path, ...]            # unpacked image layers, bottom first
    command: tuple[str, ...]            # final argv (image Entrypoint/Cmd already applied)
    env: tuple[tuple[str, str], ...] = ()   # final environment (image env already merged)
    working_dir: str = ""               # "" -> /
    image_user: str = ""                # the image's User, used when run_as_user is unset
    mounts: tuple[Mount, ...] = ()
    resources: Resources = Resources()
    security: SecurityContext = SecurityContext()
    tty: bool = False
    stdin: bool = False
    stdin_once: bool = False
    stop_signal: str = "SIGTERM"
    log_path: Path | None = None        # default: in the runtime's state directory
    attempt: int = 0                    # restart count, kept for the kubelet
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    #: a running container whose pid namespace this one joins (an ephemeral container's
    #: targetContainerName, as ``kubectl debug --target`` asks); "" for the pod's own
    pid_namespace_of: str = ""


# -- statuses -----------------------------------------------------------------------------


class ContainerState(enum.Enum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ContainerStatus:
    id: str
    sandbox_id: str
    name: str
    state: ContainerState
    image: str
    image_id: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pid: int | None = None
    exit_code: int | None = None
    reason: str = ""                   # "Completed", "Error", "OOMKilled" once exited
    message: str = ""
    log_path: Path | None = None
    attempt: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def oom_killed(self) -> bool:
        return self.reason == "OOMKilled"


class SandboxState(enum.Enum):
    READY = "ready"
    NOT_READY = "not-ready"


@dataclass(frozen=True)
class SandboxStatus:
    id: str
    name: str
    namespace: str
    uid: str
    state: SandboxState
    created_at: datetime
    hostname: str
    netns_path: Path | None            # None with hostNetwork
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False


class Stream(enum.Enum):
    STDOUT = "stdout"
    STDERR = "stderr"


class Session(Protocol):
    """A running exec (or an attachment): stdin in, tagged output out, a tty to resize."""

    async def write(self, data: bytes) -> None: ...
    async def close_stdin(self) -> None: ...
    def output(self) -> AsyncIterator[tuple[Stream, bytes]]: ...
    async def resize(self, columns: int, rows: int) -> None: ...
    async def wait(self) -> int: ...       # exit code (attach: the container's, when it exits)
    async def close(self) -> None: ...     # end the session (kills an exec'd process)


# -- the interface ------------------------------------------------------------------------


class Runtime(Protocol):
    name: str

    async def version(self) -> str: ...

    async def run_sandbox(self, spec: SandboxSpec) -> str: ...
    async def stop_sandbox(self, sandbox_id: str, timeout: float = 10.0) -> None: ...
    async def remove_sandbox(self, sandbox_id: str) -> None: ...
    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus: ...
    async def list_sandboxes(self) -> builtins.list[SandboxStatus]: ...

    async def create(self, spec: ContainerSpec) -> str: ...
    async def start(self, container_id: str) -> None: ...
    async def stop(self, container_id: str, timeout: float) -> None: ...
    async def kill(self, container_id: str, sig: int = signal.SIGKILL) -> None: ...
    async def remove(self, container_id: str) -> None: ...
    async def status(self, container_id: str) -> ContainerStatus: ...
    async def list(self, sandbox_id: str | None = None) -> builtins.list[ContainerStatus]: ...
    async def wait(self, container_id: str) -> ContainerStatus: ...

    def logs(self, container_id: str, *, follow: bool = False, tail_lines: int | None = None,
             since: datetime | None = None) -> AsyncIterator[LogRecord]: ...

    async def exec(self, container_id: str, command: builtins.list[str], *, stdin: bool = False,
                   tty: bool = False) -> Session: ...
    async def exec_sync(self, container_id: str, command: builtins.list[str], *,
                        timeout: float = 10.0,
                        input: bytes = b"") -> ExecResult: ...
    async def attach(self, container_id: str, *, stdin: bool = False) -> Session: ...

    async def close(self) -> None: ...
