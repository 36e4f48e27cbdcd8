"""The latest values of recently used keys, in memory: the store's read cache.

Bounded by the bytes of the values it holds; the least recently used key goes
first.  Correct only because the store that owns it is the single writer and
updates it when, and only when, a write commits.
"""

from __future__ import annotations

from collections import OrderedDict

from skiff.storage.interface import KeyValue


class LatestValues:
    """The latest :class:`KeyValue` of recently used live keys, least recently used
    dropped first once their values exceed ``capacity`` bytes.

    Only the store's write path may :meth:`put` and :meth:`discard`, after its
    transaction committed: that is what keeps every entry current.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._kvs: OrderedDict[str, KeyValue] = OrderedDict()
        self._bytes = 0

    def __contains__(self, key: str) -> bool:
        return key in self._kvs

    def get(self, key: str) -> KeyValue | None:
        kv = self._kvs.get(key)
        if kv is not None:
            self._kvs.move_to_end(key)
        return kv

    def put(self, kv: KeyValue) -> None:
        self.discard(kv.key)
        if len(kv.value) > self.capacity // 10:
            return
        self._kvs[kv.key] = kv
        self._bytes += len(kv.value)
        while self._bytes > self.capacity:
            _, oldest = self._kvs.popitem(last=False)
            self._bytes -= len(oldest.value)

    def discard(self, key: str) -> None:
        kv = self._kvs.pop(key, None)
        if kv is not None:
            self._bytes -= len(kv.value)

    def clear(self) -> None:
        self._kvs.clear()
        self._bytes = 0
