"""The shared reconcile skeleton every controller is built on (client-go's pattern).

A controller never reacts to *events*; it reacts to *keys*.  Informer handlers
only put the key of the object that needs attention on a work queue; workers
take keys off and call :meth:`Controller.reconcile`, which reads the current
state from the informer caches and moves the world one step towards the
desired state::

    API server ──list+watch──▶ shared informers (one per resource, per process)
                                  │ on_add / on_update / on_delete
                                  ▼ (handlers only compute keys)
                      WorkQueue("ns/name")  ── dedupe, one worker per key
                                  │
                 N workers ──▶ reconcile(key) ──▶ writes through the API
                                  │
             ok ──▶ forget(key) (reset back-off); a float return = look again later
             exception ──▶ add_rate_limited(key): 5 ms, 10 ms, 20 ms ... (capped)

Rules for ``reconcile``:

* **Level-triggered and idempotent**: it may be called any number of times for
  any reason (resyncs, duplicate events, retries) and must compute what to do
  from the caches alone, never from "what changed".
* **Never mutate cached objects**: ``copy.deepcopy`` before building a write.
* **Expectations**: after creating or deleting children, record what the
  informer must still deliver (:class:`~skiff.client.expectations.Expectations`)
  and skip the key until it has, so a stale cache never causes a double create.
* A missing object (deleted meanwhile) is not an error: clean up and return.

:class:`ControllerContext` is what the manager hands to every controller: the
client, the shared :class:`~skiff.client.factory.InformerFactory`, the clock and
the event recorder.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from ..api.errors import StatusError
from ..client.clock import Clock
from ..client.expectations import Expectations
from ..client.factory import InformerFactory
from ..client.informer import Informer, object_key
from ..client.resources import ResourceLike
from ..client.rest import ApiClient, TransportError
from ..client.workqueue import WorkQueue
from .events import EventRecorder

Obj = dict[str, Any]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControllerContext:
    """Everything a controller gets from the manager (shared by all controllers)."""

    client: ApiClient
    informers: InformerFactory
    clock: Clock
    recorder: EventRecorder


class Controller(ABC):
    """Base of every controller: informers -> key queue -> workers -> ``reconcile``.

    Subclasses set :attr:`name` (the ``--controllers`` name, e.g. ``"replicaset"``),
    optionally :attr:`workers`, ask for informers with :meth:`informer` in
    ``__init__`` and register handlers that call :meth:`enqueue` /
    :meth:`enqueue_key`; then implement :meth:`reconcile`.
    """

    #: The name used to enable/disable it (kube-controller-manager's ``--controllers``).
    name: ClassVar[str] = ""
    #: How many keys are reconciled concurrently (never the same key twice at once).
    workers: ClassVar[int] = 5
    #: ``source.component`` of the events it records.
    component: ClassVar[str] = ""

    def __init__(self, ctx: ControllerContext) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.clock = ctx.clock
        self.queue: WorkQueue[str] = WorkQueue(clock=ctx.clock)
        self.expectations = Expectations(clock=ctx.clock)
        self._informers: list[Informer] = []

    # -- wiring -------------------------------------------------------------------

    def informer(self, resource: ResourceLike, **selectors: str | None) -> Informer:
        """The shared informer of ``resource``; :meth:`run` waits for it to sync."""
        informer = self.ctx.informers.informer(resource, **selectors)
        if informer not in self._informers:
            self._informers.append(informer)
        return informer

    def enqueue(self, obj: Obj) -> None:
        """Queue the key (``namespace/name``) of ``obj``."""
        self.queue.add(object_key(obj))

    def enqueue_key(self, key: str) -> None:
        self.queue.add(key)

    def enqueue_after(self, key: str, delay: float) -> None:
        self.queue.add_after(key, delay)

    def record_event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        """Record a core/v1 Event about ``obj`` (sent in the background)."""
        self.ctx.recorder.event(obj, type_, reason, message,
                                component=self.component or f"{self.name}-controller")

    # -- the one method a controller implements ---------------------------------------

    @abstractmethod
    async def reconcile(self, key: str) -> float | None:
        """Make the world match the desired state of ``key``.

        Return ``None`` when done, or a number of seconds after which the key
        should be looked at again (e.g. when a pod becomes available after
        ``minReadySeconds``).  Raise to be retried with back-off.
        """

    # -- running ----------------------------------------------------------------------

    async def wait_synced(self) -> None:
        await asyncio.gather(*(i.wait_synced() for i in self._informers))

    async def run(self) -> None:
        """Wait for the caches, then run the workers until cancelled."""
        await self.wait_synced()
        try:
            async with asyncio.TaskGroup() as tg:
                for i in range(self.workers):
                    tg.create_task(self._worker(), name=f"{self.name}-worker-{i}")
        finally:
            self.queue.shut_down()

    async def _worker(self) -> None:
        while (key := await self.queue.get()) is not None:
            try:
                again = await self.reconcile(key)
            except (StatusError, TransportError) as e:
                level = logging.DEBUG if isinstance(e, StatusError) and e.code == 409 else logging.WARNING
                log.log(level, "%s: syncing %s failed: %s", self.name, key, e)
                self.queue.add_rate_limited(key)
            except Exception:
                log.exception("%s: syncing %s failed", self.name, key)
                self.queue.add_rate_limited(key)
            else:
                self.queue.forget(key)
                if again is not None:
                    self.queue.add_after(key, again)
            finally:
                self.queue.done(key)
