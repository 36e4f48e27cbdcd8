"""Where skiff's cgroups live (and their OOM counters: the shim reads them), removing them.

runc creates and configures a container's cgroup from ``linux.cgroupsPath`` and
``linux.resources`` in config.json; skiff only chooses the path and cleans up::

    /<parent>/pod<pod uid>/<container id>        e.g. /skiff/pod1234-…/9f8e…

On a cgroup v1 (or hybrid) host that path exists once per mounted hierarchy
(``/sys/fs/cgroup/memory/skiff/…``, ``/sys/fs/cgroup/cpu/skiff/…``, …, and the
hybrid ``unified`` v2 tree); on a v2 host once, under ``/sys/fs/cgroup``.

A container was OOM-killed when its memory cgroup counted an ``oom_kill``:
``memory.oom_control`` in v1, ``memory.events`` in v2.
"""

from __future__ import annotations

import errno
import os
from functools import cache
from pathlib import Path

CGROUP_MOUNT = Path("/sys/fs/cgroup")


def is_unified(root: Path = CGROUP_MOUNT) -> bool:
    """A pure cgroup v2 host."""
    return (root / "cgroup.controllers").exists()


@cache
def _host_is_unified() -> bool:
    """:func:`is_unified` for this host, looked at once (it does not change while we run)."""
    return is_unified()


@cache
def hierarchies() -> tuple[Path, ...]:
    """Mount points of every cgroup hierarchy (v1 controllers and v2) on this host.

    Read from /proc/self/mountinfo once: a host does not remount its cgroup trees under a
    running node, and with a few mounts per pod the table grows long (each read makes
    the kernel print all of it; deleting pods read it twice per pod)."""
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            left, _, right = line.partition(" - ")
            fstype = right.split()[0] if right else ""
            if fstype in ("cgroup", "cgroup2"):
                found.append(Path(left.split()[4]))
    return tuple(found)


def container_path(parent: str, pod_uid: str, container_id: str) -> str:
    """The cgroupsPath runc gets for a container."""
    return f"/{parent.strip('/')}/pod{pod_uid}/{container_id}"


def pod_path(parent: str, pod_uid: str) -> str:
    return f"/{parent.strip('/')}/pod{pod_uid}"


def pod_uids(parent: str) -> set[str]:
    """The pods with a cgroup directory under ``parent`` in any hierarchy."""
    found: set[str] = set()
    for top in existing(f"/{parent.strip('/')}"):
        found.update(entry.name.removeprefix("pod") for entry in top.iterdir()
                     if entry.is_dir() and entry.name.startswith("pod"))
    return found


def oom_counter_file(cgroup_path: str) -> Path:
    """The file holding ``oom_kill N`` for a cgroup path."""
    relative = cgroup_path.strip("/")
    if _host_is_unified():
        return CGROUP_MOUNT / relative / "memory.events"
    return CGROUP_MOUNT / "memory" / relative / "memory.oom_control"


def existing(cgroup_path: str) -> list[Path]:
    """The directories a cgroup path has in the hierarchies (empty once removed)."""
    relative = cgroup_path.strip("/")
    return [h / relative for h in hierarchies() if (h / relative).is_dir()]


def remove(cgroup_path: str) -> list[Path]:
    """rmdir a cgroup and everything below it in every hierarchy, deepest first.

    Returns the directories that could not be removed (they still hold processes)."""
    stuck = []
    for top in existing(cgroup_path):
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: w[0].count("/"), reverse=True):
            try:
                os.rmdir(dirpath)
            except OSError as err:
                if err.errno != errno.ENOENT:
                    stuck.append(Path(dirpath))
    return stuck
