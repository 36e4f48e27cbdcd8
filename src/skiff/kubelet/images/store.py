"""The node's local image store: content-addressed, layers unpacked once and shared.

Layout under the store's root (``<data-dir>/images``)::

    blobs/sha256/<hex>          manifests and configs, named by their digest
    layers/<diffid hex>/diff/   an unpacked layer in overlayfs form (see .layer);
                                shared by every image that has this layer, used as
                                an overlayfs lowerdir by containers
    layers/<diffid hex>/info.json   sizes and the blob digests it was unpacked from
    layers/by-blob/<hex>        blob digest -> diffID (a pull skips known blobs)
    index.json                  images (by config digest) and refs -> image
    lock                        flock'ed by writers (the kubelet and `skiff image`)

An image's ID is its config digest (``sha256:…``), as in containerd and Docker.
Names are normalised references (``docker.io/library/busybox:latest``); an image
can have several, or none.  ``repo_digests`` (``name@sha256:<manifest>``) are
recorded for pulled images.  Compressed layer blobs are not kept once unpacked.

Removing a name drops the image when no name is left, then every blob and layer
no image needs — except layers an overlayfs mount on this host still uses.

All methods block on the filesystem; async callers run them with
``asyncio.to_thread``.
"""

from __future__ import annotations

import builtins
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .archive import ArchiveError, ArchiveImage, ImageArchive
from .config import ImageConfig, InvalidImageConfig
from .layer import LayerError, LayerInfo, extract_layer
from .mediatypes import DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST
from .reference import InvalidReference, Reference, is_digest, parse_reference
from ..runtime.mounts import unescape


class ImageStoreError(Exception):
    """Something about the store or the image content is wrong."""


class ImageNotFound(ImageStoreError, LookupError):
    """No image by that name or ID."""


