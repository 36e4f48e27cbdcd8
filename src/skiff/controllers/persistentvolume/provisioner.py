"""The local-path provisioner: dynamic volumes as directories on the node (like k3s and kind).

It serves StorageClasses whose ``provisioner`` is ``skiff.dev/local-path``, and
at start creates the class ``standard`` if it is missing -- the cluster default
(``storageclass.kubernetes.io/is-default-class: "true"``) unless another class
already is::

    standard   skiff.dev/local-path   Delete   WaitForFirstConsumer

Keys are ``claim:<ns>/<name>``, ``volume:<name>`` and ``default-class``::

    claim, unbound, annotated volume.kubernetes.io/storage-provisioner=skiff.dev/local-path
      WaitForFirstConsumer: wait for volume.kubernetes.io/selected-node (the scheduler)
      Immediate:            pick a Ready node (allowedTopologies, fewest volumes, name)
      ─▶ Provisioning event ─▶ mkdir <volumes_dir>/pvc-<claim uid> (0777)
      ─▶ create PV pvc-<claim uid>: hostPath (DirectoryOrCreate) on that directory,
         nodeAffinity kubernetes.io/hostname In [node], capacity = the request,
         the class's reclaim policy and mountOptions, claimRef pre-bound to the claim
      ─▶ ProvisioningSucceeded event (the binder then completes the binding)

    volume provisioned by us, policy Delete, Released (or deleted while not Bound)
      ─▶ remove its directory (only ever inside volumes_dir) ─▶ delete the PV
      ─▶ drop our finalizer external-provisioner.volume.kubernetes.io/finalizer

``volumes_dir`` is a constructor argument (``skiff up`` passes ``<data-dir>/volumes``);
by default ``.data/volumes`` under the working directory, where ``skiff up`` keeps
its data unless told otherwise.  Directories are made and removed on the
controller's host: right for ``skiff up`` (one machine); on other nodes the
kubelet creates the directory (hostPath DirectoryOrCreate) but nothing removes it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import shutil
from pathlib import Path
from typing import Any, ClassVar

from ...api.errors import StatusError
from ...client.informer import Informer
from ...client.resources import NODES, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from ..events import NORMAL, WARNING
from ..reconciler import Controller, ControllerContext
from . import matching as mt
from .matching import STORAGE_CLASSES

Obj = dict[str, Any]
log = logging.getLogger(__name__)

PROVISIONER = "skiff.dev/local-path"
DEFAULT_CLASS_NAME = "standard"
DEFAULT_VOLUMES_DIR = Path(".data") / "volumes"
FINALIZER = "external-provisioner.volume.kubernetes.io/finalizer"
HOSTNAME_LABEL = "kubernetes.io/hostname"
DEFAULT_CLASS_KEY = "default-class"
CLAIM, VOLUME = "claim:", "volume:"
RETRY = 5.0


def default_storage_class(is_default: bool) -> Obj:
    """The ``standard`` StorageClass skiff creates at start."""
    meta: Obj = {"name": DEFAULT_CLASS_NAME}
    if is_default:
        meta["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": meta,
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete",
            "volumeBindingMode": mt.WAIT_FOR_FIRST_CONSUMER, "allowVolumeExpansion": False}


def _node_ready(node: Obj) -> bool:
    for cond in (node.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def topology_allows(cls: Obj, node: Obj) -> bool:
    """The class's allowedTopologies admit the node (none: every node)."""
    terms = cls.get("allowedTopologies") or []
    if not terms:
        return True
    labels = (node.get("metadata") or {}).get("labels") or {}
    for term in terms:
        exprs = term.get("matchLabelExpressions") or []
        if all(labels.get(e.get("key")) in (e.get("values") or []) for e in exprs):
            return True
    return False


