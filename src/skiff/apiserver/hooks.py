"""Per-kind storage hooks: the few behaviours the generic write path cannot express as data.

A :class:`KindHooks` is looked up by ``(group, plural)``.  The generic write path
calls, in order::

    create:  admit(obj, None)   -> Reservation ; store.create ; reservation.commit()
    update:  admit(obj, old)    -> Reservation ; store.update ; reservation.commit()
                                                  (failure: reservation.abort())
    delete:  grace_period(obj, requested) ; blocks_removal(obj) ; mark_deleting(obj)
             then store.update (deletion pending) or store.delete ; removed(obj)

A :class:`Reservation` lets a hook take a resource (a ClusterIP, a NodePort)
before the write and give it back when the write does not happen (conflict,
dry run).  Hooks raise :class:`~skiff.api.errors.StatusError` to refuse a write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import orjson

from ..storage.interface import Backend

Obj = dict[str, Any]


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Reservation:
    """What to do once the write is durable (commit) or abandoned (abort)."""

    commit: Callable[[], None] = _nothing
    abort: Callable[[], None] = _nothing


NO_RESERVATION = Reservation()


class KindHooks:
    """No-op hooks; subclasses override what their kind needs."""

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        """Check/complete ``obj`` before it is written (``old`` is None on create)."""
        return NO_RESERVATION

    def removed(self, obj: Obj) -> None:
        """``obj`` was deleted from the store."""
        return None

    def grace_period(self, obj: Obj, requested: int | None) -> int:
        """Seconds a DELETE waits before the object goes (0 = at once, no graceful deletion)."""
        return 0

    def blocks_removal(self, obj: Obj) -> bool:
        """Something besides ``metadata.finalizers`` keeps ``obj`` (a Namespace's spec.finalizers)."""
        return False

    def mark_deleting(self, obj: Obj) -> None:
        """Adjust an object whose deletion is now pending (a Namespace turns Terminating)."""
        return None

    def check_delete(self, obj: Obj) -> None:
        """Refuse a DELETE of ``obj`` by raising a StatusError (the system Namespaces)."""
        return None


DEFAULT_HOOKS = KindHooks()


class ClassCache(KindHooks):
    """The objects of a cluster-scoped "class" kind by name (PriorityClass, StorageClass,
    IngressClass): read from the store at start (:meth:`rebuild`), then kept current
    by the writes through this server, so admission of other kinds reads them for free."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix  # the kind's key prefix in the store
        self.classes: dict[str, Obj] = {}

    async def rebuild(self, backend: Backend) -> None:
        listed = await backend.range(self.prefix)
        self.classes = {}
        for kv in listed.kvs:
            obj = orjson.loads(kv.value)
            self.classes[obj["metadata"]["name"]] = obj

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        name = obj["metadata"]["name"]
        return Reservation(commit=lambda: self.classes.__setitem__(name, obj))

    def removed(self, obj: Obj) -> None:
        self.classes.pop(obj["metadata"]["name"], None)

    def default(self) -> Obj | None:
        """The class new objects get when they name none (None: no default)."""
        return None


class DefaultClassAdmission(KindHooks):
    """On create, an object naming no class (neither ``spec.<field>`` nor the kind's legacy
    annotation) gets its ClassCache's default: DefaultStorageClass, DefaultIngressClass."""

    def __init__(self, classes: ClassCache, field: str, legacy_annotation: str) -> None:
        self.classes = classes
        self.field = field
        self.legacy_annotation = legacy_annotation

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        if old is None:
            spec = obj.setdefault("spec", {})
            annotations = obj["metadata"].get("annotations") or {}
            if spec.get(self.field) is None and self.legacy_annotation not in annotations:
                chosen = self.classes.default()
                if chosen is not None:
                    spec[self.field] = chosen["metadata"]["name"]
        return NO_RESERVATION
