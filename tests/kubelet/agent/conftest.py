"""Fixtures for the kubelet tests (real runc, root): API server, busybox image, a node."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from busybox_image import write_busybox_archive  # noqa: E402
from kubelet_support import IMAGE, Node, add_namespace, delete_namespace  # noqa: E402

from skiff.apiserver.app import make_app  # noqa: E402
from skiff.client.rest import ApiClient  # noqa: E402
from skiff.kubelet.images.store import ImageStore  # noqa: E402
from skiff.storage.sqlite import SqliteBackend  # noqa: E402

if os.geteuid() != 0:
    raise RuntimeError("the kubelet tests need root (runc, namespaces, mounts)")


@pytest.fixture(scope="session")
def image_store(tmp_path_factory: pytest.TempPathFactory) -> ImageStore:
    root = tmp_path_factory.mktemp("kubelet-images")
    write_busybox_archive(root / "busybox.tar", IMAGE)
    store = ImageStore(root / "store")
    store.import_archive(root / "busybox.tar")
    return store


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[ApiClient]:
    backend = SqliteBackend(str(tmp_path / "db"))
    await backend.start()
    runner = web.AppRunner(make_app(backend), handle_signals=False, shutdown_timeout=0.1)
    try:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        api = ApiClient(f"http://127.0.0.1:{runner.addresses[0][1]}")
        try:
            yield api
        finally:
            await api.close()
    finally:
        await runner.cleanup()
        await backend.close()


@pytest.fixture
async def node_ns() -> AsyncIterator[Path]:
    path = add_namespace()
    try:
        yield path
    finally:
        delete_namespace(path)


@pytest.fixture
async def node(client: ApiClient, tmp_path: Path, image_store: ImageStore,
               node_ns: Path) -> AsyncIterator[Node]:
    node = Node(client, tmp_path / "node", image_store, node_ns)
    try:
        await node.start()
        yield node
    finally:
        await node.destroy()
    assert node.leftovers() == []
