"""A small real cluster in-process for controller tests.

API server (make_app on a sqlite store in tmp_path, plain HTTP on 127.0.0.1) +
simulated nodes (FakeNodeFleet, real clock) + a test-only binder that binds
pending pods to the nodes round-robin + the controllers under test.

Waiting is always on watches (informers): :meth:`Observed.wait_for` re-checks
a predicate after every change it sees and gives up at a deadline.
"""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Callable, Iterable

from aiohttp import web

from skiff.apiserver.app import CONTEXT, make_app
from skiff.client.informer import Informer
from skiff.client.resources import NODES, PODS, ResourceLike
from skiff.client.rest import ApiClient
from skiff.controllers.manager import CONTROLLERS, ControllerFactory, run_controllers
from skiff.kubelet.fake import FakeNodeAgent, FakeNodeFleet, fake_node_specs
from skiff.storage.sqlite import SqliteBackend

Obj = dict[str, Any]

#: Pods with this image are never bound: they stay Pending and never become ready,
#: which is what a pod whose image cannot be pulled looks like to a controller.
UNPULLABLE_IMAGE = "registry.invalid/does-not-exist:1"

DEADLINE = 15.0


class Observed:
    """A watched collection: ``await obs.wait_for(lambda objs: ...)``."""

    def __init__(self, client: ApiClient, resource: ResourceLike, namespace: str | None = None,
                 label_selector: str | None = None) -> None:
        self.informer = Informer(client, resource, namespace=namespace,
                                 label_selector=label_selector)
        self._changed = asyncio.Event()
        self._listeners: list[Callable[[str, Obj], None]] = []
        self.informer.add_handler(on_add=lambda o: self._notify("ADDED", o),
                                  on_update=lambda _, o: self._notify("MODIFIED", o),
                                  on_delete=lambda o: self._notify("DELETED", o))
        self.task: asyncio.Task[None] | None = None

    def on_change(self, listener: Callable[[str, Obj], None]) -> None:
        """Call ``listener(type, obj)`` on every change (for invariant checks)."""
        self._listeners.append(listener)

    def _notify(self, type_: str, obj: Obj) -> None:
        for listener in self._listeners:
            listener(type_, obj)
        self._changed.set()

    def items(self) -> list[Obj]:
        return self.informer.list()

    def get(self, name: str, namespace: str = "default") -> Obj | None:
        return self.informer.get_by(namespace, name)

    async def wait_for(self, predicate: Callable[[list[Obj]], Any], timeout: float = DEADLINE,
                       what: str = "") -> Any:
        async def loop() -> Any:
            await self.informer.wait_synced()
            while True:
                self._changed.clear()
                result = predicate(self.items())
                if result:
                    return result
                await self._changed.wait()
        try:
            return await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what or predicate}; "
                                 f"have {[summary(o) for o in self.items()]}") from None


def summary(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return f"{meta.get('name')}:{status.get('phase', '')}:{status.get('replicas', '')}"


async def _bind_pending(client: ApiClient, nodes: list[str]) -> None:
    """The test binder: bind every unbound pod (except unpullable ones) round-robin."""
    pending = Informer(client, PODS, field_selector="spec.nodeName=")
    queue: asyncio.Queue[Obj] = asyncio.Queue()
    pending.add_handler(on_add=queue.put_nowait)
    cycle = itertools.cycle(nodes)

    async def bind(pod: Obj) -> None:
        meta = pod["metadata"]
        images = [c.get("image") for c in pod["spec"].get("containers") or []]
        if meta.get("deletionTimestamp") or UNPULLABLE_IMAGE in images:
            return
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": next(cycle)}}
        try:
            await client.create(PODS, body, namespace=meta["namespace"], name=meta["name"],
                                 subresource="binding")
        except Exception:
            pass  # deleted or bound meanwhile

    async with asyncio.TaskGroup() as tg:
        tg.create_task(pending.run())
        try:
            while True:
                pod = await queue.get()
                tg.create_task(bind(pod))
        finally:
            pending.stop()


class Cluster:
    """API server + fake nodes + binder (+ controllers unless ``controllers=[]``)."""

    def __init__(self, tmp_path: Path, *, nodes: int = 2,
                 controllers: Iterable[str] | None = None,
                 extra: Iterable[tuple[str, ControllerFactory]] = (),
                 read_only: dict[tuple[str, str], Any] | None = None) -> None:
        self.tmp_path = tmp_path
        self.read_only = read_only or {}  # (group, plural) -> ReadOnlySource (metrics.k8s.io)
        self.node_count = nodes
        self.controllers = controllers
        self.known = (*CONTROLLERS, *extra)
        self._stack = AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []
        self.client: ApiClient
        self.url = ""

    async def __aenter__(self) -> "Cluster":
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        backend = SqliteBackend(str(self.tmp_path / "db"))
        await backend.start()
        self._stack.push_async_callback(backend.close)
        app = make_app(backend)
        app[CONTEXT].read_only.update(self.read_only)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        self.client = ApiClient(self.url)
        self._stack.push_async_callback(self.client.close)
        agents = [FakeNodeAgent(self.client, spec) for spec in fake_node_specs(self.node_count)]
        fleet = FakeNodeFleet(self.client, agents, workers=4)
        self._spawn(fleet.run())
        await asyncio.wait_for(fleet.registered.wait(), DEADLINE)
        self._spawn(_bind_pending(self.client, [a.name for a in agents]))
        started = asyncio.Event()
        if self.controllers is None or list(self.controllers):
            self._spawn(run_controllers(self.client, enabled=self.controllers, started=started,
                                        known=self.known))
            await asyncio.wait_for(started.wait(), DEADLINE)

    def _spawn(self, coro: Any) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coro))

    async def observe(self, resource: ResourceLike, namespace: str | None = "default",
                      label_selector: str | None = None) -> Observed:
        obs = Observed(self.client, resource, namespace, label_selector)
        obs.task = asyncio.get_running_loop().create_task(obs.informer.run())
        self._tasks.append(obs.task)
        await asyncio.wait_for(obs.informer.wait_synced(), DEADLINE)
        return obs

    async def __aexit__(self, *exc: object) -> None:
        for task in reversed(self._tasks):
            task.cancel()
        for task in reversed(self._tasks):
            try:
                await asyncio.wait_for(task, 5)
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        await self._stack.aclose()


def node_names(count: int) -> list[str]:
    return [s.name for s in fake_node_specs(count)]


__all__ = ["Cluster", "Observed", "UNPULLABLE_IMAGE", "NODES", "node_names"]