def provisioned_volume(claim: Obj, cls: Obj, node: Obj, path: Path) -> Obj:
    """The PersistentVolume for ``claim`` on ``node`` at ``path`` (pre-bound to the claim)."""
    meta, spec = claim["metadata"], claim.get("spec") or {}
    node_meta = node.get("metadata") or {}
    hostname = (node_meta.get("labels") or {}).get(HOSTNAME_LABEL) or node_meta.get("name", "")
    pv_spec: Obj = {
        "capacity": {"storage": str(((spec.get("resources") or {}).get("requests") or {}).get("storage"))},
        "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
        "persistentVolumeReclaimPolicy": cls.get("reclaimPolicy") or "Delete",
        "storageClassName": cls["metadata"]["name"],
        "volumeMode": spec.get("volumeMode") or "Filesystem",
        "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}]}]}},
        "claimRef": {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"], "name": meta["name"],
                     "uid": meta["uid"], "apiVersion": "v1", "resourceVersion": meta.get("resourceVersion", "")},
    }
    if cls.get("mountOptions"):
        pv_spec["mountOptions"] = list(cls["mountOptions"])
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"pvc-{meta['uid']}", "annotations": {mt.ANN_PROVISIONED_BY: PROVISIONER},
                         "finalizers": [FINALIZER]},
            "spec": pv_spec}


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)   # any container user may write, as local-path does


