"""The storage contract: an etcd-shaped, revisioned key-value store.

Every backend (``sqlite`` embedded by default, ``etcd`` later) implements
:class:`Backend` and passes the one contract suite in ``tests/storage``.

Model (the same as etcd v3):

* One **global revision** counter.  Every successful write (create, update,
  delete) increments it by exactly one; the new value is the write's revision.
  The API server exposes it as ``metadata.resourceVersion``.
* Each live key has a ``create_revision`` (revision of the write that created
  it) and a ``mod_revision`` (revision of its last write).
* Writes are **compare-and-swap** on ``mod_revision``: ``update``/``delete``
  fail with :class:`RevisionMismatch` when the key moved on.
* Reads may be served **at a past revision** (``revision=R``) as long as
  ``R`` is newer than the compacted revision; older reads raise
  :class:`Compacted`.
* **Watch** from a revision replays every event after it, in revision order,
  then streams new events as they commit, with no gap and no duplicate.
  Watching from a compacted revision raises :class:`Compacted` (the API
  server answers 410 Expired).
* A write is **acknowledged** only once it is durable against a process crash
  (kill -9): after restart every acknowledged write is readable, unchanged.

Lifecycle of a watch::

    watch(prefix, start_revision=R) ──▶ replay events R+1..now from history
                                    ──▶ live events as they commit
                                    ──▶ close() or backend close ends iteration

Keys are ``str`` (``/registry/<group>/<resource>/<namespace>/<name>``), values
are opaque ``bytes`` (the API server stores JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Literal, Protocol


class StorageError(Exception):
    """Base of every error a backend raises on purpose."""


class KeyExists(StorageError):
    """``create`` of a key that is live."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFound(StorageError):
    """``update``/``delete`` of a key that is not live."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionMismatch(StorageError):
    """Compare-and-swap failed: the key's mod_revision is not the expected one."""

    def __init__(self, key: str, current: "KeyValue") -> None:
        super().__init__(f"revision mismatch on {key}: now at {current.mod_revision}")
        self.key = key
        self.current = current


class Compacted(StorageError):
    """The requested revision is at or below the compacted revision."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(f"revision {requested} is compacted (compacted revision {compacted})")
        self.requested = requested
        self.compacted = compacted


class WatchOverflow(StorageError):
    """A watcher fell too far behind the live event stream and was ended.

    Backends buffer events per watch up to a bound instead of slowing writers
    or growing without limit.  ``last_revision`` is the revision of the last
    event the watcher received (or its start revision); the consumer may
    re-watch from it, which replays the missed events from history.
    """

    def __init__(self, last_revision: int, limit: int) -> None:
        super().__init__(f"watch fell more than {limit} events behind after revision {last_revision}")
        self.last_revision = last_revision
        self.limit = limit


class FutureRevision(StorageError):
    """The requested revision is newer than the store's current revision."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is in the future (current {current})")
        self.requested = requested
        self.current = current


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One committed change.

    ``type`` is ``"PUT"`` for create and update (a create has
    ``kv.create_revision == kv.mod_revision``) and ``"DELETE"`` for delete,
    where ``kv`` carries the deleted value and ``kv.mod_revision`` is the
    revision of the delete.  ``prev_kv`` is the value before the change
    (``None`` for a create).
    """

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev_kv: KeyValue | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision

    @property
    def is_create(self) -> bool:
        return self.type == "PUT" and self.prev_kv is None


@dataclass(frozen=True, slots=True)
class RangeResult:
    """Live keys under a prefix, in key order, as of ``revision``.

    ``more`` is true when ``limit`` cut the result short; continue with
    ``start_after=kvs[-1].key`` at the same ``revision``.
    """

    kvs: list[KeyValue]
    revision: int
    more: bool
    count: int  # number of live keys under the prefix at that revision (remaining incl. these)


class Watch(Protocol):
    """An open watch: async-iterate it for events; ``close()`` ends it."""

    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def close(self) -> None: ...


class Backend(Protocol):
    """The narrow interface the API server stores through."""

    async def start(self) -> None:
        """Open (creating if needed) and recover; ready to serve afterwards."""

    async def close(self) -> None:
        """Flush, end every open watch, release files."""

    @property
    def revision(self) -> int:
        """The current global revision (0 for an empty store)."""

    @property
    def compacted_revision(self) -> int:
        """History at or below this revision is forgotten (0 = nothing compacted).

        Reads at a revision below it and watches starting below it raise
        :class:`Compacted`; the state *at* this revision is still readable
        and a watch from it (events after it) still works, as in etcd.
        """

    async def get(self, key: str, *, revision: int = 0) -> KeyValue | None:
        """The live value of ``key`` at ``revision`` (0 = latest)."""

    async def range(
        self,
        prefix: str,
        *,
        revision: int = 0,
        start_after: str = "",
        limit: int = 0,
    ) -> RangeResult:
        """Live keys starting with ``prefix`` (keys > ``start_after``), at ``revision`` (0 = latest); ``limit`` 0 = all."""

    async def create(self, key: str, value: bytes) -> KeyValue:
        """Store a new key; raises :class:`KeyExists`."""

    async def update(self, key: str, value: bytes, *, expected_mod_revision: int) -> KeyValue:
        """Replace a live key if its mod_revision matches (0 = unconditional).

        Raises :class:`KeyNotFound` or :class:`RevisionMismatch`.
        """

    async def delete(self, key: str, *, expected_mod_revision: int = 0) -> KeyValue:
        """Delete a live key (CAS as in ``update``); returns the deleted value with the delete's revision as mod_revision."""

    def watch(self, prefix: str, *, start_revision: int) -> Watch:
        """Events for keys under ``prefix`` with revision > ``start_revision``.

        Raises :class:`Compacted` (possibly on first iteration) when
        ``start_revision`` < ``compacted_revision``.
        """

    async def compact(self, revision: int) -> None:
        """Forget history at or below ``revision`` (live values are kept)."""
