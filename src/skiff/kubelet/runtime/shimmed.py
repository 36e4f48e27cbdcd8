"""What the runc and process runtimes share: one shim per container, state in files.

Both runtimes (.runc, .process) keep each container as a directory and hand its
process to a *shim* (.shim, .processshim) that outlives the kubelet::

    root/containers/<id>/
      container.json     written once by create(): what the kubelet asked for
      started.json       written once by the shim: pid, shimPid, start times, startedAt
      exit.json          written by the shim when the container exits; by start() when
                         the shim could not start it (reason StartError)
      shim.log           the shim's own stderr

    start()   shim --id … --state-dir … --log-path … --attach-socket …  (+ the runtime's)
              └─▶ one line on a pipe: "ok <pid>" or "error <message>"
    status()  CREATED   no started.json
              RUNNING   started.json, and its shim is alive (same pid and start time)
              EXITED    exit.json; or the shim is gone without one (exit code 255, Unknown)
    wait()    a pidfd on the shim (.exits): the shim exits right after writing exit.json
    stop()    the stop signal, SIGKILL after the grace period, then wait()
    attach()  the shim's abstract unix socket "\\0<attach_prefix>/<id>" (.sessions)

:class:`ShimmedRuntime` implements those verbs of :class:`.interface.Runtime`, and
the sandbox verbs over a sandbox store; a subclass supplies what differs (hooks
below, each documented): creating a container, spawning its shim, recognising
the shim's pid, delivering signals, exec, and cleaning up.  Statuses are read from
the files, so they survive the runtime object: a new one adopts running containers.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
import os
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from .exits import ExitWatcher
from .interface import (ContainerSpec, ContainerState, ContainerStatus, ExecResult,
                        InvalidState, NotFound, SandboxSpec, SandboxStatus, Session,
                        StartFailed)
from .logs import LogRecord, container_log, parse_time
from .sessions import AttachSession
from .statefiles import JsonCache, read_json, write_json

log = logging.getLogger(__name__)

LOST_EXIT_CODE = 255
#: After SIGKILL a container's shim exits within its output drain (2 s); longer is worth a log line.
KILL_WARNING_SECONDS = 10.0
_HEX = frozenset("0123456789abcdef")


class SandboxStore(Protocol):
    """The part of a runtime's sandbox directory (.sandbox, .processpod) used here."""

    def directory(self, sandbox_id: str) -> Path: ...
    def load(self, sandbox_id: str) -> dict[str, Any]: ...
    def mark_not_ready(self, sandbox_id: str) -> None: ...
    def status(self, sandbox_id: str) -> SandboxStatus: ...
    def ids(self) -> builtins.list[str]: ...


