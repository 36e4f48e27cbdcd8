"""Fixtures for the image tests: the busybox test archives and an empty store."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))

from busybox_image import write_busybox_archive  # noqa: E402

from skiff.kubelet.images.store import ImageStore  # noqa: E402


@pytest.fixture(scope="session")
def busybox_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("archives") / "busybox.tar"
    write_busybox_archive(path, "busybox:test")
    return path


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "images")
