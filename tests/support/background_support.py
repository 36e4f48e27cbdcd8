"""A component under test running in the background, for the tests of any component.

* :func:`start_task` -- run a coroutine (a component's ``run``) as a task and
  return once the component says it has started (sets its ``started`` event);
  when the task ends first its error is raised, at the deadline an AssertionError
  (either way no task is left behind);
* :func:`stop_task` -- cancel it and wait until it has ended (its own error, if
  it failed, is raised);
* :func:`running` -- both around a block: ``async with running(lb.run(started=ev), ev):``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

DEADLINE = 10.0


async def start_task(coro: Coroutine[Any, Any, Any], started: asyncio.Event, what: str = "the component",
                     *, timeout: float = DEADLINE) -> asyncio.Task[Any]:
    """``coro`` as a task, once ``started`` is set (see module docstring)."""
    task = asyncio.create_task(coro)
    waiter = asyncio.create_task(started.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if started.is_set():
        return task
    if task in done:
        task.result()                      # raises what went wrong
    await stop_task(task)
    raise AssertionError(f"{what} did not start in {timeout} s")


async def stop_task(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait until it has ended."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@contextlib.asynccontextmanager
async def running(coro: Coroutine[Any, Any, Any], started: asyncio.Event | None = None,
                  what: str = "the component") -> AsyncIterator[asyncio.Task[Any]]:
    """``coro`` as a task for the duration of the block (entered once ``started``
    is set, when given); cancelled and awaited on the way out."""
    if started is None:
        task = asyncio.create_task(coro)
    else:
        task = await start_task(coro, started, what)
    try:
        yield task
    finally:
        await stop_task(task)
