"""VolumeRestrictions: volumes that cannot be shared, and ReadWriteOncePod claims.

PreFilter looks up each PersistentVolumeClaim the pod mounts in the snapshot
(``snapshot.pvcs``).  A missing claim rejects the pod everywhere
(``persistentvolumeclaim "<name>" not found``, unresolvable).  A claim with the
``ReadWriteOncePod`` access mode that another pod already uses rejects every
node (``node has pod using PersistentVolumeClaim with the same name and
ReadWriteOncePod access mode``); preemption may free it, so the in-use count is
kept up to date when preemption simulates removing pods.

Filter also refuses a node where another pod already mounts the same GCE PD,
AWS EBS volume, ISCSI IQN or RBD image read-write (``node(s) had no available disk``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..framework import Handle
from ..interface import SKIP, SUCCESS, CycleState, PreFilterResult, Status, unresolvable, unschedulable
from ..podinfo import PodInfo
from ..snapshot import NodeInfo, Snapshot

NAME = "VolumeRestrictions"
ERR_REASON_DISK_CONFLICT = "node(s) had no available disk"
ERR_REASON_RWOP_CONFLICT = ("node has pod using PersistentVolumeClaim with the same name "
                            "and ReadWriteOncePod access mode")
_KEY = "PreFilter" + NAME
_DISK_KINDS = ("gcePersistentDisk", "awsElasticBlockStore", "rbd", "iscsi")


@dataclass
class _State:
    rwop_claims: frozenset[str]       # "ns/name" of the pod's ReadWriteOncePod claims
    conflicts: int                    # how many of them another pod uses

    def clone(self) -> _State:
        return _State(self.rwop_claims, self.conflicts)

    def update(self, other: PodInfo, sign: int) -> None:
        for claim in other.pvc_names:
            if f"{other.namespace}/{claim}" in self.rwop_claims:
                self.conflicts += sign


def _volume_conflict(volume: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    for ev in ((other.get("spec") or {}).get("volumes") or ()):
        gce, egce = volume.get("gcePersistentDisk"), ev.get("gcePersistentDisk")
        if gce and egce and gce.get("pdName") == egce.get("pdName") and not (gce.get("readOnly") and egce.get("readOnly")):
            return True
        ebs, eebs = volume.get("awsElasticBlockStore"), ev.get("awsElasticBlockStore")
        if ebs and eebs and ebs.get("volumeID") == eebs.get("volumeID"):
            return True
        iscsi, eiscsi = volume.get("iscsi"), ev.get("iscsi")
        if iscsi and eiscsi and iscsi.get("iqn") == eiscsi.get("iqn") and not (iscsi.get("readOnly") and eiscsi.get("readOnly")):
            return True
        rbd, erbd = volume.get("rbd"), ev.get("rbd")
        if rbd and erbd and set(rbd.get("monitors") or ()) & set(erbd.get("monitors") or ()) \
                and rbd.get("pool", "rbd") == erbd.get("pool", "rbd") and rbd.get("image") == erbd.get("image") \
                and not (rbd.get("readOnly") and erbd.get("readOnly")):
            return True
    return False


class VolumeRestrictions:
    name = NAME

    def pre_filter(self, state: CycleState, pod: PodInfo,
                   snapshot: Snapshot) -> tuple[PreFilterResult | None, Status]:
        volumes = (pod.pod.get("spec") or {}).get("volumes") or ()
        needs_disk_check = any(any(v.get(k) for k in _DISK_KINDS) for v in volumes)
        rwop: set[str] = set()
        for claim in pod.pvc_names:
            pvc = snapshot.pvc(pod.namespace, claim)
            if pvc is None:
                return None, unresolvable(f'persistentvolumeclaim "{claim}" not found')
            if "ReadWriteOncePod" in ((pvc.get("spec") or {}).get("accessModes") or ()):
                rwop.add(f"{pod.namespace}/{claim}")
        conflicts = sum(1 for key in rwop if snapshot.pvc_in_use(key))
        if not needs_disk_check and conflicts == 0:
            return None, SKIP
        state.write(_KEY, _State(frozenset(rwop), conflicts))
        return None, SUCCESS

    def add_pod(self, state: CycleState, pod: PodInfo, pod_to_add: PodInfo, node: NodeInfo) -> None:
        s: _State | None = state.read(_KEY)
        if s is not None:
            s.update(pod_to_add, 1)

    def remove_pod(self, state: CycleState, pod: PodInfo, pod_to_remove: PodInfo, node: NodeInfo) -> None:
        s: _State | None = state.read(_KEY)
        if s is not None:
            s.update(pod_to_remove, -1)

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status:
        for v in (pod.pod.get("spec") or {}).get("volumes") or ():
            if any(v.get(k) for k in _DISK_KINDS):
                for other in node.pods.values():
                    if _volume_conflict(v, other.pod):
                        return unschedulable(ERR_REASON_DISK_CONFLICT)
        s: _State | None = state.read(_KEY)
        if s is not None and s.conflicts > 0:
            return unschedulable(ERR_REASON_RWOP_CONFLICT)
        return SUCCESS


def new(args: Mapping[str, Any], handle: Handle) -> VolumeRestrictions:
    return VolumeRestrictions()
