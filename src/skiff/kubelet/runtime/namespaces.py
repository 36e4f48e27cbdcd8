"""A pod's shared namespaces, kept alive by bind mounts instead of a pause process.

::

    sandboxes/<id>/ns/net   ─ bind mount of a network namespace (only loopback, up)
    sandboxes/<id>/ns/ipc   ─ … of an IPC namespace
    sandboxes/<id>/ns/uts   ─ … of a UTS namespace (hostname = the pod's)

The runc runtime makes these mounts in its namespace keeper's mount namespace, not
the host's (see .nskeeper: the host's mount table, which every ``runc run`` reads,
does not grow by three lines per pod); without a keeper they are made in the host's.

Namespaces belong to *threads* in Linux (``unshare(2)`` of net, ipc and uts moves
only the calling thread), so they are made on a fresh thread of this process that
is thrown away afterwards::

    event loop ──▶ new thread ── unshare(net|ipc|uts) ── sethostname, lo up
                                 ── bind-mount /proc/thread-self/ns/<kind> onto the files
                                 ── thread ends (never reused: it is in the pod's namespaces)

The mounts keep the namespaces alive, containers join them by path (``setns``),
and unmounting the files ends them.  The same thing ``ip netns add`` does, for
three kinds, in about a millisecond: no process is started.

The network namespace path is what pod networking (CNI-style) plugs a veth into
later.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import socket
import struct
from functools import cache
from pathlib import Path

from ..freshthread import on_fresh_thread
from .mounts import unmount
from .nskeeper import NamespaceKeeper

KINDS = ("net", "ipc", "uts")
CLONE_FLAGS = {"net": 0x40000000, "ipc": 0x08000000, "uts": 0x04000000}
CLONE_FS = 0x200
MS_BIND = 0x1000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


class NamespaceError(OSError):
    """The namespaces could not be created."""


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise NamespaceError(code, f"{what}: {os.strerror(code)}")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH", fcntl.ioctl(sock, SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def create_here(directory: Path, kinds: list[str], hostname: str,
                keeper: NamespaceKeeper | None = None) -> None:
    """On a throwaway thread (see :func:`on_fresh_thread`): unshare, configure, and
    bind-mount the namespaces onto files in ``directory`` (created if need be) -- in
    ``keeper``'s mount namespace when given (the thread comes back to the host's)."""
    unknown = [kind for kind in kinds if kind not in CLONE_FLAGS]
    if unknown:
        raise ValueError(f"unknown namespace kinds {unknown}")
    directory.mkdir(parents=True, exist_ok=True)
    if not kinds:
        return
    libc = _libc()
    flags = 0
    for kind in kinds:
        flags |= CLONE_FLAGS[kind]
        os.close(os.open(directory / kind, os.O_CREAT | os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC, 0o444))
    if keeper is not None:
        keeper.ensure()                 # before unshare: a keeper started later would hold the pod's
        flags |= CLONE_FS               # (entering a mount namespace wants a thread's own fs)
    _check(libc.unshare(flags), "unshare")
    if "uts" in kinds and hostname:
        name = hostname.encode()
        _check(libc.sethostname(name, len(name)), "sethostname")
    if "net" in kinds:
        _loopback_up()
    with keeper.inside() if keeper is not None else contextlib.nullcontext():
        for kind in kinds:
            _check(libc.mount(f"/proc/thread-self/ns/{kind}".encode(), os.fsencode(directory / kind),
                              None, ctypes.c_ulong(MS_BIND), None), f"bind mount of the {kind} namespace")


async def create_namespaces(directory: Path, kinds: list[str], hostname: str) -> dict[str, Path]:
    """Create persistent namespaces of ``kinds`` as files in ``directory``."""
    try:
        await on_fresh_thread(lambda: create_here(directory, kinds, hostname))
    except BaseException:
        remove_namespaces(directory)
        raise
    return {kind: directory / kind for kind in kinds}


def remove_namespaces(directory: Path, keeper: NamespaceKeeper | None = None) -> None:
    """Unmount and delete the namespace files (idempotent): in ``keeper``'s namespace
    when given, and in the host's (where sandboxes made before the keeper have them)."""
    present = [directory / kind for kind in KINDS if (directory / kind).exists()]
    if not present:
        return
    for path in present:
        unmount(path, detach=True)
    if keeper is not None and keeper.pinned():
        with keeper.inside():
            for path in present:
                unmount(path, detach=True)
    for path in present:
        path.unlink(missing_ok=True)
