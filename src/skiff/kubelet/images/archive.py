"""Reading image archives: ``docker save`` tarballs and OCI image layouts.

Two formats are understood, told apart by their index files::

    docker-archive                          oci-archive (an OCI image layout in a tar)
    ├── manifest.json  [{Config, RepoTags,  ├── oci-layout        {"imageLayoutVersion"}
    │                    Layers: [...]}]    ├── index.json        manifests (or nested indexes)
    ├── <config>.json                       └── blobs/sha256/<hex>
    └── <id>/layer.tar  (or blobs/sha256/…)

When both are present (Docker 25+ writes both) ``manifest.json`` wins.  In an OCI
index only ``linux/amd64`` manifests (or manifests without a platform) are taken;
``org.opencontainers.image.ref.name`` / ``io.containerd.image.name`` annotations
become the image's names.

Nothing is unpacked here: :class:`ImageArchive` lists the images and opens members
as streams; :mod:`.layer` unpacks layers, :mod:`.store` records them.  Member
names from the index files are only ever looked up *inside* the archive.  Small
JSON documents are size-capped and, when the archive names their digest, verified.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, cast

from .mediatypes import (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST,
                         platform_matches)

MAX_DOCUMENT_BYTES = 4 << 20
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
CONTAINERD_NAME_ANNOTATION = "io.containerd.image.name"


class ArchiveError(Exception):
    """The file is not an image archive skiff can read."""


@dataclass(frozen=True)
class ArchiveLayer:
    member: str                 # path of the layer blob inside the archive
    digest: str | None = None   # its blob digest, when the archive states one


@dataclass
class ArchiveImage:
    config: bytes
    config_digest: str
    layers: list[ArchiveLayer]
    names: list[str] = field(default_factory=list)   # as written: "busybox:1.36", "latest", ...
    manifest: bytes | None = None                     # the OCI/Docker manifest, if the archive has one


class ImageArchive:
    """An open archive; use as a context manager."""

    def __init__(self, path: Path) -> None:
        try:
            self._tar = tarfile.open(path, "r:*")
        except (tarfile.TarError, OSError) as err:
            raise ArchiveError(f"{path}: not a tar archive ({err})") from err
        self._members = {_clean(m.name): m for m in self._tar.getmembers()}
        self.path = path

    def __enter__(self) -> "ImageArchive":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._tar.close()

    @property
    def format(self) -> str:
        if "manifest.json" in self._members:
            return "docker-archive"
        if "index.json" in self._members:
            return "oci-archive"
        raise ArchiveError(f"{self.path}: neither manifest.json (docker-archive) nor "
                           "index.json (OCI layout) found")

    def open_member(self, name: str) -> BinaryIO:
        member = self._members.get(_clean(name))
        if member is None or not member.isreg():
            raise ArchiveError(f"{self.path}: {name!r} is missing from the archive")
        stream = self._tar.extractfile(member)
        assert stream is not None
        return cast(BinaryIO, stream)

    def read_document(self, name: str, digest: str | None = None) -> bytes:
        member = self._members.get(_clean(name))
        if member is not None and member.size > MAX_DOCUMENT_BYTES:
            raise ArchiveError(f"{self.path}: {name!r} is too large for a JSON document")
        data = self.open_member(name).read(MAX_DOCUMENT_BYTES + 1)
        if digest is not None and "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ArchiveError(f"{self.path}: {name!r} does not match its digest {digest}")
        return data

    def images(self) -> list[ArchiveImage]:
        if self.format == "docker-archive":
            return self._docker_images()
        return self._oci_images()

    # -- docker-archive ----------------------------------------------------------------

    def _docker_images(self) -> list[ArchiveImage]:
        entries = _json_list(self.read_document("manifest.json"), "manifest.json")
        images = []
        for entry in entries:
            config_name = _string(entry.get("Config"), "manifest.json Config")
            config = self.read_document(config_name)
            layers = [ArchiveLayer(member=_string(name, "manifest.json Layers"))
                      for name in entry.get("Layers") or []]
            images.append(ArchiveImage(
                config=config, config_digest="sha256:" + hashlib.sha256(config).hexdigest(),
                layers=layers, names=[str(t) for t in entry.get("RepoTags") or []]))
        return images

    # -- OCI layout ---------------------------------------------------------------------

    def _oci_images(self) -> list[ArchiveImage]:
        index = _json_object(self.read_document("index.json"), "index.json")
        images: list[ArchiveImage] = []
        self._walk_index(index, [], images, depth=0)
        return images

    def _walk_index(self, index: dict[str, Any], names: list[str], out: list[ArchiveImage],
                    depth: int) -> None:
        if depth > 4:
            raise ArchiveError(f"{self.path}: image indexes nested too deeply")
        for descriptor in index.get("manifests") or []:
            media_type = descriptor.get("mediaType")
            digest = _string(descriptor.get("digest"), "descriptor digest")
            annotations = descriptor.get("annotations") or {}
            own = [annotations[k] for k in (CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION)
                   if isinstance(annotations.get(k), str)][:1]
            if not platform_matches(descriptor.get("platform")):
                continue
            document = self.read_document(_blob_path(digest), digest)
            if media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST):
                self._walk_index(_json_object(document, digest), own or names, out, depth + 1)
            elif media_type in (OCI_MANIFEST, DOCKER_MANIFEST, None):
                out.append(self._oci_image(document, digest, own or names))

    def _oci_image(self, manifest_bytes: bytes, digest: str, names: list[str]) -> ArchiveImage:
        manifest = _json_object(manifest_bytes, digest)
        if "manifests" in manifest:   # an index whose descriptor had no media type
            raise ArchiveError(f"{self.path}: {digest} is an index without a mediaType")
        config_digest = _string((manifest.get("config") or {}).get("digest"), "config digest")
        config = self.read_document(_blob_path(config_digest), config_digest)
        layers = [ArchiveLayer(member=_blob_path(_string(layer.get("digest"), "layer digest")),
                               digest=layer["digest"])
                  for layer in manifest.get("layers") or []]
        return ArchiveImage(config=config, config_digest=config_digest, layers=layers,
                            names=list(names), manifest=manifest_bytes)


def _blob_path(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    if algorithm != "sha256" or len(hexpart) != 64 or not all(c in "0123456789abcdef" for c in hexpart):
        raise ArchiveError(f"unsupported digest {digest!r}")
    return f"blobs/sha256/{hexpart}"


def _clean(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    value = _json(data, what)
    if not isinstance(value, dict):
        raise ArchiveError(f"{what}: expected a JSON object")
    return value


def _json_list(data: bytes, what: str) -> list[dict[str, Any]]:
    value = _json(data, what)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ArchiveError(f"{what}: expected a JSON list of objects")
    return value


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as err:
        raise ArchiveError(f"{what}: invalid JSON ({err})") from err


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ArchiveError(f"{what}: expected a string")
    return value
