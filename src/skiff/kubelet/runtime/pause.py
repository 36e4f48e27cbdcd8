"""The head process of a pod with ``shareProcessNamespace: true`` (Kubernetes' pause).

Run as ``python -I -S pause.py`` (stdlib only).  It makes a new pid namespace, forks
the process that becomes its pid 1, prints that process's host pid and exits; the
pid 1 stays::

    pause.py ──unshare(CLONE_NEWPID)──fork──▶ pid 1 of the pod's pid namespace
        │ prints "<host pid>", exits           │ (its parent gone: adopted by the host)
                                               │ waits for signals (all blocked):
                                               │   SIGCHLD          reap every dead child
                                               │   SIGTERM, SIGINT  exit
                                               ▼
    every container of the pod joins /proc/<host pid>/ns/pid: ``ps`` in one shows the
    others' processes, a signal reaches across containers, and orphans are re-parented
    to pid 1 here and reaped.  A container that exits leaves the others running; when
    this process ends the kernel ends the whole namespace (the pod's sandbox is gone).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

CLONE_NEWPID = 0x20000000
WAITED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}


def head() -> None:
    """Pid 1: reap children until told to stop."""
    signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)
    while True:
        if signal.sigwait(WAITED) != signal.SIGCHLD:
            os._exit(0)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break


def main() -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWPID) != 0:
        print(f"unshare: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 1
    child = os.fork()
    if child == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.chdir("/")
        head()
    print(child, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
