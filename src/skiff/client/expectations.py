"""Expectations: do not act on a cache that has not yet seen your own writes.

A controller that creates 3 pods for a ReplicaSet learns about them only when
its pod informer delivers the ADDED events.  If it reconciled again before
that, the cache would still show too few pods and it would create 3 more.
So before writing, the controller records what it expects to observe, and
skips reconciling that key until the informer has caught up::

    reconcile(key):
        if not expectations.satisfied(key):
            return                          # our earlier writes are still in flight
        ...compute diff from the cache...
        expectations.expect_creations(key, 3)
        for _ in range(3):
            try: await client.create(...)
            except StatusError: expectations.creation_observed(key)   # will never be seen

    pod informer on_add(pod):     expectations.creation_observed(owner_key(pod))
    pod informer on_delete(pod):  expectations.deletion_observed(owner_key(pod), pod uid)

Deletions are tracked by UID, so a pod seen twice (first with a
``deletionTimestamp``, then DELETED) counts once.  Expectations older than
``ttl`` (5 minutes, as in Kubernetes) count as satisfied, so a lost event
cannot wedge a controller forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from .clock import Clock, RealClock

DEFAULT_TTL = 300.0


@dataclass
class _Expectation:
    creations: int
    deletions: set[str] = field(default_factory=set)
    recorded_at: float = 0.0

    def fulfilled(self) -> bool:
        return self.creations <= 0 and not self.deletions


class Expectations:
    """Outstanding creates/deletes per controller key (see module docstring)."""

    def __init__(self, *, clock: Clock | None = None, ttl: float = DEFAULT_TTL) -> None:
        self._clock: Clock = clock or RealClock()
        self._ttl = ttl
        self._by_key: dict[str, _Expectation] = {}

    def expect_creations(self, key: str, count: int) -> None:
        """Replace ``key``'s creation expectation with ``count`` (deletions are kept)."""
        exp = self._by_key.get(key)
        deletions = exp.deletions if exp is not None else set()
        self._by_key[key] = _Expectation(count, deletions, self._clock.monotonic())

    def expect_deletions(self, key: str, uids: Iterable[str]) -> None:
        """Replace ``key``'s deletion expectation with these object UIDs (creations are kept)."""
        exp = self._by_key.get(key)
        creations = exp.creations if exp is not None else 0
        self._by_key[key] = _Expectation(creations, set(uids), self._clock.monotonic())

    def creation_observed(self, key: str) -> None:
        """One expected creation was seen by the informer (or failed and never will be)."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.creations -= 1

    def deletion_observed(self, key: str, uid: str) -> None:
        """The object with ``uid`` was seen deleted (or its delete failed)."""
        exp = self._by_key.get(key)
        if exp is not None:
            exp.deletions.discard(uid)

    def satisfied(self, key: str) -> bool:
        """True when ``key`` may be reconciled: nothing outstanding, or expired."""
        exp = self._by_key.get(key)
        if exp is None or exp.fulfilled():
            return True
        return self._clock.monotonic() - exp.recorded_at > self._ttl

    def pending(self, key: str) -> tuple[int, int]:
        """(creations, deletions) still expected for ``key``."""
        exp = self._by_key.get(key)
        if exp is None:
            return (0, 0)
        return (max(0, exp.creations), len(exp.deletions))

    def forget(self, key: str) -> None:
        """Drop ``key``'s expectations (its controller object was deleted)."""
        self._by_key.pop(key, None)
