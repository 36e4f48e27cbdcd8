"""Fixtures for the storage tests: every contract test runs against every backend kind.

To add a backend, append a :class:`BackendKind` to ``BACKEND_KINDS``.  Its
``make(directory, **options)`` builds an unstarted backend whose data lives
under ``directory`` (calling it again with the same directory must reopen
the same data); ``options`` are ``retain_revisions`` and
``compact_interval`` (0 = no automatic compaction).  A backend used with
automatic compaction exposes ``compactor`` (an
:class:`skiff.storage.compactor.AutoCompactor`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from skiff.storage.interface import Backend
from skiff.storage.sqlite import SqliteBackend


@dataclass(frozen=True)
class BackendKind:
    name: str
    make: Callable[..., Backend]


def _sqlite(directory: Path, **options: Any) -> Backend:
    return SqliteBackend(str(directory / "store.db"), **options)


BACKEND_KINDS = [BackendKind("sqlite", _sqlite)]

OpenBackend = Callable[..., Awaitable[Any]]


@pytest.fixture(params=BACKEND_KINDS, ids=lambda kind: kind.name)
def backend_kind(request: pytest.FixtureRequest) -> BackendKind:
    kind: BackendKind = request.param
    return kind


@pytest.fixture
async def open_backend(backend_kind: BackendKind, tmp_path: Path) -> AsyncIterator[OpenBackend]:
    """``await open_backend(**options)``: a started backend over ``tmp_path``, closed at teardown."""
    opened: list[Backend] = []

    async def open_(**options: Any) -> Any:
        options.setdefault("compact_interval", 0)
        backend = backend_kind.make(tmp_path, **options)
        await backend.start()
        opened.append(backend)
        return backend

    yield open_
    for backend in opened:
        await backend.close()


@pytest.fixture
async def backend(open_backend: OpenBackend) -> Any:
    """A started, empty backend without automatic compaction."""
    return await open_backend()
