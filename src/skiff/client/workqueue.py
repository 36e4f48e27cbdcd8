"""A controller's work queue, with the same guarantees as client-go's.

Event handlers put *keys* (usually ``"namespace/name"``) on the queue; workers
take them off, reconcile, and say when they are done::

    async def worker(queue):
        while (key := await queue.get()) is not None:   # None: the queue shut down
            try:
                await reconcile(key)
            except Exception:
                queue.add_rate_limited(key)   # try again later, backing off
            else:
                queue.forget(key)             # success: reset its back-off
            finally:
                queue.done(key)

Guarantees::

    add(k) ──▶ dirty ──▶ queue ──get()──▶ processing ──done(k)──┐
                 ▲                          │                   │
                 └── add(k) while processing: remembered,       │
                     queued again only after done(k) ◀──────────┘

* **Dedupe**: a key added many times before a worker takes it is handed out once.
* **One worker per key**: a key being processed is never handed to a second
  worker; if it is added meanwhile it is queued again when ``done()`` is called.
* **Delays**: ``add_after(k, s)`` queues ``k`` after ``s`` seconds (the earliest
  pending delay of a key wins).
* **Back-off**: ``add_rate_limited(k)`` delays by the key's
  :class:`ExponentialBackoff` (5 ms, 10 ms, 20 ms ... capped at 1000 s);
  ``forget(k)`` resets it.

Time comes from an injectable :class:`~skiff.client.clock.Clock`, so tests
drive delays with a :class:`~skiff.client.clock.FakeClock` and never sleep.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from typing import Generic, Hashable, TypeVar

from .clock import Clock, RealClock

K = TypeVar("K", bound=Hashable)


class ExponentialBackoff(Generic[K]):
    """Per-key exponential back-off: ``base * 2**failures``, capped at ``cap``."""

    def __init__(self, base: float = 0.005, cap: float = 1000.0) -> None:
        self.base = base
        self.cap = cap
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        """The delay for this key's next retry (and count one more failure)."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        if failures >= 64:  # 2**64 * base is far beyond any cap; avoid huge floats
            return self.cap
        return min(self.cap, self.base * float(2 ** failures))

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)


class WorkQueue(Generic[K]):
    """A deduplicating, delaying, rate-limited queue of keys (see module docstring)."""

    def __init__(self, *, clock: Clock | None = None,
                 backoff: ExponentialBackoff[K] | None = None) -> None:
        self._clock: Clock = clock or RealClock()
        self._backoff: ExponentialBackoff[K] = backoff or ExponentialBackoff()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: list[tuple[float, int, K]] = []  # (ready_at, seq, key) heap
        self._waiting_ready_at: dict[K, float] = {}
        self._seq = itertools.count()
        self._changed = asyncio.Event()
        self._shutting_down = False

    # -- adding -----------------------------------------------------------------

    def add(self, key: K) -> None:
        """Queue ``key`` now (a no-op when it is already queued)."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # queued again by done()
        self._queue.append(key)
        self._changed.set()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` once ``delay`` seconds have passed."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready_at = self._clock.monotonic() + delay
        current = self._waiting_ready_at.get(key)
        if current is not None and current <= ready_at:
            return  # an earlier (or equal) delay is already pending
        self._waiting_ready_at[key] = ready_at
        heapq.heappush(self._waiting, (ready_at, next(self._seq), key))
        self._changed.set()

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` after its back-off delay, which doubles on every call."""
        self.add_after(key, self._backoff.when(key))

    def forget(self, key: K) -> None:
        """Reset ``key``'s back-off (call after it was processed successfully)."""
        self._backoff.forget(key)

    def num_requeues(self, key: K) -> int:
        return self._backoff.num_requeues(key)

    # -- taking -----------------------------------------------------------------

    async def get(self) -> K | None:
        """The next key to process, waiting for one; ``None`` once shut down and drained."""
        while True:
            self._promote_ready()
            if self._queue:
                key = self._queue.popleft()
                self._processing.add(key)
                self._dirty.discard(key)
                return key
            if self._shutting_down:
                return None
            self._changed.clear()
            await self._wait_for_change()

    def done(self, key: K) -> None:
        """Mark ``key`` finished; if it was added while processing, queue it again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._changed.set()

    def shut_down(self) -> None:
        """Stop accepting keys; ``get()`` returns ``None`` once the queue is empty."""
        self._shutting_down = True
        self._waiting.clear()
        self._waiting_ready_at.clear()
        self._changed.set()

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Keys ready to be handed out (not counting delayed or in-process ones)."""
        return len(self._queue)

    @property
    def delayed(self) -> int:
        """Keys waiting for their delay to pass."""
        return len(self._waiting_ready_at)

    def is_processing(self, key: K) -> bool:
        return key in self._processing

    # -- internals --------------------------------------------------------------

    def _promote_ready(self) -> None:
        now = self._clock.monotonic()
        while self._waiting and self._waiting[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._waiting)
            if self._waiting_ready_at.get(key) != ready_at:
                continue  # superseded by an earlier add_after of the same key
            del self._waiting_ready_at[key]
            self.add(key)

    async def _wait_for_change(self) -> None:
        """Wait until something is added, or the earliest delayed key becomes ready."""
        if not self._waiting:
            await self._changed.wait()
            return
        delay = self._waiting[0][0] - self._clock.monotonic()
        changed = asyncio.ensure_future(self._changed.wait())
        timer = asyncio.ensure_future(self._clock.sleep(delay))
        try:
            await asyncio.wait((changed, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            timer.cancel()
