"""Fixtures: ``cluster`` = API server + 2 fake nodes + test binder + every controller."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest

from controller_cluster import Cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with Cluster(tmp_path, nodes=2) as c:
        yield c
