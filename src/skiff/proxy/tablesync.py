"""TableSync: the life both owners of a node's nftables tables share -- the
service proxy (.proxier) and the network policy agent (.netpol.agent).

::

    run ── the owner's informers (its own factory, or a shared one the caller
     │     runs); nothing is written before every cache is filled
     ├── first sync: the whole table, one transaction (its failure is raised)
     ├── loop: sleep until woken (a handler saw a change) or until the periodic
     │   full resync is due (``resync_period``); wait ``coalesce`` seconds (a
     │   burst of changes → one sync); sync. A refused transaction is retried as
     │   a full sync after a backoff (0.2 s, doubling, at most 30 s)
     └── cancelled: the own informers stopped, the table deleted when asked
         (``delete_on_exit``), the nft library thread let go

An owner says what it watches (:meth:`_watch`), how it syncs (:meth:`_sync`),
whether the next sync must write the whole table (:meth:`_table_unknown`), what
it forgets after a refused transaction (:meth:`_forget_applied`) and how its
table goes (:meth:`delete_rules`). It calls :meth:`_notify_applied` after every
sync it applied, which wakes whoever waits in :meth:`wait_for`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from ..client.factory import InformerFactory
from ..client.informer import Informer
from ..client.rest import ApiClient
from .nft import Nft, NftError

log = logging.getLogger(__name__)


class TableSync:
    """Keeps one nftables table in line with the API (see module docstring)."""

    def __init__(self, nft: Nft, log_name: str, *, resync_period: float,
                 coalesce: float = 0.0) -> None:
        self.nft = nft
        #: The owner in log lines, e.g. "proxy skiff-proxy-node-a".
        self.log_name = log_name
        self.resync_period = resync_period
        self.coalesce = coalesce
        #: Syncs that failed (each followed by a full sync).
        self.failures = 0
        self.started = asyncio.Event()
        self._wake = asyncio.Event()
        self._applied_condition = asyncio.Condition()

    # -- what an owner provides ---------------------------------------------------

    def _watch(self, factory: InformerFactory) -> list[Informer]:
        """Create the informers (with their handlers); the ones to wait for."""
        raise NotImplementedError

    async def _sync(self, *, full: bool) -> None:
        """Apply what changed (everything, in one transaction, when ``full``)."""
        raise NotImplementedError

    def _table_unknown(self) -> bool:
        """The next sync must write the whole table (nothing applied is known)."""
        raise NotImplementedError

    def _forget_applied(self) -> None:
        """A transaction was refused: what is applied is not known any more."""
        raise NotImplementedError

    async def delete_rules(self) -> None:
        """Remove the table."""
        raise NotImplementedError

    # -- waiting ------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, checking after every applied sync."""
        async with self._applied_condition:
            await self._applied_condition.wait_for(predicate)

    async def _notify_applied(self) -> None:
        async with self._applied_condition:
            self._applied_condition.notify_all()

    # -- running ------------------------------------------------------------------

    async def _run(self, client: ApiClient, *, informers: InformerFactory | None,
                   started: asyncio.Event | None, delete_on_exit: bool) -> None:
        factory = informers if informers is not None else InformerFactory(client)
        watched = self._watch(factory)
        # The informers' task lives exactly as long as this call (a TaskGroup would
        # also do, but would wrap the first sync's error in an ExceptionGroup).
        feeding = (asyncio.create_task(factory.run(), name=f"informers of {self.log_name}")
                   if informers is None else None)
        try:
            await asyncio.gather(*(informer.wait_synced() for informer in watched))
            self._wake.clear()
            await self._sync(full=True)
            self.started.set()
            if started is not None:
                started.set()
            await self._loop()
        finally:
            try:
                if feeding is not None:
                    factory.stop()
                    await asyncio.gather(feeding, return_exceptions=True)
                if delete_on_exit:
                    await asyncio.shield(self.delete_rules())
            finally:
                self.nft.close()

    async def _loop(self) -> None:
        failures = 0
        last_full = time.monotonic()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(),
                                       max(0.0, last_full + self.resync_period - time.monotonic()))
            if self.coalesce > 0:
                await asyncio.sleep(self.coalesce)     # let a burst of changes settle
            self._wake.clear()
            # A periodic full sync repairs whatever someone else did to the table.
            full = self._table_unknown() or time.monotonic() - last_full >= self.resync_period
            if full:
                last_full = time.monotonic()
            try:
                await self._sync(full=full)
                failures = 0
            except (NftError, ValueError) as error:
                failures += 1
                self.failures += 1
                self._forget_applied()
                delay = min(30.0, 0.1 * 2 ** min(failures, 9))
                log.warning("%s: sync failed (%s); full sync in %.1f s", self.log_name, error, delay)
                await asyncio.sleep(delay)
                self._wake.set()
