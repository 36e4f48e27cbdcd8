"""Simulated nodes on a fake clock, for tests against the real API server.

* :class:`Fleet` -- ``async with Fleet(client, count) as f:`` runs a
  :class:`FakeNodeFleet` of ``count`` agents (``f.agents``) on a :class:`FakeClock`
  (``f.clock``); on entry the nodes are registered and the fleet's informers synced,
  on exit the fleet is stopped and awaited;
* :func:`wait_for` -- watch one object by name until a predicate holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from skiff.client.clock import FakeClock
from skiff.client.rest import ApiClient
from skiff.kubelet.fake import FakeNodeAgent, FakeNodeFleet, fake_node_specs

Obj = dict[str, Any]
DEADLINE = 10.0


class Fleet:
    """``count`` fake nodes (``fake_node_specs(count, **specs)``) served by one fleet;
    ``fleet_options`` go to :class:`FakeNodeFleet` (``adopt=True``, ``failing_images=`` ...)."""

    def __init__(self, client: ApiClient, count: int, *, specs: Mapping[str, Any] | None = None,
                 **fleet_options: Any) -> None:
        self.clock = FakeClock()
        self.agents = [FakeNodeAgent(client, spec, clock=self.clock)
                       for spec in fake_node_specs(count, **(specs or {}))]
        self.fleet = FakeNodeFleet(client, self.agents, clock=self.clock, workers=4, **fleet_options)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Fleet:
        self.task = asyncio.create_task(self.fleet.run())
        await asyncio.wait_for(self.fleet.registered.wait(), DEADLINE)
        await asyncio.wait_for(self.fleet.pods.wait_synced(), DEADLINE)
        await asyncio.wait_for(self.fleet.nodes.wait_synced(), DEADLINE)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.fleet.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, DEADLINE)


async def wait_for(client: ApiClient, res: Any, name: str, namespace: str | None,
                   check: Callable[[str, Obj], bool], since: str = "") -> Obj:
    """Watch ``name`` (from ``since``, else from its current state) until ``check`` holds;
    that object.  The current state, when there is one, is checked as ``"EXISTING"``."""
    if not since:
        since = (await client.list(res, namespace=namespace)).resource_version
        try:
            current = await client.get(res, name, namespace=namespace)
        except Exception:  # noqa: BLE001 - not there yet
            current = None
        if current is not None and check("EXISTING", current):
            return current

    async def watch() -> Obj:
        async with client.watch(res, namespace=namespace, resource_version=since,
                                field_selector=f"metadata.name={name}") as events:
            async for type_, obj in events:
                if check(type_, obj):
                    return obj
        raise AssertionError("watch ended")
    return await asyncio.wait_for(watch(), DEADLINE)
