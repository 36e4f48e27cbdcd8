"""Fixtures: an in-process API server over a real SQLite store, and an HTTP client."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient

from apiserver_kinds import kinds_registry
from apiserver_support import http_client


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await make_client(**make_app_options)`` -> a started TestClient on a store of
    its own (closed at teardown)."""
    numbers = itertools.count()
    async with contextlib.AsyncExitStack() as stack:
        async def factory(**options: Any) -> TestClient:
            options.setdefault("registry", kinds_registry())
            db = tmp_path / f"db{next(numbers)}"
            return await stack.enter_async_context(http_client(db, **options))

        yield factory


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> TestClient:
    return await make_client()
