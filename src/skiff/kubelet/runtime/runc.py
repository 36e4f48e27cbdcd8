"""The runc runtime: real Linux containers from OCI bundles.

State lives under one directory (``root``), so a restarted kubelet finds everything
again (:meth:`RuncRuntime.list`, :meth:`RuncRuntime.list_sandboxes`)::

    root/runc/                    runc --root: runc's own state, separate from any other
    root/sandboxes/<id>/          see .sandbox
    root/containers/<id>/
      container.json              what the kubelet asked for (name, image, sandbox, …)
      config.json  rootfs/        the OCI bundle; rootfs is an overlay mount
      upper/  work/               the container's writable layer
      started.json  exit.json     written by the shim: pid, times, exit code, OOM
      container.log               the CRI log, unless the spec names another path

A container's life in runc terms::

    create()  overlay mount + config.json             -> CREATED (no process yet)
    start()   shim -> runc run --detach               -> RUNNING
              the process exits / stop() / kill()    -> EXITED   (shim writes exit.json)
    remove()  runc delete --force, unmount, rm -r

Waiting for exits uses a pidfd on the container's shim (no polling); statuses are
read from the files above, so they survive the runtime object.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import json
import os
import re
import secrets
import shutil
import signal
import tty as tty_module
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import AsyncIterator
from typing import Any

from . import cgroups, commands
from .bundle import build_config
from .exits import ExitWatcher
from .interface import (ContainerSpec, ContainerState, ContainerStatus, ExecResult,
                        InvalidState, NotFound, RuntimeFailure, SandboxSpec, SandboxStatus,
                        Session, StartFailed)
from .logs import DirectoryWatch, LogRecord, container_log, parse_time
from .mounts import mount_overlay, mount_points_under, unmount
from .sandbox import Sandboxes
from .sessions import AttachSession, PipeSession, PtySession
from .shimlauncher import ShimLauncher
from .users import resolve_in_root, resolve_user

SHIM = Path(__file__).with_name("shim.py")
_CONTAINER_ID = re.compile("[0-9a-f]+")
LOST_EXIT_CODE = 255


class RuncRuntime:
    name = "runc"

    def __init__(self, root: Path, *, runc: str = "runc", cgroup_parent: str = "skiff",
                 log_max_size: int = 10 << 20, log_max_files: int = 5) -> None:
        self.root = Path(root).resolve()
        self.runc = shutil.which(runc) or runc
        self.cgroup_parent = cgroup_parent
        self.log_max_size = log_max_size
        self.log_max_files = log_max_files
        self.runc_root = self.root / "runc"
        self.containers = self.root / "containers"
        self.sandboxes = Sandboxes(self.root / "sandboxes", cgroup_parent)
        for directory in (self.runc_root, self.containers):
            directory.mkdir(parents=True, exist_ok=True)
        self._exits = ExitWatcher()
        self._launcher = ShimLauncher()
        self._records: dict[str, tuple[int, dict[str, Any]]] = {}     # id -> (inode, container.json)
        self._started: dict[str, dict[str, Any]] = {}                 # id -> started.json

    # -- plumbing ------------------------------------------------------------------------

    async def _runc(self, *args: str, check: bool = True) -> tuple[int, bytes, bytes]:
        code, out, err = await commands.run([self.runc, "--root", str(self.runc_root), *args])
        if check and code != 0:
            raise RuntimeFailure(f"runc {args[0]}: {err.decode(errors='replace').strip()}")
        return code, out, err

    async def version(self) -> str:
        _, out, _ = await self._runc("--version")
        return out.decode().splitlines()[0]

    def _dir(self, container_id: str) -> Path:
        if not _CONTAINER_ID.fullmatch(container_id):
            raise NotFound(f"container {container_id!r} not found")
        return self.containers / container_id

    def _record(self, container_id: str) -> dict[str, Any]:
        """container.json (written once by create; kept in memory while the file is the same)."""
        path = self._dir(container_id) / "container.json"
        try:
            inode = os.stat(path).st_ino
            cached = self._records.get(container_id)
            if cached is not None and cached[0] == inode:
                return cached[1]
            record: dict[str, Any] = json.loads(path.read_bytes())
        except FileNotFoundError:
            self._records.pop(container_id, None)
            raise NotFound(f"container {container_id!r} not found") from None
        self._records[container_id] = (inode, record)
        return record

    # -- sandboxes -----------------------------------------------------------------------

    async def run_sandbox(self, spec: SandboxSpec) -> str:
        self._launcher.warm_up()       # its containers come next
        sandbox_id = secrets.token_hex(32)
        await self.sandboxes.create(sandbox_id, spec)
        return sandbox_id

    async def stop_sandbox(self, sandbox_id: str, timeout: float = 10.0) -> None:
        self.sandboxes.load(sandbox_id)
        containers = await self.list(sandbox_id)
        await asyncio.gather(*(self.stop(c.id, timeout) for c in containers
                               if c.state == ContainerState.RUNNING))
        await asyncio.to_thread(self.sandboxes.mark_not_ready, sandbox_id)

    async def remove_sandbox(self, sandbox_id: str) -> None:
        if not self.sandboxes.directory(sandbox_id).exists():
            return
        for container in await self.list(sandbox_id):
            await self.remove(container.id)
        await self.sandboxes.destroy(sandbox_id)

    async def sandbox_status(self, sandbox_id: str) -> SandboxStatus:
        return self.sandboxes.status(sandbox_id)

    async def list_sandboxes(self) -> builtins.list[SandboxStatus]:
        return [self.sandboxes.status(i) for i in self.sandboxes.ids()]

    # -- containers ----------------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> str:
        sandbox = self.sandboxes.view(spec.sandbox_id)
        pod_uid = self.sandboxes.pod_uid(spec.sandbox_id)
        container_id = secrets.token_hex(32)
        cgroup = cgroups.container_path(self.cgroup_parent, pod_uid, container_id)
        directory = self.containers / container_id
        log_path = spec.log_path or directory / "container.log"

        def prepare() -> None:
            for sub in ("rootfs", "upper", "work", "empty"):
                (directory / sub).mkdir(parents=True)
            lowers = [Path(p) for p in reversed(spec.layers)] or [directory / "empty"]
            mount_overlay(directory / "rootfs", lowers, directory / "upper", directory / "work")
            rootfs = directory / "rootfs"
            user = resolve_user(rootfs, spec.security, spec.image_user)
            if spec.working_dir:
                resolve_in_root(rootfs, spec.working_dir).mkdir(parents=True, exist_ok=True)
            config = build_config(spec, sandbox, user, cgroup)
            (directory / "config.json").write_text(json.dumps(config, indent=1))
            log_path.parent.mkdir(parents=True, exist_ok=True)
            record = {
                "id": container_id, "sandboxId": spec.sandbox_id, "name": spec.name,
                "image": spec.image, "imageId": spec.image_id, "createdAt": _now(),
                "logPath": str(log_path), "attempt": spec.attempt, "labels": spec.labels,
                "annotations": spec.annotations, "cgroupsPath": cgroup,
                "stopSignal": spec.stop_signal, "tty": spec.tty, "stdin": spec.stdin,
                "stdinOnce": spec.stdin_once,
                "ownPidNamespace": sandbox.pidns is None and not sandbox.host_pid}
            _write_json(directory / "container.json", record)

        try:
            await asyncio.to_thread(prepare)
        except BaseException:
            await asyncio.to_thread(self._discard, directory)
            raise
        return container_id

    async def start(self, container_id: str) -> None:
        record = self._record(container_id)
        directory = self._dir(container_id)
        if (directory / "started.json").exists() or (directory / "exit.json").exists():
            raise InvalidState(f"container {container_id} was already started")
        args = ["--id", container_id, "--bundle", str(directory), "--runc", self.runc,
                "--runc-root", str(self.runc_root), "--state-dir", str(directory),
                "--log-path", record["logPath"],
                "--log-max-size", str(self.log_max_size), "--log-max-files", str(self.log_max_files),
                "--attach-socket", _attach_name(container_id),
                "--oom-file", str(cgroups.oom_counter_file(record["cgroupsPath"]))]
        args += [flag for flag, on in (("--tty", record["tty"]), ("--stdin", record["stdin"]),
                                       ("--stdin-once", record["stdinOnce"])) if on]
        line = await self._spawn_shim(args, directory / "shim.log")
        if not line.startswith("ok "):
            message = line.removeprefix("error ").strip() or "the shim died before starting runc"
            _write_json(directory / "exit.json", {"exitCode": 128, "finishedAt": _now(),
                                                  "reason": "StartError", "message": message})
            await self._runc("delete", "--force", container_id, check=False)
            raise StartFailed(message)
        self._watch(container_id)

    async def _spawn_shim(self, args: builtins.list[str], log: Path) -> str:
        """Start a shim (through the launcher); its one-line verdict."""
        read_end, write_end = os.pipe()
        try:
            log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            try:
                await self._launcher.spawn(args, write_end, log_fd)
            finally:
                os.close(log_fd)
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_end, "rb", 0))
        try:
            return (await reader.readline()).decode(errors="replace")
        finally:
            transport.close()

    def _watch(self, container_id: str) -> asyncio.Future[None]:
        """A future resolved when the container's shim exits (i.e. after exit.json)."""
        started = (self._started.get(container_id)
                   or _read_json(self._dir(container_id) / "started.json") or {})
        shim = started.get("shimPid")
        return self._exits.watch(container_id, shim if isinstance(shim, int) else None,
                                 lambda pid: _is_shim_of(pid, container_id, started))

    async def status(self, container_id: str) -> ContainerStatus:
        record = self._record(container_id)
        directory = os.path.join(self.containers, container_id)
        started = self._started.get(container_id)
        if started is None:
            started = _read_json(os.path.join(directory, "started.json"))
            if started is not None:        # written once by the shim, never changed
                self._started[container_id] = started
        finished = _read_json(os.path.join(directory, "exit.json"))
        state, pid, code, reason, message = ContainerState.CREATED, None, None, "", ""
        if finished is None and started is not None:
            shim = started.get("shimPid")
            if isinstance(shim, int) and _is_shim_of(shim, container_id, started):
                state, pid = ContainerState.RUNNING, int(started["pid"])
            else:
                finished = _read_json(os.path.join(directory, "exit.json")) or {
                    "exitCode": LOST_EXIT_CODE, "finishedAt": _now(), "reason": "Unknown",
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

    async def kill(self, container_id: str, sig: int = signal.SIGKILL) -> None:
        status = await self.status(container_id)
        if status.state != ContainerState.RUNNING:
            raise InvalidState(f"container {container_id} is not running")
        # What `runc kill` does, without starting runc: the signal to the container's
        # init (SIGKILL to the init of its own pid namespace ends every process in it)
        if sig != signal.SIGKILL or self._record(container_id).get("ownPidNamespace"):
            if _signal_init(self._started.get(container_id) or {}, sig):
                return
        args = ["kill", "--all"] if sig == signal.SIGKILL else ["kill"]
        code, _, err = await self._runc(*args, container_id, str(int(sig)), check=False)
        if code != 0 and (await self.status(container_id)).state == ContainerState.RUNNING:
            raise RuntimeFailure(f"runc kill: {err.decode(errors='replace').strip()}")

    async def stop(self, container_id: str, timeout: float) -> None:
        """The stop signal (SIGTERM unless the image says otherwise), SIGKILL after ``timeout``."""
        status = await self.status(container_id)
        if status.state != ContainerState.RUNNING:
            return
        record = self._record(container_id)
        exited = self._watch(container_id)
        sig = _signal_number(record.get("stopSignal") or "SIGTERM")
        if timeout > 0:
            try:
                await self.kill(container_id, sig)
            except InvalidState:
                return   # it exited meanwhile
            try:
                await asyncio.wait_for(asyncio.shield(exited), timeout)
                return
            except asyncio.TimeoutError:
                pass
        try:
            await self.kill(container_id, signal.SIGKILL)
        except InvalidState:
            pass
        await asyncio.shield(exited)

    async def remove(self, container_id: str) -> None:
        directory = self._dir(container_id)
        if not directory.exists():
            return
        status = await self.status(container_id)
        if status.state == ContainerState.RUNNING:
            await self.stop(container_id, 0)
        await self._runc("delete", "--force", container_id, check=False)
        self._exits.forget(container_id)
        self._records.pop(container_id, None)
        self._started.pop(container_id, None)
        record = _read_json(directory / "container.json") or {}
        await asyncio.to_thread(self._discard, directory, record.get("cgroupsPath"))

    def _discard(self, directory: Path, cgroup: str | None = None) -> None:
        for point in mount_points_under(directory):
            unmount(point, detach=True)
        if cgroup:
            cgroups.remove(cgroup)
        shutil.rmtree(directory, ignore_errors=True)

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
        if (await self.status(container_id)).state != ContainerState.RUNNING:
            raise InvalidState(f"container {container_id} is not running")
        pid_file = self._dir(container_id) / f"exec-{secrets.token_hex(8)}.pid"
        base = [self.runc, "--root", str(self.runc_root), "exec", "--pid-file", str(pid_file)]
        if not tty:
            process = await asyncio.create_subprocess_exec(
                *base, container_id, *command,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            return PipeSession(process, pid_file)
        # runc copies between the container's terminal and its own stdio: a raw pty of ours
        master, slave = os.openpty()
        tty_module.setraw(slave)
        try:
            watch = DirectoryWatch(pid_file.parent)
            try:
                process = await asyncio.create_subprocess_exec(
                    *base, "--tty", container_id, *command, stdin=slave, stdout=slave,
                    stderr=slave)
                # runc writes the pid file once it handles signals (SIGWINCH = resize)
                while not pid_file.exists() and process.returncode is None:
                    exited = asyncio.ensure_future(process.wait())
                    try:
                        await watch.changed(None, also=exited)
                    finally:
                        exited.cancel()
            finally:
                watch.close()
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        return PtySession(process, master, pid_file)

    async def exec_sync(self, container_id: str, command: builtins.list[str], *,
                        timeout: float = 10.0,
                        input: bytes = b"") -> ExecResult:
        session = await self.exec(container_id, command, stdin=bool(input))
        assert isinstance(session, PipeSession)
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
            await session.close()
            code, timed_out = -1, True
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
        self._launcher.close()


def _attach_name(container_id: str) -> str:
    return f"skiff/attach/{container_id}"


def _is_shim_of(pid: int | None, container_id: str, started: dict[str, Any]) -> bool:
    """Whether ``pid`` is still the (live) shim of this container, as ``started.json``
    recorded it: same start time (a reused pid has another); shims from before start
    times were recorded are recognised by their command line."""
    if pid is None:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        if "shimStartTime" not in started:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                args = cmdline.read().split(b"\0")
            if container_id.encode() not in args or str(SHIM).encode() not in args:
                return False
    except OSError:
        return False
    if fields[0] == b"Z":
        return False
    return "shimStartTime" not in started or int(fields[19]) == started["shimStartTime"]


def _signal_init(started: dict[str, Any], sig: int) -> bool:
    """Signal the container's init through a pidfd; False when that cannot be done
    safely (no start time recorded to tell the process from a successor on its pid)."""
    pid, start_time = started.get("pid"), started.get("startTime")
    if not isinstance(pid, int) or not isinstance(start_time, int):
        return False
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True                       # gone already
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        if fields[0] == b"Z" or int(fields[19]) != start_time:
            return True                   # exited (a zombie, or the pid is someone else's)
        signal.pidfd_send_signal(pidfd, sig)
    except (ProcessLookupError, FileNotFoundError):
        pass                              # exited meanwhile
    finally:
        os.close(pidfd)
    return True


def _signal_number(name: str) -> int:
    name = name.upper()
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        return int(signal.SIGTERM)


def _now() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}000Z"


#: times in container.json / started.json, parsed once each
_parse_time = functools.lru_cache(maxsize=4096)(parse_time)


def _read_json(path: Path | str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as source:
            doc: dict[str, Any] = json.loads(source.read())
        return doc
    except (FileNotFoundError, ValueError):
        return None


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)
