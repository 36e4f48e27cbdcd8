"""exec and attach: a runtime session joined to the client's streams, whatever carries them.

The client (``kubectl exec``/``attach``, the Python client) sees five streams::

    stdin  ──▶ session.write / close_stdin       resize ──▶ session.resize(cols, rows)
    stdout ◀── session output (and all of it with a tty)
    stderr ◀── session output (never with a tty)
    error  ◀── one metav1.Status when it is over: Success, or NonZeroExitCode with the
               exit code as the cause (kubectl exits with it), or an internal error

Two carriers implement :class:`ClientStreams`: websocket channels
(``v5.channel.k8s.io``/``v4``, :mod:`.channels`) and SPDY streams (:class:`SpdyStreams`,
kubectl's fallback, negotiated as ``v4.channel.k8s.io``).  :func:`run_session` is
the same for both::

    pump stdin ─┐
    pump resize ├─ until the output ends ──▶ exit code ──▶ status on "error" ──▶ close
    pump output ┘   or the client goes away ──▶ session.close() (an exec'd process is killed)
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..runtime.interface import Session, Stream
from .spdy_connection import SpdyConnection, SpdyStream, StreamClosed

Status = dict[str, Any]

#: SPDY stream protocols this server speaks (X-Stream-Protocol-Version), best first.
SPDY_PROTOCOLS = ("v4.channel.k8s.io",)
STREAM_TYPE = "streamtype"
STREAM_CREATION_TIMEOUT = 30.0


def _flag(query: Mapping[str, str], *names: str) -> bool:
    for name in names:
        if query.get(name, "").lower() in ("1", "t", "true"):
            return True
    return False


@dataclass(frozen=True)
class StreamOptions:
    """Which streams the client asked for (kubelet query names: input/output/error/tty)."""

    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "StreamOptions":
        tty = _flag(query, "tty")
        return cls(stdin=_flag(query, "input", "stdin"), stdout=_flag(query, "output", "stdout"),
                   stderr=_flag(query, "error", "stderr") and not tty, tty=tty)

    def stream_types(self) -> set[str]:
        """The SPDY streams a client with these options opens."""
        wanted = {"error"}
        for name, on in (("stdin", self.stdin), ("stdout", self.stdout), ("stderr", self.stderr),
                         ("resize", self.tty)):
            if on:
                wanted.add(name)
        return wanted


# -- statuses written on the error stream -------------------------------------------------


def success_status() -> Status:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int, command: list[str]) -> Status:
    """Success for 0; otherwise the NonZeroExitCode failure kubectl turns into its exit code."""
    if code < 0:
        code = 128 - code          # killed by a signal: the shell's convention
    code &= 0xFF
    if code == 0:
        return success_status()
    return {
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
                   f"{shlex.join(command)}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def internal_status(message: str) -> Status:
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {message}",
            "reason": "InternalError", "details": {"causes": [{"message": message}]}, "code": 500}


# -- terminal sizes -----------------------------------------------------------------------


class ResizeDecoder:
    """The resize stream is a sequence of JSON objects ``{"Width":80,"Height":24}``."""

    def __init__(self) -> None:
        self._text = ""
        self._json = json.JSONDecoder()

    def feed(self, data: bytes) -> list[tuple[int, int]]:
        self._text += data.decode("utf-8", "replace")
        sizes: list[tuple[int, int]] = []
        while True:
            text = self._text.lstrip()
            if not text:
                self._text = ""
                return sizes
            try:
                obj, end = self._json.raw_decode(text)
            except ValueError:
                self._text = text
                return sizes
            self._text = text[end:]
            if isinstance(obj, dict):
                width, height = int(obj.get("Width") or 0), int(obj.get("Height") or 0)
                if width > 0 and height > 0:
                    sizes.append((width, height))


# -- the bridge ---------------------------------------------------------------------------


class ClientStreams(Protocol):
    """The client's end of an exec or attach."""

    async def read_stdin(self) -> bytes: ...                   # b"" at end of input
    async def next_resize(self) -> tuple[int, int] | None: ...  # (columns, rows); None: no more
    async def send(self, stream: Stream, data: bytes) -> None: ...
    async def finish(self, status: Status) -> None: ...        # write the status, close
    async def wait_gone(self) -> None: ...                      # the client disconnected


