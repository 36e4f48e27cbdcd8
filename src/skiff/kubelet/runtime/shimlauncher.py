"""Starting container shims fast: a small process forks them instead of starting Python anew.

A shim (.shim) is a Python process per container.  Started the plain way
(``python -I -S shim.py``), each one pays for a fresh interpreter and its imports
(~25 ms of CPU), which is most of what the node spends per container besides runc.
So the runtime keeps one *launcher*: a process that has imported the shim's code
once and forks a shim per request::

    runtime ──request──▶ launcher (python -I -S shimlauncher.py, its own session)
      SOCK_SEQPACKET      │ fork ─▶ shim: setsid, stdin /dev/null, stdout = the
      socket pair:        │         runtime's pipe, stderr = shim.log, other fds
      argv (NUL-separated)│         closed; then exactly what ``shim.py argv``
      + 2 fds (stdout,    │         does (the runtime reads "ok <pid>" from the pipe)
      stderr) passed      │
                          └ reaps the shims that exit (SIGCHLD)

The launcher holds no state: when the runtime closes its end (or its process
dies) the launcher exits, and the shims carry on as if started directly (they
were in their own session anyway).  If it dies, the next request starts another.
A forked shim's command line is the launcher's, so the runtime recognises its
shims by pid *and start time* (``started.json``), not by command line.
"""

from __future__ import annotations

import array
import asyncio
import importlib.util
import os
import selectors
import signal
import socket
import sys
import traceback
from pathlib import Path

SCRIPT = Path(__file__)
MAX_REQUEST = 64 * 1024
PR_SET_NAME = 15


class ShimLauncher:
    """The runtime's side: start shims through the launcher process (started lazily)."""

    def __init__(self) -> None:
        self._socket: socket.socket | None = None
        self._pid: int | None = None

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            actions = [(os.POSIX_SPAWN_DUP2, theirs.fileno(), 0),
                       (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
            self._pid = os.posix_spawn(sys.executable, [sys.executable, "-I", "-S", str(SCRIPT)],
                                       os.environ, file_actions=actions, setsid=True,
                                       setsigdef=(signal.SIGPIPE,), setsigmask=())
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._socket = ours
        return ours

    def warm_up(self) -> None:
        """Start the launcher now (its imports take a while), so that the first shim
        does not wait for it: called when a pod's sandbox is made, before its containers."""
        if self._socket is None:
            self._start()

    async def spawn(self, argv: list[str], stdout: int, stderr: int) -> None:
        """Start a shim with ``argv`` (shim.py's arguments), ``stdout`` and ``stderr``
        as its fds 1 and 2 (the caller keeps and closes its own copies)."""
        message = b"\0".join(arg.encode() for arg in argv)
        fds = array.array("i", [stdout, stderr])
        for attempt in range(2):
            sock = self._socket or self._start()
            try:
                await _send(sock, message, fds)
                return
            except (BrokenPipeError, ConnectionResetError):
                self.close()           # the launcher died: start another, once
                if attempt:
                    raise

    def close(self) -> None:
        """Let the launcher exit (the shims it started keep running)."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._pid is not None:
            pid, self._pid = self._pid, None
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    # it exits on the end of file at once; reap it when it has
                    asyncio.get_running_loop().run_in_executor(None, _reap, pid)
            except (ChildProcessError, RuntimeError):
                pass


async def _send(sock: socket.socket, message: bytes, fds: array.array[int]) -> None:
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)]
    while True:
        try:
            sock.sendmsg([message], ancillary)
            return
        except BlockingIOError:
            loop = asyncio.get_running_loop()
            writable: asyncio.Future[None] = loop.create_future()

            def ready() -> None:
                if not writable.done():
                    writable.set_result(None)

            loop.add_writer(sock.fileno(), ready)
            try:
                await writable
            finally:
                loop.remove_writer(sock.fileno())


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


# -- the launcher process ------------------------------------------------------------------


def serve(control: socket.socket) -> None:
    """Fork a shim per request until the runtime closes its end."""
    # the shim's code, loaded once; by path, as the directory is no place to look
    # for other modules (its files could shadow the standard library's)
    spec = importlib.util.spec_from_file_location("skiff_shim", SCRIPT.with_name("shim.py"))
    assert spec is not None and spec.loader is not None
    shim = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(shim)

    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ, "request")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    while True:
        for key, _ in selector.select():
            if key.data == "child":
                shim.drain(wake_r)
                _reap_exited()
                continue
            message, ancillary, _, _ = control.recvmsg(MAX_REQUEST, socket.CMSG_SPACE(2 * 4))
            fds = array.array("i")
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            if not message and not fds:
                return                             # the runtime is gone
            try:
                if len(fds) == 2 and os.fork() == 0:
                    _become_shim(shim, message.decode().split("\0"), fds[0], fds[1])
            finally:
                for fd in fds:
                    os.close(fd)


def _reap_exited() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _become_shim(shim: object, argv: list[str], stdout: int, stderr: int) -> None:
    """In the forked child: the state a freshly exec'd shim would have, then its main."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))     # the launcher's socket above all
        import ctypes
        ctypes.CDLL(None).prctl(PR_SET_NAME, b"skiff-shim", 0, 0, 0)
        code = shim.main(argv)  # type: ignore[attr-defined]
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


if __name__ == "__main__":
    serve(socket.socket(fileno=0))
