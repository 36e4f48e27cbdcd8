"""``kubectl logs`` on the node: CRI log records -> the text the user sees.

The runtime reads the container's CRI log (rotated files included), joins partial
lines and applies ``tailLines``/``since``; this module adds what the kubelet does
on top::

    records ──▶ "<content>\\n"          (the stream and F/P tags dropped)
            ──▶ "<time> <content>\\n"   with timestamps=true (RFC3339Nano, trailing
                                         zeros trimmed, as Go prints it)
            ──▶ cut at limitBytes        (counting everything written, prefixes too)

Options arrive as the query of ``/containerLogs/<ns>/<pod>/<container>`` with the
names of ``PodLogOptions`` (follow, previous, timestamps, tailLines, sinceSeconds,
sinceTime, limitBytes); :func:`validate` reports what kube-apiserver rejects.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..runtime.logs import LogRecord

_TRUE = ("1", "t", "true")


def _bool(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in _TRUE


def _int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name, "")
    if raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}: Invalid value: {raw!r}: must be an integer") from None


def parse_rfc3339(text: str) -> datetime:
    """RFC 3339 (``Z`` or an offset, optional fraction) -> an aware datetime."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    main, dot, rest = value.partition(".")
    if dot:   # Python accepts at most 6 fractional digits: trim nanoseconds
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[:min(digits, 6)] + rest[digits:]
        value = f"{main}.{rest}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return parsed.astimezone(timezone.utc)


@dataclass(frozen=True)
class LogOptions:
    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: datetime | None = None
    limit_bytes: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "LogOptions":
        """Parse (raises ValueError for values that are not numbers/times)."""
        since_time = None
        if query.get("sinceTime"):
            try:
                since_time = parse_rfc3339(query["sinceTime"])
            except ValueError:
                raise ValueError(f"sinceTime: Invalid value: {query['sinceTime']!r}: "
                                 f"must be an RFC 3339 time") from None
        return cls(follow=_bool(query, "follow"), previous=_bool(query, "previous"),
                   timestamps=_bool(query, "timestamps"), tail_lines=_int(query, "tailLines"),
                   since_seconds=_int(query, "sinceSeconds"), since_time=since_time,
                   limit_bytes=_int(query, "limitBytes"))

    def since(self, now: datetime) -> datetime | None:
        if self.since_seconds is not None:
            return now - timedelta(seconds=self.since_seconds)
        return self.since_time


def validate(options: LogOptions) -> list[str]:
    """Field errors as kube-apiserver words them (``field: message``)."""
    errors = []
    if options.tail_lines is not None and options.tail_lines < 0:
        errors.append(f"tailLines: Invalid value: {options.tail_lines}: "
                      f"must be greater than or equal to 0")
    if options.limit_bytes is not None and options.limit_bytes < 1:
        errors.append(f"limitBytes: Invalid value: {options.limit_bytes}: must be greater than 0")
    if options.since_seconds is not None and options.since_time is not None:
        errors.append("sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` "
                      "may be specified")
    elif options.since_seconds is not None and options.since_seconds < 1:
        errors.append(f"sinceSeconds: Invalid value: {options.since_seconds}: "
                      f"must be greater than 0")
    return errors


def rfc3339_nano(text: str) -> str:
    """A CRI timestamp as Go's RFC3339Nano prints it: fraction without trailing zeros."""
    main, dot, rest = text.partition(".")
    if not dot:
        return text
    digits = rest.rstrip("Zz")
    zone = rest[len(digits):]
    digits = digits.rstrip("0")
    return f"{main}.{digits}{zone}" if digits else f"{main}{zone}"


def format_record(record: LogRecord, timestamps: bool) -> bytes:
    line = record.content + b"\n"
    if timestamps:
        return rfc3339_nano(record.time).encode() + b" " + line
    return line


async def render(records: AsyncIterator[LogRecord], options: LogOptions) -> AsyncIterator[bytes]:
    """The response body, chunk by chunk (honours ``timestamps`` and ``limitBytes``)."""
    left = options.limit_bytes
    try:
        async for record in records:
            chunk = format_record(record, options.timestamps)
            if left is not None:
                if len(chunk) >= left:
                    yield chunk[:left]
                    return
                left -= len(chunk)
            yield chunk
    finally:
        closer = getattr(records, "aclose", None)
        if closer is not None:
            await closer()


async def copy_while_connected(chunks: AsyncIterator[bytes], write: Callable[[bytes], Awaitable[None]],
                               connected: Callable[[], bool], idle_check: float = 5.0) -> None:
    """Write ``chunks`` as they come; stop early once ``connected()`` turns false.

    A followed log can be silent for hours; the client may leave meanwhile, which
    only shows when something is written, so the connection is also checked every
    ``idle_check`` seconds of silence."""
    iterator = chunks.__aiter__()
    pending: asyncio.Future[bytes] = asyncio.ensure_future(iterator.__anext__())
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=idle_check)
            if not done:
                if not connected():
                    return
                continue
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                return
            await write(chunk)
            pending = asyncio.ensure_future(iterator.__anext__())
    finally:
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
        closer = getattr(iterator, "aclose", None)
        if closer is not None:
            await closer()