async def run_session(session: Session, client: ClientStreams, options: StreamOptions,
                      final_status: Callable[[int], Status]) -> None:
    """Join ``session`` to ``client`` until it ends (see the module docstring)."""

    async def pump_stdin() -> None:
        try:
            while chunk := await client.read_stdin():
                await session.write(chunk)
            await session.close_stdin()
        except (OSError, RuntimeError):
            pass    # the process stopped reading (it exited)

    async def pump_resize() -> None:
        try:
            while (size := await client.next_resize()) is not None:
                await session.resize(*size)
        except (OSError, RuntimeError):
            pass

    async def pump_output() -> int:
        async for stream, data in session.output():
            if options.tty or stream is Stream.STDOUT:
                if options.stdout:
                    await client.send(Stream.STDOUT, data)
            elif options.stderr:
                await client.send(Stream.STDERR, data)
        return await session.wait()

    helpers = []
    if options.stdin:
        helpers.append(asyncio.ensure_future(pump_stdin()))
    if options.tty:
        helpers.append(asyncio.ensure_future(pump_resize()))
    output = asyncio.ensure_future(pump_output())
    gone = asyncio.ensure_future(client.wait_gone())
    try:
        await asyncio.wait({output, gone}, return_when=asyncio.FIRST_COMPLETED)
        if output.done():
            try:
                status = final_status(output.result())
                await session.close()
                await client.finish(status)
            except (StreamClosed, ConnectionError):
                pass        # the client left while we were still sending
    finally:
        for task in (*helpers, output, gone):
            task.cancel()
        await asyncio.gather(*helpers, output, gone, return_exceptions=True)
        await session.close()


# -- SPDY carrier -------------------------------------------------------------------------


class SpdyStreams:
    """An exec/attach client over SPDY: one SPDY stream per kind (``streamtype`` header)."""

    def __init__(self, connection: SpdyConnection, streams: dict[str, SpdyStream]) -> None:
        self.connection = connection
        self.streams = streams
        self._resizes = ResizeDecoder()
        self._pending: list[tuple[int, int]] = []

    @classmethod
    async def accept(cls, connection: SpdyConnection, options: StreamOptions,
                     timeout: float = STREAM_CREATION_TIMEOUT) -> "SpdyStreams":
        """Wait until the client has opened every stream its options imply."""
        wanted = options.stream_types()
        streams: dict[str, SpdyStream] = {}

        async def collect() -> None:
            while not wanted <= streams.keys():
                stream = await connection.accept()
                if stream is None:
                    raise ConnectionError("the client went away before opening its streams")
                kind = stream.header(STREAM_TYPE)
                if kind not in wanted or kind in streams:
                    await stream.reset()
                    continue
                streams[kind] = stream

        await asyncio.wait_for(collect(), timeout)
        return cls(connection, streams)

    async def read_stdin(self) -> bytes:
        stream = self.streams.get("stdin")
        return await stream.read() if stream is not None else b""

    async def next_resize(self) -> tuple[int, int] | None:
        stream = self.streams.get("resize")
        while stream is not None and not self._pending:
            data = await stream.read()
            if not data:
                return None
            self._pending.extend(self._resizes.feed(data))
        return self._pending.pop(0) if self._pending else None

    async def send(self, stream: Stream, data: bytes) -> None:
        target = self.streams.get(stream.value)
        if target is not None:
            await target.write(data)

    async def finish(self, status: Status) -> None:
        for name in ("stdout", "stderr"):
            if name in self.streams:
                await self.streams[name].close()
        error = self.streams["error"]
        await error.write(json.dumps(status).encode())
        await error.close()

    async def wait_gone(self) -> None:
        await self.connection.ended.wait()
