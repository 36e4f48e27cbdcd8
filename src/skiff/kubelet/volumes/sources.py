"""What each kind of pod volume holds: file payloads and host paths, per volume source.

::

    emptyDir               a fresh directory (tmpfs with medium: Memory, sized by
                           sizeLimit); lives and dies with the pod
    hostPath               the node's path itself, after the ``type`` check
                           (DirectoryOrCreate, Directory, FileOrCreate, File, Socket,
                           CharDevice, BlockDevice; "" checks nothing)
    configMap, secret      keys as files (``items`` pick and rename keys, ``mode`` /
                           ``defaultMode`` set permissions); ``optional`` allows absence
    downwardAPI            pod fields and container resources as files
    projected              several of the above (and serviceAccountToken) in one
    persistentVolumeClaim  the bound PersistentVolume's hostPath or local path

Payloads are pure functions of the objects they come from (:func:`config_payload`,
:func:`downward_payload`); the manager writes them with the atomic writer.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..envs import EnvError, format_map, resource_value
from .atomic import FileContent, UnsafePath, check_path

Obj = dict[str, Any]
Lookup = Callable[[str, str], Obj | None]


class VolumeError(Exception):
    """A volume cannot be set up (yet): the kubelet reports FailedMount and retries."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(message)
        self.volume = volume
        self.message = message


def _mode(item: Obj, default: int) -> int:
    mode = item.get("mode")
    return int(mode) if mode is not None else default


def object_data(obj: Obj, kind: str) -> dict[str, bytes]:
    """Every key of a ConfigMap (data + binaryData) or a Secret (base64 data) as bytes."""
    out: dict[str, bytes] = {}
    if kind == "secret":
        for key, value in (obj.get("data") or {}).items():
            out[key] = base64.b64decode(value or "")
        return out
    for key, value in (obj.get("data") or {}).items():
        out[key] = str(value).encode()
    for key, value in (obj.get("binaryData") or {}).items():
        out[key] = base64.b64decode(value or "")
    return out


def config_payload(volume: str, source: Obj, kind: str, namespace: str, lookup: Lookup,
                   default_mode: int) -> dict[str, FileContent]:
    """Files of a configMap or secret volume (or projection)."""
    name = str(source.get("name") or source.get("secretName") or "")
    obj = lookup(namespace, name)
    label = "configmap" if kind == "configMap" else "secret"
    if obj is None:
        if source.get("optional"):
            return {}
        raise VolumeError(volume, f'{label} "{name}" not found')
    data = object_data(obj, kind)
    items = source.get("items")
    out: dict[str, FileContent] = {}
    try:
        if not items:
            for key, value in data.items():
                out[check_path(key)] = FileContent(value, default_mode)
            return out
        for item in items:
            key = str(item.get("key", ""))
            if key not in data:
                if source.get("optional"):
                    continue
                what = "configmap" if kind == "configMap" else "secret"
                raise VolumeError(volume, f"configmap references non-existent config key: {key}"
                                  if what == "configmap" else
                                  f"references non-existent secret key: {key}")
            out[check_path(str(item.get("path") or key))] = FileContent(data[key], _mode(item, default_mode))
    except UnsafePath as err:
        raise VolumeError(volume, str(err)) from err
    return out


def _field(pod: Obj, path: str) -> str:
    meta = pod.get("metadata") or {}
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(path.split(".")[1]) or {})
    for prefix in ("metadata.labels", "metadata.annotations"):
        if path.startswith(prefix + "["):
            key = path[len(prefix) + 1:].rstrip("]").strip("'\"")
            return str((meta.get(prefix.split(".")[1]) or {}).get(key, ""))
    simple = {"metadata.name": meta.get("name", ""), "metadata.namespace": meta.get("namespace", ""),
              "metadata.uid": meta.get("uid", "")}
    if path not in simple:
        raise EnvError(f"unsupported downward API field {path!r}")
    return str(simple[path])


def downward_payload(volume: str, items: list[Obj], pod: Obj, allocatable: Mapping[str, str],
                     default_mode: int) -> dict[str, FileContent]:
    """Files of a downwardAPI volume (or projection)."""
    out: dict[str, FileContent] = {}
    containers = {c.get("name"): c for c in ((pod.get("spec") or {}).get("containers") or [])
                  + ((pod.get("spec") or {}).get("initContainers") or [])}
    try:
        for item in items:
            if isinstance(item.get("fieldRef"), dict):
                value = _field(pod, str(item["fieldRef"].get("fieldPath", "")))
            elif isinstance(item.get("resourceFieldRef"), dict):
                ref = item["resourceFieldRef"]
                container = containers.get(ref.get("containerName")) or {}
                value = resource_value(container, ref, allocatable)
            else:
                continue
            out[check_path(str(item.get("path", "")))] = FileContent(value.encode(),
                                                                     _mode(item, default_mode))
    except (UnsafePath, EnvError) as err:
        raise VolumeError(volume, str(err)) from err
    return out


def check_host_path(volume: str, path: Path, kind: str) -> None:
    """hostPath ``type`` semantics; creates what the *OrCreate types ask for."""
    def fail(what: str) -> VolumeError:
        return VolumeError(volume, f"hostPath type check failed: {path} is not {what}")

    try:
        info: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        info = None
    if kind == "DirectoryOrCreate":
        if info is None:
            path.mkdir(mode=0o755, parents=True)
        elif not stat.S_ISDIR(info.st_mode):
            raise fail("a directory")
    elif kind == "FileOrCreate":
        if info is None:
            try:
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
            except FileNotFoundError as err:
                raise VolumeError(volume, f"hostPath type check failed: {err}") from err
            os.close(fd)
        elif not stat.S_ISREG(info.st_mode):
            raise fail("a file")
    elif kind:
        checks = {"Directory": (stat.S_ISDIR, "a directory"), "File": (stat.S_ISREG, "a file"),
                  "Socket": (stat.S_ISSOCK, "a socket file"),
                  "CharDevice": (stat.S_ISCHR, "a character device"),
                  "BlockDevice": (stat.S_ISBLK, "a block device")}
        if kind not in checks:
            raise VolumeError(volume, f"hostPath type {kind!r} is not supported")
        test, what = checks[kind]
        if info is None or not test(info.st_mode):
            raise fail(what)
