"""Controller references: who controls an object, adopting orphans, releasing strays.

An object is *controlled* by at most one owner: the ``ownerReferences`` entry
with ``controller: true``.  A workload controller considers exactly the objects
it controls plus orphans its selector matches, and keeps that set honest
(Kubernetes' ``ClaimObject``)::

                        selector matches          selector does not match
    controlled by us    keep                      release (drop our reference),
                                                  unless we are being deleted
    orphan              adopt (add our reference) ignore
                        unless it or we are being
                        deleted
    controlled by other ignore                    ignore

Adopting re-reads the owner from the API server first (once per claim) so that
an owner deleted meanwhile never adopts anything.  Both writes are strategic
merge patches on ``metadata.ownerReferences`` (merge key ``uid``) that also name
the object's UID, so a same-named successor is never touched.

:data:`CONTROLLER_INDEX` is an informer index from "controller UID" (or
``orphan/<namespace>`` for uncontrolled objects) to objects, so a controller
finds its children without scanning a whole namespace.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..api.errors import StatusError
from ..api.selectors import LabelSelector
from ..client.informer import Informer
from ..client.resources import ResourceLike
from ..client.rest import ApiClient

Obj = dict[str, Any]

CONTROLLER_INDEX = "skiff.dev/controller-uid"


def controller_ref(obj: Obj) -> Obj | None:
    """The owner reference with ``controller: true``, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def owner_reference(owner: Obj, *, api_version: str, kind: str) -> Obj:
    """A controller reference to ``owner`` (blocking its foreground deletion)."""
    meta = owner["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _controller_index(obj: Obj) -> list[str]:
    ref = controller_ref(obj)
    if ref is not None:
        return [str(ref.get("uid", ""))]
    return [f"orphan/{(obj.get('metadata') or {}).get('namespace', '')}"]


def ensure_controller_index(informer: Informer) -> None:
    """Add :data:`CONTROLLER_INDEX` to a (shared) informer."""
    informer.add_index(CONTROLLER_INDEX, _controller_index)


def candidates(informer: Informer, owner: Obj) -> list[Obj]:
    """Objects ``owner`` controls, plus the orphans in its namespace (from the cache)."""
    meta = owner["metadata"]
    return (informer.by_index(CONTROLLER_INDEX, str(meta["uid"]))
            + informer.by_index(CONTROLLER_INDEX, f"orphan/{meta.get('namespace', '')}"))


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == owner["metadata"]["uid"]


class Claimer:
    """Claims children for one owner during one reconcile (see module docstring)."""

    def __init__(self, client: ApiClient, resource: ResourceLike, owner: Obj, *,
                 api_version: str, kind: str, selector: LabelSelector,
                 refetch_owner: Callable[[], Awaitable[Obj | None]]) -> None:
        self.client = client
        self.resource = resource
        self.owner = owner
        self.ref = owner_reference(owner, api_version=api_version, kind=kind)
        self.selector = selector
        self._refetch_owner = refetch_owner
        self._may_adopt: bool | None = None

    @property
    def _owner_deleting(self) -> bool:
        return bool(self.owner["metadata"].get("deletionTimestamp"))

    async def claim(self, objs: list[Obj]) -> list[Obj]:
        """The objects the owner controls after adopting/releasing as needed."""
        owned: list[Obj] = []
        uid = self.ref["uid"]
        for obj in objs:
            ref = controller_ref(obj)
            matches = self.selector.matches_object(obj)
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches:
                    owned.append(obj)
                elif not self._owner_deleting:
                    await self._release(obj)
                continue
            if not matches or self._owner_deleting or obj["metadata"].get("deletionTimestamp"):
                continue
            if not await self._can_adopt():
                continue
            adopted = await self._adopt(obj)
            if adopted is not None:
                owned.append(adopted)
        return owned

    async def _can_adopt(self) -> bool:
        """Re-read the owner once: it must still exist, be the same, and not be deleting."""
        if self._may_adopt is None:
            fresh = await self._refetch_owner()
            self._may_adopt = (fresh is not None and fresh["metadata"].get("uid") == self.ref["uid"]
                               and not fresh["metadata"].get("deletionTimestamp"))
        return self._may_adopt

    async def _adopt(self, obj: Obj) -> Obj | None:
        meta = obj["metadata"]
        patch = {"metadata": {"ownerReferences": [self.ref], "uid": meta["uid"]}}
        try:
            result: Obj = await self.client.patch(self.resource, meta["name"], patch,
                                                  namespace=meta.get("namespace"),
                                                  patch_type="strategic")
            return result
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    async def _release(self, obj: Obj) -> None:
        meta = obj["metadata"]
        patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": self.ref["uid"]}],
                              "uid": meta["uid"]}}
        try:
            await self.client.patch(self.resource, meta["name"], patch,
                                    namespace=meta.get("namespace"), patch_type="strategic")
        except StatusError as e:
            if e.code not in (404, 422):  # gone, or no longer ours
                raise
