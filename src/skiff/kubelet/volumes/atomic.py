"""Writing a volume's files so a reader never sees a half-updated set (Kubernetes' AtomicWriter).

ConfigMap, Secret, downward API and projected volumes change while containers
read them. Every version is a complete directory; one ``rename(2)`` of a symlink
switches from the old to the new one, so the switch is atomic and happens in place
(containers see the volume directory through a bind mount)::

    <volume>/
      ..2025_01_01_12_00_00.123456789/    one complete version of the files
      ..data -> ..2025_01_01_12_00_00.123456789
      key    -> ..data/key                what users see (top-level names only;
      dir    -> ..data/dir                 nested paths live inside the version)

An update writes the new version, points ``..data_tmp`` at it, renames
``..data_tmp`` over ``..data``, then adds/removes the user-visible links and
deletes the old version. Unchanged content writes nothing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

DATA = "..data"
DATA_TMP = "..data_tmp"


@dataclass(frozen=True)
class FileContent:
    data: bytes
    mode: int = 0o644


class UnsafePath(ValueError):
    """A volume item path that is absolute, contains '..' or starts with '..'."""


def check_path(path: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or parts[0].startswith(".."):
        raise UnsafePath(f"invalid path {path!r}: must be relative, without '..'")
    return path


def _version_name() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("..%Y_%m_%d_%H_%M_%S.") + f"{now.microsecond:06d}{os.getpid() % 1000:03d}"


def _current(directory: Path) -> Path | None:
    try:
        target = os.readlink(directory / DATA)
    except OSError:
        return None
    return directory / target


def _same(version: Path, payload: Mapping[str, FileContent]) -> bool:
    found = set()
    for root, _, files in os.walk(version):
        for name in files:
            relative = os.path.relpath(os.path.join(root, name), version)
            found.add(relative)
            want = payload.get(relative)
            if want is None:
                return False
            path = Path(root) / name
            try:
                if path.read_bytes() != want.data or (path.stat().st_mode & 0o7777) != want.mode:
                    return False
            except OSError:
                return False
    return found == set(payload)


def write_atomically(directory: Path, payload: Mapping[str, FileContent]) -> bool:
    """Make ``directory`` hold exactly ``payload``; False when nothing changed."""
    for path in payload:
        check_path(path)
    directory.mkdir(parents=True, exist_ok=True)
    old = _current(directory)
    if old is not None and old.is_dir() and _same(old, payload):
        return False
    version = directory / _version_name()
    while version.exists():
        version = directory / (_version_name() + "x")
    version.mkdir(mode=0o755)
    for relative, content in payload.items():
        target = version / relative
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        target.write_bytes(content.data)
        os.chmod(target, content.mode)
    temporary = directory / DATA_TMP
    temporary.unlink(missing_ok=True)
    os.symlink(version.name, temporary)
    os.rename(temporary, directory / DATA)
    wanted = {path.split("/")[0] for path in payload}
    for name in wanted:
        link = directory / name
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            os.symlink(f"{DATA}/{name}", link)
    for entry in os.listdir(directory):
        if entry.startswith(".."):
            continue
        if entry not in wanted and (directory / entry).is_symlink():
            (directory / entry).unlink()
    for entry in os.listdir(directory):
        if entry.startswith("..") and entry not in (DATA, version.name, DATA_TMP):
            shutil.rmtree(directory / entry, ignore_errors=True)
    return True
