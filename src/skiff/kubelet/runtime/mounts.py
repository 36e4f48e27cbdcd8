"""mount(2) and umount2(2) for the runtime: overlay root filesystems, bind mounts, tmpfs.

A container's root filesystem is an overlay of the image's unpacked layers (shared,
read-only) under a per-container writable directory, so starting a container copies
nothing::

    containers/<id>/rootfs/  (overlay, mounted at create, unmounted at remove)
      upperdir = layers/<id>/upper         the container's writes
      workdir  = layers/<id>/work          overlayfs scratch space
      lowerdir = layerN:...:layer1         top-most first, as overlayfs wants

The layer directories go to the kernel relative to their closest common parent (the
data directory, in the runtime; named as the mount's source), as Docker's overlay2
gives its short layer links:
mountinfo prints every overlay's options on every read, and each ``runc run`` reads it
four times, so on a node with a hundred pods long absolute layer paths cost each new
container milliseconds of the kernel printing and runc parsing them.

Calls go straight to libc through ctypes: no mount(8) process per container.
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from functools import cache
from pathlib import Path

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2
CLONE_FS = 0x200
# overlayfs refuses option strings longer than a page
MAX_OVERLAY_OPTIONS = 4000


class MountError(OSError):
    """A mount or unmount failed."""


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount(source: str, target: Path | str, fstype: str, flags: int = 0, data: str = "") -> None:
    result = _libc().mount(source.encode(), os.fsencode(target), fstype.encode(),
                           ctypes.c_ulong(flags), data.encode() if data else None)
    if result != 0:
        err = ctypes.get_errno()
        raise MountError(err, f"mount {fstype} {source} on {target} ({data}): {os.strerror(err)}")


def unmount(target: Path | str, *, detach: bool = False, missing_ok: bool = True) -> bool:
    """Unmount the top mount on ``target``; False if nothing was mounted there."""
    result = _libc().umount2(os.fsencode(target), MNT_DETACH if detach else 0)
    if result != 0:
        err = ctypes.get_errno()
        if missing_ok and err in (errno.EINVAL, errno.ENOENT):
            return False  # not a mount point (any more)
        raise MountError(err, f"umount {target}: {os.strerror(err)}")
    return True


def unmount_all_at(target: Path | str, *, limit: int = 16) -> None:
    """Detach whatever is mounted on ``target`` -- every mount stacked there, and with each
    (lazily, MNT_DETACH) all that is mounted below it -- until it is a plain directory or
    file again.  For paths skiff itself mounts on: one umount2(2) each, where scanning
    /proc/self/mountinfo would make the kernel print the whole mount table."""
    for _ in range(limit):
        if not unmount(target, detach=True):
            return
    raise MountError(errno.EBUSY, f"umount {target}: still mounted after {limit} unmounts")


def overlay_options(lowers_top_first: list[Path], upper: Path | None = None,
                    work: Path | None = None) -> tuple[str, str]:
    """``(directory, options)`` for an overlay mount: the layer directories relative to
    ``directory``, their closest common parent (never one of them)."""
    layers = [*lowers_top_first, *([upper, work] if upper is not None and work is not None else [])]
    absolute = [os.path.abspath(p) for p in layers]
    directory = os.path.commonpath(absolute)
    if directory in absolute:
        directory = os.path.dirname(directory)
    relative = [os.path.relpath(p, directory) for p in absolute]
    for path in relative:
        if any(c in path for c in ",:"):
            raise MountError(errno.EINVAL, f"overlayfs cannot take the path {path!r}")
    options = "lowerdir=" + ":".join(relative[:len(lowers_top_first)])
    if len(relative) > len(lowers_top_first):
        options += f",upperdir={relative[-2]},workdir={relative[-1]}"
    return directory, options


def mount_overlay(target: Path, lowers_top_first: list[Path], upper: Path | None = None,
                  work: Path | None = None, *, read_only: bool = False) -> None:
    directory, options = overlay_options(lowers_top_first, upper, work)
    if len(options) > MAX_OVERLAY_OPTIONS:
        raise MountError(errno.E2BIG, f"too many layers for one overlay mount ({len(lowers_top_first)})")
    # the source (free text for overlayfs, printed in mountinfo) says where the relative
    # paths start, so that a reader of the table (the image store) can resolve them
    mount_from(directory, directory, os.path.abspath(target), "overlay",
               MS_RDONLY if read_only else 0, options)


_own_working_directory = threading.local()


def own_working_directory(*, again: bool = False) -> None:
    """Give the calling thread a working directory (and root) of its own, apart from the
    process's other threads (``unshare(CLONE_FS)``; once per thread, or ``again``: a
    thread this one started since shares them once more, as ``clone`` copies nothing)."""
    if again or not getattr(_own_working_directory, "done", False):
        if _libc().unshare(CLONE_FS) != 0:
            err = ctypes.get_errno()
            raise MountError(err, f"unshare(CLONE_FS): {os.strerror(err)}")
        _own_working_directory.done = True


def mount_from(directory: str, source: str, target: str, fstype: str, flags: int, data: str) -> None:
    """mount(2) with the relative paths in ``data`` resolved from ``directory``.

    The working directory is a process's, shared by its threads, so the mount is made
    by a thread with one of its own (``unshare(CLONE_FS)``, once per thread), which
    goes back to where it was afterwards.  The main thread hands the mount to a
    short-lived thread instead: its working directory stays the process's."""
    if threading.current_thread() is threading.main_thread():
        failure: list[BaseException] = []

        def mount_there() -> None:
            try:
                mount_from(directory, source, target, fstype, flags, data)
            except BaseException as err:    # handed back to the caller below
                failure.append(err)
        helper = threading.Thread(target=mount_there, name="mount")
        helper.start()
        helper.join()
        if failure:
            raise failure[0]
        return
    own_working_directory()
    back = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(directory)
        mount(source, target, fstype, flags, data)
    finally:
        os.fchdir(back)
        os.close(back)


def bind_mount(source: Path | str, target: Path | str, *, read_only: bool = False) -> None:
    mount(str(source), target, "none", MS_BIND)
    if read_only:
        mount("none", target, "none", MS_REMOUNT | MS_BIND | MS_RDONLY)


def mount_tmpfs(target: Path, *, size: str = "64m", mode: str = "1777") -> None:
    mount("shm", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, f"mode={mode},size={size}")


def mount_points_under(prefix: Path | str) -> list[str]:
    """Mount points at or below ``prefix`` (deepest first, ready for unmounting)."""
    prefix = os.path.realpath(prefix)
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = unescape(line.split()[4])
            if point == prefix or point.startswith(prefix.rstrip("/") + "/"):
                found.append(point)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def is_mount_point(path: Path | str) -> bool:
    return os.path.realpath(path) in mount_points_under(path)


def unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
