"""Time as a dependency: the real clock, and a fake one tests move by hand.

Everything in skiff that waits or stamps a time (work-queue back-off, informer
re-list back-off, lease renewals, fake pods that "run" for a while) takes a
:class:`Clock` instead of calling :mod:`time` or :func:`asyncio.sleep`
directly, so a test can replace it with :class:`FakeClock` and step time
forward without sleeping::

    clock = FakeClock()
    task = asyncio.create_task(thing_that_sleeps(clock))
    await clock.wait_for_sleepers(1)   # the task is now parked in clock.sleep()
    clock.advance(10)                  # ... and wakes up, 10 s "later"

``monotonic()`` measures intervals; ``time()`` is wall-clock seconds since the
epoch and is what goes into API timestamps (``renewTime``, ``startTime``).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time as _time
from typing import Protocol


class Clock(Protocol):
    """The three things a component needs from time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for intervals)."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch (for timestamps written to the API)."""

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller for ``seconds`` (<= 0 still yields once)."""


class RealClock:
    """The clock of the running process."""

    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that moves only when :meth:`advance` is called.

    ``sleep()`` parks the caller until the clock has been advanced past its
    deadline.  ``time()`` starts at ``wall_start`` (default 2025-01-01T00:00:00Z)
    and moves together with ``monotonic()``.
    """

    def __init__(self, *, start: float = 1000.0, wall_start: float = 1735689600.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._sleepers_changed = asyncio.Event()

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        self._sleepers_changed.set()
        await fut

    @property
    def sleepers(self) -> int:
        """How many callers are parked in ``sleep()`` right now."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    def next_deadline(self) -> float | None:
        """The earliest pending sleep deadline (monotonic), if any."""
        for deadline, _, fut in sorted(self._sleepers):
            if not fut.done():
                return deadline
        return None

    async def wait_for_sleepers(self, count: int = 1) -> None:
        """Wait (without sleeping) until at least ``count`` callers are parked in ``sleep()``."""
        while self.sleepers < count:
            self._sleepers_changed.clear()
            await self._sleepers_changed.wait()

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)
        # Drop sleepers whose waiting task was cancelled.
        self._sleepers = [s for s in self._sleepers if not s[2].done()]
        heapq.heapify(self._sleepers)
