"""Support for the cluster-housekeeping controller tests (GC, namespace, nodes ...).

* :class:`ApiServer` -- apiserver_support's in-process API server (sqlite in tmp_path,
  plain HTTP on 127.0.0.1, port 0, a client, a kubeconfig) that also runs the real kubectl;
* :func:`running_controllers` -- runs chosen controllers (by factory) through the
  manager's :func:`run_controllers`, with a clock of the test's choosing;
* :func:`kubectl` -- the real kubectl as an asyncio subprocess (never blocks the loop);
* :func:`watch_until` -- watch a resource until a predicate holds (with a deadline).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Sequence

import apiserver_support
from skiff.client.clock import Clock, FakeClock
from skiff.client.resources import ResourceLike
from skiff.client.rest import ApiClient
from skiff.controllers.manager import ControllerFactory, run_controllers

Obj = dict[str, Any]
DEADLINE = 15.0


class ApiServer(apiserver_support.ApiServer):
    """``async with ApiServer(tmp_path) as api:`` -> ``api.client``, ``api.kubeconfig``,
    and :meth:`kubectl` against it."""

    async def kubectl(self, *args: str, timeout: float = DEADLINE) -> tuple[int, str, str]:
        return await kubectl(self.kubeconfig, *args, timeout=timeout)


async def kubectl(kubeconfig: Path, *args: str, timeout: float = DEADLINE) -> tuple[int, str, str]:
    """Run the real kubectl; (exit code, stdout, stderr). Killed at the deadline."""
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), HOME=str(kubeconfig.parent))
    proc = await asyncio.create_subprocess_exec(
        "kubectl", *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"kubectl {' '.join(args)} did not finish in {timeout} s") from None
    return proc.returncode or 0, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def running_controllers(client: ApiClient, factories: Sequence[tuple[str, ControllerFactory]],
                              *, clock: Clock | None = None) -> AsyncIterator[None]:
    """Run these controllers (caches synced on entry); cancelled and awaited on exit."""
    started = asyncio.Event()
    task = asyncio.create_task(run_controllers(client, clock=clock, started=started,
                                               known=list(factories)))
    try:
        waiter = asyncio.create_task(started.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=DEADLINE,
                                     return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task in done:
            task.result()  # raises what went wrong
        if not started.is_set():
            raise AssertionError("controllers did not sync in time")
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)


@contextlib.asynccontextmanager
async def background(coro: Any) -> AsyncIterator[asyncio.Task[Any]]:
    """Run ``coro`` as a task for the duration of the block; cancelled afterwards."""
    task = asyncio.create_task(coro)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)


async def watch_until(client: ApiClient, res: ResourceLike, check: Callable[[str, Obj], bool], *,
                      namespace: str | None = None, since: str | None = None,
                      field_selector: str | None = None, timeout: float = DEADLINE) -> Obj:
    """Watch from ``since`` (default: a fresh list) until ``check(type, obj)``; that object.

    Objects already present when listing count as ADDED.
    """
    async def run() -> Obj:
        rv = since
        if rv is None:
            listing = await client.list(res, namespace=namespace, field_selector=field_selector)
            for obj in listing.items:
                if check("ADDED", obj):
                    return obj
            rv = listing.resource_version
        while True:
            async with client.watch(res, namespace=namespace, resource_version=rv,
                                    field_selector=field_selector, timeout_seconds=60) as events:
                async for type_, obj in events:
                    if check(type_, obj):
                        return obj
                rv = events.resource_version or rv
    try:
        return await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out watching {res.plural} for {check}") from None


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def owner_ref(owner: Obj, *, controller: bool = True, block: bool = True) -> Obj:
    m = meta(owner)
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": m["name"],
            "uid": m["uid"], "controller": controller, "blockOwnerDeletion": block}


async def wait_gone(client: ApiClient, res: ResourceLike, names: set[str], *,
                    namespace: str | None = None, since: str | None = None,
                    timeout: float = DEADLINE) -> str:
    """Watch until no object named in ``names`` exists; the resourceVersion of that moment.

    With ``since``, the objects are taken to exist at that resourceVersion and
    the answer is the resourceVersion of the last one's DELETED event.
    """
    async def run() -> str:
        if since is None:
            listing = await client.list(res, namespace=namespace)
            present = {meta(o)["name"] for o in listing.items} & names
            rv = listing.resource_version
        else:
            present, rv = set(names), since
        while present:
            async with client.watch(res, namespace=namespace, resource_version=rv,
                                    timeout_seconds=60) as events:
                async for type_, obj in events:
                    if type_ == "DELETED":
                        present.discard(meta(obj)["name"])
                    elif meta(obj)["name"] in names:
                        present.add(meta(obj)["name"])
                    rv = events.resource_version or rv
                    if not present:
                        break
        return rv
    try:
        return await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {res.plural} {sorted(names)} to go") from None


class EagerFakeClock(FakeClock):
    """A FakeClock whose ``sleep()`` takes its deadline when called, not when first awaited.

    ``FakeClock.sleep`` is a coroutine: wrapped in a task (as the work queue does,
    ``ensure_future(clock.sleep(delay))``), it reads the clock only once the task
    first runs -- after an ``advance()`` that happened in between, the deadline
    lands ``delay`` seconds after the *advanced* time and the wake-up is lost.
    Here the deadline is fixed at the call.  (Worth moving into FakeClock itself.)
    """

    def sleep(self, seconds: float) -> "asyncio.Future[None]":  # type: ignore[override]
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if seconds <= 0:
            fut.set_result(None)
            return fut
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), fut))
        self._sleepers_changed.set()
        return fut
