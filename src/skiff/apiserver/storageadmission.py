"""Storage admission: the default StorageClass and the in-use protection finalizers.

Two of kube-apiserver's admission plugins, as :class:`KindHooks` on create:

* **DefaultStorageClass** -- a PersistentVolumeClaim created without
  ``spec.storageClassName`` (absent, not ``""``) and without the beta annotation
  ``volume.beta.kubernetes.io/storage-class`` gets the default class: the
  StorageClass annotated ``storageclass.kubernetes.io/is-default-class: "true"``
  (or the beta annotation).  Several defaults: the newest wins, then the
  alphabetically first name.  No default: the field stays unset.
* **StorageObjectInUseProtection** -- every new claim gets the finalizer
  ``kubernetes.io/pvc-protection`` and every new PersistentVolume
  ``kubernetes.io/pv-protection``, so a DELETE only marks them; the
  pvc-protection / pv-protection controllers remove the finalizer once no pod
  uses the claim / no claim is bound to the volume.

::

    POST persistentvolumeclaims ─▶ validate ─▶ claims.admit: storageClassName := default?
                                                             finalizers += pvc-protection
    POST persistentvolumes      ─▶ validate ─▶ volumes.admit: finalizers += pv-protection

The classes live in memory (rebuilt from the store at start, kept current by the
writes through this server), like the PriorityClasses of priority admission.
"""

from __future__ import annotations

from typing import Any


from ..api.kinds.core.volumes import STORAGE_CLASS_ANNOTATION
from ..api.kinds.storage import STORAGECLASSES, default_class
from ..storage.interface import Backend
from .context import ServerContext
from .hooks import NO_RESERVATION, ClassCache, DefaultClassAdmission, KindHooks, Reservation
from .objects import collection_prefix

Obj = dict[str, Any]

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"


def _add_finalizer(obj: Obj, finalizer: str) -> None:
    finalizers = obj["metadata"].setdefault("finalizers", [])
    if finalizer not in finalizers:
        finalizers.append(finalizer)


class StorageClasses(ClassCache):
    """The StorageClasses this server knows (hooks of ``storage.k8s.io/storageclasses``)."""

    def __init__(self) -> None:
        super().__init__(collection_prefix(STORAGECLASSES, ""))

    def default(self) -> Obj | None:
        return default_class(list(self.classes.values()))


class ClaimAdmission(DefaultClassAdmission):
    """PersistentVolumeClaims: DefaultStorageClass and pvc-protection on create."""

    def __init__(self, classes: StorageClasses) -> None:
        super().__init__(classes, "storageClassName", STORAGE_CLASS_ANNOTATION)

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        super().admit(obj, old)
        if old is None:
            _add_finalizer(obj, PVC_PROTECTION_FINALIZER)
        return NO_RESERVATION


class VolumeAdmission(KindHooks):
    """PersistentVolumes: pv-protection on create."""

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        if old is None:
            _add_finalizer(obj, PV_PROTECTION_FINALIZER)
        return NO_RESERVATION


class StorageAdmission:
    """The three hooks together; :meth:`install` them, :meth:`rebuild` at start."""

    def __init__(self) -> None:
        self.classes = StorageClasses()
        self.claims = ClaimAdmission(self.classes)
        self.volumes = VolumeAdmission()

    def install(self, ctx: ServerContext) -> None:
        ctx.hooks[("storage.k8s.io", "storageclasses")] = self.classes
        ctx.hooks[("", "persistentvolumeclaims")] = self.claims
        ctx.hooks[("", "persistentvolumes")] = self.volumes

    async def rebuild(self, backend: Backend) -> None:
        await self.classes.rebuild(backend)
