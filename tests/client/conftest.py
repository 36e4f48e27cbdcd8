"""Fixtures: a stub API server on loopback and a client connected to it."""

from __future__ import annotations

from typing import AsyncIterator

import pytest
from aiohttp import web

from apistub import StubApi
from skiff.client.rest import ApiClient


@pytest.fixture
async def stub() -> AsyncIterator[tuple[StubApi, str]]:
    api = StubApi()
    runner = web.AppRunner(api.app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield api, f"http://127.0.0.1:{port}"
    finally:
        api.break_watches()
        await runner.cleanup()


@pytest.fixture
async def client(stub: tuple[StubApi, str]) -> AsyncIterator[ApiClient]:
    api = ApiClient(stub[1])
    try:
        yield api
    finally:
        await api.close()
