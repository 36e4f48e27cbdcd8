"""A mount namespace of the node's own, where the pods' namespace files are mounted.

A pod's network, IPC and UTS namespaces live as long as something holds them; skiff
holds them with bind mounts of ``/proc/thread-self/ns/<kind>`` onto files (see
.namespaces), the way ``ip netns add`` does.  Made in the host's mount namespace, those
are three lines per pod in the host's mount table, and every ``runc run`` pays for every
line: it reads /proc/self/mountinfo four times, and its container starts from a copy
of the whole table (measured: 300 such mounts cost each container ~9.5 ms of CPU more).
So they are made here instead::

    host mount namespace                     the keeper's mount namespace
    ───────────────────────                  ────────────────────────────────
    <run>/runtime/nskeeper.mnt   ◀─ pins ─   (a private copy of the host's, made when
    <run>/runtime/nskeeper ─▶ /proc/<pid>/root   the first pod came; same run tmpfs)
                                             sandboxes/<id>/ns/net ◀─ bind mounts, only
                                             sandboxes/<id>/ns/ipc     here
                                             sandboxes/<id>/ns/uts

* The **keeper** is a process that does nothing in that namespace (``pause()``), in
  a session of its own: like the shims, it outlives a node agent that stops or dies,
  and the next one adopts it (pid and start time in ``nskeeper.json``).
* ``nskeeper.mnt`` pins the namespace itself (one mount in the host for the whole
  node), so a keeper that was killed is replaced by one that joins the same namespace
  and every pod's files are still there.
* Anyone on the host reaches a file in the namespace through the ``nskeeper`` link
  (to ``/proc/<keeper pid>/root``): ``path(p)`` is ``<run>/runtime/nskeeper`` + ``p``.
  runc joins a pod's namespaces by such paths, the pod network enters its netns by
  one; the link is replaced when a new keeper comes, so the paths stay the same.
* Mounting or unmounting there is done by a thread that enters the namespace
  (``setns``, with a working directory of its own) and comes back (:meth:`inside`).

:meth:`stop` (the runtime closing with no pod sandbox left) ends the keeper and
unpins the namespace.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from ...nsfs import CLONE_NEWNS, enter, holds_namespace, join
from .mounts import MS_BIND, MountError, mount, own_working_directory, unmount
from .shim import process_start_time
from .shimmed import process_alive

log = logging.getLogger(__name__)


# The keeper: join the pinned namespace ("join") or make a private copy of the host's
# ("new"); say so on stdout; then wait for a signal to end it.
KEEPER = """
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
if sys.argv[1] == "join":
    fd = os.open(sys.argv[2], os.O_RDONLY)
    ok = libc.setns(fd, 0x20000) == 0
else:
    ok = libc.unshare(0x20000) == 0 and libc.mount(None, b"/", None, ctypes.c_ulong(0x44000), None) == 0
if not ok:
    sys.stderr.write("nskeeper: " + os.strerror(ctypes.get_errno()) + "\\n")
    sys.exit(1)
os.write(1, b"ok\\n")
os.close(1)
while True:
    signal.pause()
