"""WATCH over HTTP: a chunked stream of newline-delimited JSON events.

::

    GET .../pods?watch=true&resourceVersion=R&allowWatchBookmarks=true&timeoutSeconds=N

    200, Transfer-Encoding: chunked
    {"type":"ADDED","object":{...}}\\n
    {"type":"MODIFIED","object":{...}}\\n
    {"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"42"}}}\\n
    ...                                   until timeoutSeconds, or the client leaves

Start: ``resourceVersion`` unset or ``"0"`` -> synthetic ADDED events for the
current state, then changes after it; ``R`` -> every change after R (replayed
from the watch cache window, else from the store); R older than the compacted
history -> one ERROR event carrying a 410 Expired Status.

Selectors are applied per event as Kubernetes does: an update that moves an
object into the selection is sent as ADDED, out of it as DELETED (with the
previous state), so a client's view stays exact.  With the Table Accept
(``kubectl get -w``) each object is a one-row Table, column definitions on
the first only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import orjson
from aiohttp import web

from ..api.errors import bad_request, expired
from ..api.resource import ResourceInfo
from ..api.selectors import FieldSelector, FieldTerm
from ..storage.interface import Compacted, WatchOverflow
from .context import ServerContext
from .lists import ObjectFilter, parse_filter, parse_revision
from .negotiation import parse_accept, query_flag
from .objects import collection_prefix, decode
from .tables import include_object_mode, table
from .watchcache import CacheEvent, Subscription, direct_subscription

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Transform = Callable[[Obj], Obj]

DEFAULT_TIMEOUT = 1800.0  # kube-apiserver's minRequestTimeout
IDLE_CHECK = 5.0  # seconds between checks that the client is still there
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _timeout(query: Any) -> float:
    text = query.get("timeoutSeconds", "")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        return max(0.0, float(int(text)))
    except ValueError:
        raise bad_request(f'timeoutSeconds: Invalid value: "{text}": must be an integer') from None


class EventEncoder:
    """Turns cache events into wire lines for one watcher (selectors, Table or plain)."""

    def __init__(self, info: ResourceInfo, flt: ObjectFilter, table_include: str | None,
                 transform: Transform | None = None) -> None:
        self.info = info
        self.filter = flt
        self.table_include = table_include
        self.transform = transform
        self.first = True
        # Watchers with the same selectors and plain encoding share each event's line:
        # with 1,000 watchers on one object, the selector runs once per event, not 1,000
        # times.  The key is one string, so its hash is computed once, not per lookup.
        self.memo_key: str | None = None
        if table_include is None:
            self.memo_key = f"{info.group}/{info.version}/{info.plural}?{flt.label}?{flt.field.terms!r}"

    def event_line(self, ev: CacheEvent) -> bytes | None:
        key = self.memo_key
        if key is None:
            return self._event_line(ev)
        lines = ev.lines
        if key in lines:
            return lines[key]
        line = lines[key] = self._event_line(ev)
        return line

    def event_chunk(self, ev: CacheEvent) -> bytes | None:
        """:meth:`event_line` framed as one HTTP/1.1 chunk, shared the same way."""
        key = self.memo_key
        if key is None:
            line = self._event_line(ev)
            return None if line is None else chunk(line)
        chunks = ev.chunks
        if key in chunks:
            return chunks[key]
        line = self.event_line(ev)
        framed = chunks[key] = None if line is None else chunk(line)
        return framed

    def _event_line(self, ev: CacheEvent) -> bytes | None:
        flt, t = self.filter, self.transform
        kind = ev.type
        current = t(ev.obj()) if t else None  # served form, when it differs from the stored one
        obj = None
        if not flt.everything:
            now = current if current is not None else ev.obj()
            now_in = flt.matches(now)
            key = self.memo_key
            if key is not None and kind != "DELETED":
                ev.verdicts[key] = now_in  # for the next event of this object (see watchcache)
            if kind != "MODIFIED":
                if not now_in:
                    return None
            else:
                known = ev.prev_verdicts
                was_in = known.get(key) if known is not None and key is not None else None
                prev: Obj | None = None
                if was_in is None:  # never checked while the cache had it: decode it
                    prev = self._before(ev)
                    was_in = prev is not None and flt.matches(prev)
                if now_in and not was_in:
                    kind = "ADDED"
                elif was_in and not now_in:
                    kind, obj = "DELETED", prev if prev is not None else self._before(ev)
                elif not now_in:
                    return None
        if obj is None:
            obj = current
        if self.table_include is not None:
            return self.line(kind, self._table(obj if obj is not None else ev.obj()))
        if obj is not None:
            return self.line(kind, orjson.dumps(obj))
        return self.line(kind, ev.object_json())

    def _before(self, ev: CacheEvent) -> Obj | None:
        """The state before ``ev``, served form."""
        prev = ev.prev()
        if prev is not None and self.transform:
            prev = self.transform(prev)
        return prev

    def object_line(self, kind: str, obj: Obj) -> bytes:
        if self.table_include is not None:
            return self.line(kind, self._table(obj))
        return self.line(kind, orjson.dumps(obj))

    def _table(self, obj: Obj) -> bytes:
        first, self.first = self.first, False
        assert self.table_include is not None
        return orjson.dumps(table(self.info, [obj], self.table_include,
                                  {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                                  with_columns=first))

    @staticmethod
    def line(kind: str, payload: bytes) -> bytes:
        return b'{"type":"%s","object":%s}\n' % (kind.encode(), payload)

    def bookmark(self, revision: int, initial_end: bool = False) -> bytes:
        meta: Obj = {"resourceVersion": str(revision)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        return self.line("BOOKMARK", orjson.dumps({"kind": self.info.kind, "apiVersion": self.info.api_version,
                                                   "metadata": meta}))


class SocketSink:
    """Writes events as complete HTTP/1.1 chunks straight into the transport.

    Used once the response headers and initial events are out; aiohttp's own
    writer (chunked, uncompressed) keeps working alongside for bookmarks and
    for the backlog, because every write here is one whole chunk.
    """

    def __init__(self, transport: Any, encoder: EventEncoder, high_water: int = 1 << 20) -> None:
        self.transport = transport
        self.encoder = encoder
        self.high_water = high_water

    def __call__(self, ev: CacheEvent) -> bool:
        t = self.transport
        if t.is_closing() or t.get_write_buffer_size() > self.high_water:
            return False  # let the watcher's task handle back-pressure or the end
        framed = self.encoder.event_chunk(ev)
        if framed is not None:
            t.write(framed)
        return True


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of a chunked HTTP/1.1 body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def _with_name(flt: ObjectFilter, name: str) -> ObjectFilter:
    terms = flt.field.terms + (FieldTerm("metadata.name", name),)
    return ObjectFilter(flt.label, FieldSelector(terms), flt.getters)


def _subscribe(ctx: ServerContext, prefix: str, after: int, limit: int) -> Subscription:
    """Events after ``after``: from the watch cache, else the store; Compacted when too old.

    The store's compaction decides what is too old even when the cache window still
    holds the events, so clients see one consistent history.
    """
    compacted = ctx.backend.compacted_revision
    if after < compacted:
        raise Compacted(after, compacted)
    cache = ctx.watch_cache
    if cache is not None:
        sub = cache.subscribe(prefix, after)
        if sub is not None:
            return sub
        direct = direct_subscription(ctx.backend, prefix, after, limit)
        cache.track(direct)  # ended with the others when the server stops
        return direct
    return direct_subscription(ctx.backend, prefix, after, limit)


async def serve_watch(ctx: ServerContext, request: web.Request, info: ResourceInfo,
                      namespace: str, name: str, *, storage: ResourceInfo | None = None,
                      transform: Transform | None = None) -> web.StreamResponse:
    """Stream ``info``'s changes; objects stored as ``storage`` are shown through ``transform``."""
    query = request.query
    flt = parse_filter(info, query)
    if name:
        flt = _with_name(flt, name)
    rv = query.get("resourceVersion", "")
    start = parse_revision(rv) if rv else 0
    bookmarks = query_flag(query, "allowWatchBookmarks")
    send_initial = query_flag(query, "sendInitialEvents")
    timeout = _timeout(query)
    accept = parse_accept(request.headers.get("Accept", ""))
    encoder = EventEncoder(info, flt, include_object_mode(query) if accept.table else None, transform)
    prefix = collection_prefix(storage or info, namespace)

    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    sub: Subscription | None = None
    try:
        initial: list[bytes] = []
        if start == 0 or send_initial:
            r = await ctx.backend.range(prefix)
            start = r.revision
            sub = _subscribe(ctx, prefix, start, _queue_limit(ctx))
            for kv in r.kvs:
                obj = transform(decode(kv)) if transform else decode(kv)
                if flt.matches(obj):
                    initial.append(encoder.object_line("ADDED", obj))
        else:
            try:
                sub = _subscribe(ctx, prefix, start, _queue_limit(ctx))
            except Compacted as exc:
                await _write_expired(resp, encoder, exc)
                return resp
        if send_initial and bookmarks:
            initial.append(encoder.bookmark(start, initial_end=True))
        if initial:
            await resp.write(b"".join(initial))
        transport = request.transport
        if transport is not None and resp.chunked and not resp.compression:
            sub.sink = SocketSink(transport, encoder)
        await _stream(ctx, request, resp, encoder, sub, timeout, bookmarks)
    except ConnectionResetError:
        pass  # the client went away
    finally:
        if sub is not None:
            await sub.close()
    return resp