@dataclass(frozen=True)
class Image:
    id: str                          # config digest
    names: tuple[str, ...]           # normalised references with a tag
    repo_digests: tuple[str, ...]    # name@sha256:<manifest digest>
    manifest_digest: str
    size: int                        # sum of the layers' blob sizes
    layers: tuple[str, ...]          # diffIDs, bottom first
    config: ImageConfig
    created: float                   # when it entered this store (epoch seconds)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.layers = self.root / "layers"
        self.by_blob = self.layers / "by-blob"
        for directory in (self.blobs, self.by_blob):
            directory.mkdir(parents=True, exist_ok=True)

    # -- reading -------------------------------------------------------------------------

    def list(self) -> builtins.list[Image]:
        index = self._read_index()
        return [self._image(index, image_id) for image_id in sorted(index["images"])]

    def get(self, ref_or_id: str) -> Image | None:
        """By reference (``busybox``, ``busybox@sha256:…``), full ID, or ID prefix."""
        index = self._read_index()
        image_id = self._lookup(index, ref_or_id)
        return self._image(index, image_id) if image_id else None

    def resolve(self, ref_or_id: str) -> Image:
        image = self.get(ref_or_id)
        if image is None:
            raise ImageNotFound(f"image {ref_or_id!r} not found")
        return image

    def layer_dirs(self, image: Image) -> builtins.list[Path]:
        """The image's unpacked layers, bottom first (reverse for overlayfs lowerdir=)."""
        return [self._layer_dir(diff_id) / "diff" for diff_id in image.layers]

    def read_blob(self, digest: str) -> bytes:
        return (self.blobs / _hex(digest)).read_bytes()

    # -- building blocks for importers and the registry puller ---------------------------

    def has_layer(self, diff_id: str) -> bool:
        return (self._layer_dir(diff_id) / "info.json").exists()

    def layer_for_blob(self, blob_digest: str) -> str | None:
        """The diffID a blob was unpacked into before, if it is still here."""
        try:
            diff_id = (self.by_blob / _hex(blob_digest)).read_text().strip()
        except FileNotFoundError:
            return None
        return diff_id if self.has_layer(diff_id) else None

    def layer_info(self, diff_id: str) -> dict[str, Any]:
        info: dict[str, Any] = json.loads((self._layer_dir(diff_id) / "info.json").read_text())
        return info

    def add_layer(self, stream: BinaryIO, *, blob_digest: str | None = None,
                  diff_id: str | None = None) -> LayerInfo:
        """Unpack a layer blob, verifying the digests given; idempotent per diffID."""
        scratch = Path(tempfile.mkdtemp(prefix="tmp-", dir=self.layers))
        try:
            (scratch / "diff").mkdir()
            info = extract_layer(stream, scratch / "diff")
            if blob_digest is not None and info.blob_digest != blob_digest:
                raise ImageStoreError(f"layer blob digest mismatch: expected {blob_digest}, "
                                      f"got {info.blob_digest}")
            if diff_id is not None and info.diff_id != diff_id:
                raise ImageStoreError(f"layer diffID mismatch: the image config says {diff_id}, "
                                      f"the layer is {info.diff_id}")
            (scratch / "info.json").write_text(json.dumps({
                "diffID": info.diff_id, "size": info.size, "blobDigest": info.blob_digest,
                "blobSize": info.blob_size, "mediaType": info.media_type}))
            os.chmod(scratch, 0o755)
            final = self._layer_dir(info.diff_id)
            try:
                os.rename(scratch, final)
            except OSError:
                if not self.has_layer(info.diff_id):
                    raise
            _atomic_write(self.by_blob / _hex(info.blob_digest), info.diff_id.encode())
            return info
        finally:
            if scratch.exists():
                shutil.rmtree(scratch, ignore_errors=True)

    def put_blob(self, data: bytes, digest: str | None = None) -> str:
        actual = sha256_digest(data)
        if digest is not None and actual != digest:
            raise ImageStoreError(f"blob digest mismatch: expected {digest}, got {actual}")
        path = self.blobs / _hex(actual)
        if not path.exists():
            _atomic_write(path, data)
        return actual

    def record(self, *, config: bytes, manifest: bytes, names: builtins.list[Reference],
               repo_digests: builtins.list[str] | None = None) -> Image:
        """Register an image whose layers are all unpacked; (re)point ``names`` at it."""
        try:
            image_config = ImageConfig.parse(config)
        except InvalidImageConfig as err:
            raise ImageStoreError(str(err)) from err
        missing = [d for d in image_config.diff_ids if not self.has_layer(d)]
        if missing:
            raise ImageStoreError(f"layers not unpacked: {', '.join(missing)}")
        config_digest = self.put_blob(config)
        manifest_digest = self.put_blob(manifest)
        manifest_doc = json.loads(manifest)
        size = sum(int(layer.get("size") or 0) for layer in manifest_doc.get("layers") or [])
        with self._locked_index() as index:
            entry = index["images"].setdefault(config_digest, {
                "manifest": manifest_digest, "size": size, "repoDigests": [],
                "created": time.time()})
            entry["manifest"] = manifest_digest
            entry["size"] = size
            for digest in repo_digests or []:
                if digest not in entry["repoDigests"]:
                    entry["repoDigests"].append(digest)
            for name in names:
                index["refs"][str(name)] = config_digest
            return self._image(index, config_digest)

    # -- archives ------------------------------------------------------------------------

    def import_archive(self, path: Path, name: str | None = None) -> builtins.list[Image]:
        """Import every image of a docker-archive or OCI archive; ``name`` tags a single one."""
        override = parse_reference(name) if name else None
        try:
            with self.adding(), ImageArchive(path) as archive:
                images = archive.images()
                if not images:
                    raise ImageStoreError(f"{path}: no linux/amd64 image in the archive")
                if override is not None and len(images) != 1:
                    raise ImageStoreError(f"{path}: holds {len(images)} images; "
                                          "--name needs exactly one")
                return [self._import_one(archive, image, override) for image in images]
        except (ArchiveError, LayerError, InvalidImageConfig) as err:
            raise ImageStoreError(str(err)) from err

    def _import_one(self, archive: ImageArchive, image: ArchiveImage,
                    override: Reference | None) -> Image:
        config = ImageConfig.parse(image.config)
        if len(config.diff_ids) != len(image.layers):
            raise ImageStoreError(f"image {image.config_digest}: config lists "
                                  f"{len(config.diff_ids)} layers, manifest {len(image.layers)}")
        descriptors = []
        for layer, diff_id in zip(image.layers, config.diff_ids):
            if not self.has_layer(diff_id):
                self.add_layer(archive.open_member(layer.member), blob_digest=layer.digest,
                               diff_id=diff_id)
            info = self.layer_info(diff_id)
            descriptors.append({"mediaType": DOCKER_LAYER, "digest": diff_id,
                                "size": int(info["size"])})
        manifest = image.manifest or _docker_manifest(image.config, descriptors)
        names = [override] if override else _archive_names(image.names)
        return self.record(config=image.config, manifest=manifest, names=names)

    # -- removal -------------------------------------------------------------------------

    def remove(self, ref_or_id: str) -> Image:
        """Remove a name (or, given an ID, the image with all its names)."""
        with self._gc_lock(fcntl.LOCK_EX), self._locked_index() as index:
            image_id = self._lookup(index, ref_or_id)
            if image_id is None:
                raise ImageNotFound(f"image {ref_or_id!r} not found")
            image = self._image(index, image_id)
            by_name = self._ref_key(ref_or_id)
            if by_name is not None and index["refs"].get(by_name) == image_id:
                del index["refs"][by_name]
            else:
                for ref in [r for r, i in index["refs"].items() if i == image_id]:
                    del index["refs"][ref]
                index["images"][image_id]["repoDigests"] = []
            if not any(i == image_id for i in index["refs"].values()):
                index["images"].pop(image_id, None)
            self._prune(index)
            return image

    def prune(self) -> None:
        """Delete blobs and layers no image needs (e.g. once an overlay using them is gone)."""
        with self._gc_lock(fcntl.LOCK_EX), self._locked_index() as index:
            self._prune(index)

    def _prune(self, index: dict[str, Any]) -> None:
        """Delete blobs and layers that no image in ``index`` needs (caller holds the lock)."""
        keep_blobs: set[str] = set()
        keep_layers: set[str] = set()
        for image_id, entry in index["images"].items():
            keep_blobs.update({_hex(image_id), _hex(entry["manifest"])})
            config = ImageConfig.parse(self.read_blob(image_id))
            keep_layers.update(_hex(d) for d in config.diff_ids)
        for blob in os.listdir(self.blobs):
            if blob not in keep_blobs and not blob.startswith("."):
                (self.blobs / blob).unlink(missing_ok=True)
        mounted = _mounted_lowerdirs()
        for name in os.listdir(self.layers):
            if name in keep_layers or name == "by-blob" or name.startswith("tmp-"):
                continue
            if _in(str(self.layers / name / "diff"), mounted):
                continue
            shutil.rmtree(self.layers / name, ignore_errors=True)
        for blob_link in os.listdir(self.by_blob):
            try:
                diff_hex = _hex((self.by_blob / blob_link).read_text().strip())
            except (OSError, ValueError):
                diff_hex = ""
            if not (self.layers / diff_hex / "info.json").exists():
                (self.by_blob / blob_link).unlink(missing_ok=True)

    # -- locks and index -----------------------------------------------------------------

    @contextmanager
    def adding(self) -> Iterator[None]:
        """Held while content is added (a pull, an import): removal waits, so it cannot
        prune layers unpacked but not yet recorded."""
        with self._gc_lock(fcntl.LOCK_SH):
            yield

    @contextmanager
    def _gc_lock(self, mode: int) -> Iterator[None]:
        with open(self.root / "gc.lock", "a+") as lock:
            fcntl.flock(lock, mode)
            yield

    def _read_index(self) -> dict[str, Any]:
        try:
            index: dict[str, Any] = json.loads((self.root / "index.json").read_text())
        except FileNotFoundError:
            return {"images": {}, "refs": {}}
        return index

    @contextmanager
    def _locked_index(self) -> Iterator[dict[str, Any]]:
        with open(self.root / "lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            index = self._read_index()
            yield index
            _atomic_write(self.root / "index.json", json.dumps(index, indent=1).encode())

    def _ref_key(self, text: str) -> str | None:
        try:
            ref = parse_reference(text)
        except InvalidReference:
            return None
        return str(ref) if ref.digest is None else None

    def _lookup(self, index: dict[str, Any], text: str) -> str | None:
        if is_digest(text):
            return text if text in index["images"] else None
        try:
            ref = parse_reference(text)
        except InvalidReference:
            ref = None
        if ref is not None and ref.digest is None and str(ref) in index["refs"]:
            return str(index["refs"][str(ref)])
        if ref is not None and ref.digest is not None:
            for image_id, entry in index["images"].items():
                if f"{ref.name}@{ref.digest}" in entry["repoDigests"] or (
                        entry["manifest"] == ref.digest and any(
                            r.startswith(ref.name + ":") and i == image_id
                            for r, i in index["refs"].items())):
                    return str(image_id)
        prefix = text.removeprefix("sha256:")
        if len(prefix) >= 6 and all(c in "0123456789abcdef" for c in prefix):
            matches = [i for i in index["images"] if i.removeprefix("sha256:").startswith(prefix)]
            if len(matches) == 1:
                return str(matches[0])
        return None

    def _image(self, index: dict[str, Any], image_id: str) -> Image:
        entry = index["images"][image_id]
        config = ImageConfig.parse(self.read_blob(image_id))
        names = tuple(sorted(r for r, i in index["refs"].items() if i == image_id))
        return Image(id=image_id, names=names, repo_digests=tuple(entry["repoDigests"]),
                     manifest_digest=entry["manifest"], size=int(entry["size"]),
                     layers=config.diff_ids, config=config, created=float(entry["created"]))

    def _layer_dir(self, diff_id: str) -> Path:
        return self.layers / _hex(diff_id)


def _hex(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise ImageStoreError(f"unsupported digest {digest!r}")
    return value


def _docker_manifest(config: bytes, layers: list[dict[str, Any]]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": sha256_digest(config),
                   "size": len(config)},
        "layers": layers,
    }, separators=(",", ":")).encode()


