"""The garbage collector's picture of the cluster: who owns whom, by UID.

Every object the collector watches becomes a :class:`GraphNode`; every
``metadata.ownerReferences`` entry becomes an edge from the dependent to its
owner.  An owner that has not been observed (yet, or ever) is a *virtual*
node, built from the reference alone; the collector checks with the API
whether it exists::

        Deployment web (uid d1)
             ▲ ownerReferences[uid=d1, blockOwnerDeletion]
        ReplicaSet web-7d4b9 (uid r1)
             ▲              ▲
        Pod web-7d4b9-a  Pod web-7d4b9-b

:meth:`DependencyGraph.observe` and :meth:`DependencyGraph.forget` apply one
informer event and return the :class:`Work` it creates -- which UIDs need an
"attempt to delete" (is this object garbage? is this owner done waiting for
its dependents?) and which owners need their dependents orphaned:

* a new reference to an unknown owner          -> verify the (virtual) owner
* an object enters foreground deletion          -> it and all its dependents
  (``deletionTimestamp`` + ``foregroundDeletion``)
* an object enters orphan deletion (``orphan``) -> orphan its dependents
* a reference that blocked an owner goes away   -> that owner
* an object disappears                          -> its dependents (their owner
                                                   may be gone) and owners that
                                                   wait for their dependents

The graph is plain data, changed only from informer handlers (one event at a
time on the event loop), so it needs no locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

Obj = dict[str, Any]

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"


@dataclass(frozen=True)
class Identity:
    """Where an object lives, as an ownerReference (plus a namespace) names it."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where} ({self.uid})"


@dataclass
class GraphNode:
    identity: Identity
    owners: list[Obj] = field(default_factory=list)  # ownerReferences as last observed
    dependents: set[str] = field(default_factory=set)  # UIDs
    observed: bool = True  # False: virtual, known only from someone's ownerReference
    being_deleted: bool = False  # has a deletionTimestamp
    deleting_dependents: bool = False  # ... and the foregroundDeletion finalizer
    finalizers: tuple[str, ...] = ()


@dataclass
class Work:
    """What an event asks the collector to do, by UID."""

    attempt_delete: set[str] = field(default_factory=set)
    attempt_orphan: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.attempt_delete or self.attempt_orphan)


def identity_of(obj: Obj) -> Identity:
    meta = obj.get("metadata") or {}
    return Identity(str(obj.get("apiVersion", "")), str(obj.get("kind", "")),
                    str(meta.get("namespace") or ""), str(meta.get("name", "")),
                    str(meta.get("uid", "")))


def _refs(obj: Obj) -> list[Obj]:
    return [r for r in (obj.get("metadata") or {}).get("ownerReferences") or []
            if isinstance(r, dict) and r.get("uid")]


def blocks(ref: Obj) -> bool:
    return bool(ref.get("blockOwnerDeletion"))


#: ``(apiVersion, kind) -> namespaced?`` (None when unknown); decides a virtual
#: owner's namespace: the dependent's for namespaced kinds, none for cluster ones.
ScopeOf = Callable[[str, str], "bool | None"]


