"""The process runtime's per-container shim: starts the container's process itself
(no runc) and stays with it until it exits.

Run as ``python -I -S processshim.py --id … --state-dir … …`` by the process runtime
(.process); stdlib only.  It is the runc shim (.shim) with another way to start:
the same CRI log with rotation, attach socket, ``started.json`` / ``exit.json``
and child-subreaper role, so a kubelet restart finds the container again.  What it
runs is ``<state-dir>/process.json``, written by the runtime's ``create``::

    shim (subreaper, own session)
      └─ fork ─▶ child ── userns mode ── unshare(user, mnt, pid, uts, ipc), id maps
                   │                      └─ fork ─▶ pid 1 of the new namespaces:
                   │                                 rootless.prepare_root, setsid, exec
                   │                         the child reports that pid and exits;
                   │                         the container is re-parented to the shim
                   └──── plain mode ────── setsid, chdir, exec (it is the container)

    report pipe (close-on-exec): "pid <n>" from the child, "error <text>" from
    whichever step failed; end of file once the command was exec'd.

When the container's main process exits, whatever it left behind goes too (the pid
namespace does that in userns mode; in plain mode the shim kills the rest of the
container's session and every orphan re-parented to it), as in a pod, where the
container's init dying ends the container.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import rootless  # noqa: E402  (siblings, imported as top-level modules: no package here)
import shim  # noqa: E402

LEFTOVER_ROUNDS = 20


class ProcessArgs:
    """``--name value`` options and ``--tty`` / ``--stdin`` / ``--stdin-once`` flags."""

    def __init__(self, argv: list[str]) -> None:
        self.tty = self.stdin = self.stdin_once = False
        self.log_max_size, self.log_max_files, self.oom_file = 10 << 20, 5, ""
        values: dict[str, str] = {}
        items = iter(argv)
        for item in items:
            name = item.removeprefix("--").replace("-", "_")
            if name in ("tty", "stdin", "stdin_once"):
                setattr(self, name, True)
            else:
                values[name] = next(items)
        self.id, self.state_dir = values["id"], values["state_dir"]
        self.log_path, self.attach_socket = values["log_path"], values["attach_socket"]
        self.log_max_size = int(values.get("log_max_size", self.log_max_size))
        self.log_max_files = int(values.get("log_max_files", self.log_max_files))


class ProcessShim(shim.Shim):
    def start(self) -> int:
        a = self.args
        with open(os.path.join(a.state_dir, "process.json")) as source:
            spec = json.load(source)
        self.spec = spec
        self.attach_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.attach_listener.bind("\0" + a.attach_socket)
        self.attach_listener.listen(8)
        devnull = os.open(os.devnull, os.O_RDWR)
        child_fds: list[int] = []
        if a.tty:
            master, slave = os.openpty()
            self.pty = master
            self.readers = {master: "stdout"}
            if a.stdin:
                self.stdin_w = master
            stdio, child_fds = (slave, slave, slave), [slave]
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self.readers = {out_r: "stdout", err_r: "stderr"}
            in_r = devnull
            if a.stdin:
                in_r, self.stdin_w = os.pipe()
                child_fds.append(in_r)
            stdio = (in_r, out_w, err_w)
            child_fds += [out_w, err_w]
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        first = os.fork()
        if first == 0:
            self._child(spec, stdio, report_w)   # never returns
        os.close(report_w)
        for fd in child_fds:
            os.close(fd)
        if spec["mode"] == "userns":
            os.waitpid(first, 0)         # it exits once it has forked the container
        with os.fdopen(report_r, "rb") as report:
            lines = report.read().decode(errors="replace").splitlines()
        pid = first
        for line in lines:
            if line.startswith("error "):
                raise RuntimeError(line.removeprefix("error "))
            if line.startswith("pid "):
                pid = int(line.removeprefix("pid "))
        if spec["mode"] == "userns" and not any(l.startswith("pid ") for l in lines):
            raise RuntimeError("the container's process did not start")
        shim.write_json(os.path.join(a.state_dir, "started.json"),
                        {"pid": pid, "pidStartTime": rootless.process_start_time(pid) or 0,
                         "shimPid": os.getpid(), "shimStartTime": shim.process_start_time(),
                         "startedAt": shim.rfc3339nano()}, durable=False)
        return pid

    def _child(self, spec: dict, stdio: tuple[int, int, int], report: int) -> None:  # type: ignore[type-arg]
        """In the forked child: become the container (see the module docstring)."""
        try:
            signal.set_wakeup_fd(-1)
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
            if spec["mode"] == "userns":
                flags = rootless.CLONE_NEWUSER | rootless.CLONE_NEWNS
                for kind in spec["namespaces"]:
                    flags |= rootless.NAMESPACE_FLAGS[kind]
                rootless.unshare(flags)
                rootless.write_id_maps(spec["uid"], spec["gid"], spec["hostUid"], spec["hostGid"])
                inner = os.fork()
                if inner == 0:
                    rootless.prepare_root(spec)
                    self._become(spec, None)
                os.write(report, f"pid {inner}\n".encode())
                os._exit(0)
            os.chdir(spec["cwd"])
            self._become(spec, spec["executable"])
        except BaseException as err:  # noqa: B036 - everything is reported, then exit
            os.write(report, f"error {_message(spec, err)}\n".encode())
        os._exit(rootless.EXIT_CANNOT_RUN)

    def _become(self, spec: dict, executable: str | None) -> None:  # type: ignore[type-arg]
        os.setsid()
        if self.args.tty:
            ctypes.CDLL(None).ioctl(0, rootless.TIOCSCTTY, 0)
        if spec.get("noNewPrivs"):
            ctypes.CDLL(None).prctl(rootless.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if spec.get("oomScoreAdj") is not None:
            try:
                with open("/proc/self/oom_score_adj", "w") as out:
                    out.write(str(spec["oomScoreAdj"]))
            except OSError:
                pass    # lowering it needs privileges we do not have: keep the inherited one
        os.umask(0o022)
        rootless.run_command(executable, list(spec["argv"]), dict(spec["env"]))

    def serve(self, pid: int) -> dict[str, object]:
        result: dict[str, object] = super().serve(pid)
        kill_leftovers(pid)
        return result

    def reap(self, pid: int) -> int | None:
        status = super().reap(pid)
        if status is not None:
            kill_leftovers(pid)
        return status


def _message(spec: dict, err: BaseException) -> str:  # type: ignore[type-arg]
    if isinstance(err, OSError) and not isinstance(err, rootless.SetupError):
        return rootless.exec_error(list(spec["argv"]), err)[1]
    return str(err).replace("\n", " ")


def kill_leftovers(pid: int) -> None:
    """SIGKILL what is left of a container whose main process ``pid`` exited: its
    session and the orphans re-parented to this shim (the subreaper)."""
    me = os.getpid()
    for _ in range(LEFTOVER_ROUNDS):
        victims = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in (me, pid):
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as source:
                    fields = source.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            state, parent, session = fields[0], int(fields[1]), int(fields[3])
            if state != b"Z" and (session == pid or parent == me):
                victims.append(int(entry))
        if not victims:
            return
        for victim in victims:
            try:
                os.kill(victim, signal.SIGKILL)
            except OSError:
                pass
        while True:     # collect the re-parented ones, so the next round does not see them
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break


def main(argv: list[str]) -> int:
    rootless.close_inherited_descriptors()   # stdout must end with our verdict
    args = ProcessArgs(argv)
    if os.fork() != 0:          # the runtime waits for this parent: it returns at once, and
        os._exit(0)             # the shim lives on without being the kubelet's child
    os.setsid()
    ctypes.CDLL(None).prctl(shim.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    return int(shim.run(ProcessShim(args), args.state_dir))  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
