"""exec (pipes and terminal) and attach with real runc."""

from __future__ import annotations

import asyncio

import pytest
from runtime_support import SpecFactory, start

from skiff.kubelet.runtime.interface import ContainerState, InvalidState, Stream
from skiff.kubelet.runtime.runc import RuncRuntime


async def test_exec_ps_sees_only_the_container_processes(runtime: RuncRuntime, sandbox: str,
                                                         spec: SpecFactory) -> None:
    container_id = await start(runtime, spec(sandbox, "sleep", "1000"))
    result = await runtime.exec_sync(container_id, ["ps", "-o", "pid,args"])
    assert result.exit_code == 0 and not result.timed_out
    rows = [line.split(None, 1) for line in result.stdout.decode().splitlines()[1:]]
    assert rows == [["1", "sleep 1000"], [rows[1][0], "ps -o pid,args"]]


async def test_exec_with_stdin_and_exit_code(runtime: RuncRuntime, sandbox: str,
                                             spec: SpecFactory) -> None:
    container_id = await start(runtime, spec(sandbox, "sleep", "1000"))
    echoed = await runtime.exec_sync(container_id, ["sh", "-c", "tr a-z A-Z; echo done >&2; exit 4"],
                                     input=b"hello stdin\n")
    assert (echoed.exit_code, echoed.stdout, echoed.stderr) == (4, b"HELLO STDIN\n", b"done\n")


async def test_exec_timeout_kills_the_process(runtime: RuncRuntime, sandbox: str,
                                              spec: SpecFactory) -> None:
    container_id = await start(runtime, spec(sandbox, "sleep", "1000"))
    result = await runtime.exec_sync(container_id, ["sleep", "77"], timeout=0.3)
    assert result.timed_out
    listing = await runtime.exec_sync(container_id, ["ps", "-o", "args"])
    assert b"sleep 77" not in listing.stdout


async def test_exec_streams_stdout_and_stderr_separately(runtime: RuncRuntime, sandbox: str,
                                                         spec: SpecFactory) -> None:
    container_id = await start(runtime, spec(sandbox, "sleep", "1000"))
    session = await runtime.exec(container_id, ["sh", "-c", "read x; echo out $x; echo err $x >&2"],
                                 stdin=True)
    await session.write(b"42\n")
    await session.close_stdin()
    got: dict[Stream, bytes] = {Stream.STDOUT: b"", Stream.STDERR: b""}
    async for stream, data in session.output():
        got[stream] += data
    assert await session.wait() == 0
    assert got == {Stream.STDOUT: b"out 42\n", Stream.STDERR: b"err 42\n"}


async def test_exec_with_a_terminal_and_resize(runtime: RuncRuntime, sandbox: str,
                                               spec: SpecFactory) -> None:
    container_id = await start(runtime, spec(sandbox, "sleep", "1000"))
    session = await runtime.exec(container_id, ["sh"], stdin=True, tty=True)
    try:
        await session.resize(columns=123, rows=45)
        await session.write(b"tty; stty size; echo $((6 * 7)); exit 3\n")
        output = b""
        async for _, data in session.output():
            output += data
        assert await session.wait() == 3
    finally:
        await session.close()
    text = output.decode().replace("\r", "")
    assert "/dev/pts/0\n45 123\n42\n" in text


async def test_attach_to_a_container_with_stdin(runtime: RuncRuntime, sandbox: str,
                                                spec: SpecFactory) -> None:
    container_id = await start(runtime, spec(
        sandbox, "sh", "-c", "while read line; do echo got $line; done; echo bye",
        stdin=True, stdin_once=True))
    session = await runtime.attach(container_id, stdin=True)
    await session.write(b"one\n")
    output = session.output()
    assert await anext(output) == (Stream.STDOUT, b"got one\n")
    await session.write(b"two\n")
    await session.close_stdin()
    rest = b"".join([data async for _, data in output])
    assert rest == b"got two\nbye\n"
    assert await session.wait() == 0
    await session.close()
    assert [r.content async for r in runtime.logs(container_id)] == [b"got one", b"got two", b"bye"]


async def test_exec_into_a_stopped_container_is_refused(runtime: RuncRuntime, sandbox: str,
                                                        spec: SpecFactory) -> None:
    container_id = await start(runtime, spec(sandbox, "true"))
    assert (await runtime.wait(container_id)).state == ContainerState.EXITED
    with pytest.raises(InvalidState):
        await runtime.exec(container_id, ["ls"])


async def test_attach_to_a_container_with_a_terminal(runtime: RuncRuntime, sandbox: str,
                                                     spec: SpecFactory) -> None:
    container_id = await start(runtime, spec(sandbox, "sh", tty=True, stdin=True))
    session = await runtime.attach(container_id, stdin=True)
    await session.resize(columns=100, rows=30)
    await session.write(b"stty size; echo $((2 + 3)); exit 7\n")
    output = b"".join([data async for _, data in session.output()])
    assert await session.wait() == 7
    await session.close()
    assert b"30 100\r\n5\r\n" in output
    logged = [r.content async for r in runtime.logs(container_id)]
    assert logged[-2:] == [b"30 100", b"5"]     # terminal output is logged as stdout, \r dropped


async def test_an_attached_client_that_does_not_read_cannot_stall_the_container(
        runtime: RuncRuntime, sandbox: str, spec: SpecFactory) -> None:
    script = "read go; head -c 12000000 /dev/zero | tr '\\0' x; echo; echo done"
    container_id = await start(runtime, spec(sandbox, "sh", "-c", script, stdin=True))
    session = await runtime.attach(container_id, stdin=True)
    await session.write(b"go\n")           # then never read the output
    status = await asyncio.wait_for(runtime.wait(container_id), timeout=30)
    assert status.exit_code == 0
    await session.close()
    assert [r.content async for r in runtime.logs(container_id, tail_lines=1)] == [b"done"]
