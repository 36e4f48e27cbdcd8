"""The volume binder (kube-controller-manager's ``persistentvolume-binder``).

It pairs PersistentVolumeClaims with PersistentVolumes and follows volumes
through their lives.  One queue holds ``claim:<ns>/<name>`` and ``volume:<name>``
keys.  A claim::

    not bind-completed ─ no class at all and a default class exists ─▶ give it that class
                       ─ volumeName "" ─ a matching volume? ──yes──▶ bind
      │                      │ no: class WaitForFirstConsumer, no selected node
      │                      │       ─▶ WaitForFirstConsumer / WaitForPodScheduled event
      │                      │     class set ─▶ annotate storage-provisioner,
      │                      │       ExternalProvisioning event (the provisioner acts)
      │                      │     no class ─▶ FailedBinding event
      │                      └ stays Pending
      │                volumeName set ─▶ that volume, if it exists and fits ─▶ bind
      │                                  (VolumeMismatch event when it does not fit)
    bind-completed ─▶ volume gone / no volumeName / volume claimed by another ─▶ Lost
                   ─▶ otherwise bind again (idempotent: fills in what is missing)

    bind = volume.claimRef := claim (bound-by-controller unless pre-bound), phase Bound;
           claim.volumeName := volume, bind-completed (+ bound-by-controller), status
           Bound with the volume's accessModes and capacity

A volume::

    no claimRef, or one without uid (pre-bound) ─▶ Available
    its claim gone (uid differs, or a live GET says 404) ─▶ Released, then by policy:
        Retain ─▶ stays Released          Recycle ─▶ Failed, VolumeFailedRecycle
        Delete ─▶ provisioned by an external provisioner: it deletes volume and PV;
                  otherwise the PV object is deleted (the data is left alone)
    claim bound to it ─▶ Bound;  claim bound elsewhere ─▶ released if provisioned for
    it (Delete), unbound if the controller bound it, else left alone

Every write is compare-and-swap on the cached resourceVersion, so two workers
(or a stale cache) can never bind one volume twice: the loser gets 409 and retries.
"""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timezone
from typing import Any, ClassVar

from ...api.errors import StatusError
from ...api.kinds.core.volumes import STORAGE_CLASS_ANNOTATION
from ...api.kinds.meta.cells import format_time
from ...api.kinds.storage import default_class
from ...client.informer import Informer, split_key
from ...client.resources import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS
from ..events import NORMAL, WARNING
from ..reconciler import Controller, ControllerContext
from . import matching as mt
from .matching import STORAGE_CLASSES

Obj = dict[str, Any]
log = logging.getLogger(__name__)

CLAIM, VOLUME = "claim:", "volume:"


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.setdefault("metadata", {})
    return meta


