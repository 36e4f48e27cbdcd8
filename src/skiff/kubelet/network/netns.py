"""Network namespaces as files, and running work inside one without blocking the loop.

A network namespace lives as long as something refers to it; a bind mount of
``/proc/thread-self/ns/net`` onto a file is such a reference (what ``ip netns add``
does under ``/run/netns``). Processes join it by path (``setns(2)``, runc's
``"path"`` namespace entry, ``nsenter --net=PATH``).

Entering a namespace is per *thread* in Linux, so every piece of work that must
happen "inside" a namespace runs on a fresh thread of its own::

    event loop ──▶ new thread ──setns(path)──▶ work (subprocess, socket, sysctl) ──▶ thread exits
         ▲                                                                 │
         └──────────────────────── result / exception ─────────────────────┘

The thread never goes back and is never reused, so a half-switched thread can not
leak into a pool. Children a thread forks (``ip``, ``nft``) and sockets it opens
belong to the namespace the thread is in; ``/proc/sys/net`` written from it is that
namespace's.

``None`` as a namespace means "where this process already is" (the host's, for
a kubelet on the host). Nothing here touches the caller's own namespace.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import fcntl
import os
import socket
import struct
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from ..freshthread import on_fresh_thread
from ...nsfs import CLONE_NEWNET, enter, holds_namespace, join
from .errors import CommandFailed

T = TypeVar("T")

MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str, path: object = None) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}", str(path) if path is not None else None)


def enter_here(path: Path) -> None:
    """Move the calling thread into the network namespace bound at ``path``."""
    enter(path, CLONE_NEWNET)


def _loopback_up() -> None:
    """Bring ``lo`` up in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


async def run_inside(netns: Path | None, work: Callable[[], T]) -> T:
    """Run ``work`` on a fresh thread that has joined ``netns`` (None: stays put)."""
    def inside() -> T:
        if netns is not None:
            enter_here(netns)
        return work()

    return await on_fresh_thread(inside)


def run_command_here(argv: Sequence[str], stdin: str | None = None) -> str:
    """Run a command in the calling thread's namespace; its stdout, or CommandFailed."""
    done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise CommandFailed(argv, done.returncode, done.stderr)
    return done.stdout


async def run_command(netns: Path | None, argv: Sequence[str], stdin: str | None = None) -> str:
    """Run a command inside ``netns``; its stdout, or CommandFailed."""
    return await run_inside(netns, lambda: run_command_here(argv, stdin))


def _share_directory(directory: Path) -> None:
    """Make ``directory`` a shared mount point, as iproute2 does for /run/netns.

    Shared propagation lets an unmount reach copies of the mount that other mount
    namespaces (containers created meanwhile) hold, so a removed namespace really
    goes away instead of lingering in a container's mount table.
    """
    directory.mkdir(parents=True, exist_ok=True)
    target = os.fsencode(directory)
    if _libc.mount(b"none", target, None, ctypes.c_ulong(MS_SHARED | MS_REC), None) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:  # EINVAL: not a mount point yet
        _check(-1, "make shared", directory)
    _check(_libc.mount(target, target, None, ctypes.c_ulong(MS_BIND | MS_REC), None), "bind", directory)
    _check(_libc.mount(b"none", target, None, ctypes.c_ulong(MS_SHARED | MS_REC), None),
           "make shared", directory)


def create_here(path: Path) -> None:
    """A new namespace with ``lo`` up, bind-mounted at ``path``; the calling thread
    ends up back in the namespace it was in."""
    _share_directory(path.parent)
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare", path)
        try:
            _loopback_up()
            _check(_libc.mount(b"/proc/thread-self/ns/net", os.fsencode(path), None,
                               ctypes.c_ulong(MS_BIND), None), "bind mount", path)
        finally:
            join(home, CLONE_NEWNET)
    except BaseException:
        remove(path)
        raise
    finally:
        os.close(home)


async def create(path: Path) -> Path:
    """Create a network namespace (only ``lo``, up) kept alive by a bind mount at ``path``."""
    await run_inside(None, lambda: create_here(path))
    return path


def remove(path: Path) -> None:
    """Unmount and delete a namespace file; absent or already unmounted is fine."""
    if _libc.umount2(os.fsencode(path), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):
            raise OSError(code, f"umount: {os.strerror(code)}", str(path))
    path.unlink(missing_ok=True)


def is_namespace(path: Path) -> bool:
    """True when ``path`` is a bound network namespace (not just an empty file)."""
    return holds_namespace(path, CLONE_NEWNET)


def interface_exists_here(name: str) -> bool:
    """Whether the calling thread's namespace has a link called ``name``."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def write_sysctl_here(key: str, value: str) -> None:
    """Write ``/proc/sys/<key>`` (e.g. ``net/ipv4/conf/skiff0/forwarding``) of the
    calling thread's namespace (slashes, not dots: interface names may hold dots)."""
    Path("/proc/sys", key).write_text(value)


def read_sysctl_here(key: str) -> str:
    return Path("/proc/sys", key).read_text().strip()


async def open_socket(netns: Path | None, family: int = socket.AF_INET,
                      kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket that belongs to ``netns`` (usable from any thread afterwards)."""
    return await run_inside(netns, lambda: socket.socket(family, kind))