def _queue_limit(ctx: ServerContext) -> int:
    return ctx.watch_cache.queue_limit if ctx.watch_cache is not None else 10000


async def _write_expired(resp: web.StreamResponse, encoder: EventEncoder, exc: Compacted) -> None:
    status = expired(f"too old resource version: {exc.requested} ({exc.compacted})").to_status()
    await resp.write(encoder.line("ERROR", orjson.dumps(status)))


async def _stream(ctx: ServerContext, request: web.Request, resp: web.StreamResponse,
                  encoder: EventEncoder, sub: Subscription, timeout: float, bookmarks: bool) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    interval = ctx.bookmark_interval
    next_bookmark = loop.time() + interval
    while True:
        now = loop.time()
        if now >= deadline:
            return
        wait = min(deadline - now, IDLE_CHECK)
        if bookmarks:
            wait = min(wait, max(0.0, next_bookmark - now))
        await sub.wait(wait)
        events = sub.drain()
        if events:
            lines = [line for line in map(encoder.event_line, events) if line is not None]
            if lines:
                await resp.write(b"".join(lines))
        if sub.closed:
            if isinstance(sub.error, Compacted):
                await _write_expired(resp, encoder, sub.error)
            elif isinstance(sub.error, WatchOverflow):
                log.info("ending a watch that fell %d events behind", sub.limit)
            return
        if bookmarks and loop.time() >= next_bookmark and not sub.events:
            await resp.write(encoder.bookmark(sub.progress()))
            next_bookmark = loop.time() + interval
        transport = request.transport
        if transport is None or transport.is_closing():
            return
