"""Fixtures for the pod network tests: a namespace standing for a node, with a
NodeNetwork set up inside it, torn down (and checked to be gone) after each test.

``node_ns`` (the namespace) comes from tests/kubelet/conftest.py."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from podnet_support import assert_root, link_names  # noqa: E402

from skiff.kubelet.network import NodeNetwork  # noqa: E402

assert_root()


@pytest.fixture
async def node(node_ns: Path, tmp_path: Path) -> AsyncIterator[NodeNetwork]:
    """A NodeNetwork (bridge skiff0, pod CIDR 10.244.0.0/24) inside ``node_ns``."""
    network = NodeNetwork(state_dir=tmp_path / "network", pod_cidr="10.244.0.0/24",
                          node_netns=node_ns)
    await network.setup()
    made = []
    try:
        yield network
    finally:
        made = [pod.netns_path for pod in network.list_pods()
                if pod.netns_path and pod.netns_path.name.startswith("skiff-")]
        await network.teardown()
    assert "skiff0" not in link_names(node_ns)
    assert not [path for path in made if path.exists()]
    assert not any((tmp_path / "network").iterdir())
