"""Fixtures for the kubelet tests (real runc, root): a node.

``client`` (the API server), ``image_store`` (busybox) and ``node_ns`` (a network
namespace standing for the node) come from tests/kubelet/conftest.py.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kubelet_support import Node  # noqa: E402

from skiff.client.rest import ApiClient  # noqa: E402
from skiff.kubelet.images.store import ImageStore  # noqa: E402

if os.geteuid() != 0:
    raise RuntimeError("the kubelet tests need root (runc, namespaces, mounts)")


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
