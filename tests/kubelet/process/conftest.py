"""Fixtures for the process-runtime tests: API server, busybox image, a node, markers."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from busybox_image import write_busybox_archive  # noqa: E402
from process_support import IMAGE, Node, kill_marked, marked_processes, new_marker  # noqa: E402

from skiff.apiserver.app import make_app  # noqa: E402
from skiff.client.rest import ApiClient  # noqa: E402
from skiff.kubelet.images.store import ImageStore  # noqa: E402


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("process-image") / "busybox.tar"
    write_busybox_archive(path, IMAGE)
    return path


@pytest.fixture(scope="session")
def image_store(tmp_path_factory: pytest.TempPathFactory, busybox_archive: Path) -> ImageStore:
    store = ImageStore(tmp_path_factory.mktemp("process-images") / "store")
    store.import_archive(busybox_archive)
    return store


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[ApiClient]:
    from skiff.storage.sqlite import SqliteBackend

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
def marker() -> str:
    """Put it in every container command: afterwards no process may carry it."""
    value = new_marker()
    yield value
    assert kill_marked(value) == []          # nothing left (killed anyway if there was)


@pytest.fixture
async def node(client: ApiClient, tmp_path: Path, image_store: ImageStore,
               marker: str) -> AsyncIterator[Node]:
    node = Node(client, tmp_path / "node", image_store)
    try:
        await node.start()
        yield node
    finally:
        await node.destroy()
    assert marked_processes(str(node.root)) == []      # no shim, no exec helper