def _archive_names(names: list[str]) -> list[Reference]:
    refs = []
    for name in names:
        if "/" not in name and ":" not in name:
            continue   # a bare OCI tag ("latest") does not say which repository
        try:
            refs.append(parse_reference(name))
        except InvalidReference:
            continue
    return refs


def _in(layer_diff: str, mounted: set[str]) -> bool:
    """Is ``layer_diff`` one of the ``mounted`` lowerdirs?  A relative one that could not
    be resolved (an overlay that does not name its directory) matches by its end: at
    worst a layer is kept a while longer."""
    return layer_diff in mounted or any(
        not d.startswith("/") and layer_diff.endswith("/" + d) for d in mounted)


def _mounted_lowerdirs() -> set[str]:
    """Every overlayfs lowerdir in use on this host (so their layers stay).  The runtime
    gives them relative to the directory it names as the mount's source
    (kubelet/runtime/mounts.py); they are resolved against it here."""
    dirs: set[str] = set()
    try:
        with open("/proc/self/mountinfo") as mountinfo:
            for line in mountinfo:
                _, _, tail = line.partition(" - ")
                fields = tail.split()
                if len(fields) < 3 or fields[0] != "overlay":
                    continue
                source = unescape(fields[1])
                for option in fields[2].split(","):
                    if option.startswith("lowerdir="):
                        for lower in option[len("lowerdir="):].split(":"):
                            if not lower.startswith("/") and source.startswith("/"):
                                lower = os.path.join(source, lower)
                            dirs.add(unescape(lower))
    except OSError:
        pass
    return dirs


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
