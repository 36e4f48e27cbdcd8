"""The kubelet's single path for writing pod statuses to the API server.

Pod workers hand in the whole status they computed; nothing else writes::

    worker ──set(pod, status)──▶ latest status per pod UID ──▶ writer task
                                  (a newer one replaces an     │ one JSON merge patch
                                   unwritten older one)        │ per change, up to 16 in
                                                               ▼ flight, UID-checked
            PATCH /api/v1/namespaces/<ns>/pods/<name>/status
                  {"metadata": {"uid": <uid>}, "status": {...}}

A status equal to the last one written is not sent again -- unless the API server's
copy stops matching it: the kubelet is the authority on its pods' status, and when
another component changed it (the node lifecycle controller marks a node's pods not
ready while the node is unreachable), :meth:`observe` sees the pod's newer revision with
a different phase or condition and the kubelet's status is written again, as a
kubelet's periodic status reconcile does. Keys the kubelet stops
reporting are sent as ``null`` (merge-patch deletion). A 404 or a UID mismatch
(409/422 for a same-named successor) drops the pod; other failures are retried
with back-off. ``flush(uid)`` waits until the latest status of a pod is written
(before the kubelet deletes a terminated pod's object).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from ..api.errors import StatusError
from ..client.clock import Clock
from ..client.resources import PODS
from ..client.rest import ApiClient, TransportError
from .status import KUBELET_CONDITIONS

Obj = dict[str, Any]
log = logging.getLogger(__name__)


@dataclass
class _Entry:
    name: str
    namespace: str
    status: Obj
    written: Obj | None = None
    version: int = 0
    written_version: int = 0
    written_revision: int = 0      # the pod's resourceVersion our last write produced


class StatusManager:
    def __init__(self, client: ApiClient, clock: Clock, *, concurrency: int = 16) -> None:
        self.client = client
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._dirty: set[str] = set()
        self._changed = asyncio.Event()
        self._written = asyncio.Condition()
        self._limit = asyncio.Semaphore(concurrency)
        self._inflight: set[str] = set()

    def set(self, pod: Obj, status: Obj) -> None:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        entry = self._entries.get(uid)
        if entry is None:
            entry = _Entry(str(meta.get("name", "")), str(meta.get("namespace", "")), status)
            self._entries[uid] = entry
        elif entry.status == status:
            return
        entry.status = status
        entry.version += 1
        if entry.written != status:
            self._dirty.add(uid)
            self._changed.set()

    def observe(self, pod: Obj) -> None:
        """The pod as the API server has it now: write the kubelet's status again if someone
        else changed its phase or conditions since the kubelet's last write."""
        uid = str(pod["metadata"].get("uid", ""))
        entry = self._entries.get(uid)
        if entry is None or entry.written is None or uid in self._dirty or uid in self._inflight:
            return
        if _revision(pod) <= entry.written_revision:
            return                 # our own write (or older) coming back through the watch
        if _summary(pod.get("status") or {}) != _summary(entry.written):
            log.info("pod %s/%s: status changed by another component; reporting it again",
                     entry.namespace, entry.name)
            self._dirty.add(uid)
            self._changed.set()

    def last(self, uid: str) -> Obj | None:
        """The most recent status set for the pod (written or not)."""
        entry = self._entries.get(uid)
        return entry.status if entry is not None else None

    def forget(self, uid: str) -> None:
        self._entries.pop(uid, None)
        self._dirty.discard(uid)

    async def flush(self, uid: str, timeout: float = 10.0) -> None:
        """Wait until the latest status of ``uid`` has been written (or dropped)."""
        async def done() -> None:
            async with self._written:
                await self._written.wait_for(lambda: uid not in self._dirty and uid not in self._inflight)
        try:
            await asyncio.wait_for(done(), timeout)
        except asyncio.TimeoutError:
            log.warning("status of pod %s not written within %.0fs", uid, timeout)

    async def run(self) -> None:
        """Write statuses until cancelled."""
        async with asyncio.TaskGroup() as group:
            while True:
                await self._changed.wait()
                self._changed.clear()
                for uid in list(self._dirty):
                    if uid in self._inflight:
                        continue          # written again once the current write is back
                    self._dirty.discard(uid)
                    self._inflight.add(uid)
                    group.create_task(self._write(uid))

    async def _write(self, uid: str) -> None:
        retry = False
        try:
            async with self._limit:
                entry = self._entries.get(uid)
                if entry is None:
                    return
                status, version = entry.status, entry.version
                patch = {"metadata": {"uid": uid}, "status": _with_deletions(entry.written, status)}
                try:
                    written = await self.client.patch(PODS, entry.name, patch, namespace=entry.namespace,
                                                      subresource="status")
                except StatusError as err:
                    if err.code in (404, 409, 422):
                        log.info("pod %s/%s (%s): status not written: %s", entry.namespace,
                                 entry.name, uid, err.message)
                        self.forget(uid)
                        return
                    log.warning("pod %s/%s: status write failed: %s", entry.namespace, entry.name, err)
                    retry = True
                    return
                except TransportError as err:
                    log.warning("pod %s/%s: status write failed: %s", entry.namespace, entry.name, err)
                    retry = True
                    return
                entry.written = status
                entry.written_version = version
                entry.written_revision = _revision(written)
                if entry.version != version:
                    self._dirty.add(uid)
                    self._changed.set()
        finally:
            if retry and uid in self._entries:
                await self.clock.sleep(1.0)
                self._dirty.add(uid)
            self._inflight.discard(uid)
            if uid in self._dirty:
                self._changed.set()
            async with self._written:
                self._written.notify_all()


def _with_deletions(before: Obj | None, after: Obj) -> Obj:
    """``after``, with ``None`` for top-level keys written before and absent now."""
    patch = dict(after)
    for key in before or {}:
        if key not in after:
            patch[key] = None
    return patch


def _revision(pod: Obj) -> int:
    try:
        return int((pod.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def _summary(status: Obj) -> tuple[Any, ...]:
    """What another component may change that the kubelet must put back: the phase and the
    conditions the kubelet owns.  (Others' conditions -- a readiness gate's, DisruptionTarget --
    are theirs: the pod worker carries them into its next status.)"""
    conditions = sorted((str(c.get("type")), str(c.get("status"))) for c in status.get("conditions") or []
                        if c.get("type") in KUBELET_CONDITIONS)
    return status.get("phase"), tuple(conditions)
