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
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ... import __version__
from .exits import ExitWatcher
from .interface import (ContainerConfigError, ContainerSpec, ContainerState, ContainerStatus,
                        ExecResult, InvalidState, NotFound, RuntimeFailure, SandboxSpec,
                        SandboxStatus, Session, StartFailed)
from .logs import LogRecord, container_log, parse_time
from .processpod import ProcessSandboxes
from .processspec import launch_spec
from .sessions import AttachSession, PipeSession, PtySession

SHIM = Path(__file__).with_name("processshim.py")
HELPER = Path(__file__).with_name("rootless.py")
LOST_EXIT_CODE = 255
ISOLATIONS = ("auto", "userns", "plain")


class ProcessRuntime:
    name = "process"

    def __init__(self, root: Path, *, isolation: str = "auto", log_max_size: int = 10 << 20,
                 log_max_files: int = 5) -> None:
        if isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}")
        self.root = Path(root).resolve()
        self.containers = self.root / "containers"
        self.containers.mkdir(parents=True, exist_ok=True)
        self.sandboxes = ProcessSandboxes(self.root / "sandboxes")
        self.log_max_size = log_max_size
        self.log_max_files = log_max_files
        self._isolation: str | None = None if isolation == "auto" else isolation
        self.isolation_note = ""           # why not userns, when auto-detection said plain
        self._exits = ExitWatcher()

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

    def _dir(self, container_id: str) -> Path:
        if not container_id or not all(c in "0123456789abcdef" for c in container_id):
            raise NotFound(f"container {container_id!r} not found")
        return self.containers / container_id

    def _record(self, container_id: str) -> dict[str, Any]:
        record = _read_json(self._dir(container_id) / "container.json")
        if record is None:
            raise NotFound(f"container {container_id!r} not found")
        return record

    # -- sandboxes -----------------------------------------------------------------------

    async def run_sandbox(self, spec: SandboxSpec) -> str:
        sandbox_id = secrets.token_hex(32)
        await asyncio.to_thread(self.sandboxes.create, sandbox_id, spec)
        return sandbox_id

    async def stop_sandbox(self, sandbox_id: str, timeout: float = 10.0) -> None:
        self.sandboxes.load(sandbox_id)
        running = [c for c in await self.list(sandbox_id) if c.state == ContainerState.RUNNING]
        await asyncio.gather(*(self.stop(c.id, timeout) for c in running))
        await asyncio.to_thread(self.sandboxes.mark_not_ready, sandbox_id)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        if not self.sandboxes.directory(sandbox_id).exists():
            return
        for container in await self.list(sandbox_id):
            await self.remove(container.id)
        await asyncio.to_thread(self.sandboxes.destroy, sandbox_id)

    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        return self.sandboxes.status(sandbox_id)

    async def list_sandboxes(self) -> builtins.list[SandboxStatus]:
        return [self.sandboxes.status(i) for i in self.sandboxes.ids()]

    # -- containers ----------------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> str:
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
            _write_json(directory / "process.json", process, private=True)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            _write_json(directory / "container.json", {
                "id": container_id, "sandboxId": spec.sandbox_id, "name": spec.name,
                "image": spec.image, "imageId": spec.image_id, "createdAt": _now(),
                "logPath": str(log_path), "attempt": spec.attempt, "labels": spec.labels,
                "annotations": spec.annotations, "stopSignal": spec.stop_signal, "mode": mode,
                "podPidNamespace": mode == "userns" and not files.host_pid,
                "tty": spec.tty, "stdin": spec.stdin, "stdinOnce": spec.stdin_once})

        try:
            await asyncio.to_thread(prepare)
        except BaseException:
            await asyncio.to_thread(remove_tree, directory)
            raise
        return container_id

    async def start(self, container_id: str) -> None:
        record = self._record(container_id)
        directory = self._dir(container_id)
        if (directory / "started.json").exists() or (directory / "exit.json").exists():
            raise InvalidState(f"container {container_id} was already started")
        args = ["--id", container_id, "--state-dir", str(directory), "--log-path", record["logPath"],
                "--log-max-size", str(self.log_max_size), "--log-max-files", str(self.log_max_files),
                "--attach-socket", _attach_name(container_id)]
        args += [flag for flag, on in (("--tty", record["tty"]), ("--stdin", record["stdin"]),
                                       ("--stdin-once", record["stdinOnce"])) if on]
        log_fd = os.open(directory / "shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
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
        if not line.startswith("ok "):
            message = line.removeprefix("error ").strip() or "the shim died before starting the process"
            _write_json(directory / "exit.json", {"exitCode": 128, "finishedAt": _now(),
                                                  "reason": "StartError", "message": message})
            raise StartFailed(message)
        self._watch(container_id)

    def _watch(self, container_id: str) -> asyncio.Future[None]:
        """A future resolved when the container's shim exits (i.e. after exit.json)."""
        started = _read_json(self._dir(container_id) / "started.json") or {}
        shim = started.get("shimPid")
        return self._exits.watch(container_id, shim if isinstance(shim, int) else None,
                                 lambda pid: _alive(pid, started.get("shimStartTime")))

    async def status(self, container_id: str) -> ContainerStatus:
        record = self._record(container_id)
        directory = self._dir(container_id)
        started = _read_json(directory / "started.json")
        finished = _read_json(directory / "exit.json")
        state, pid, code, reason, message = ContainerState.CREATED, None, None, "", ""
        if finished is None and started is not None:
            if _alive(started.get("shimPid"), started.get("shimStartTime")):
                state, pid = ContainerState.RUNNING, int(started["pid"])
            else:
                finished = _read_json(directory / "exit.json") or {
                    "exitCode": LOST_EXIT_CODE, "finishedAt": _now(), "reason": "Unknown",
                    "message": "the container's shim is gone; its exit status was lost"}
        if finished is not None:
            state = ContainerState.EXITED
            code = int(finished["exitCode"])
            reason = finished.get("reason") or ("Completed" if code == 0 else "Error")
            message = finished.get("message", "")
        return ContainerStatus(
            id=container_id, sandbox_id=record["sandboxId"], name=record["name"], state=state,
            image=record["image"], image_id=record["imageId"],
            created_at=_parse_time(record["createdAt"]),
            started_at=_parse_time(started["startedAt"]) if started else None,
            finished_at=_parse_time(finished["finishedAt"]) if finished else None,
            pid=pid, exit_code=code, reason=reason, message=message,
            log_path=Path(record["logPath"]), attempt=int(record["attempt"]),
            labels=dict(record["labels"]), annotations=dict(record["annotations"]))

    async def list(self, sandbox_id: str | None = None) -> builtins.list[ContainerStatus]:
        statuses = []
        for entry in sorted(os.listdir(self.containers)):
            try:
                status = await self.status(entry)
            except (NotFound, ValueError, KeyError):
                continue   # being created or removed
            if sandbox_id is None or status.sandbox_id == sandbox_id:
                statuses.append(status)
        return statuses

    async def wait(self, container_id: str) -> ContainerStatus:
        status = await self.status(container_id)
        if status.state != ContainerState.RUNNING:
            return status
        await asyncio.shield(self._watch(container_id))
        return await self.status(container_id)

    def _signal(self, container_id: str, sig: int) -> bool:
        """Send ``sig`` to the container (see the module docstring); False if it is gone."""
        record = self._record(container_id)
        started = _read_json(self._dir(container_id) / "started.json") or {}
        pid = started.get("pid")
        if not isinstance(pid, int) or not _alive(pid, started.get("pidStartTime")):
            return False
        try:
            if record.get("podPidNamespace"):
                os.kill(pid, sig)            # pid 1 of its namespace; SIGKILL ends them all
            else:
                os.killpg(pid, sig)          # the container's session leader and group
        except ProcessLookupError:
            return False
        return True

    async def kill(self, container_id: str, sig: int = signal.SIGKILL) -> None:
        if (await self.status(container_id)).state != ContainerState.RUNNING:
            raise InvalidState(f"container {container_id} is not running")
        if not self._signal(container_id, sig) and \
                (await self.status(container_id)).state == ContainerState.RUNNING:
            raise RuntimeFailure(f"container {container_id}: its process is gone but its shim is not")

    async def stop(self, container_id: str, timeout: float) -> None:
        """The stop signal (SIGTERM unless the image says otherwise), SIGKILL after ``timeout``."""
        if (await self.status(container_id)).state != ContainerState.RUNNING:
            return
        exited = self._watch(container_id)
        if timeout > 0:
            self._signal(container_id, _signal_number(self._record(container_id).get("stopSignal")))
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout)
                return
            except asyncio.TimeoutError:
                pass
        self._signal(container_id, signal.SIGKILL)
        await asyncio.shield(exited)

    async def remove(self, container_id: str) -> None:
        directory = self._dir(container_id)
        if not directory.exists():
            return
        status = await self.status(container_id)
        if status.state == ContainerState.RUNNING:
            await self.stop(container_id, 0)
        else:
            self._signal(container_id, signal.SIGKILL)   # a process whose shim died
        self._exits.forget(container_id)
        await asyncio.to_thread(remove_tree, directory)

    async def logs(self, container_id: str, *, follow: bool = False,
                   tail_lines: int | None = None,
                   since: datetime | None = None) -> AsyncIterator[LogRecord]:
        """The container's log lines; ``follow`` ends once it has exited and all is read."""
        path = Path(self._record(container_id)["logPath"])
        async for record in container_log(path, lambda: self.wait(container_id), follow=follow,
                                          tail_lines=tail_lines, since=since):
            yield record

    # -- exec and attach -----------------------------------------------------------------

    async def exec(self, container_id: str, command: builtins.list[str], *, stdin: bool = False,
                   tty: bool = False) -> Session:
        """A new process in the container (.rootless ``exec``: its namespaces, root, cwd, env)."""
        if (await self.status(container_id)).state != ContainerState.RUNNING:
            raise InvalidState(f"container {container_id} is not running")
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

    async def exec_sync(self, container_id: str, command: builtins.list[str], *,
                        timeout: float = 10.0, input: bytes = b"") -> ExecResult:
        session = await self.exec(container_id, command, stdin=bool(input))
        out: dict[str, list[bytes]] = {"stdout": [], "stderr": []}

        async def run() -> int:
            if input:
                await session.write(input)
                await session.close_stdin()
            async for stream, data in session.output():
                out[stream.value].append(data)
            return await session.wait()

        try:
            code = await asyncio.wait_for(run(), timeout)
            timed_out = False
        except asyncio.TimeoutError:
            code, timed_out = -1, True
        finally:
            await asyncio.shield(session.close())   # kills it unless it is done (also when cancelled)
        return ExecResult(exit_code=code, stdout=b"".join(out["stdout"]),
                          stderr=b"".join(out["stderr"]), timed_out=timed_out)

    async def attach(self, container_id: str, *, stdin: bool = False) -> Session:
        if (await self.status(container_id)).state != ContainerState.RUNNING:
            raise InvalidState(f"container {container_id} is not running")
        reader, writer = await asyncio.open_unix_connection("\0" + _attach_name(container_id))

        async def exit_code() -> int:
            return (await self.wait(container_id)).exit_code or 0

        return AttachSession(reader, writer, exit_code)

    async def close(self) -> None:
        """Forget exit watches (containers keep running; a new runtime adopts them)."""
        self._exits.close()


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


def _alive(pid: Any, start_time: Any) -> bool:
    """Whether ``pid`` is the live process that started at ``start_time`` (not a reuse)."""
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as source:
            fields = source.read().rsplit(b")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != b"Z" and (start_time is None or int(fields[19]) == start_time)


def _attach_name(container_id: str) -> str:
    return f"skiff/process-attach/{container_id}"


def _signal_number(name: str | None) -> int:
    name = (name or "SIGTERM").upper()
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        return int(signal.SIGTERM)


def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


_parse_time = functools.lru_cache(maxsize=4096)(parse_time)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(path.read_bytes())
        return doc
    except (FileNotFoundError, ValueError):
        return None


def _write_json(path: Path, doc: dict[str, Any], *, private: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(doc))
    os.replace(tmp, path)