"""


class NamespaceKeeperError(OSError):
    """The keeper could not be started or its namespace entered."""



def is_mount_namespace(path: Path) -> bool:
    return holds_namespace(path, CLONE_NEWNS)


class NamespaceKeeper:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.pin = directory / "nskeeper.mnt"
        self.link = directory / "nskeeper"
        self.record = directory / "nskeeper.json"
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._start: int | None = None
        self._child: subprocess.Popen[bytes] | None = None

    def path(self, path: Path) -> Path:
        """How the host reaches ``path`` (absolute) in the keeper's namespace."""
        return Path(f"{self.link}{path}")

    # -- the keeper ------------------------------------------------------------------------

    def ensure(self) -> None:
        """A live keeper in the pinned namespace, and the link to it (blocking; call it
        from a thread still in the host's namespaces: a keeper started from a thread
        that unshared the pod's network would hold that network)."""
        with self._lock:
            if self._pid is not None and self._alive():
                return
            if self._adopt():
                return
            self._start_keeper()

    def _alive(self) -> bool:
        if self._child is not None and self._child.poll() is not None:
            return False                      # ours, and reaped just now
        return process_alive(self._pid, self._start)

    def _adopt(self) -> bool:
        """A keeper a previous node agent started, if it is alive and still sees our run
        directory (not one from before the directory was mounted again)."""
        try:
            doc = json.loads(self.record.read_text())
            pid, start = int(doc["pid"]), int(doc["startTime"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if not process_alive(pid, start):
            return False
        self._pid, self._start, self._child = pid, start, None
        if self._sees_our_directory() and is_mount_namespace(self.pin):
            self._link()
            return True
        self._end_keeper()                    # a stale one: start afresh
        return False

    def _sees_our_directory(self) -> bool:
        try:
            here, there = os.stat(self.directory), os.stat(f"/proc/{self._pid}/root{self.directory}")
        except OSError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def _start_keeper(self) -> None:
        pinned = is_mount_namespace(self.pin)
        if not pinned:
            unmount(self.pin, detach=True)     # (a pin of something else, or nothing)
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", KEEPER, "join" if pinned else "new", str(self.pin)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True, close_fds=True)
        assert child.stdout is not None and child.stderr is not None
        said = child.stdout.readline()
        child.stdout.close()
        if said.strip() != b"ok":
            child.wait()
            error = child.stderr.read().decode(errors="replace").strip()
            child.stderr.close()
            raise NamespaceKeeperError(0, f"the namespace keeper did not start: {error or 'no word'}")
        child.stderr.close()
        self._child, self._pid, self._start = child, child.pid, process_start_time(str(child.pid))
        with contextlib.suppress(OSError):
            Path(f"/proc/{child.pid}/oom_score_adj").write_text("-998")   # as a node's own daemons
        try:
            if not pinned:
                self.pin.touch(0o444)
                mount(f"/proc/{child.pid}/ns/mnt", self.pin, "none", MS_BIND)
            if not self._sees_our_directory():
                raise NamespaceKeeperError(0, "the namespace keeper does not see the run directory")
            self._link()
        except BaseException:
            self._end_keeper()
            raise
        tmp = self.record.with_name(f".{self.record.name}.tmp")
        tmp.write_text(json.dumps({"pid": self._pid, "startTime": self._start}))
        os.replace(tmp, self.record)

    def _link(self) -> None:
        tmp = self.link.with_name(f".{self.link.name}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(f"/proc/{self._pid}/root", tmp)
        os.replace(tmp, self.link)

    def _end_keeper(self) -> None:
        """SIGKILL the keeper and wait until it is gone (its namespace with it, unless
        pinned); an adopted one is not our child, so its pidfd says when."""
        if self._child is not None:
            self._child.kill()
            self._child.wait()
        elif self._pid is not None:
            try:
                pidfd = os.pidfd_open(self._pid)
            except ProcessLookupError:
                pidfd = None
            if pidfd is not None:
                try:
                    if process_alive(self._pid, self._start):
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                        select.select([pidfd], [], [], 10)      # readable once it has exited
                finally:
                    os.close(pidfd)
        self._pid = self._start = self._child = None

    def stop(self) -> None:
        """End the keeper and unpin its namespace (what was mounted there goes with it)."""
        with self._lock:
            if self._pid is None:
                self._adopt()
            self._end_keeper()
            unmount(self.pin, detach=True)
            for path in (self.pin, self.link, self.record):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    # -- working in the namespace ----------------------------------------------------------

    def pinned(self) -> bool:
        """Is there a namespace to work in (a keeper started since the node came up)?"""
        return is_mount_namespace(self.pin)

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """Run the block with the calling thread in the keeper's mount namespace (paths
        as on the host: it is a copy of the host's), then back in the one it was in."""
        # setns(CLONE_NEWNS) wants the thread's working directory its own (else EINVAL):
        # checked at each entry, as a thread started from this one shares it again
        own_working_directory(again=True)
        back = os.open("/proc/thread-self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                enter(self.pin, CLONE_NEWNS)
            except OSError as err:
                raise NamespaceKeeperError(err.errno, f"entering the keeper's namespace: {err.strerror}",
                                           str(self.pin)) from None
            try:
                yield
            finally:
                try:
                    join(back, CLONE_NEWNS)
                except OSError as err:        # cannot happen; if it did, the thread must
                    raise MountError(err.errno,  # not do host work any more
                                     f"back to the host's mount namespace: {err.strerror}") from None
        finally:
            os.close(back)


def leftovers(directory: Path) -> list[str]:
    """What a runtime's keeper left behind in ``directory`` (for checks after a node is
    taken down): the pin, a live keeper (found by its command line, which names the pin,
    also once the run directory is gone) and the mounts in its namespace below
    ``directory``."""
    found = []
    keeper = NamespaceKeeper(directory)
    if is_mount_namespace(keeper.pin):
        found.append(f"pinned mount namespace {keeper.pin}")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if KEEPER.encode() in argv and str(keeper.pin).encode() in argv \
                and process_alive(int(entry), None):
            found.append(f"namespace keeper pid {entry}")
            with contextlib.suppress(OSError), open(f"/proc/{entry}/mountinfo") as mountinfo:
                found += [f"mount {line.split()[4]} (in the keeper's namespace)" for line in mountinfo
                          if line.split()[4].startswith(f"{directory}/")]
    return found
