"""The runc runtime: real Linux containers from OCI bundles.

State lives under one directory (``root``; a real node's is on a tmpfs, see
..rundir), so a restarted kubelet finds everything again (:meth:`RuncRuntime.list`,
:meth:`RuncRuntime.list_sandboxes`); the writable layers under another (``layers``,
on disk)::

    root/runc/                    runc --root: runc's own state, separate from any other
    root/sandboxes/<id>/          see .sandbox
    root/containers/<id>/
      container.json              what the kubelet asked for (name, image, sandbox, …)
      config.json  rootfs/        the OCI bundle; rootfs is an overlay mount
      started.json  exit.json     written by the shim: pid, times, exit code, OOM
      container.log               the CRI log, unless the spec names another path
    layers/<id>/upper/  work/     the container's writable layer (overlayfs upper, work)
    layers/mountpoints/<key>/     read-only, shared: the empty files and directories its
                                  mounts need (see .mountpoints), under the writable layer

A container's life in runc terms::

    create()  overlay mount + config.json             -> CREATED (no process yet)
    start()   shim -> runc run --detach               -> RUNNING
              the process exits / stop() / kill()    -> EXITED   (shim writes exit.json)
    remove()  runc delete --force, unmount, rm -r

Waiting for exits uses a pidfd on the container's shim (no polling); statuses are
read from the files above, so they survive the runtime object.  What this shares
with the process runtime (statuses, wait, stop, attach, logs) is in .shimmed; here
are the runc commands, the overlay and the cgroups.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import os
import secrets
import shutil
import signal
import tty as tty_module
from pathlib import Path
from typing import Any

import orjson

from ...pipes import read_line
from . import cgroups, commands
from .bundle import build_config
from .bundle import mounts as bundle_mounts
from .diskdirs import spread_subdirectories
from .interface import ContainerConfigError, ContainerSpec, ContainerState, RuntimeFailure, SandboxSpec, Session
from .logs import DirectoryWatch
from .mounts import mount_overlay, unmount_all_at
from .mountpoints import MountpointLayers, mount_points
from .nskeeper import NamespaceKeeper
from .sandbox import Sandboxes
from .sessions import PipeSession, PtySession
from .shimlauncher import ShimLauncher
from .shimmed import ShimmedRuntime, process_alive
from .statefiles import read_json, write_json
from .users import resolve_in_root, resolve_user

SHIM = Path(__file__).with_name("shim.py")


class RuncRuntime(ShimmedRuntime):
    sandboxes: Sandboxes
    name = "runc"
    attach_prefix = "skiff/attach"
    shim_died = "the shim died before starting runc"

    def __init__(self, root: Path, *, layers: Path | None = None, runc: str = "runc",
                 cgroup_parent: str = "skiff", log_max_size: int = 10 << 20,
                 log_max_files: int = 5) -> None:
        super().__init__(root, log_max_size=log_max_size, log_max_files=log_max_files)
        self.layers = Path(layers).resolve() if layers is not None else self.root / "layers"
        spread_subdirectories(self.layers)          # one per container: see .diskdirs
        self.runc = shutil.which(runc) or runc
        self.cgroup_parent = cgroup_parent
        self.runc_root = self.root / "runc"
        self.runc_root.mkdir(parents=True, exist_ok=True)
        self.sandboxes = Sandboxes(self.root / "sandboxes", cgroup_parent, NamespaceKeeper(self.root))
        self.sandboxes.remove_stale_pod_cgroups()
        self.sandboxes.keep_namespaces()
        self.mountpoints = MountpointLayers(self.layers / "mountpoints", self._mountpoint_layers_in_use)
        self._launcher = ShimLauncher()

    async def _runc(self, *args: str, check: bool = True) -> tuple[int, bytes, bytes]:
        code, out, err = await commands.run([self.runc, "--root", str(self.runc_root), *args])
        if check and code != 0:
            raise RuntimeFailure(f"runc {args[0]}: {err.decode(errors='replace').strip()}")
        return code, out, err

    async def version(self) -> str:
        _, out, _ = await self._runc("--version")
        return out.decode().splitlines()[0]

    # -- sandboxes -----------------------------------------------------------------------

    async def _create_sandbox(self, sandbox_id: str, spec: SandboxSpec) -> None:
        self._launcher.warm_up()       # its containers come next
        await self.sandboxes.create(sandbox_id, spec)

    async def _destroy_sandbox(self, sandbox_id: str) -> None:
        await self.sandboxes.destroy(sandbox_id)

    # -- containers ----------------------------------------------------------------------

    async def create(self, spec: ContainerSpec) -> str:
        sandbox = self.sandboxes.view(spec.sandbox_id)
        if spec.pid_namespace_of:
            target = await self.status(spec.pid_namespace_of)
            if target.state != ContainerState.RUNNING or target.pid is None:
                raise ContainerConfigError(f"container {target.name} is not running: its process "
                                           "namespace cannot be joined")
            sandbox = dataclasses.replace(sandbox, pidns=Path(f"/proc/{target.pid}/ns/pid"), host_pid=False)
        pod_uid = self.sandboxes.pod_uid(spec.sandbox_id)
        container_id = secrets.token_hex(32)
        cgroup = cgroups.container_path(self.cgroup_parent, pod_uid, container_id)
        directory = self.containers / container_id
        log_path = spec.log_path or directory / "container.log"

        def prepare() -> None:
            self.sandboxes.keep_namespaces()    # (the container joins them through the keeper)
            rootfs = directory / "rootfs"
            rootfs.mkdir(parents=True)
            lowers = [Path(p) for p in reversed(spec.layers)]
            if not lowers:                      # an image without layers: an empty lower
                lowers = [directory / "empty"]
                lowers[0].mkdir()
            # (an image without layers gets none: its lower is this container's own)
            oci_mounts = bundle_mounts(spec, sandbox)
            points = mount_points(oci_mounts, spec.working_dir) if spec.layers else []
            with self.mountpoints.use(lowers, points) as mountpoint_layer:
                upper = self.writable_layer(container_id)
                upper.mkdir(parents=True)
                (upper.parent / "work").mkdir()
                below = [mountpoint_layer, *lowers] if mountpoint_layer else lowers
                mount_overlay(rootfs, below, upper, upper.parent / "work")
                user = resolve_user(rootfs, spec.security, spec.image_user)
                if spec.working_dir:
                    resolve_in_root(rootfs, spec.working_dir).mkdir(parents=True, exist_ok=True)
                config = build_config(spec, sandbox, user, cgroup, oci_mounts)
                (directory / "config.json").write_bytes(orjson.dumps(config, option=orjson.OPT_INDENT_2))
                log_path.parent.mkdir(parents=True, exist_ok=True)
                write_json(directory / "container.json", {
                    **self._new_record(spec, container_id, log_path), "cgroupsPath": cgroup,
                    "ownPidNamespace": sandbox.pidns is None and not sandbox.host_pid,
                    **({"mountpointLayer": mountpoint_layer.name} if mountpoint_layer else {})})

        await self._prepare(directory, prepare)
        return container_id

    def _shim_args(self, container_id: str, record: dict[str, Any], directory: Path) -> builtins.list[str]:
        return ["--bundle", str(directory), "--runc", self.runc,
                "--runc-root", str(self.runc_root),
                "--oom-file", str(cgroups.oom_counter_file(record["cgroupsPath"]))]

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
        return (await read_line(read_end)).decode(errors="replace")   # (closes read_end)

    async def _start_failed(self, container_id: str) -> None:
        await self._runc("delete", "--force", container_id, check=False)

    def _is_shim(self, pid: int, container_id: str, started: dict[str, Any]) -> bool:
        """By pid and start time; shims from before start times were recorded are
        recognised by their command line."""
        if "shimStartTime" in started:
            return process_alive(pid, started["shimStartTime"])
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                args = cmdline.read().split(b"\0")
        except OSError:
            return False
        return (container_id.encode() in args and str(SHIM).encode() in args
                and process_alive(pid, None))

    async def _kill_running(self, container_id: str, sig: int) -> None:
        # What `runc kill` does, without starting runc: the signal to the container's
        # init (SIGKILL to the init of its own pid namespace ends every process in it)
        if sig != signal.SIGKILL or self._record(container_id).get("ownPidNamespace"):
            if _signal_init(self._started.get(container_id) or {}, sig):
                return
        args = ["kill", "--all"] if sig == signal.SIGKILL else ["kill"]
        code, _, err = await self._runc(*args, container_id, str(int(sig)), check=False)
        if code != 0 and (await self.status(container_id)).state == ContainerState.RUNNING:
            raise RuntimeFailure(f"runc kill: {err.decode(errors='replace').strip()}")

    async def _stop_signal(self, container_id: str, sig: int) -> bool:
        if (await self.status(container_id)).state != ContainerState.RUNNING:
            return False   # it exited meanwhile
        await self._kill_running(container_id, sig)
        return True

    async def _release(self, container_id: str, was_running: bool) -> None:
        await self._runc("delete", "--force", container_id, check=False)

    def _mountpoint_layers_in_use(self) -> builtins.list[str]:
        return [record["mountpointLayer"] for record in map(read_json, self.containers.glob("*/container.json"))
                if record and "mountpointLayer" in record]

    def writable_layer(self, container_id: str) -> Path:
        """The container's overlay upper directory: what it wrote to its root filesystem."""
        return self.layers / container_id / "upper"

    def _remove_files(self, directory: Path) -> None:
        cgroup = (read_json(directory / "container.json") or {}).get("cgroupsPath")
        # The root file system is the one mount in a bundle: what the container mounted
        # below it goes with it.  (No mountinfo scan: with many pods it is long.)
        unmount_all_at(directory / "rootfs")
        if cgroup:
            cgroups.remove(cgroup)
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(self.layers / directory.name, ignore_errors=True)

    # -- exec ----------------------------------------------------------------------------

    async def exec(self, container_id: str, command: builtins.list[str], *, stdin: bool = False,
                   tty: bool = False) -> Session:
        await self._require_running(container_id)
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

    async def close(self) -> None:
        """Forget exit watches, let the launcher go (containers and shims keep running,
        and so does the namespace keeper while any sandbox is left)."""
        await super().close()
        self._launcher.close()
        await asyncio.to_thread(self.sandboxes.stop_keeper_if_unused)

    def take_down(self) -> None:
        """The node is going away for good (its pods removed): end the namespace keeper
        whatever it still holds, before the run directory goes."""
        if self.sandboxes.keeper is not None:
            self.sandboxes.keeper.stop()


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
