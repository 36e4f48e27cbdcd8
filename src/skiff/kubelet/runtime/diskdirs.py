"""The node's per-pod directories on disk, spread over the file system.

Every pod gets directories of its own on disk -- ``pods/<uid>/``, ``logs/<pod>/``,
``layers/<container>/`` -- and they go again when the pod does.  On ext4 a new directory
is placed in its parent's block group, so all of them crowd into one group, and a file
system without a journal (common on cloud VMs and CI machines) will not reuse an inode
freed in the last minutes: every new inode in that group is found by stepping over
each recently freed one.  Under pod churn creating one directory there ends up costing
a few tenths of a millisecond, an order of magnitude more than it should.

The ext4 "top of directory hierarchy" flag (``chattr +T``, as on ``/home``) on the
parents tells the allocator their subdirectories are unrelated, so it spreads them
over block groups with room to spare; a pod's own files and subdirectories then sit
next to its directory, in a group that saw little churn.  Other file systems do not
have the flag: :func:`spread_subdirectories` leaves them alone.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
from pathlib import Path

log = logging.getLogger(__name__)

# linux/fs.h: FS_IOC_GETFLAGS / FS_IOC_SETFLAGS (the kernel reads an int) and FS_TOPDIR_FL
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_TOPDIR_FL = 0x00020000


def inode_flags(path: Path) -> int | None:
    """The file system's flags of ``path`` (``lsattr``); None where it has none."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        raw = fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("i", 0))
    except OSError:
        return None
    finally:
        os.close(fd)
    return int(struct.unpack("i", raw)[0])


def spread_subdirectories(path: Path) -> bool:
    """Create ``path`` if needed and mark it a top of directory hierarchies; True if
    it is marked now (False: the file system has no such flag, or refused it)."""
    path.mkdir(parents=True, exist_ok=True)
    flags = inode_flags(path)
    if flags is None:
        return False
    if flags & FS_TOPDIR_FL:
        return True
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags | FS_TOPDIR_FL))
    except OSError as err:
        log.debug("%s: subdirectories not spread: %s", path, err)
        return False
    finally:
        os.close(fd)
    return True
