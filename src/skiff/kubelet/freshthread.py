"""Running blocking work on a thread of its own, thrown away afterwards.

Linux keeps namespaces per *thread*: ``unshare(2)`` and ``setns(2)`` move only the
calling thread.  Work that enters or creates a namespace (pod sandboxes, pod
networks: .runtime.namespaces, .network.netns) therefore runs on a new thread that
nothing else ever uses, so a half-switched thread can never leak into a pool::

    event loop ──start──▶ new thread ── work() ──▶ result / exception ──▶ thread ends
        ▲ (does not wait for the thread to get going)         │
        └───────────────── call_soon_threadsafe ──────────────┘

Starting the thread does not wait for it to run (``threading.Thread.start`` does,
which on a busy machine stalls the event loop for up to a GIL switch interval).
A cancelled caller still waits for the thread to finish before the cancellation
goes on, so whoever cleans up after it does not race the work.
"""

from __future__ import annotations

import _thread
import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def on_fresh_thread(work: Callable[[], T]) -> T:
    """``work()`` on a new thread that ends with it; its result or exception."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def body() -> None:
        try:
            result = work()
        except BaseException as error:  # handed to the awaiting task
            loop.call_soon_threadsafe(deliver, None, error)
        else:
            loop.call_soon_threadsafe(deliver, result, None)

    _thread.start_new_thread(body, ())
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if not future.done():
            try:
                await future
            except BaseException:
                pass
        raise
