"""Fixtures for the image tests: an empty store.

``busybox_archive`` (the busybox test archive) comes from tests/kubelet/conftest.py,
which also puts tests/fixtures (``busybox_image``) on the import path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from skiff.kubelet.images.store import ImageStore


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")
