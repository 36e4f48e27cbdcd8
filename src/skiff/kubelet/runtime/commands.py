"""Running a short command (``runc delete``, ``runc kill``) from the event loop, cheaply.

asyncio's subprocess support forks through ``subprocess.Popen`` and, on Python 3.11,
waits for every child on a thread of its own.  For the runtime's many short ``runc``
calls this does less::

    posix_spawn(argv)          stdin /dev/null, stdout and stderr into pipes
      │ pidfd_open(pid)        readable once the command exits (no thread, no SIGCHLD)
      ▼
    output read on the loop ──▶ waitpid ──▶ (exit code, stdout, stderr)

Cancelling the waiting task kills the command (SIGKILL) and reaps it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence


async def run(argv: Sequence[str]) -> tuple[int, bytes, bytes]:
    """Run ``argv`` to its end; its exit code (negative: killed by that signal), stdout, stderr."""
    loop = asyncio.get_running_loop()
    out_r, out_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    err_r, err_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        pid = os.posix_spawnp(argv[0], list(argv), os.environ, setsigdef=(signal.SIGPIPE,),
                              setsigmask=(), file_actions=[
                                  (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                  (os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)])
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    pidfd = os.pidfd_open(pid)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    done = loop.create_future()
    open_fds = {out_r, err_r, pidfd}

    def readable(fd: int) -> None:
        if fd == pidfd:
            loop.remove_reader(fd)
            open_fds.discard(fd)
        else:
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            if data:
                chunks[fd].append(data)
                return
            loop.remove_reader(fd)
            open_fds.discard(fd)
        if not open_fds and not done.done():
            done.set_result(None)

    for fd in (out_r, err_r, pidfd):
        loop.add_reader(fd, readable, fd)
    try:
        await done
    except BaseException:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        for fd in (out_r, err_r, pidfd):
            if fd in open_fds:
                loop.remove_reader(fd)
            os.close(fd)
        _, status = os.waitpid(pid, 0)     # it has exited (or been killed): returns at once
    return os.waitstatus_to_exitcode(status), b"".join(chunks[out_r]), b"".join(chunks[err_r])
