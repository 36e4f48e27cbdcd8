"""Shared informers: one list + watch per resource for every user in a process.

When several controllers run in one process (``skiff up``), each asking for
"an informer of pods" should get the *same* one, so the API server sees one
watch instead of one per controller (client-go's SharedInformerFactory)::

    factory = InformerFactory(client)
    pods = factory.informer(PODS)           # same object for the same arguments
    pods.add_handler(on_add=...)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(factory.run())       # runs every informer, also later ones
        await factory.wait_synced()
        ...
    factory.stop()

The factory is an ordinary object (no module-level registry): whoever wires
the components together creates one and hands it to them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .clock import Clock
from .informer import Informer
from .resources import ResourceLike
from .rest import ApiClient


class InformerFactory:
    """Creates and runs shared :class:`Informer` s keyed by resource and selectors."""

    def __init__(self, client: ApiClient, *, clock: Clock | None = None) -> None:
        self.client = client
        self._clock = clock
        self._informers: dict[tuple[Any, ...], Informer] = {}
        self._group: asyncio.TaskGroup | None = None
        self._stopping = asyncio.Event()

    def informer(self, resource: ResourceLike, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None) -> Informer:
        """The shared informer for these arguments (created on first request)."""
        key = (resource.group, resource.version, resource.plural, namespace or "",
               label_selector or "", field_selector or "")
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(self.client, resource, namespace=namespace,
                                label_selector=label_selector, field_selector=field_selector,
                                clock=self._clock)
            self._informers[key] = informer
            if self._group is not None:
                self._group.create_task(informer.run(), name=f"informer-{resource.plural}")
        return informer

    async def wait_synced(self) -> None:
        """Wait until every informer created so far has filled its cache."""
        await asyncio.gather(*(i.wait_synced() for i in list(self._informers.values())))

    async def run(self) -> None:
        """Run every informer (including ones created later) until :meth:`stop`."""
        async with asyncio.TaskGroup() as tg:
            self._group = tg
            for informer in self._informers.values():
                tg.create_task(informer.run(), name=f"informer-{informer.resource.plural}")
            try:
                await self._stopping.wait()
            finally:
                self._group = None
                for informer in self._informers.values():
                    informer.stop()

    def stop(self) -> None:
        self._stopping.set()
        for informer in self._informers.values():
            informer.stop()
