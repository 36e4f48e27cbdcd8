"""The watch sink writes the events of one loop iteration as one write, in order.

A store commit publishes its events to every idle watcher in one pass; the sink
collects each watcher's chunks and writes them together when the iteration
ends (one TLS record and one send, not one per event).  Whatever else is
written to the response (the watcher's backlog, bookmarks, the end) comes after
what the sink took.
"""

from __future__ import annotations

import asyncio

import orjson

from skiff.api.kinds import builtin_registry
from skiff.api.selectors import FieldSelector, LabelSelector
from skiff.apiserver.lists import ObjectFilter
from skiff.apiserver.watch import EventEncoder, SocketSink, chunk
from skiff.apiserver.watchcache import CacheEvent


class Transport:
    """What the sink uses of an asyncio transport; records every write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return self.buffered


def event(revision: int, name: str) -> CacheEvent:
    value = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": name, "namespace": "default"}})
    return CacheEvent("ADDED", f"/registry/configmaps/default/{name}", revision, value, None, 0)


def sink(transport: Transport, high_water: int = 1 << 20) -> SocketSink:
    configmaps = builtin_registry().get("", "v1", "configmaps")
    assert configmaps is not None
    everything = ObjectFilter(LabelSelector(), FieldSelector(), {})
    return SocketSink(transport, EventEncoder(configmaps, everything, None), high_water)


def expected(*events: CacheEvent) -> bytes:
    return b"".join(chunk(EventEncoder.line("ADDED", ev.object_json())) for ev in events)


async def test_events_of_one_iteration_are_one_write_in_order() -> None:
    transport = Transport()
    s = sink(transport)
    events = [event(5, "a"), event(6, "b"), event(7, "c")]
    assert all(s(ev) for ev in events)
    assert transport.writes == []                    # nothing until the iteration ends
    await asyncio.sleep(0)
    assert transport.writes == [expected(*events)]
    later = event(8, "d")
    assert s(later)
    await asyncio.sleep(0)
    assert transport.writes == [expected(*events), expected(later)]


async def test_flush_writes_before_anyone_else() -> None:
    transport = Transport()
    s = sink(transport)
    first = event(5, "a")
    s(first)
    s.flush()                                         # e.g. before a bookmark
    transport.write(b"bookmark")
    await asyncio.sleep(0)                           # the scheduled flush finds nothing left
    assert transport.writes == [expected(first), b"bookmark"]


async def test_declines_when_the_client_is_slow_or_the_response_ends() -> None:
    transport = Transport()
    s = sink(transport, high_water=len(expected(event(5, "a"))) - 1)
    assert s(event(5, "a"))
    assert not s(event(6, "b"))                       # collected bytes count towards the limit
    s.close()
    assert transport.writes == [expected(event(5, "a"))]
    assert not s(event(7, "c"))                       # closed: the watcher's task takes over
    transport.closing = True
    assert not sink(transport)(event(8, "d"))
