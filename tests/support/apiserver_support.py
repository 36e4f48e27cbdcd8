"""The real API server in-process, for the tests of any component.

Two ways to reach it, both over a real SQLite store:

* :class:`ApiServer` -- ``async with ApiServer(tmp_path) as api:`` serves plain
  HTTP on 127.0.0.1 (port 0) for components that talk through skiff's own
  :class:`ApiClient` (``api.client``), or anything given ``api.url`` or the
  kubeconfig ``api.kubeconfig`` (for the real kubectl);
* :func:`http_client` -- ``async with http_client(tmp_path / "db") as client:``
  an aiohttp ``TestClient`` for tests that speak HTTP to the server themselves.
  Entering it again with the same path is a restart of the server.

Both take ``make_app``'s keyword options (``registry=``, ``service_cidr=`` ...)
and remove everything they started on the way out, also on failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from skiff.apiserver.app import make_app
from skiff.client.rest import ApiClient
from skiff.storage.sqlite import SqliteBackend


class ApiServer:
    """The API server on 127.0.0.1:0 (sqlite ``directory/db``), an ApiClient, a kubeconfig."""

    def __init__(self, directory: Path, **make_app_options: Any) -> None:
        self.directory = directory
        self.options = make_app_options
        self._stack = contextlib.AsyncExitStack()
        self.client: ApiClient
        self.url = ""
        self.kubeconfig = directory / "kubeconfig"

    async def __aenter__(self) -> ApiServer:
        try:
            backend = SqliteBackend(str(self.directory / "db"))
            await backend.start()
            self._stack.push_async_callback(backend.close)
            runner = web.AppRunner(make_app(backend, **self.options), handle_signals=False,
                                   shutdown_timeout=0.1)
            await runner.setup()
            self._stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            self.client = ApiClient(self.url)
            self._stack.push_async_callback(self.client.close)
            self.kubeconfig.write_text(
                "apiVersion: v1\nkind: Config\n"
                f"clusters:\n- name: t\n  cluster:\n    server: {self.url}\n"
                "users:\n- name: u\n  user: {}\n"
                "contexts:\n- name: t\n  context:\n    cluster: t\n    user: u\n"
                "    namespace: default\ncurrent-context: t\n")
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


@contextlib.asynccontextmanager
async def http_client(db: Path, *, store: type[SqliteBackend] = SqliteBackend,
                      **make_app_options: Any) -> AsyncIterator[TestClient]:
    """A started aiohttp TestClient of the API server on the sqlite file ``db``
    (a ``store`` subclass may slow or break the store); closed, store too, on exit."""
    backend = store(str(db), compact_interval=0)
    try:
        client = TestClient(TestServer(make_app(backend, **make_app_options)))
        await client.start_server()
        try:
            yield client
        finally:
            await client.close()
    finally:
        await backend.close()
