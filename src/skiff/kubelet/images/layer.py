"""Unpacking one image layer into a directory that overlayfs can use as a lowerdir.

A layer is a tar stream (plain, or gzip-compressed) of the files one build step
changed.  Deletions are recorded as *whiteouts* and become what overlayfs expects,
so each extracted layer works as a lowerdir on its own, whatever sits below it::

    tar entry                 on disk (overlayfs form)
    ------------------------  ----------------------------------------------
    dir/.wh.name              dir/name: character device 0/0 ("name is deleted")
    dir/.wh..wh..opq          xattr trusted.overlay.opaque=y on dir
                              ("hide everything lower layers have in dir")
    dir/.wh..wh.<other>       ignored (aufs bookkeeping)

Layers come from strangers, so extraction refuses (:class:`UnsafeLayer`, nothing
half-trusted is kept) anything that could write outside the destination:

* a ``..`` path component, in names and in hard link targets;
* a path that goes *through* a symlink of the layer itself (``evil -> /``
  followed by ``evil/etc/passwd``) — every parent is checked with ``lstat``;
* hard links to something not already inside the destination.

Absolute names (``/etc/passwd``) are taken relative to the destination, as
Docker does.  Symlinks themselves may point anywhere: they are only ever
resolved inside the container's root.  ``trusted.overlay.*`` xattrs from the
archive are dropped (only whiteout conversion may set them).

:func:`extract_layer` returns the layer's *diffID* (sha256 of the uncompressed
tar, what an image config lists) and its blob digest (sha256 of the bytes read,
what a manifest lists), so callers can verify both.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

WHITEOUT_PREFIX = ".wh."
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 16


class LayerError(Exception):
    """A layer could not be unpacked."""


class UnsafeLayer(LayerError):
    """The layer tries to write outside its destination."""


@dataclass(frozen=True)
class LayerInfo:
    diff_id: str        # sha256 of the uncompressed tar
    blob_digest: str    # sha256 of the bytes read (compressed or not)
    blob_size: int
    size: int           # uncompressed tar size
    media_type: str     # tar or tar+gzip, in OCI spelling


class _HashingReader(io.RawIOBase):
    """Passes bytes through while hashing and counting them."""

    def __init__(self, inner: IO[bytes], prefix: bytes = b"") -> None:
        self._inner = inner
        self._prefix = prefix
        self.hash = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
        else:
            data = self._inner.read(len(view))
            n = len(data)
            view[:n] = data
        self.hash.update(view[:n])
        self.count += n
        return n

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def extract_layer(raw: BinaryIO, dest: Path) -> LayerInfo:
    """Unpack the layer read from ``raw`` into the empty directory ``dest``."""
    head = raw.read(4)
    blob = _HashingReader(raw, prefix=head)
    if head.startswith(_ZSTD_MAGIC):
        raise LayerError("zstd-compressed layers are not supported")
    compressed = head.startswith(_GZIP_MAGIC)
    buffered = io.BufferedReader(blob, _CHUNK)
    diff = _HashingReader(cast(IO[bytes], gzip.GzipFile(fileobj=buffered, mode="rb"))) \
        if compressed else blob
    tar_input = io.BufferedReader(diff, _CHUNK) if compressed else buffered
    try:
        with tarfile.open(fileobj=tar_input, mode="r|") as tar:
            _Extractor(dest).run(tar)
        diff.drain()   # the end-of-archive padding belongs to the diffID too
        blob.drain()
    except LayerError:
        raise
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as err:
        raise LayerError(f"cannot unpack layer: {err}") from err
    media_type = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compressed else "")
    return LayerInfo(diff_id=diff.digest(), blob_digest=blob.digest(), blob_size=blob.count,
                     size=diff.count, media_type=media_type)


def safe_parts(name: str, what: str = "path") -> list[str]:
    """Split an archive path into components, refusing ``..`` anywhere."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeLayer(f"{what} {name!r} escapes the layer (contains '..')")
    return parts


class _Extractor:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir_times: list[tuple[Path, float]] = []
        self.is_root = os.geteuid() == 0

    def run(self, tar: tarfile.TarFile) -> None:
        for member in tar:
            self.entry(tar, member)
        for path, mtime in reversed(self.dir_times):
            os.utime(path, (mtime, mtime), follow_symlinks=False)

    def parent_dir(self, parts: list[str], name: str) -> Path:
        """The entry's parent, created if missing; never through a symlink."""
        current = self.root
        for part in parts[:-1]:
            current = current / part
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                os.mkdir(current, 0o755)
                continue
            if stat.S_ISLNK(st.st_mode):
                raise UnsafeLayer(f"{name!r} goes through the symlink {part!r}")
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafeLayer(f"{name!r}: {part!r} is not a directory")
        return current

    def entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        parts = safe_parts(member.name)
        if not parts:
            return  # the root directory itself
        parent = self.parent_dir(parts, member.name)
        base = parts[-1]
        if base == OPAQUE_WHITEOUT:
            os.setxattr(parent, OVERLAY_OPAQUE_XATTR, b"y")
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return
        if base.startswith(WHITEOUT_PREFIX):
            target = parent / base[len(WHITEOUT_PREFIX):]
            _remove(target)
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            return
        target = parent / base
        existing = _lstat(target)
        if existing is not None and not (member.isdir() and stat.S_ISDIR(existing.st_mode)):
            _remove(target)
        if member.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                os.mkdir(target, 0o700)
        elif member.isreg():
            source = tar.extractfile(member)
            assert source is not None
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out, _CHUNK)
        elif member.issym():
            os.symlink(member.linkname, target)
        elif member.islnk():
            link_parts = safe_parts(member.linkname, "hard link target")
            if not link_parts:
                raise UnsafeLayer(f"hard link {member.name!r} points at the layer root")
            source_path = self.parent_dir(link_parts, member.linkname) / link_parts[-1]
            if _lstat(source_path) is None:
                raise UnsafeLayer(f"hard link {member.name!r} -> {member.linkname!r}: "
                                  "target is not in this layer")
            os.link(source_path, target, follow_symlinks=False)
            return  # a hard link shares its target's metadata
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(target, kind | (member.mode & 0o7777),
                     os.makedev(member.devmajor, member.devminor))
        elif member.isfifo():
            os.mkfifo(target, member.mode & 0o7777)
        else:
            return  # unknown entry types are skipped, as other runtimes do
        self.metadata(target, member)

    def metadata(self, target: Path, member: tarfile.TarInfo) -> None:
        if self.is_root:
            os.lchown(target, member.uid, member.gid)
        for key, value in member.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                attr = key[len("SCHILY.xattr."):]
                if attr.startswith("trusted.overlay."):
                    continue
                try:
                    os.setxattr(target, attr, value.encode("utf-8", "surrogateescape"),
                                follow_symlinks=False)
                except OSError:
                    pass  # the filesystem may not support this namespace
        if member.issym():
            os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
            return
        os.chmod(target, member.mode & 0o7777)  # after chown, which clears set-id bits
        if member.isdir():
            self.dir_times.append((target, float(member.mtime)))
        else:
            os.utime(target, (member.mtime, member.mtime))


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _remove(path: Path) -> None:
    st = _lstat(path)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
