"""Mount-point layers: the empty files and directories runc would create, made once.

Every container of a pod mounts things onto paths its image may not have:
``/etc/hosts``, ``/etc/hostname``, ``/etc/resolv.conf``, the service-account token at
``/var/run/secrets/kubernetes.io/serviceaccount``, its volumes, its working directory.
runc creates each missing one in the container's writable layer before mounting onto
it -- a handful of new inodes on the node's disk (and copies of their parent
directories) for every container started, all deleted again with the container.

A mount-point layer holds exactly those files and directories, for one image and one
list of mount points, and sits read-only between the image's layers and the
container's writable layer (like Docker's "init" layer, but shared)::

    lowerdir = layers/mountpoints/<key>:imageLayerN:...:imageLayer1
    upperdir = layers/<container id>/upper

so runc finds every mount point already there and the writable layer starts empty.
Pods made from one template (a Deployment's, a Job's) share one layer; it is built
the first time, through an overlay of the image's layers (so a directory it has to
copy keeps the image's owner and mode, and the image's symbolic links are followed
the way runc follows them), and kept.  Layers no container uses any more are removed
by :meth:`MountpointLayers.sweep`.

This changes nothing a container can see: the same paths exist, with the same owner
and mode, before anything is mounted onto them.  A path that lies inside another
mount (``/dev/shm`` in ``/dev``'s tmpfs, anything under ``/proc`` or ``/sys``) is
left to runc, as are paths the layer could not be built for (any failure here only
means runc creates them itself, as before).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .mounts import MAX_OVERLAY_OPTIONS, MountError, mount_overlay, overlay_options, unmount
from .rootless import SetupError, resolve_in_root

log = logging.getLogger(__name__)

#: More layers than this and the ones no container uses are removed when a new one is built.
KEEP = 64

MountPoint = tuple[str, str]       # (absolute path in the container, "file" or "dir")


def mount_points(oci_mounts: Sequence[dict[str, Any]], working_dir: str = "") -> list[MountPoint]:
    """The mount points runc would create in the root filesystem for ``oci_mounts``
    (in order, as config.json lists them), then the working directory.  A path inside
    an earlier mount is that mount's business, not the root filesystem's."""
    points: list[MountPoint] = []
    mounted: list[str] = []
    for entry in oci_mounts:
        destination = os.path.normpath(entry["destination"])
        if not _inside(destination, mounted):
            kind = "dir"
            if entry.get("type") == "bind":     # runc: a file for anything but a directory
                source = entry.get("source", "")
                kind = "dir" if os.path.isdir(source) else "file" if os.path.exists(source) else ""
            if kind:                            # (a missing source fails the container anyway)
                points.append((destination, kind))
        mounted.append(destination)
    if working_dir and os.path.normpath(working_dir) != "/":
        directory = os.path.normpath(working_dir)
        if not _inside(directory, mounted):
            points.append((directory, "dir"))
    return points


def _inside(path: str, mounted: Iterable[str]) -> bool:
    return any(path == point or path.startswith(point.rstrip("/") + "/") for point in mounted
               if point != "/")


class MountpointLayers:
    """Mount-point layers under one directory, one per (image layers, mount points).

    ``in_use`` names the layers existing containers were created over (their records
    say); those and the ones containers are being created over right now are kept
    when the directory grows past ``KEEP`` layers and the rest is removed."""

    def __init__(self, directory: Path, in_use: Callable[[], Iterable[str]]) -> None:
        self.directory = directory
        self._in_use = in_use
        self._guard = threading.Lock()
        self._building: dict[str, threading.Lock] = {}
        self._taken: Counter[str] = Counter()     # key -> creates between use() and their record
        directory.mkdir(parents=True, exist_ok=True)
        for name in os.listdir(directory):
            if name.startswith(".build-"):        # a build a crash interrupted
                shutil.rmtree(directory / name, ignore_errors=True)

    @staticmethod
    def key(lowers: Sequence[Path], points: Sequence[MountPoint]) -> str:
        identity = json.dumps([[str(p) for p in lowers], [list(p) for p in points]])
        return hashlib.sha256(identity.encode()).hexdigest()[:32]

    @contextmanager
    def use(self, lowers: Sequence[Path], points: Sequence[MountPoint]) -> Iterator[Path | None]:
        """The layer for a container over ``lowers`` (top-most first) with ``points``,
        built if it does not exist yet, and kept while the block runs (the block mounts
        it and writes the container's record).  None when there is nothing to put in
        it or it cannot be built: runc then creates the mount points, as it always can."""
        if not points:
            yield None
            return
        key = self.key(lowers, points)
        with self._guard:
            self._taken[key] += 1
        try:
            yield self._layer(key, lowers, points)
        finally:
            with self._guard:
                self._taken[key] -= 1
                if not self._taken[key]:
                    del self._taken[key]

    def _layer(self, key: str, lowers: Sequence[Path], points: Sequence[MountPoint]) -> Path | None:
        layer = self.directory / key
        if layer.is_dir():
            return layer
        with self._guard:
            building = self._building.setdefault(key, threading.Lock())
        with building:                   # one build per key; the others wait for it
            if layer.is_dir():
                return layer
            try:
                if self.count() >= KEEP:
                    self.sweep()
                self._build(layer, lowers, points)
            except (OSError, SetupError) as err:
                log.warning("no mount-point layer for %s: %s", [p for p, _ in points], err)
                return None
            finally:
                with self._guard:
                    self._building.pop(key, None)
        return layer

    def _build(self, layer: Path, lowers: Sequence[Path], points: Sequence[MountPoint]) -> None:
        scratch = self.directory / f".build-{secrets.token_hex(8)}"
        upper, work, merged = scratch / "upper", scratch / "work", scratch / "merged"
        try:
            for path in (upper, work, merged):
                path.mkdir(parents=True)
            # as a container's overlay will be: this layer on top (its own upper and
            # work have 2 x 48 more characters than the scratch's)
            if len(overlay_options([layer, *lowers], upper, work)[1]) + 96 > MAX_OVERLAY_OPTIONS:
                raise MountError(0, "too many image layers to add one")
            mount_overlay(merged, list(lowers), upper, work)
            try:
                for point, kind in points:
                    _create(str(merged), point, kind)
            finally:
                unmount(merged)            # not lazily: nothing may still write to upper
            try:
                os.rename(upper, layer)    # complete or not there at all
            except OSError:
                if not layer.is_dir():     # (unless a failed build's retry raced this one)
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def sweep(self) -> None:
        """Remove every layer no container has or is being created over.  Holds the
        guard throughout, so a create either took its layer before (kept) or looks for
        it after (and builds it again)."""
        with self._guard:
            keep = set(self._taken) | set(self._building) | set(self._in_use())
            for name in os.listdir(self.directory):
                if not name.startswith(".") and name not in keep:
                    shutil.rmtree(self.directory / name, ignore_errors=True)

    def count(self) -> int:
        return sum(1 for name in os.listdir(self.directory) if not name.startswith("."))


def _create(root: str, point: str, kind: str) -> None:
    """``point`` in ``root`` as runc would make it: symbolic links followed inside the
    root, missing directories 0755, a missing file empty and 0755; nothing that exists
    is touched."""
    target = resolve_in_root(root, point)
    if os.path.lexists(target):
        return
    if kind == "dir":
        os.makedirs(target, mode=0o755, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755))
