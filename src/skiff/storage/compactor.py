"""Automatic compaction: keep a bounded window of history behind the head.

Every ``interval`` seconds the compactor compacts its backend to
``revision - retain_revisions`` (when that is newer than what is already
compacted), so the store keeps the most recent ``retain_revisions``
revisions of history for reads at a revision and for watch replay, and no
more.  It is backend-agnostic: it only uses the :class:`Backend` protocol.

Lifecycle::

    start() ──▶ task: every interval ──▶ run_once() ──▶ backend.compact(target)
    stop()  ──▶ task cancelled and awaited (no orphan task)

A failed pass is logged and retried on the next tick; it never kills the task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from skiff.storage.interface import Backend

log = logging.getLogger(__name__)


class AutoCompactor:
    """Periodically compacts ``backend`` to keep ``retain_revisions`` of history."""

    def __init__(self, backend: Backend, *, retain_revisions: int, interval: float) -> None:
        if retain_revisions < 0:
            raise ValueError("retain_revisions must be >= 0")
        self._backend = backend
        self.retain_revisions = retain_revisions
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._passes_started = 0
        self._passes_finished = 0
        self._pass_done = asyncio.Condition()

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def start(self) -> None:
        """Start the periodic task (no-op when ``interval`` <= 0)."""
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="skiff-storage-compactor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> int:
        """Compact now if history exceeds the window; returns the compacted revision."""
        target = self._backend.revision - self.retain_revisions
        if target > self._backend.compacted_revision:
            await self._backend.compact(target)
        return self._backend.compacted_revision

    async def wait_fresh_pass(self) -> None:
        """Wait until a periodic pass that started after this call has finished."""
        started = self._passes_started
        async with self._pass_done:
            await self._pass_done.wait_for(lambda: self._passes_finished > started)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._passes_started += 1
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("automatic compaction failed; retrying in %.1fs", self.interval)
            self._passes_finished += 1
            async with self._pass_done:
                self._pass_done.notify_all()
