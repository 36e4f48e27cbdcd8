"""Fixtures for the process-runtime tests: a node and a per-test marker.

``client`` (the API server), ``busybox_archive`` and ``image_store`` come from
tests/kubelet/conftest.py.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from process_support import Node, kill_marked, marked_processes, new_marker  # noqa: E402

from skiff.client.rest import ApiClient  # noqa: E402
from skiff.kubelet.images.store import ImageStore  # noqa: E402


@pytest.fixture
def marker() -> Iterator[str]:
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
