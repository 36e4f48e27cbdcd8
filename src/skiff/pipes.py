"""Reading a line from a pipe on the event loop, with the file descriptor closed once.

``loop.connect_read_pipe(protocol, os.fdopen(fd))`` is the textbook way, but under
uvloop (which every skiff process runs on) it closes the descriptor twice: the
transport closes it, then the file object it was handed closes the same number again.
If another thread opened something in between and got that number -- a socket, a
pidfd the loop watches -- the second close takes *that* away: the loop's next
``epoll_ctl`` on it fails and libuv aborts the process (SIGABRT), or a process-exit
watch silently never fires.  Both happened in the node agent under load.

:func:`read_line` owns the descriptor plainly instead: a reader callback on the loop,
``os.read``, then ``remove_reader`` and exactly one ``os.close``.
"""

from __future__ import annotations

import asyncio
import os

#: A line longer than this is cut (nothing skiff reads this way comes close).
MAX_LINE = 64 * 1024


async def read_line(fd: int) -> bytes:
    """The first line written to the pipe ``fd`` (with its newline; what there was if
    the writer closed first, b"" if nothing).  ``fd`` is closed afterwards, also when
    the caller is cancelled."""
    loop = asyncio.get_running_loop()
    data = bytearray()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError as err:
            if not done.done():
                done.set_exception(err)
            return
        data.extend(chunk)
        if (not chunk or b"\n" in chunk or len(data) >= MAX_LINE) and not done.done():
            done.set_result(None)

    try:
        os.set_blocking(fd, False)
        loop.add_reader(fd, readable)
        try:
            await done
        finally:
            loop.remove_reader(fd)
    finally:
        os.close(fd)
    line, newline, _ = bytes(data[:MAX_LINE]).partition(b"\n")
    return line + newline