class ShimmedRuntime:
    """A runtime whose containers each have a shim; a subclass sets ``name``,
    ``attach_prefix`` and ``sandboxes``, implements version(), create() and exec(),
    and the hooks below (those that raise NotImplementedError must be overridden)."""

    name: str
    attach_prefix: str                 # the shims' attach sockets: "\0<prefix>/<id>"
    shim_died = "the shim died before starting the container"
    sandboxes: SandboxStore

    def __init__(self, root: Path, *, log_max_size: int, log_max_files: int) -> None:
        self.root = Path(root).resolve()
        self.containers = self.root / "containers"
        self.containers.mkdir(parents=True, exist_ok=True)
        self.log_max_size = log_max_size
        self.log_max_files = log_max_files
        self._exits = ExitWatcher()
        self._records = JsonCache("container")                        # id -> container.json
        self._started: dict[str, dict[str, Any]] = {}                 # id -> started.json

    # -- hooks -----------------------------------------------------------------------------

    async def _create_sandbox(self, sandbox_id: str, spec: SandboxSpec) -> None:
        """Make the sandbox's directory (and whatever the pod shares)."""
        raise NotImplementedError

    async def _destroy_sandbox(self, sandbox_id: str) -> None:
        """Remove the sandbox (its containers are gone already)."""
        raise NotImplementedError

    def _shim_args(self, container_id: str, record: dict[str, Any], directory: Path) -> builtins.list[str]:
        """The runtime's own shim arguments, beyond the common ones."""
        return []

    async def _spawn_shim(self, args: builtins.list[str], log: Path) -> str:
        """Start a shim with ``args`` (stderr appended to ``log``); its one-line verdict."""
        raise NotImplementedError

    async def _start_failed(self, container_id: str) -> None:
        """Clean up after a shim that did not start the container (exit.json is written)."""

    def _is_shim(self, pid: int, container_id: str, started: dict[str, Any]) -> bool:
        """Whether ``pid`` is the live shim ``started.json`` names (not a reused pid)."""
        return process_alive(pid, started.get("shimStartTime"))

    async def _kill_running(self, container_id: str, sig: int) -> None:
        """Send ``sig`` to a container found running."""
        raise NotImplementedError

    async def _stop_signal(self, container_id: str, sig: int) -> bool:
        """Send ``sig`` on behalf of stop(); False: the container has exited already."""
        raise NotImplementedError

    async def _release(self, container_id: str, was_running: bool) -> None:
        """What remove() does before the directory goes (stop() has run if it was running)."""

    def _remove_files(self, directory: Path) -> None:
        """Remove a container's directory, and what hangs on it (on a worker thread)."""
        raise NotImplementedError

    async def exec(self, container_id: str, command: builtins.list[str], *, stdin: bool = False,
                   tty: bool = False) -> Session:
        raise NotImplementedError

    # -- container files -------------------------------------------------------------------

    def _dir(self, container_id: str) -> Path:
        if not container_id or not _HEX.issuperset(container_id):
            raise NotFound(f"container {container_id!r} not found")
        return self.containers / container_id

    def _record(self, container_id: str) -> dict[str, Any]:
        """container.json (written once by create)."""
        return self._records.load(container_id, self._dir(container_id) / "container.json")

    def _started_doc(self, container_id: str) -> dict[str, Any] | None:
        """started.json (written once by the shim, so kept once read)."""
        started = self._started.get(container_id)
        if started is None:
            started = read_json(os.path.join(self.containers, container_id, "started.json"))
            if started is not None:
                self._started[container_id] = started
        return started

    @staticmethod
    def _new_record(spec: ContainerSpec, container_id: str, log_path: Path) -> dict[str, Any]:
        """The container.json fields both runtimes write (each adds its own)."""
        return {"id": container_id, "sandboxId": spec.sandbox_id, "name": spec.name,
                "image": spec.image, "imageId": spec.image_id, "createdAt": now_rfc3339(),
                "logPath": str(log_path), "attempt": spec.attempt, "labels": spec.labels,
                "annotations": spec.annotations, "stopSignal": spec.stop_signal,
                "tty": spec.tty, "stdin": spec.stdin, "stdinOnce": spec.stdin_once}

    async def _prepare(self, directory: Path, prepare: Callable[[], None]) -> None:
        """Run create()'s ``prepare`` on a thread; on any failure nothing is left behind."""
        try:
            await asyncio.to_thread(prepare)
        except BaseException:
            await asyncio.to_thread(self._remove_files, directory)
            raise

    # -- sandboxes -------------------------------------------------------------------------

    async def run_sandbox(self, spec: SandboxSpec) -> str:
        sandbox_id = secrets.token_hex(32)
        await self._create_sandbox(sandbox_id, spec)
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
        await self._destroy_sandbox(sandbox_id)

    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        return self.sandboxes.status(sandbox_id)

    async def list_sandboxes(self) -> builtins.list[SandboxStatus]:
        return [self.sandboxes.status(i) for i in self.sandboxes.ids()]

    # -- containers ------------------------------------------------------------------------

    async def start(self, container_id: str) -> None:
        record = self._record(container_id)
        directory = self._dir(container_id)
        if (directory / "started.json").exists() or (directory / "exit.json").exists():
            raise InvalidState(f"container {container_id} was already started")
        args = ["--id", container_id, "--state-dir", str(directory),
                "--log-path", record["logPath"],
                "--log-max-size", str(self.log_max_size), "--log-max-files", str(self.log_max_files),
                "--attach-socket", self._attach_name(container_id),
                *self._shim_args(container_id, record, directory)]
        args += [flag for flag, on in (("--tty", record["tty"]), ("--stdin", record["stdin"]),
                                       ("--stdin-once", record["stdinOnce"])) if on]
        line = await self._spawn_shim(args, directory / "shim.log")
        if not line.startswith("ok "):
            message = line.removeprefix("error ").strip() or self.shim_died
            write_json(directory / "exit.json", {"exitCode": 128, "finishedAt": now_rfc3339(),
                                                 "reason": "StartError", "message": message})
            await self._start_failed(container_id)
            raise StartFailed(message)
        self._watch(container_id)

    def _watch(self, container_id: str) -> asyncio.Future[None]:
        """A future resolved when the container's shim exits (i.e. after exit.json)."""
        self._dir(container_id)
        started = self._started_doc(container_id) or {}
        shim = started.get("shimPid")
        return self._exits.watch(container_id, shim if isinstance(shim, int) else None,
                                 lambda pid: self._is_shim(pid, container_id, started))

    async def status(self, container_id: str) -> ContainerStatus:
        record = self._record(container_id)
        started = self._started_doc(container_id)
        exit_file = os.path.join(self.containers, container_id, "exit.json")
        finished = read_json(exit_file)
        state, pid, code, reason, message = ContainerState.CREATED, None, None, "", ""
        if finished is None and started is not None:
            shim = started.get("shimPid")
            if isinstance(shim, int) and self._is_shim(shim, container_id, started):
                state, pid = ContainerState.RUNNING, int(started["pid"])
            else:
                finished = read_json(exit_file) or {
                    "exitCode": LOST_EXIT_CODE, "finishedAt": now_rfc3339(), "reason": "Unknown",
                    "message": "the container's shim is gone; its exit status was lost"}
        if finished is not None:
            state = ContainerState.EXITED
            code = int(finished["exitCode"])
            reason = finished.get("reason") or ("OOMKilled" if finished.get("oomKilled")
                                                else "Completed" if code == 0 else "Error")
            message = finished.get("message", "")
        return ContainerStatus(
            id=container_id, sandbox_id=record["sandboxId"], name=record["name"], state=state,
            image=record["image"], image_id=record["imageId"],
            created_at=parse_time_cached(record["createdAt"]),
            started_at=parse_time_cached(started["startedAt"]) if started else None,
            finished_at=parse_time_cached(finished["finishedAt"]) if finished else None,
            pid=pid, exit_code=code, reason=reason, message=message,
            log_path=Path(record["logPath"]), attempt=int(record["attempt"]),
            labels=dict(record["labels"]), annotations=dict(record["annotations"]))

    async def list(self, sandbox_id: str | None = None) -> builtins.list[ContainerStatus]:
        statuses = []
        for entry in sorted(os.listdir(self.containers)):
            try:
                if sandbox_id is not None and self._record(entry)["sandboxId"] != sandbox_id:
                    continue
                statuses.append(await self.status(entry))
            except (NotFound, ValueError, KeyError):
                continue   # being created or removed
        return statuses

    async def wait(self, container_id: str) -> ContainerStatus:
        status = await self.status(container_id)
        if status.state != ContainerState.RUNNING:
            return status
        await asyncio.shield(self._watch(container_id))
        return await self.status(container_id)

    async def _require_running(self, container_id: str) -> None:
        if (await self.status(container_id)).state != ContainerState.RUNNING:
            raise InvalidState(f"container {container_id} is not running")

    async def kill(self, container_id: str, sig: int = signal.SIGKILL) -> None:
        await self._require_running(container_id)
        await self._kill_running(container_id, sig)

    async def stop(self, container_id: str, timeout: float) -> None:
        """The stop signal (SIGTERM unless the image says otherwise), SIGKILL after ``timeout``."""
        if (await self.status(container_id)).state != ContainerState.RUNNING:
            return
        exited = self._watch(container_id)
        if timeout > 0:
            if not await self._stop_signal(
                    container_id, signal_number(self._record(container_id).get("stopSignal"))):
                return
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout)
                return
            except asyncio.TimeoutError:
                pass
        await self._stop_signal(container_id, signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.shield(exited), KILL_WARNING_SECONDS)
        except asyncio.TimeoutError:       # a process stuck in the kernel, or a bug: say so
            started = self._started_doc(container_id) or {}
            log.warning("container %s: its shim (pid %s) has not exited %.0f s after SIGKILL to pid %s; "
                        "still waiting", container_id[:12], started.get("shimPid"), KILL_WARNING_SECONDS,
                        started.get("pid"))
            await asyncio.shield(exited)

    async def remove(self, container_id: str) -> None:
        directory = self._dir(container_id)
        if not directory.exists():
            return
        running = (await self.status(container_id)).state == ContainerState.RUNNING
        if running:
            await self.stop(container_id, 0)
        await self._release(container_id, running)
        self._exits.forget(container_id)
        self._records.forget(container_id)
        self._started.pop(container_id, None)
        await asyncio.to_thread(self._remove_files, directory)

    async def logs(self, container_id: str, *, follow: bool = False,
                   tail_lines: int | None = None,
                   since: datetime | None = None) -> AsyncIterator[LogRecord]:
        """The container's log lines; ``follow`` ends once it has exited and all is read."""
        path = Path(self._record(container_id)["logPath"])
        async for record in container_log(path, lambda: self.wait(container_id), follow=follow,
                                          tail_lines=tail_lines, since=since):
            yield record

    # -- exec and attach -------------------------------------------------------------------

    async def exec_sync(self, container_id: str, command: builtins.list[str], *,
                        timeout: float = 10.0, input: bytes = b"") -> ExecResult:
        session = await self.exec(container_id, command, stdin=bool(input))
        out: dict[str, builtins.list[bytes]] = {"stdout": [], "stderr": []}

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

    def _attach_name(self, container_id: str) -> str:
        return f"{self.attach_prefix}/{container_id}"

    async def attach(self, container_id: str, *, stdin: bool = False) -> Session:
        await self._require_running(container_id)
        reader, writer = await _connect_abstract("\0" + self._attach_name(container_id))

        async def exit_code() -> int:
            return (await self.wait(container_id)).exit_code or 0

        return AttachSession(reader, writer, exit_code)

    async def close(self) -> None:
        """Forget exit watches (containers keep running; a new runtime adopts them)."""
        self._exits.close()


# -- helpers -----------------------------------------------------------------------------------


async def _connect_abstract(name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams over a connection to an abstract unix socket (``"\\0..."``).

    uvloop, which every skiff process runs on, refuses abstract names in
    open_unix_connection(path) (EINVAL); a socket connected here and handed over works
    on any event loop."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, name)
    except BaseException:
        sock.close()
        raise
    return await asyncio.open_unix_connection(sock=sock)


def process_alive(pid: Any, start_time: Any) -> bool:
    """Whether ``pid`` is a live process (not a zombie) that started at ``start_time``
    (clock ticks after boot, /proc/<pid>/stat field 22; None: any start time)."""
    if not isinstance(pid, int):
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as source:
            fields = source.read().rsplit(b")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != b"Z" and (start_time is None or int(fields[19]) == start_time)


def signal_number(name: str | None) -> int:
    """A stop signal as the image or kubelet names it ("SIGTERM", "term", "15"); SIGTERM
    when absent or unknown."""
    name = (name or "SIGTERM").upper()
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        return int(signal.SIGTERM)


def now_rfc3339() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


#: times in container.json / started.json / exit.json, parsed once each
parse_time_cached = functools.lru_cache(maxsize=4096)(parse_time)
