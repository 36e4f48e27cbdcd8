"""The process runtime: pods as host processes, for machines where skiff has no root.

Every container is a process of the user running the kubelet, watched by a shim
(.processshim) that logs its output, serves attach and records its exit, exactly
as the runc runtime's shims do.  How much of a container it gets depends on the
node, checked once (:meth:`ProcessRuntime.isolation`, see .rootless)::

    userns   its own user, mount, pid, uts and ipc namespaces; the image's layers as
             an overlay root (pivot_root), volumes and /etc files bound at their
             paths, /proc of its own; the container user mapped onto ours
    plain    a host process in its own session; the image's binaries found in its
             unpacked layers (PATH rewritten into them); cwd = a per-container
             directory holding symlinks named like the mount paths

Both share the host's network: the pod IP is the node's (127.0.0.1), ports of
different pods can collide.  No cgroups: no CPU or memory limits, no OOM kills.

State lives under one directory, so a restarted kubelet finds everything again::

    root/sandboxes/<id>/            see .processpod
    root/containers/<id>/
      container.json                what the kubelet asked for (name, image, sandbox, …)
      process.json                  what the shim runs (see .processspec)
      rootfs/ upper/ work/          userns mode: the overlay (mounted only inside the
                                    container's mount namespace: nothing on the host)
      root/                         plain mode: cwd and mount-path symlinks
      started.json  exit.json       written by the shim: pids, start times, exit code
      container.log                 the CRI log, unless the spec names another path

A container's life::

    create()  process.json, directories      -> CREATED
    start()   shim: fork, namespaces, exec   -> RUNNING
              exit / stop() / kill()         -> EXITED  (shim writes exit.json)
    remove()  anything still running killed, rm -r

Signals: in userns mode the stop signal goes to the container's pid 1 (as runc
sends it), SIGKILL ends its whole pid namespace; in plain mode both go to the
container's process group, and the shim kills whatever is left when the main
process has exited.

What this shares with the runc runtime (statuses, wait, stop, attach, logs) is in
.shimmed; here are the isolation check, the launch spec, signals and exec.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import secrets
import shutil
import signal
import sys
from pathlib import Path

from ... import __version__
from .interface import (ContainerConfigError, ContainerSpec, ContainerState, RuntimeFailure,
                        SandboxSpec, Session)
from .processpod import ProcessSandboxes
from .processspec import launch_spec
from .sessions import PipeSession, PtySession
from .shimmed import ShimmedRuntime, process_alive
from .statefiles import write_json

SHIM = Path(__file__).with_name("processshim.py")
HELPER = Path(__file__).with_name("rootless.py")
ISOLATIONS = ("auto", "userns", "plain")


class ProcessRuntime(ShimmedRuntime):
    sandboxes: ProcessSandboxes
    name = "process"
    attach_prefix = "skiff/process-attach"
    shim_died = "the shim died before starting the process"

    def __init__(self, root: Path, *, isolation: str = "auto", log_max_size: int = 10 << 20,
                 log_max_files: int = 5) -> None:
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}")
        super().__init__(root, log_max_size=log_max_size, log_max_files=log_max_files)
        self.sandboxes = ProcessSandboxes(self.root / "sandboxes")
        self._isolation: str | None = None if isolation == "auto" else isolation
        self.isolation_note = ""           # why not userns, when auto-detection said plain

    # -- the node ------------------------------------------------------------------------

    async def isolation(self) -> str:
        """``userns`` or ``plain`` (auto: whether a user namespace start works here)."""
        if self._isolation is None:
            scratch = self.root / f".check-{secrets.token_hex(4)}"
            try:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-I", "-S", str(HELPER), "check", str(scratch),
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE)
                out, err = await process.communicate()
            finally:
                await asyncio.to_thread(remove_tree, scratch)
            verdict = out.decode(errors="replace").strip()
            if self._isolation is None:
                self._isolation = "userns" if verdict == "userns" else "plain"
                self.isolation_note = "" if verdict == "userns" else (
                    verdict.removeprefix("plain: ") or err.decode(errors="replace").strip())
        return self._isolation

    async def version(self) -> str:
        return f"skiff-process {__version__}+{await self.isolation()}"

    # -- sandboxes -----------------------------------------------------------------------

    async def _create_sandbox(self, sandbox_id: str, spec: SandboxSpec) -> None:
        await asyncio.to_thread(self.sandboxes.create, sandbox_id, spec)

    async def _destroy_sandbox(self, sandbox_id: str) -> None:
        await asyncio.to_thread(self.sandboxes.destroy, sandbox_id)

    # -- containers ----------------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> str:
        if spec.pid_namespace_of:
            raise ContainerConfigError("targetContainerName is not supported by the process runtime")
        files = self.sandboxes.files(spec.sandbox_id)
        mode = await self.isolation()
        if mode == "plain" and os.geteuid() == 0:
            raise ContainerConfigError("the process runtime runs plain host processes (no user "
                                       "namespaces here) only for a non-root user")
        container_id = secrets.token_hex(32)
        directory = self.containers / container_id
        log_path = spec.log_path or directory / "container.log"

        def prepare() -> None:
            directory.mkdir(parents=True)
            process = launch_spec(spec, files, mode, directory)
            write_json(directory / "process.json", process, private=True)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            write_json(directory / "container.json", {
                **self._new_record(spec, container_id, log_path), "mode": mode,
                "podPidNamespace": mode == "userns" and not files.host_pid})

        await self._prepare(directory, prepare)
        return container_id

    async def _spawn_shim(self, args: builtins.list[str], log: Path) -> str:
        """Start a shim (a fresh interpreter); its one-line verdict."""
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            shim = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", str(SHIM), *args, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=log_fd, start_new_session=True)
        finally:
            os.close(log_fd)
        assert shim.stdout is not None
        line = (await shim.stdout.readline()).decode(errors="replace")
        await shim.stdout.read()   # the shim lets go of it right after its verdict
        await shim.wait()          # the shim forks itself away at once; this is its parent
        return line

    def _signal(self, container_id: str, sig: int) -> bool:
        """Send ``sig`` to the container (see the module docstring); False if it is gone."""
        record = self._record(container_id)
        started = self._started_doc(container_id) or {}
        pid = started.get("pid")
        if not isinstance(pid, int) or not process_alive(pid, started.get("pidStartTime")):
            return False
        try:
            if record.get("podPidNamespace"):
                os.kill(pid, sig)            # pid 1 of its namespace; SIGKILL ends them all
            else:
                os.killpg(pid, sig)          # the container's session leader and group
        except ProcessLookupError:
            return False
        return True

    async def _kill_running(self, container_id: str, sig: int) -> None:
        if not self._signal(container_id, sig) and \
                (await self.status(container_id)).state == ContainerState.RUNNING:
            raise RuntimeFailure(f"container {container_id}: its process is gone but its shim is not")

    async def _stop_signal(self, container_id: str, sig: int) -> bool:
        self._signal(container_id, sig)
        return True                          # the shim's exit tells when it is gone

    async def _release(self, container_id: str, was_running: bool) -> None:
        if not was_running:
            self._signal(container_id, signal.SIGKILL)   # a process whose shim died

    def _remove_files(self, directory: Path) -> None:
        remove_tree(directory)

    # -- exec ----------------------------------------------------------------------------

    async def exec(self, container_id: str, command: builtins.list[str], *, stdin: bool = False,
                   tty: bool = False) -> Session:
        """A new process in the container (.rootless ``exec``: its namespaces, root, cwd, env)."""
        await self._require_running(container_id)
        helper = [sys.executable, "-I", "-S", str(HELPER), "exec", str(self._dir(container_id))]
        if not tty:
            process = await asyncio.create_subprocess_exec(
                *helper, "--", *command,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True)
            return GroupPipeSession(process)
        master, slave = os.openpty()
        try:
            process = await asyncio.create_subprocess_exec(
                *helper, "--tty", "--", *command, stdin=slave, stdout=slave, stderr=slave)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        pid_file = self._dir(container_id) / f"exec-{secrets.token_hex(8)}.pid"
        pid_file.write_text(str(process.pid))
        return PtySession(process, master, pid_file)


class GroupPipeSession(PipeSession):
    """An exec with pipes; closing it kills the helper's whole process group (the
    helper and the command it forked inside the container)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        super().__init__(process, None)

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()


# -- helpers -----------------------------------------------------------------------------------


def remove_tree(path: Path) -> None:
    """rm -r as the owner: directories made unreadable (overlayfs' work/work is mode 0)
    are opened up first."""
    if not path.exists():
        return
    for top, directories, _ in os.walk(path):
        for name in directories:
            with contextlib.suppress(OSError):
                full = os.path.join(top, name)
                if not os.path.islink(full):
                    os.chmod(full, 0o700)
    shutil.rmtree(path, ignore_errors=True)
