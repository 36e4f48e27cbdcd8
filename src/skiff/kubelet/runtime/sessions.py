"""Streaming sessions into containers: exec with pipes, exec with a terminal, attach.

All three implement :class:`.interface.Session`::

    PipeSession    runc exec <id> argv…           stdin/stdout/stderr are pipes
    PtySession     runc exec -t                   runc copies between the container's
                                                  terminal and a pty of ours (its stdio);
                                                  one output stream (stdout), resizable
    AttachSession  the container's shim            frames over its attach socket
                                                  (see .shim for the protocol)

Exec'd processes are started through ``runc exec --pid-file``, so closing a session
can SIGKILL exactly the process it started (runc cannot forward SIGKILL).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import struct
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from .interface import Stream

FRAME_STDIN, FRAME_STDOUT, FRAME_STDERR, FRAME_RESIZE, FRAME_CLOSE_STDIN = 0, 1, 2, 3, 4


def _kill_from_pid_file(pid_file: Path | None) -> None:
    if pid_file is None:
        return
    try:
        os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
    except (OSError, ValueError):
        pass   # not started, or already gone


class PipeSession:
    def __init__(self, process: asyncio.subprocess.Process, pid_file: Path | None) -> None:
        self.process = process
        self.pid_file = pid_file

    async def write(self, data: bytes) -> None:
        if self.process.stdin is None:
            return
        self.process.stdin.write(data)
        await self.process.stdin.drain()

    async def close_stdin(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()

    async def output(self) -> AsyncIterator[tuple[Stream, bytes]]:
        readers = {Stream.STDOUT: self.process.stdout, Stream.STDERR: self.process.stderr}
        pending: dict[asyncio.Future[bytes], Stream] = {
            asyncio.ensure_future(reader.read(65536)): stream
            for stream, reader in readers.items() if reader is not None}
        try:
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    stream = pending.pop(future)
                    data = future.result()
                    if data:
                        yield stream, data
                        reader = readers[stream]
                        assert reader is not None
                        pending[asyncio.ensure_future(reader.read(65536))] = stream
        finally:
            for future in pending:
                future.cancel()

    async def resize(self, columns: int, rows: int) -> None:
        return None   # no terminal

    async def wait(self) -> int:
        code = await self.process.wait()
        self._cleanup()
        return code

    async def close(self) -> None:
        if self.process.returncode is None:
            _kill_from_pid_file(self.pid_file)
            await self.process.wait()
        self._cleanup()

    def _cleanup(self) -> None:
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)


class PtySession:
    """An exec with a terminal: ``master`` is our side of the pty runc has as stdio.

    A resize sets the size of that pty and sends runc SIGWINCH; runc applies it to
    the container's terminal (the runtime hands out the session only once runc
    handles signals)."""

    def __init__(self, process: asyncio.subprocess.Process, master: int,
                 pid_file: Path | None) -> None:
        self.process = process
        self.master = master
        self.pid_file = pid_file
        self.loop = asyncio.get_running_loop()
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        os.set_blocking(master, False)
        self.loop.add_reader(master, self._readable)
        self.reading = True

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError as err:
            if err.errno != errno.EIO:
                raise
            data = b""   # EIO: the terminal's last process has exited
        if not data:
            self._stop_reading()
            self.chunks.put_nowait(None)
            return
        self.chunks.put_nowait(data)

    def _stop_reading(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.master)
            self.reading = False

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.master, view)
                view = view[written:]
            except BlockingIOError:
                ready = self.loop.create_future()
                self.loop.add_writer(self.master, ready.set_result, None)
                try:
                    await ready
                finally:
                    self.loop.remove_writer(self.master)

    async def close_stdin(self) -> None:
        await self.write(b"\x04")

    async def output(self) -> AsyncIterator[tuple[Stream, bytes]]:
        while True:
            data = await self.chunks.get()
            if data is None:
                self.chunks.put_nowait(None)   # later readers see the end too
                return
            yield Stream.STDOUT, data

    async def resize(self, columns: int, rows: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        if self.process.returncode is None:
            try:
                self.process.send_signal(signal.SIGWINCH)
            except ProcessLookupError:
                pass

    async def wait(self) -> int:
        code = await self.process.wait()
        return code

    async def close(self) -> None:
        if self.process.returncode is None:
            _kill_from_pid_file(self.pid_file)
            await self.process.wait()
        self._stop_reading()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)


class AttachSession:
    """Attached to a running container's stdio through its shim."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 wait_exit: Callable[[], Awaitable[int]]) -> None:
        self.reader = reader
        self.writer = writer
        self.wait_exit = wait_exit

    async def _send(self, kind: int, payload: bytes) -> None:
        self.writer.write(struct.pack(">BI", kind, len(payload)) + payload)
        await self.writer.drain()

    async def write(self, data: bytes) -> None:
        await self._send(FRAME_STDIN, data)

    async def close_stdin(self) -> None:
        await self._send(FRAME_CLOSE_STDIN, b"")

    async def output(self) -> AsyncIterator[tuple[Stream, bytes]]:
        while True:
            try:
                header = await self.reader.readexactly(5)
                kind, length = struct.unpack(">BI", header)
                payload = await self.reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            yield (Stream.STDOUT if kind == FRAME_STDOUT else Stream.STDERR), payload

    async def resize(self, columns: int, rows: int) -> None:
        await self._send(FRAME_RESIZE, struct.pack(">HH", rows, columns))

    async def wait(self) -> int:
        return await self.wait_exit()

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except ConnectionError:
            pass
