"""read_line: one line from a pipe on the event loop (uvloop, as skiff runs), its file
descriptor closed exactly once -- a second close would take away whatever another
thread opened under the same number meanwhile."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
import uvloop

from skiff import pipes
from skiff.pipes import read_line


@pytest.fixture
def closes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every os.close, in order."""
    seen: list[int] = []
    real = os.close

    def counting(fd: int) -> None:
        seen.append(fd)
        real(fd)

    monkeypatch.setattr(os, "close", counting)
    yield seen


def run(coroutine_factory):  # type: ignore[no-untyped-def]
    return uvloop.run(coroutine_factory())


def test_the_first_line_then_the_descriptor_is_closed_once(closes: list[int]) -> None:
    read_end, write_end = os.pipe()

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, os.write, write_end, b"ok 4")      # in two writes
        loop.call_later(0.02, os.write, write_end, b"2\nmore after it")
        return await read_line(read_end)

    try:
        assert run(main) == b"ok 42\n"
    finally:
        os.close(write_end)
    assert closes.count(read_end) == 1
    with pytest.raises(OSError):
        os.fstat(read_end)


def test_a_writer_that_closes_first_gives_what_it_wrote(closes: list[int]) -> None:
    for written, expected in ((b"", b""), (b"error no newline", b"error no newline")):
        closes.clear()
        read_end, write_end = os.pipe()
        os.write(write_end, written)
        os.close(write_end)
        assert run(lambda: read_line(read_end)) == expected
        assert closes.count(read_end) == 1


def test_a_cancelled_reader_closes_the_descriptor(closes: list[int]) -> None:
    read_end, write_end = os.pipe()

    async def main() -> None:
        task = asyncio.ensure_future(read_line(read_end))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        run(main)
    finally:
        os.close(write_end)
    assert closes.count(read_end) == 1


def test_an_endless_line_is_cut(closes: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipes, "MAX_LINE", 100)
    read_end, write_end = os.pipe()
    os.write(write_end, b"x" * 300)
    try:
        assert run(lambda: read_line(read_end)) == b"x" * 100
    finally:
        os.close(write_end)
    assert closes.count(read_end) == 1
