"""The LimitRanges and ResourceQuotas of each namespace, in memory, for admission.

Admission looks at a namespace's LimitRanges and ResourceQuotas on every write
to that namespace, so reading them must cost a dictionary lookup, not a store
scan -- and nothing at all in the common case of a namespace that has none::

    start:   rebuild()  one range read of /registry/core/<plural>/
    writes:  KindHooks of the kind: admit -> Reservation(commit=put)   (create, update, status)
                                    removed -> drop                     (delete)
    quota admission's own status writes: put()

Every entry remembers the revision it was written at; an older state never
replaces a newer one (two writes' commit callbacks may run out of order), and a
deleted object leaves its deletion revision behind so a late commit cannot bring
it back.  Cached objects are shared: readers must copy before changing them.

Writes made by another API server over the same store are not seen (skiff runs
one API server per store today).
"""

from __future__ import annotations

from typing import Any

from ...storage.interface import Backend
from ..hooks import KindHooks, Reservation
from ..objects import decode

Obj = dict[str, Any]


def _revision(obj: Obj) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class NamespacedObjects(KindHooks):
    """The live objects of one namespaced kind, by namespace then name."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix  # e.g. /registry/core/resourcequotas/
        self._live: dict[str, dict[str, Obj]] = {}
        self._revisions: dict[tuple[str, str], int] = {}

    async def rebuild(self, backend: Backend) -> None:
        listed = await backend.range(self.prefix)
        self._live = {}
        self._revisions = {}
        for kv in listed.kvs:
            self.put(decode(kv))

    # -- reading ------------------------------------------------------------------------

    def __contains__(self, namespace: str) -> bool:
        """Whether ``namespace`` has any object of the kind."""
        return namespace in self._live

    def items(self, namespace: str) -> list[Obj]:
        """The namespace's objects, by name (shared: do not modify)."""
        found = self._live.get(namespace)
        return [found[name] for name in sorted(found)] if found else []

    def get(self, namespace: str, name: str) -> Obj | None:
        return (self._live.get(namespace) or {}).get(name)

    # -- keeping current ----------------------------------------------------------------

    def put(self, obj: Obj) -> None:
        key = self._newest(obj)
        if key is not None:
            self._live.setdefault(key[0], {})[key[1]] = obj

    def drop(self, obj: Obj) -> None:
        key = self._newest(obj)
        if key is None:
            return
        found = self._live.get(key[0])
        if found is not None:
            found.pop(key[1], None)
            if not found:
                del self._live[key[0]]

    def _newest(self, obj: Obj) -> tuple[str, str] | None:
        """``obj``'s (namespace, name), its revision noted; None when a newer revision
        of it was seen already (a late event, to be ignored)."""
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        revision = _revision(obj)
        if self._revisions.get(key, 0) > revision:
            return None
        self._revisions[key] = revision
        return key

    # -- KindHooks ------------------------------------------------------------------------

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        return Reservation(commit=lambda: self.put(obj))

    def removed(self, obj: Obj) -> None:
        self.drop(obj)
