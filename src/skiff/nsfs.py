"""Namespace files: which kind of namespace, if any, a path holds, and entering it.

A namespace kept alive by a bind mount (``ip netns add``, a pod sandbox's files, the
runtime's namespace keeper) is a file of the kernel's nsfs; it answers the
``NS_GET_NSTYPE`` ioctl with the namespace's ``CLONE_NEW*`` flag.  A plain file (a mount
point whose mount is gone) does not.  ``setns(2)`` on such a file (or on
``/proc/<pid>/ns/<kind>``) moves the calling *thread* into that namespace.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
from functools import cache
from pathlib import Path

NS_GET_NSTYPE = 0xB703
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def join(fd: int, kind: int) -> None:
    """Move the calling thread into the namespace open at ``fd`` (of ``kind``, a
    ``CLONE_NEW*`` flag); OSError with the kernel's errno if it cannot."""
    if _libc().setns(fd, kind) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def enter(path: Path | str, kind: int) -> None:
    """:func:`join` the namespace file at ``path``; OSError names the path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        join(fd, kind)
    except OSError as err:
        raise OSError(err.errno, err.strerror, str(path)) from None
    finally:
        os.close(fd)


def holds_namespace(path: Path | str, kind: int) -> bool:
    """True when ``path`` is a namespace of ``kind`` (a ``CLONE_NEW*`` flag)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == kind
    except OSError:
        return False
    finally:
        os.close(fd)
