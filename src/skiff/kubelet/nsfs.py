"""Namespace files: which kind of namespace, if any, a path holds.

A namespace kept alive by a bind mount (``ip netns add``, a pod sandbox's files, the
runtime's namespace keeper) is a file of the kernel's nsfs; it answers the
``NS_GET_NSTYPE`` ioctl with the namespace's ``CLONE_NEW*`` flag.  A plain file (a mount
point whose mount is gone) does not.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

NS_GET_NSTYPE = 0xB703


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
