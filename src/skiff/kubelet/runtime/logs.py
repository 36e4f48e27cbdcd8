"""Reading container logs in the CRI log format (what ``kubectl logs`` shows).

The shim writes one record per line::

    2024-05-01T12:00:00.123456789Z stdout F hello world
    <RFC3339Nano time>             <stream> <tag> <content>

``F`` ends a line; ``P`` is a partial piece of a longer line, continued by the next
record of the same stream.  When the file reaches its size limit it is rotated to
``<log>.1`` (and older ones to ``.2``, ``.3`` …); readers go oldest first.

:func:`read_log` yields whole lines (partials joined), optionally only the last
``tail_lines`` and only those at or after ``since``; with ``follow`` it then waits
(inotify on the log's directory, no polling) for more until ``stop`` is set —
the runtime sets it when the container exits — and the file is drained.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

IN_MODIFY = 0x2
IN_CLOSE_WRITE = 0x8
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000


@dataclass(frozen=True)
class LogRecord:
    time: str           # RFC3339Nano, as written
    stream: str         # "stdout" or "stderr"
    partial: bool
    content: bytes

    @property
    def timestamp(self) -> datetime:
        return parse_time(self.time)


def parse_time(text: str) -> datetime:
    """RFC3339 with up to nanoseconds -> aware datetime (microsecond precision)."""
    main, _, fraction = text.rstrip("Z").partition(".")
    micro = int((fraction + "000000")[:6]) if fraction else 0
    if len(main) == 19 and main[10] == "T":     # the usual shape: no strptime (slow)
        return datetime(int(main[0:4]), int(main[5:7]), int(main[8:10]), int(main[11:13]),
                        int(main[14:16]), int(main[17:19]), micro, tzinfo=timezone.utc)
    return datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(microsecond=micro,
                                                                  tzinfo=timezone.utc)


def parse_record(line: bytes) -> LogRecord | None:
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    return LogRecord(time=parts[0].decode(), stream=parts[1].decode(), partial=parts[2] == b"P",
                     content=parts[3] if len(parts) > 3 else b"")


def log_files(path: Path) -> list[Path]:
    """The log and its rotated predecessors, oldest first."""
    rotated = []
    index = 1
    while Path(f"{path}.{index}").exists():
        rotated.append(Path(f"{path}.{index}"))
        index += 1
    return list(reversed(rotated)) + ([path] if path.exists() else [])


class _Joiner:
    """Joins partial records into lines, per stream."""

    def __init__(self) -> None:
        self.pending: dict[str, list[LogRecord]] = {}

    def add(self, record: LogRecord) -> LogRecord | None:
        pieces = self.pending.setdefault(record.stream, [])
        pieces.append(record)
        if record.partial:
            return None
        del self.pending[record.stream]
        if len(pieces) == 1:
            return record
        return LogRecord(time=pieces[0].time, stream=record.stream, partial=False,
                         content=b"".join(p.content for p in pieces))


def _read_existing(path: Path) -> tuple[list[LogRecord], int, int]:
    """All whole lines written so far; (lines, offset reached in the current file, its inode).

    A rotation while reading renames the files under us (``log`` -> ``log.1`` -> ...):
    a file that vanished between listing and opening means "start over", so no line
    is lost or read twice.
    """
    while True:
        try:
            return _read_files(path)
        except FileNotFoundError:
            continue


def _read_files(path: Path) -> tuple[list[LogRecord], int, int]:
    joiner = _Joiner()
    lines: list[LogRecord] = []
    offset, inode = 0, 0
    for file in log_files(path):
        with open(file, "rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break   # a record being written; the follower picks it up
                record = parse_record(raw)
                if record is not None and (line := joiner.add(record)) is not None:
                    lines.append(line)
                if file == path:
                    offset += len(raw)
            if file == path:
                inode = os.fstat(handle.fileno()).st_ino
    return lines, offset, inode


async def read_log(path: Path, *, follow: bool = False, tail_lines: int | None = None,
                   since: datetime | None = None,
                   stop: asyncio.Event | None = None) -> AsyncIterator[LogRecord]:
    """Whole log lines of a container, oldest first (see the module docstring)."""
    lines, offset, inode = await asyncio.to_thread(_read_existing, path)
    if since is not None:
        lines = [line for line in lines if line.timestamp >= since]
    if tail_lines is not None:
        lines = lines[-tail_lines:] if tail_lines > 0 else []
    for line in lines:
        yield line
    if not follow:
        return
    watch = DirectoryWatch(path.parent)
    joiner = _Joiner()
    buffer = b""
    try:
        while True:
            stopping = stop is not None and stop.is_set()
            chunk, offset, inode, rotated = await asyncio.to_thread(_read_more, path, offset, inode)
            if rotated:
                buffer = b""
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for raw in complete:
                record = parse_record(raw)
                joined = joiner.add(record) if record is not None else None
                if joined is not None and (since is None or joined.timestamp >= since):
                    yield joined
            if chunk:
                continue
            if stopping:
                return
            await watch.changed(stop)
    finally:
        watch.close()


async def container_log(path: Path, exited: Callable[[], Awaitable[object]], *, follow: bool = False,
                        tail_lines: int | None = None,
                        since: datetime | None = None) -> AsyncIterator[LogRecord]:
    """A container's log lines; ``follow`` ends once ``exited()`` returns and all is read."""
    stop = asyncio.Event()
    waiter: asyncio.Future[object] | None = None
    if follow:
        waiter = asyncio.ensure_future(exited())
        waiter.add_done_callback(lambda _: stop.set())
    try:
        async for record in read_log(path, follow=follow, tail_lines=tail_lines, since=since, stop=stop):
            yield record
    finally:
        if waiter is not None:
            waiter.cancel()


def _read_more(path: Path, offset: int, inode: int) -> tuple[bytes, int, int, bool]:
    """New bytes of the log since ``offset``; a new inode means it was rotated."""
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return b"", offset, inode, False
    with handle:
        current = os.fstat(handle.fileno()).st_ino
        rotated = current != inode and inode != 0
        start = 0 if rotated or current != inode else offset
        handle.seek(start)
        data = handle.read(1 << 20)
        return data, start + len(data), current, rotated


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


class DirectoryWatch:
    """Wakes a waiter whenever something in a directory is written or created."""

    def __init__(self, directory: Path) -> None:
        self.fd = _libc().inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE
        if _libc().inotify_add_watch(self.fd, os.fsencode(directory), mask) < 0:
            err = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(err, f"inotify_add_watch {directory}")
        self.event = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            while os.read(self.fd, 4096):
                pass
        except BlockingIOError:
            pass
        self.event.set()

    async def changed(self, stop: asyncio.Event | None,
                      also: "asyncio.Future[Any] | None" = None) -> None:
        """Until something changed in the directory (or ``stop`` is set, or ``also`` done)."""
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self.event.wait())}
        if stop is not None:
            waiters.add(asyncio.ensure_future(stop.wait()))
        if also is not None:
            waiters.add(also)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                if waiter is not also:
                    waiter.cancel()
        self.event.clear()

    def close(self) -> None:
        self.loop.remove_reader(self.fd)
        os.close(self.fd)
