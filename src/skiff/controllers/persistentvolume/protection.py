"""In-use protection: a claim a pod uses, or a volume a claim holds, is not removed under them.

The API server gives every new claim the finalizer ``kubernetes.io/pvc-protection``
and every new volume ``kubernetes.io/pv-protection`` (storage admission), so a
DELETE only marks them Terminating.  These two controllers take the finalizer
off when it is safe, and put it back on objects that lack it::

    pvc-protection   claim deleted ─▶ a scheduled, not finished pod mounts it?
                       cache says no ─▶ ask the API server (a LIST of the namespace's
                       pods: the cache may not have seen a new pod yet) ─▶ still no
                       ─▶ remove the finalizer (the claim goes)
                     a pod using a Terminating claim goes away ─▶ look again

    pv-protection    volume deleted and not Bound ─▶ remove the finalizer
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from ...api.errors import StatusError
from ...client.informer import Informer, split_key
from ...client.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS, ResourceLike
from ..reconciler import Controller, ControllerContext
from . import matching as mt

Obj = dict[str, Any]

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"


def pod_uses_claim(pod: Obj, claim_name: str) -> bool:
    """A pod holds a claim once it is on a node, until it has finished."""
    if not (pod.get("spec") or {}).get("nodeName") or mt.pod_terminated(pod):
        return False
    return claim_name in mt.pod_claim_names(pod)


async def _set_finalizer(client: Any, resource: ResourceLike, obj: Obj, finalizer: str, present: bool) -> None:
    """Add or remove one finalizer (compare-and-swap on the cached resourceVersion)."""
    finalizers = list((obj.get("metadata") or {}).get("finalizers") or [])
    if (finalizer in finalizers) == present:
        return
    body = copy.deepcopy(obj)
    body["metadata"]["finalizers"] = finalizers + [finalizer] if present else \
        [f for f in finalizers if f != finalizer]
    try:
        await client.update(resource, body)
    except StatusError as e:
        if e.code != 404:
            raise


class PVCProtectionController(Controller):
    """Keeps claims that pods use (see module docstring)."""

    name: ClassVar[str] = "pvc-protection"
    workers: ClassVar[int] = 2
    component: ClassVar[str] = "pvc-protection-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.claims: Informer = self.informer(PERSISTENTVOLUMECLAIMS)
        self.pods: Informer = self.informer(PODS)
        self.pods.add_index(mt.PODS_BY_CLAIM, mt.pod_claim_keys)
        self.claims.add_handler(on_add=self._claim_changed, on_update=lambda _, new: self._claim_changed(new))
        self.pods.add_handler(on_update=self._pod_updated, on_delete=self._pod_gone)

    def _claim_changed(self, claim: Obj) -> None:
        has = PVC_PROTECTION_FINALIZER in (claim["metadata"].get("finalizers") or [])
        if mt.deleting(claim) == has:   # Terminating and protected, or live and unprotected
            self.enqueue_key(mt.claim_key(claim))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if mt.pod_terminated(new) and not mt.pod_terminated(old):
            self._pod_gone(new)

    def _pod_gone(self, pod: Obj) -> None:
        for key in mt.pod_claim_keys(pod):
            claim = self.claims.get(key)
            if claim is not None and mt.deleting(claim):
                self.enqueue_key(key)

    async def reconcile(self, key: str) -> float | None:
        claim = self.claims.get(key)
        if claim is None:
            return None
        if not mt.deleting(claim):
            await _set_finalizer(self.client, PERSISTENTVOLUMECLAIMS, claim, PVC_PROTECTION_FINALIZER, True)
            return None
        if PVC_PROTECTION_FINALIZER not in (claim["metadata"].get("finalizers") or []):
            return None
        if await self._in_use(claim):
            return None   # the pod's deletion requeues the claim
        await _set_finalizer(self.client, PERSISTENTVOLUMECLAIMS, claim, PVC_PROTECTION_FINALIZER, False)
        return None

    async def _in_use(self, claim: Obj) -> bool:
        key = mt.claim_key(claim)
        namespace, name = split_key(key)
        if any(pod_uses_claim(p, name) for p in self.pods.by_index(mt.PODS_BY_CLAIM, key)):
            return True
        live = await self.client.list(PODS, namespace=namespace)
        return any(pod_uses_claim(p, name) for p in live.items)


class PVProtectionController(Controller):
    """Keeps volumes that claims are bound to (see module docstring)."""

    name: ClassVar[str] = "pv-protection"
    workers: ClassVar[int] = 1
    component: ClassVar[str] = "pv-protection-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.volumes: Informer = self.informer(PERSISTENTVOLUMES)
        self.volumes.add_handler(on_add=self._changed, on_update=lambda _, new: self._changed(new))

    def _changed(self, volume: Obj) -> None:
        has = PV_PROTECTION_FINALIZER in (volume["metadata"].get("finalizers") or [])
        if mt.deleting(volume) == has:
            self.enqueue_key(volume["metadata"]["name"])

    async def reconcile(self, key: str) -> float | None:
        volume = self.volumes.get(key)
        if volume is None:
            return None
        if not mt.deleting(volume):
            await _set_finalizer(self.client, PERSISTENTVOLUMES, volume, PV_PROTECTION_FINALIZER, True)
        elif mt.phase(volume) != mt.VOLUME_BOUND:
            await _set_finalizer(self.client, PERSISTENTVOLUMES, volume, PV_PROTECTION_FINALIZER, False)
        return None