class PersistentVolumeController(Controller):
    """Binds claims to volumes and reclaims released volumes (see module docstring)."""

    name: ClassVar[str] = "persistentvolume-binder"
    workers: ClassVar[int] = 2
    component: ClassVar[str] = "persistentvolume-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__(ctx)
        self.claims: Informer = self.informer(PERSISTENTVOLUMECLAIMS)
        self.volumes: Informer = self.informer(PERSISTENTVOLUMES)
        self.classes: Informer = self.informer(STORAGE_CLASSES)
        self.pods: Informer = self.informer(PODS)
        self.pods.add_index(mt.PODS_BY_CLAIM, mt.pod_claim_keys)
        self.claims.add_handler(on_add=self._claim_changed, on_update=lambda _, new: self._claim_changed(new),
                                on_delete=self._claim_deleted)
        self.volumes.add_handler(on_add=self._volume_changed,
                                 on_update=lambda _, new: self._volume_changed(new),
                                 on_delete=self._volume_deleted)
        self.classes.add_handler(on_add=lambda _: self._pending_claims_again())

    # -- handlers: only compute keys ------------------------------------------------------

    def _claim_changed(self, claim: Obj) -> None:
        self.enqueue_key(CLAIM + mt.claim_key(claim))

    def _claim_deleted(self, claim: Obj) -> None:
        name = (claim.get("spec") or {}).get("volumeName")
        if name:
            self.enqueue_key(VOLUME + name)
        for volume in self.volumes.list():
            if mt.is_bound_to(volume, claim):
                self.enqueue_key(VOLUME + volume["metadata"]["name"])

    def _volume_changed(self, volume: Obj) -> None:
        self.enqueue_key(VOLUME + volume["metadata"]["name"])
        ref = (volume.get("spec") or {}).get("claimRef")
        if ref:
            self.enqueue_key(CLAIM + mt.key_of(ref.get("namespace", ""), ref.get("name", "")))
        elif mt.phase(volume) == mt.VOLUME_AVAILABLE:
            self._pending_claims_again()   # a free volume may serve a waiting claim

    def _volume_deleted(self, volume: Obj) -> None:
        ref = (volume.get("spec") or {}).get("claimRef")
        if ref:
            self.enqueue_key(CLAIM + mt.key_of(ref.get("namespace", ""), ref.get("name", "")))

    def _pending_claims_again(self) -> None:
        for claim in self.claims.list():
            if not mt.is_fully_bound(claim):
                self.enqueue_key(CLAIM + mt.claim_key(claim))

    # -- reconcile -----------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        if key.startswith(CLAIM):
            claim = self.claims.get(key[len(CLAIM):])
            if claim is not None:
                if mt.ANN_BIND_COMPLETED in mt.annotations_of(claim):
                    await self._sync_bound_claim(claim)
                else:
                    await self._sync_unbound_claim(claim)
        elif key.startswith(VOLUME):
            volume = self.volumes.get(key[len(VOLUME):])
            if volume is not None:
                await self._sync_volume(volume)
        return None

    def storage_class(self, name: str) -> Obj | None:
        return self.classes.get(name) if name else None

    async def _sync_unbound_claim(self, claim: Obj) -> None:
        wanted = (claim.get("spec") or {}).get("volumeName")
        if not wanted and await self._assign_default_class(claim):
            return   # its update brings the claim back
        if not wanted:
            cls = self.storage_class(mt.claim_class(claim))
            delay = mt.is_delay_binding(claim, cls)
            volume = mt.find_best_match(claim, self.volumes.list(), delay_binding=delay)
            if volume is not None:
                await self._bind(volume, claim)
                return
            if delay and mt.ANN_SELECTED_NODE not in mt.annotations_of(claim):
                self._wait_for_consumer(claim)
            elif mt.claim_class(claim):
                claim = await self._provision(claim, cls)
            else:
                self.record_event(claim, NORMAL, "FailedBinding",
                                  "no persistent volumes available for this claim and no storage class is set")
            await self._claim_status(claim, mt.CLAIM_PENDING, None)
            return
        volume = self.volumes.get(wanted)
        if volume is None:
            await self._claim_status(claim, mt.CLAIM_PENDING, None)   # asked for one not (yet) there
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or mt.is_bound_to(volume, claim):
            why = mt.mismatch(volume, claim) if not ref else ""
            if why:
                self.record_event(claim, WARNING, "VolumeMismatch",
                                  f'Cannot bind to requested volume "{wanted}": {why}')
                await self._claim_status(claim, mt.CLAIM_PENDING, None)
                return
            await self._bind(volume, claim)
            return
        if mt.ANN_BOUND_BY_CONTROLLER in mt.annotations_of(claim):
            raise RuntimeError(f"claim {mt.claim_key(claim)} bound to volume {wanted} "
                               f"that is claimed by {ref.get('namespace')}/{ref.get('name')}")
        await self._claim_status(claim, mt.CLAIM_PENDING, None)   # someone else has it: wait

    async def _sync_bound_claim(self, claim: Obj) -> None:
        wanted = (claim.get("spec") or {}).get("volumeName")
        if not wanted:
            await self._lose(claim, "ClaimLost", "Bound claim has lost reference to PersistentVolume. "
                                                 "Data on the volume is lost!")
            return
        volume = self.volumes.get(wanted)
        if volume is None:
            await self._lose(claim, "ClaimLost", "Bound claim has lost its PersistentVolume. "
                                                 "Data on the volume is lost!")
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or ref.get("uid") == claim["metadata"].get("uid"):
            await self._bind(volume, claim)
            return
        await self._lose(claim, "ClaimMisbound", "Two claims are bound to the same volume, "
                                                 "this one is bound incorrectly")

    async def _assign_default_class(self, claim: Obj) -> bool:
        """A claim made without a class, before any default existed, gets today's default."""
        if "storageClassName" in (claim.get("spec") or {}) and claim["spec"]["storageClassName"] is not None:
            return False
        if STORAGE_CLASS_ANNOTATION in mt.annotations_of(claim):
            return False
        chosen = default_class(self.classes.list())
        if chosen is None:
            return False
        body = copy.deepcopy(claim)
        body["spec"]["storageClassName"] = chosen["metadata"]["name"]
        await self.client.update(PERSISTENTVOLUMECLAIMS, body)
        log.info("claim %s gets the default StorageClass %s", mt.claim_key(claim), chosen["metadata"]["name"])
        return True

    def _wait_for_consumer(self, claim: Obj) -> None:
        waiting = sorted(p["metadata"]["name"] for p in self.pods.by_index(mt.PODS_BY_CLAIM, mt.claim_key(claim))
                         if not (p.get("spec") or {}).get("nodeName") and not mt.pod_terminated(p))
        if not waiting:
            self.record_event(claim, NORMAL, "WaitForFirstConsumer",
                              "waiting for first consumer to be created before binding")
        elif len(waiting) == 1:
            self.record_event(claim, NORMAL, "WaitForPodScheduled", f"waiting for pod {waiting[0]} to be scheduled")
        else:
            self.record_event(claim, NORMAL, "WaitForPodScheduled",
                              f"waiting for pods {','.join(waiting)} to be scheduled")

    async def _provision(self, claim: Obj, cls: Obj | None) -> Obj:
        """Hand the claim to its class's provisioner: annotate it, say who is expected to act."""
        if cls is None:
            self.record_event(claim, WARNING, "ProvisioningFailed",
                              f'storageclass.storage.k8s.io "{mt.claim_class(claim)}" not found')
            return claim
        provisioner = str(cls.get("provisioner") or "")
        if provisioner.startswith("kubernetes.io/"):   # an in-tree plugin name: none exists here
            self.record_event(claim, WARNING, "ProvisioningFailed", f"no volume plugin matched name: {provisioner}")
            return claim
        ann = mt.annotations_of(claim)
        if ann.get(mt.ANN_STORAGE_PROVISIONER) != provisioner or ann.get(mt.ANN_BETA_STORAGE_PROVISIONER) != provisioner:
            body = copy.deepcopy(claim)
            annotations = _meta(body).setdefault("annotations", {})
            annotations[mt.ANN_STORAGE_PROVISIONER] = provisioner
            annotations[mt.ANN_BETA_STORAGE_PROVISIONER] = provisioner
            claim = await self.client.update(PERSISTENTVOLUMECLAIMS, body)
        self.record_event(claim, NORMAL, "ExternalProvisioning",
                          f'waiting for a volume to be created, either by external provisioner "{provisioner}" '
                          "or manually created by system administrator")
        return claim

    # -- binding ---------------------------------------------------------------------------

    async def _bind(self, volume: Obj, claim: Obj) -> None:
        volume = await self._bind_volume_to_claim(volume, claim)
        volume = await self._volume_phase(volume, mt.VOLUME_BOUND)
        claim = await self._bind_claim_to_volume(claim, volume)
        await self._claim_status(claim, mt.CLAIM_BOUND, volume)

    async def _bind_volume_to_claim(self, volume: Obj, claim: Obj) -> Obj:
        meta = claim["metadata"]
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        if ref.get("uid") == meta.get("uid") and ref.get("name") == meta.get("name") \
                and ref.get("namespace") == meta.get("namespace"):
            return volume
        body = copy.deepcopy(volume)
        body["spec"]["claimRef"] = {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
                                    "name": meta["name"], "uid": meta["uid"], "apiVersion": "v1",
                                    "resourceVersion": meta.get("resourceVersion", "")}
        if not ref:
            _meta(body).setdefault("annotations", {})[mt.ANN_BOUND_BY_CONTROLLER] = mt.YES
        updated: Obj = await self.client.update(PERSISTENTVOLUMES, body)
        return updated

    async def _bind_claim_to_volume(self, claim: Obj, volume: Obj) -> Obj:
        name = volume["metadata"]["name"]
        spec = claim.get("spec") or {}
        ann = mt.annotations_of(claim)
        if spec.get("volumeName") == name and ann.get(mt.ANN_BIND_COMPLETED) == mt.YES:
            return claim
        body = copy.deepcopy(claim)
        annotations = _meta(body).setdefault("annotations", {})
        if spec.get("volumeName") != name:
            body.setdefault("spec", {})["volumeName"] = name
            annotations[mt.ANN_BOUND_BY_CONTROLLER] = mt.YES
        annotations[mt.ANN_BIND_COMPLETED] = mt.YES
        updated: Obj = await self.client.update(PERSISTENTVOLUMECLAIMS, body)
        return updated

    async def _claim_status(self, claim: Obj, phase: str, volume: Obj | None) -> Obj:
        status = claim.get("status") or {}
        want: Obj = {"phase": phase}
        if volume is not None:
            vspec = volume.get("spec") or {}
            want["accessModes"] = vspec.get("accessModes")
            want["capacity"] = vspec.get("capacity")
        have = {k: status.get(k) for k in want}
        if have == want and (volume is not None or not (status.get("accessModes") or status.get("capacity"))):
            return claim
        body = copy.deepcopy(claim)
        new_status = body.setdefault("status", {})
        new_status.update(want)
        if volume is None:
            new_status.pop("accessModes", None)
            new_status.pop("capacity", None)
        updated: Obj = await self.client.update(PERSISTENTVOLUMECLAIMS, body, subresource="status")
        return updated

    async def _lose(self, claim: Obj, reason: str, message: str) -> None:
        if mt.phase(claim) != mt.CLAIM_LOST:
            self.record_event(claim, WARNING, reason, message)
        await self._claim_status(claim, mt.CLAIM_LOST, None)

    async def _volume_phase(self, volume: Obj, phase: str, message: str = "") -> Obj:
        status = volume.get("status") or {}
        if status.get("phase") == phase and (status.get("message") or "") == message:
            return volume
        body = copy.deepcopy(volume)
        new_status = body.setdefault("status", {})
        if new_status.get("phase") != phase:
            new_status["lastPhaseTransitionTime"] = format_time(
                datetime.fromtimestamp(self.clock.time(), timezone.utc))
        new_status["phase"] = phase
        if message:
            new_status["message"] = message
        else:
            new_status.pop("message", None)
        updated: Obj = await self.client.update(PERSISTENTVOLUMES, body, subresource="status")
        return updated

    # -- volumes -------------------------------------------------------------------------

    async def _sync_volume(self, volume: Obj) -> None:
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or not ref.get("uid"):
            await self._volume_phase(volume, mt.VOLUME_AVAILABLE)
            return
        claim = await self._claim_of(ref)
        if claim is None:
            await self._release(volume)
            return
        bound_to = (claim.get("spec") or {}).get("volumeName")
        if not bound_to:
            self.enqueue_key(CLAIM + mt.claim_key(claim))   # the claim side finishes the binding
        elif bound_to == volume["metadata"]["name"]:
            await self._volume_phase(volume, mt.VOLUME_BOUND)
        elif mt.ANN_PROVISIONED_BY in mt.annotations_of(volume) and _policy(volume) == "Delete":
            await self._release(volume)    # provisioned for a claim that went elsewhere
        elif mt.ANN_BOUND_BY_CONTROLLER in mt.annotations_of(volume):
            body = copy.deepcopy(volume)   # our own binding lost the race: free the volume
            body["spec"].pop("claimRef", None)
            _meta(body).get("annotations", {}).pop(mt.ANN_BOUND_BY_CONTROLLER, None)
            updated = await self.client.update(PERSISTENTVOLUMES, body)
            await self._volume_phase(updated, mt.VOLUME_AVAILABLE)

    async def _claim_of(self, ref: Obj) -> Obj | None:
        """The claim a claimRef names, if it is still that claim (cache, then a live GET)."""
        key = mt.key_of(ref.get("namespace", ""), ref.get("name", ""))
        claim = self.claims.get(key)
        if claim is None:
            namespace, name = split_key(key)
            try:
                claim = await self.client.get(PERSISTENTVOLUMECLAIMS, name, namespace=namespace)
            except StatusError as e:
                if e.code != 404:
                    raise
                return None
        return claim if claim["metadata"].get("uid") == ref.get("uid") else None

    async def _release(self, volume: Obj) -> None:
        if mt.phase(volume) not in (mt.VOLUME_RELEASED, mt.VOLUME_FAILED):
            log.info("volume %s is released; reclaim policy %s", volume["metadata"]["name"], _policy(volume))
            volume = await self._volume_phase(volume, mt.VOLUME_RELEASED)
        policy = _policy(volume)
        if policy == "Recycle":
            if mt.phase(volume) != mt.VOLUME_FAILED:
                message = "No recycler plugin found for the volume!"
                self.record_event(volume, WARNING, "VolumeFailedRecycle", message)
                await self._volume_phase(volume, mt.VOLUME_FAILED, message)
        elif policy == "Delete":
            provisioner = mt.annotations_of(volume).get(mt.ANN_PROVISIONED_BY, "")
            if provisioner and not provisioner.startswith("kubernetes.io/"):
                return   # its external provisioner deletes the storage, then the object
            if not mt.deleting(volume):
                meta = volume["metadata"]
                try:
                    await self.client.delete(PERSISTENTVOLUMES, meta["name"], preconditions={
                        "uid": meta["uid"], "resourceVersion": meta["resourceVersion"]})
                except StatusError as e:
                    if e.code != 404:
                        raise


def _policy(volume: Obj) -> str:
    return str((volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Retain")
