"""Recording core/v1 Events from controllers, without slowing them down.

``kubectl describe`` shows what a controller did through Events
(``SuccessfulCreate  Created pod: web-7d4b9-x2k8q``).  Controllers call
:meth:`EventRecorder.event`, which only queues; one background task (run by
the manager next to the controllers) writes them, a few at a time::

    controller ──event()──▶ spam filter / aggregation (see eventcorrelation.py)
                                 │
                            bounded buffer (drops when full, as client-go does)
                                 │
                 sender ──▶ same event (or same aggregate) seen recently?
                                 yes: PATCH count+1, lastTimestamp, message
                                 no:  POST a new Event named
                                      <object>.<nanoseconds in hex>

Event fields follow client-go's recorder for core/v1 events: ``involvedObject``
(kind, namespace, name, uid, apiVersion, resourceVersion), ``reason``,
``message``, ``type`` (Normal | Warning), ``source.component``,
``firstTimestamp``/``lastTimestamp``, ``count``, ``reportingComponent``.
Failures to record are logged and dropped: events are best-effort.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any, NamedTuple

from ..api.errors import StatusError
from ..api.kinds.meta.cells import format_time
from ..client.clock import Clock, RealClock
from ..client.resources import EVENTS
from ..client.rest import ApiClient, TransportError
from .eventcorrelation import EventCorrelator

Obj = dict[str, Any]
log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"

#: Events waiting to be written; more are dropped (client-go's buffer is 1000 too).
BUFFER = 1000
#: How many distinct recent events are remembered for count deduplication.
CACHE = 4096


class _Pending(NamedTuple):
    involved: Obj
    namespace: str
    type: str
    reason: str
    message: str
    component: str
    nanos: int
    dedup_key: tuple[str, ...]


class EventRecorder:
    """Queues events and writes them from :meth:`run` (see module docstring)."""

    def __init__(self, client: ApiClient, *, clock: Clock | None = None,
                 concurrency: int = 4) -> None:
        self.client = client
        self._clock: Clock = clock or RealClock()
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(BUFFER)
        self._concurrency = concurrency
        # dedup key -> [event name, count]
        self._seen: OrderedDict[tuple[str, ...], list[Any]] = OrderedDict()
        self._correlator = EventCorrelator()
        self.dropped = 0
        self._last_nanos = 0

    def event(self, obj: Obj, type_: str, reason: str, message: str, *, component: str) -> None:
        """Queue an Event about ``obj`` (never blocks, never raises)."""
        meta = obj.get("metadata") or {}
        involved: Obj = {
            "kind": obj.get("kind", ""), "namespace": meta.get("namespace", ""),
            "name": meta.get("name", ""), "uid": meta.get("uid", ""),
            "apiVersion": obj.get("apiVersion", ""),
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        involved = {k: v for k, v in involved.items() if v}
        now = self._clock.time()
        obj_key = (component, involved.get("kind", ""), involved.get("namespace", ""),
                   involved.get("name", ""), involved.get("uid", ""),
                   involved.get("apiVersion", ""), type_)
        if not self._correlator.allow(obj_key, now):
            self.dropped += 1
            return
        aggregate_key = obj_key + (reason,)
        sent = self._correlator.aggregate(aggregate_key, message, now)
        dedup_key = aggregate_key if sent != message else aggregate_key + (message,)
        # Names are <object>.<nanoseconds>: keep the stamps strictly increasing so two
        # events in the same instant never collide.
        nanos = max(int(now * 1e9), self._last_nanos + 1)
        self._last_nanos = nanos
        pending = _Pending(involved, str(meta.get("namespace") or "default"), type_, reason,
                           sent, component, nanos, dedup_key)
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self) -> None:
        """Write queued events until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for _ in range(self._concurrency):
                tg.create_task(self._sender())

    async def _sender(self) -> None:
        while True:
            pending = await self._queue.get()
            try:
                await self._write(pending)
            except (StatusError, TransportError) as e:
                log.info("could not record event %s %s: %s", pending.reason,
                         pending.involved.get("name"), e)
            finally:
                self._queue.task_done()

    async def flush(self) -> None:
        """Wait until every queued event has been written (for tests and shutdown)."""
        await self._queue.join()

    async def _write(self, p: _Pending) -> None:
        key = p.dedup_key
        stamp = format_time(datetime.fromtimestamp(p.nanos / 1e9, timezone.utc))
        seen = self._seen.get(key)
        if seen is not None:
            name, count = seen[0], seen[1] + 1
            seen[1] = count
            self._seen.move_to_end(key)
            try:
                await self.client.patch(EVENTS, name, {"count": count, "lastTimestamp": stamp,
                                                       "message": p.message},
                                        namespace=p.namespace)
                return
            except StatusError as e:
                if e.code != 404:
                    raise
                del self._seen[key]  # the event expired meanwhile: record a fresh one
        name = f"{p.involved.get('name', 'event')}.{p.nanos:x}"
        body: Obj = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": p.namespace},
            "involvedObject": p.involved, "reason": p.reason, "message": p.message,
            "type": p.type, "source": {"component": p.component},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": p.component, "reportingInstance": "",
        }
        await self.client.create(EVENTS, body, namespace=p.namespace)
        self._seen[key] = [name, 1]
        if len(self._seen) > CACHE:
            self._seen.popitem(last=False)
