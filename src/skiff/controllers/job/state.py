"""The state the Job controller's steps share: per sync, and across syncs.

* :class:`SyncState` - made fresh for each reconcile from the caches; the steps
  (:mod:`.sync`, :mod:`.manage`, :mod:`.tracking`) read and update it, and only
  ``job`` (a private deep copy) is ever written back to the API server.
* :class:`FinalizerRemovals` - per Job, the pods whose tracking finalizer this
  controller removed but the pod cache does not show removed yet.  Until it
  does, those pods are skipped: they are already counted in the Job's status.
* :class:`Host` - what the steps need from the controller (client, clock,
  expectations, events, the status write).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...client.clock import Clock
from ...client.expectations import Expectations
from ...client.rest import ApiClient
from . import facts
from .backoff import BackoffRecord, BackoffStore
from .indexes import Intervals

Obj = dict[str, Any]


class FinalizerRemovals:
    """Pod UIDs per Job key whose finalizer removal has not been observed yet."""

    def __init__(self) -> None:
        self._by_key: dict[str, set[str]] = {}

    def expect(self, key: str, uids: Iterable[str]) -> None:
        self._by_key.setdefault(key, set()).update(uids)

    def observed(self, key: str, uid: str) -> None:
        pending = self._by_key.get(key)
        if pending is not None:
            pending.discard(uid)
            if not pending:
                del self._by_key[key]

    def pending(self, key: str) -> set[str]:
        return set(self._by_key.get(key, ()))

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)


class Host(Protocol):
    """The controller, as the sync steps see it."""

    client: ApiClient
    clock: Clock
    expectations: Expectations
    removals: FinalizerRemovals
    backoffs: BackoffStore
    backoff_base: float
    backoff_cap: float

    def record_event(self, obj: Obj, type_: str, reason: str, message: str) -> None: ...

    def requeue_at(self, key: str, when: float) -> None:
        """Look at ``key`` again at wall-clock time ``when``."""

    async def write_status(self, job: Obj) -> Obj:
        """PUT ``job``'s status; the Job as written."""


@dataclass
class SyncState:
    key: str
    job: Obj  # our copy; its status is what gets written
    pods: list[Obj]  # every pod the Job controls (active, finished, terminating)
    active: list[Obj]  # not finished, not being deleted
    expected_removals: set[str]  # UIDs whose finalizer removal is in flight
    #: status.uncountedTerminatedPods as the sync found it (the status copy changes).
    uncounted_succeeded: set[str] = field(default_factory=set)
    uncounted_failed: set[str] = field(default_factory=set)
    ready: int = 0
    terminating: int = 0
    succeeded: int = 0
    failed: int = 0
    #: The condition the Job is heading to (FailureTarget/SuccessCriteriaMet first,
    #: then Failed/Complete once every pod is counted); None while it runs.
    finished: Obj | None = None
    prev_succeeded_indexes: Intervals = field(default_factory=Intervals)
    succeeded_indexes: Intervals = field(default_factory=Intervals)
    failed_indexes: Intervals | None = None  # only with backoffLimitPerIndex
    #: Indexed + backoffLimitPerIndex: the failed pod of each index whose finalizer is
    #: kept until its replacement exists (the replacement inherits its failure count).
    delayed_per_index: dict[int, Obj] = field(default_factory=dict)
    backoff: BackoffRecord = field(default_factory=BackoffRecord)

    @property
    def status(self) -> Obj:
        status: Obj = self.job.setdefault("status", {})
        return status

    @property
    def uncounted(self) -> Obj:
        """``status.uncountedTerminatedPods`` (always present in our copy)."""
        unc: Obj = self.status.setdefault("uncountedTerminatedPods", {})
        return unc

    @property
    def completions(self) -> int:
        """``spec.completions`` (Indexed Jobs always have it)."""
        return facts.completions(self.job) or 0
