"""A pod's shared namespaces, kept alive by bind mounts instead of a pause process.

::

    sandboxes/<id>/ns/net   ─ bind mount of a network namespace (only loopback, up)
    sandboxes/<id>/ns/ipc   ─ … of an IPC namespace
    sandboxes/<id>/ns/uts   ─ … of a UTS namespace (hostname = the pod's)

A short-lived helper (.namespace_helper, run as a script with the stdlib only) calls
``unshare(2)`` for the namespaces, sets the hostname, brings ``lo`` up and
bind-mounts ``/proc/self/ns/<kind>`` onto the files, then exits: the mounts keep
the namespaces alive, containers join them by path (``setns``), and unmounting
the files ends them.  The same thing ``ip netns add`` does, for three kinds.

The network namespace path is what pod networking (CNI-style) plugs a veth into
later.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from .mounts import unmount

HELPER = Path(__file__).with_name("namespace_helper.py")
KINDS = ("net", "ipc", "uts")


class NamespaceError(OSError):
    """The namespaces could not be created."""


async def create_namespaces(directory: Path, kinds: list[str], hostname: str) -> dict[str, Path]:
    """Create persistent namespaces of ``kinds`` as files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    if not kinds:
        return {}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", str(HELPER), str(directory), hostname, *kinds,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    if process.returncode != 0:
        remove_namespaces(directory)
        raise NamespaceError(f"cannot create namespaces {kinds}: {err.decode(errors='replace').strip()}")
    return {kind: directory / kind for kind in kinds}


def remove_namespaces(directory: Path) -> None:
    """Unmount and delete the namespace files (idempotent)."""
    for kind in KINDS:
        path = directory / kind
        if path.exists():
            unmount(path, detach=True)
            path.unlink(missing_ok=True)
