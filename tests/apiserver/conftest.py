"""Fixtures: an in-process API server over a real SQLite store, and an HTTP client."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer

from apiserver_kinds import kinds_registry
from skiff.apiserver.app import make_app
from skiff.storage.sqlite import SqliteBackend


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await make_client(**make_app_options)`` -> a started TestClient (closed at teardown)."""
    clients: list[TestClient] = []
    backends: list[SqliteBackend] = []

    async def factory(**options: Any) -> TestClient:
        backend = SqliteBackend(str(tmp_path / f"db{len(backends)}"), compact_interval=0)
        backends.append(backend)
        options.setdefault("registry", kinds_registry())
        client = TestClient(TestServer(make_app(backend, **options)))
        await client.start_server()
        clients.append(client)
        return client

    try:
        yield factory
    finally:
        for c in clients:
            await c.close()
        for b in backends:
            await b.close()


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> TestClient:
    return await make_client()
