"""The node's run directory: state that lives only as long as the machine is up, on a tmpfs.

Like containerd's ``/run/containerd`` next to ``/var/lib/containerd``, a real node
keeps what describes its *live* pods apart from what must be kept on disk::

    data/kubelet/run/          a tmpfs (mode 0700), mounted when the node starts
      runtime/                 the runc runtime: runc's own state, sandboxes (their
                               namespaces, /etc files, /dev/shm), container bundles and
                               the shims' state files (started.json, exit.json)
      network/                 the pod network: host-local IP allocations, pod records
    data/kubelet/layers/       on disk: each container's writable layer (overlay upper)
    data/kubelet/pods/, logs/  on disk: volumes, container logs

Every pod creates and removes a few dozen of those files and directories; on a tmpfs
that costs a fraction of what it costs on a journaled file system, and none of it
could outlive a reboot anyway (no container, namespace or veth does).  A restarted
node agent -- or ``skiff up`` after a kill -9 -- finds the tmpfs still mounted and
adopts what it describes.  A clean stop unmounts it after removing everything in it.

Without root (no mounts) or when the directory already holds files that are not on
a tmpfs of ours (they would be hidden), it stays a plain directory.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .runtime.mounts import MS_NODEV, MS_NOSUID, MountError, is_mount_point, mount, unmount

log = logging.getLogger(__name__)

#: An upper bound for the tmpfs (it holds small state files; pages are used only as written).
SIZE = "256m"


def mount_run_dir(path: Path) -> bool:
    """Make ``path`` a tmpfs unless it is a mount point already; True if it is one now."""
    path.mkdir(parents=True, exist_ok=True)
    if is_mount_point(path):
        return True                   # ours, from before a restart: adopt what it holds
    if os.geteuid() != 0:
        return False
    if any(path.iterdir()):
        log.warning("%s holds files and is not a mount point: kept on disk", path)
        return False
    try:
        mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0700,size={SIZE}")
    except MountError as err:
        log.warning("%s stays on disk: %s", path, err)
        return False
    return True


def release_run_dir(path: Path) -> None:
    """Unmount the tmpfs (after the node removed its pods).  Anything still mounted
    below it goes with it (a lazy unmount of the whole tree); then the empty directory."""
    if is_mount_point(path):
        unmount(path, detach=True)
    try:
        path.rmdir()
    except OSError:
        pass                          # not empty (a plain directory still in use): leave it