class DependencyGraph:
    """Owner/dependent edges of every observed object (see module docstring)."""

    def __init__(self, scope_of: ScopeOf) -> None:
        self._scope_of = scope_of
        self.nodes: dict[str, GraphNode] = {}

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, uid: str) -> GraphNode | None:
        return self.nodes.get(uid)

    def blocking_dependents(self, node: GraphNode) -> list[GraphNode]:
        """Dependents whose reference to ``node`` has ``blockOwnerDeletion: true``."""
        out = []
        for uid in node.dependents:
            dep = self.nodes.get(uid)
            if dep is None:
                continue
            if any(r.get("uid") == node.identity.uid and blocks(r) for r in dep.owners):
                out.append(dep)
        return out

    # -- events -------------------------------------------------------------------

    def observe(self, obj: Obj) -> Work:
        """An object was added or updated (or seen in a re-list)."""
        work = Work()
        ident = identity_of(obj)
        if not ident.uid:
            return work
        meta = obj.get("metadata") or {}
        owners = _refs(obj)
        finalizers = tuple(meta.get("finalizers") or ())
        deleting = bool(meta.get("deletionTimestamp"))
        node = self.nodes.get(ident.uid)
        was_orphaning = was_foreground = False
        if node is None:
            node = GraphNode(ident)
            self.nodes[ident.uid] = node
            self._add_dependent(node, owners, work)
        else:
            was_orphaning = node.being_deleted and ORPHAN in node.finalizers
            was_foreground = node.deleting_dependents
            if not node.observed:  # a virtual owner turned out to exist
                node.observed = True
            node.identity = ident
            self._update_owners(node, owners, work)
        node.owners = owners
        node.finalizers = finalizers
        node.being_deleted = deleting
        node.deleting_dependents = deleting and FOREGROUND in finalizers
        if deleting and ORPHAN in finalizers and not was_orphaning:
            work.attempt_orphan.add(ident.uid)
        if node.deleting_dependents and not was_foreground:
            work.attempt_delete.add(ident.uid)
            work.attempt_delete.update(node.dependents)
        return work

    def forget(self, obj: Obj) -> Work:
        """An object was deleted (observed by an informer)."""
        return self.remove(identity_of(obj).uid)

    def remove(self, uid: str) -> Work:
        """Drop ``uid`` (deleted, or a virtual node verified absent)."""
        work = Work()
        node = self.nodes.pop(uid, None)
        if node is None:
            return work
        for ref in node.owners:
            owner = self.nodes.get(str(ref["uid"]))
            if owner is None:
                continue
            owner.dependents.discard(uid)
            if owner.deleting_dependents:
                work.attempt_delete.add(owner.identity.uid)
            self._drop_if_unused(owner)
        work.attempt_delete.update(d for d in node.dependents if d in self.nodes)
        return work

    # -- edges --------------------------------------------------------------------

    def _owner_identity(self, dependent: GraphNode, ref: Obj) -> Identity:
        api_version, kind = str(ref.get("apiVersion", "")), str(ref.get("kind", ""))
        namespaced = self._scope_of(api_version, kind)
        ns = dependent.identity.namespace if namespaced or namespaced is None else ""
        return Identity(api_version, kind, ns, str(ref.get("name", "")), str(ref["uid"]))

    def _add_dependent(self, node: GraphNode, refs: list[Obj], work: Work) -> None:
        for ref in refs:
            uid = str(ref["uid"])
            owner = self.nodes.get(uid)
            if owner is None:
                owner = GraphNode(self._owner_identity(node, ref), observed=False)
                self.nodes[uid] = owner
                work.attempt_delete.add(uid)  # does it exist at all?
            elif not owner.observed:
                work.attempt_delete.add(uid)
            owner.dependents.add(node.identity.uid)
            if owner.deleting_dependents:
                work.attempt_delete.add(node.identity.uid)

    def _update_owners(self, node: GraphNode, new: list[Obj], work: Work) -> None:
        old_by_uid = {str(r["uid"]): r for r in node.owners}
        new_by_uid = {str(r["uid"]): r for r in new}
        added = [r for u, r in new_by_uid.items() if u not in old_by_uid]
        removed = [r for u, r in old_by_uid.items() if u not in new_by_uid]
        unblocked = [r for u, r in old_by_uid.items()
                     if u in new_by_uid and blocks(r) and not blocks(new_by_uid[u])]
        for ref in removed + unblocked:
            owner = self.nodes.get(str(ref["uid"]))
            if owner is not None and owner.deleting_dependents and blocks(ref):
                work.attempt_delete.add(owner.identity.uid)
        for ref in removed:
            owner = self.nodes.get(str(ref["uid"]))
            if owner is not None:
                owner.dependents.discard(node.identity.uid)
                self._drop_if_unused(owner)
        self._add_dependent(node, added, work)

    def _drop_if_unused(self, node: GraphNode) -> None:
        if not node.observed and not node.dependents:
            self.nodes.pop(node.identity.uid, None)
