"""Waiting for processes to exit without polling: one pidfd per watched process.

The runc runtime watches each container's shim (the shim exits right after
recording the container's exit)::

    watch(key, pid, is_ours)  ->  future, resolved when the process has exited
                                  (at once if it is gone, or the pid now belongs to
                                  someone else: ``is_ours`` checks after pidfd_open,
                                  so a reused pid cannot be mistaken for it)

A pidfd becomes readable when its process exits, whoever its parent is, so shims
started by an earlier kubelet are watched the same way.  Exited children of this
process are reaped here.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable


class ExitWatcher:
    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[None]] = {}
        self._pidfds: dict[str, int] = {}

    def watch(self, key: str, pid: int | None, is_ours: Callable[[int], bool]) -> asyncio.Future[None]:
        existing = self._futures.get(key)
        if existing is not None:
            return existing
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._futures[key] = future
        pidfd = -1
        if pid is not None:
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                pidfd = -1
        if pid is None or pidfd < 0 or not is_ours(pid):
            if pidfd >= 0:
                os.close(pidfd)
            future.set_result(None)
            return future
        process: int = pid

        def exited() -> None:
            self._close(key)
            try:
                os.waitpid(process, os.WNOHANG)   # reap it if it is our child
            except ChildProcessError:
                pass
            if not future.done():
                future.set_result(None)

        self._pidfds[key] = pidfd
        loop.add_reader(pidfd, exited)
        return future

    def _close(self, key: str) -> None:
        pidfd = self._pidfds.pop(key, None)
        if pidfd is not None:
            asyncio.get_running_loop().remove_reader(pidfd)
            os.close(pidfd)

    def forget(self, key: str) -> None:
        """Stop watching; a pending future resolves (its process is being removed)."""
        self._close(key)
        future = self._futures.pop(key, None)
        if future is not None and not future.done():
            future.set_result(None)

    def close(self) -> None:
        for key in list(self._pidfds):
            self._close(key)
        for future in self._futures.values():
            if not future.done():
                future.cancel()
        self._futures.clear()
