"""Keeping events from flooding the API server (client-go's event correlator).

A ReplicaSet creating 1,000 pods would otherwise write 1,000 Events.  Every
event passes three stages before anything is sent::

    spam filter   a token bucket per (source, object, type): 25 events at once,
                  then one more every 5 minutes; the rest are dropped
        │
    aggregation   more than 10 different messages with the same (source, object,
                  type, reason) within 10 minutes: the 11th and later become one
                  event, "(combined from similar events): <latest message>"
        │
    dedup         an identical event seen before: PATCH its count and
                  lastTimestamp instead of creating another

The numbers are client-go's defaults.  Everything here is pure bookkeeping on
an injectable clock; :mod:`.events` does the writing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

SPAM_BURST = 25
SPAM_QPS = 1 / 300
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL = 600.0
CACHE_SIZE = 4096
COMBINED_PREFIX = "(combined from similar events): "

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small bounded map that forgets the least recently used entry."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self._size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class _Aggregate:
    messages: set[str] = field(default_factory=set)
    last: float = 0.0


class EventCorrelator:
    """Decides, per event, whether to drop it and under which message/key to send it."""

    def __init__(self, *, burst: int = SPAM_BURST, qps: float = SPAM_QPS,
                 max_events: int = AGGREGATE_MAX_EVENTS,
                 interval: float = AGGREGATE_INTERVAL) -> None:
        self._burst = burst
        self._qps = qps
        self._max_events = max_events
        self._interval = interval
        self._buckets: _Lru[tuple[str, ...], _Bucket] = _Lru()
        self._aggregates: _Lru[tuple[str, ...], _Aggregate] = _Lru()

    def allow(self, spam_key: tuple[str, ...], now: float) -> bool:
        """The spam filter: take a token from this object's bucket, if there is one."""
        bucket = self._buckets.get(spam_key)
        if bucket is None:
            bucket = _Bucket(float(self._burst), now)
            self._buckets.put(spam_key, bucket)
        bucket.tokens = min(float(self._burst), bucket.tokens + (now - bucket.at) * self._qps)
        bucket.at = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def aggregate(self, aggregate_key: tuple[str, ...], message: str, now: float) -> str:
        """The message to send: ``message``, or the combined one once too many differ."""
        record = self._aggregates.get(aggregate_key)
        if record is None or now - record.last > self._interval:
            record = _Aggregate()
            self._aggregates.put(aggregate_key, record)
        record.last = now
        record.messages.add(message)
        if len(record.messages) <= self._max_events:
            return message
        return COMBINED_PREFIX + message