class LocalPathProvisioner(Controller):
    """Creates and deletes local-path volumes (see module docstring)."""

    name: ClassVar[str] = "local-path-provisioner"
    workers: ClassVar[int] = 2
    component: ClassVar[str] = PROVISIONER

    def __init__(self, ctx: ControllerContext, *, volumes_dir: Path | str | None = None) -> None:
        super().__init__(ctx)
        self.volumes_dir = Path(volumes_dir if volumes_dir is not None else DEFAULT_VOLUMES_DIR).absolute()
        self.claims: Informer = self.informer(PERSISTENTVOLUMECLAIMS)
        self.volumes: Informer = self.informer(PERSISTENTVOLUMES)
        self.classes: Informer = self.informer(STORAGE_CLASSES)
        self.nodes: Informer = self.informer(NODES)
        self.claims.add_handler(on_add=self._claim_changed, on_update=lambda _, new: self._claim_changed(new))
        self.volumes.add_handler(on_add=self._volume_changed, on_update=lambda _, new: self._volume_changed(new))
        self.enqueue_key(DEFAULT_CLASS_KEY)

    def _claim_changed(self, claim: Obj) -> None:
        if mt.annotations_of(claim).get(mt.ANN_STORAGE_PROVISIONER) == PROVISIONER:
            self.enqueue_key(CLAIM + mt.claim_key(claim))

    def _volume_changed(self, volume: Obj) -> None:
        if mt.annotations_of(volume).get(mt.ANN_PROVISIONED_BY) == PROVISIONER:
            self.enqueue_key(VOLUME + volume["metadata"]["name"])

    async def reconcile(self, key: str) -> float | None:
        if key == DEFAULT_CLASS_KEY:
            await self._ensure_default_class()
        elif key.startswith(CLAIM):
            claim = self.claims.get(key[len(CLAIM):])
            if claim is not None:
                return await self._provision(claim)
        elif key.startswith(VOLUME):
            volume = self.volumes.get(key[len(VOLUME):])
            if volume is not None:
                await self._reclaim(volume)
        return None

    async def _ensure_default_class(self) -> None:
        if self.classes.get(DEFAULT_CLASS_NAME) is not None:
            return
        others_default = any("true" in (mt.annotations_of(c).get("storageclass.kubernetes.io/is-default-class"),
                                        mt.annotations_of(c).get("storageclass.beta.kubernetes.io/is-default-class"))
                             for c in self.classes.list())
        try:
            await self.client.create(STORAGE_CLASSES, default_storage_class(not others_default))
            log.info("created StorageClass %s (%s)", DEFAULT_CLASS_NAME, PROVISIONER)
        except StatusError as e:
            if e.code != 409:
                raise

    # -- provisioning ------------------------------------------------------------------

    async def _provision(self, claim: Obj) -> float | None:
        spec = claim.get("spec") or {}
        if spec.get("volumeName") or mt.deleting(claim):
            return None
        cls = self.classes.get(mt.claim_class(claim))
        if cls is None or cls.get("provisioner") != PROVISIONER:
            return None
        pv_name = f"pvc-{claim['metadata']['uid']}"
        if self.volumes.get(pv_name) is not None:
            return None   # done already; the binder completes the binding
        if cls.get("volumeBindingMode") == mt.WAIT_FOR_FIRST_CONSUMER:
            node_name = mt.annotations_of(claim).get(mt.ANN_SELECTED_NODE)
            if not node_name:
                return None
            node = self.nodes.get(node_name)
        else:
            node = self._pick_node(cls)
        if node is None:
            self.record_event(claim, WARNING, "ProvisioningFailed",
                              "failed to provision volume: no node to put it on")
            return RETRY
        if spec.get("volumeMode") == "Block":
            self.record_event(claim, WARNING, "ProvisioningFailed",
                              "failed to provision volume: Block volume mode is not supported")
            return None
        self.record_event(claim, NORMAL, "Provisioning",
                          f'External provisioner is provisioning volume for claim "{mt.claim_key(claim)}"')
        path = self.volumes_dir / pv_name
        try:
            await asyncio.to_thread(_make_dir, path)
        except OSError as e:
            self.record_event(claim, WARNING, "ProvisioningFailed", f"failed to provision volume: {e}")
            return RETRY
        try:
            await self.client.create(PERSISTENTVOLUMES, provisioned_volume(claim, cls, node, path))
        except StatusError as e:
            if e.code != 409:
                self.record_event(claim, WARNING, "ProvisioningFailed", f"failed to provision volume: {e}")
                raise
            return None
        self.record_event(claim, NORMAL, "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}")
        return None

    def _pick_node(self, cls: Obj) -> Obj | None:
        """For Immediate classes: a Ready, schedulable node the class allows, with the fewest of our volumes."""
        load: dict[str, int] = {}
        for volume in self.volumes.list():
            if mt.annotations_of(volume).get(mt.ANN_PROVISIONED_BY) == PROVISIONER:
                for term in (((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}) \
                        .get("nodeSelectorTerms") or ():
                    for expr in term.get("matchExpressions") or ():
                        for value in expr.get("values") or ():
                            load[value] = load.get(value, 0) + 1
        nodes = [n for n in self.nodes.list() if _node_ready(n) and not (n.get("spec") or {}).get("unschedulable")
                 and topology_allows(cls, n)]
        return min(nodes, key=lambda n: (load.get(n["metadata"]["name"], 0), n["metadata"]["name"]), default=None)

    # -- deleting ----------------------------------------------------------------------

    async def _reclaim(self, volume: Obj) -> None:
        spec = volume.get("spec") or {}
        if spec.get("persistentVolumeReclaimPolicy") != "Delete":
            if mt.deleting(volume):
                await self._drop_finalizer(volume)   # retained: the data stays, the object may go
            return
        released = mt.phase(volume) in (mt.VOLUME_RELEASED, mt.VOLUME_FAILED)
        if not released and not (mt.deleting(volume) and mt.phase(volume) != mt.VOLUME_BOUND):
            return
        path = Path(str((spec.get("hostPath") or spec.get("local") or {}).get("path") or ""))
        if self._owned(path):
            await asyncio.to_thread(shutil.rmtree, path, True)
            log.info("deleted the directory of volume %s: %s", volume["metadata"]["name"], path)
        meta = volume["metadata"]
        if not mt.deleting(volume):
            try:
                await self.client.delete(PERSISTENTVOLUMES, meta["name"], preconditions={"uid": meta["uid"]})
            except StatusError as e:
                if e.code != 404:
                    raise
            return   # the deletion's update brings the volume back here for the finalizer
        await self._drop_finalizer(volume)

    def _owned(self, path: Path) -> bool:
        """Only directories this provisioner made are ever removed."""
        try:
            resolved = path.resolve()
        except OSError:
            return False
        return resolved.parent == self.volumes_dir.resolve() and resolved.name.startswith("pvc-")

    async def _drop_finalizer(self, volume: Obj) -> None:
        finalizers = (volume.get("metadata") or {}).get("finalizers") or []
        if FINALIZER not in finalizers:
            return
        body = copy.deepcopy(volume)
        body["metadata"]["finalizers"] = [f for f in finalizers if f != FINALIZER]
        try:
            await self.client.update(PERSISTENTVOLUMES, body)
        except StatusError as e:
            if e.code != 404:
                raise
