"""Fixtures for every kubelet test: ``client``, an ApiClient of a real API server
in-process (apiserver_support); the busybox test image as an archive
(``busybox_archive``) and imported into a store (``image_store``), once a session;
``node_ns``, a network namespace standing for a node (netns_support, root only)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apiserver_support import ApiServer
from netns_support import add_namespace, delete_namespace
from skiff.client.rest import ApiClient
from skiff.kubelet.images.store import ImageStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

from busybox_image import write_busybox_archive  # noqa: E402

#: The reference of the busybox test image in the archive and the store.
IMAGE = "busybox:test"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[ApiClient]:
    async with ApiServer(tmp_path) as api:
        yield api.client


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("archives") / "busybox.tar"
    write_busybox_archive(path, IMAGE)
    return path


@pytest.fixture(scope="session")
def image_store(tmp_path_factory: pytest.TempPathFactory, busybox_archive: Path) -> ImageStore:
    store = ImageStore(tmp_path_factory.mktemp("images") / "store")
    store.import_archive(busybox_archive)
    return store


@pytest.fixture
async def node_ns() -> AsyncIterator[Path]:
    """An empty network namespace standing for a node (no way out of the machine)."""
    path = add_namespace()
    try:
        yield path
    finally:
        delete_namespace(path)
