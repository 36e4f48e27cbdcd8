"""Media types of image documents, and which platform this node runs.

Registries and archives carry two families of the same documents: Docker's
(schema 2) and OCI's.  skiff reads both and treats them alike::

    index / manifest list  ->  one manifest per platform
    manifest               ->  config blob + ordered layer blobs
"""

from __future__ import annotations

from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, DOCKER_LAYER, DOCKER_LAYER_GZIP)

NODE_OS = "linux"
NODE_ARCHITECTURE = "amd64"


def platform_matches(platform: Any) -> bool:
    """Whether an index entry's ``platform`` suits this node (no platform: assume so)."""
    if not isinstance(platform, dict):
        return True
    return platform.get("os") == NODE_OS and platform.get("architecture") == NODE_ARCHITECTURE
