"""A StatefulSet member's identity: ordinal, name, labels, hostname and claims.

Member ``i`` of StatefulSet ``web`` (``spec.ordinals.start`` ≤ i < start + replicas)::

    pod    web-i           labels statefulset.kubernetes.io/pod-name=web-i
                                  apps.kubernetes.io/pod-index=i
                                  controller-revision-hash=<revision name>
                           spec.hostname=web-i, spec.subdomain=<spec.serviceName>
    claims <tpl>-web-i     one PersistentVolumeClaim per volumeClaimTemplate, mounted
                           as the pod volume named <tpl>; labels: template labels plus
                           the selector's matchLabels

A pod is a member when its name is ``<set>-<number>``; one whose number is out
of range is *condemned* (removed on scale-down).  Claims outlive their pods;
``persistentVolumeClaimRetentionPolicy`` decides which owner references they
carry, and so whether the garbage collector removes them::

    whenDeleted \\ whenScaled   Retain                    Delete
    Retain                      no references             pod ref once scaled down
    Delete                      StatefulSet ref           StatefulSet ref; pod ref
                                                          (instead) once scaled down

(the references are controller references, as Kubernetes sets them).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ..ownership import owner_reference
from ..podcontrol import pod_from_template

Obj = dict[str, Any]

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"
RETAIN = "Retain"
DELETE = "Delete"

_MEMBER_NAME = re.compile(r"^(.*)-([0-9]+)$")
_MAX_ORDINAL = 2**31 - 1


# -- ordinals ---------------------------------------------------------------------------


def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    """(StatefulSet name, ordinal) from the pod's name; ("", -1) for a non-member name."""
    match = _MEMBER_NAME.match(str((pod.get("metadata") or {}).get("name", "")))
    if match is None:
        return "", -1
    ordinal = int(match.group(2))
    return match.group(1), ordinal if ordinal <= _MAX_ORDINAL else -1


def ordinal_of(pod: Obj) -> int:
    return parent_and_ordinal(pod)[1]


def is_member(sts: Obj, pod: Obj) -> bool:
    return parent_and_ordinal(pod)[0] == str(sts["metadata"]["name"])


def replicas_of(sts: Obj) -> int:
    value = (sts.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def start_ordinal(sts: Obj) -> int:
    return int(((sts.get("spec") or {}).get("ordinals") or {}).get("start") or 0)


def in_range(sts: Obj, ordinal: int) -> bool:
    start = start_ordinal(sts)
    return start <= ordinal < start + replicas_of(sts)


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def claim_name(template_name: str, sts: Obj, ordinal: int) -> str:
    return f"{template_name}-{sts['metadata']['name']}-{ordinal}"


def revision_of(pod: Obj) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(REVISION_LABEL, ""))


# -- building members ---------------------------------------------------------------------


def _claim_templates(sts: Obj) -> list[Obj]:
    return [c for c in (sts.get("spec") or {}).get("volumeClaimTemplates") or []
            if isinstance(c, dict)]


def claims_for(sts: Obj, ordinal: int) -> dict[str, Obj]:
    """Volume name -> the PersistentVolumeClaim member ``ordinal`` mounts under it."""
    meta = sts["metadata"]
    match_labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    claims: dict[str, Obj] = {}
    for template in _claim_templates(sts):
        tmeta = template.get("metadata") or {}
        volume = str(tmeta.get("name", ""))
        cmeta: Obj = {"name": claim_name(volume, sts, ordinal), "namespace": meta.get("namespace"),
                      "labels": {**(tmeta.get("labels") or {}), **match_labels}}
        if tmeta.get("annotations"):
            cmeta["annotations"] = dict(tmeta["annotations"])
        claims[volume] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": cmeta,
                          "spec": copy.deepcopy(template.get("spec") or {})}
    return claims


def new_pod(sts: Obj, template: Obj, ordinal: int, revision: str) -> Obj:
    """Member ``ordinal`` made from ``template`` (the template of ``revision``)."""
    meta = sts["metadata"]
    pod = pod_from_template(template, namespace=meta["namespace"], owner_name=meta["name"],
                            owner_ref=owner_reference(sts, api_version="apps/v1", kind="StatefulSet"))
    name = pod_name(sts, ordinal)
    pod["metadata"]["name"] = name
    labels = pod["metadata"].setdefault("labels", {})
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    labels[REVISION_LABEL] = revision
    spec = pod["spec"]
    spec["hostname"] = name
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        spec["subdomain"] = service
    claims = claims_for(sts, ordinal)
    volumes = [{"name": volume, "persistentVolumeClaim": {"claimName": c["metadata"]["name"]}}
               for volume, c in claims.items()]
    volumes += [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
    if volumes:
        spec["volumes"] = volumes
    return pod


def identity_matches(sts: Obj, pod: Obj) -> bool:
    parent, ordinal = parent_and_ordinal(pod)
    meta = pod.get("metadata") or {}
    return (ordinal >= 0 and parent == sts["metadata"]["name"]
            and meta.get("namespace") == sts["metadata"].get("namespace")
            and (meta.get("labels") or {}).get(POD_NAME_LABEL) == meta.get("name"))


def identity_labels(sts: Obj, pod: Obj) -> dict[str, str]:
    """The identity labels ``pod`` should carry."""
    ordinal = ordinal_of(pod)
    return {POD_NAME_LABEL: pod_name(sts, ordinal), POD_INDEX_LABEL: str(ordinal)}


def storage_matches(sts: Obj, pod: Obj) -> bool:
    """Does the pod mount every claim of its ordinal under the template's name?"""
    ordinal = ordinal_of(pod)
    if ordinal < 0:
        return False
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    for volume, claim in claims_for(sts, ordinal).items():
        source = (volumes.get(volume) or {}).get("persistentVolumeClaim") or {}
        if source.get("claimName") != claim["metadata"]["name"]:
            return False
    return True


# -- claim retention --------------------------------------------------------------------------


def retention_policy(sts: Obj) -> tuple[str, str]:
    """(whenDeleted, whenScaled); anything unknown counts as Retain."""
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    deleted, scaled = str(policy.get("whenDeleted")), str(policy.get("whenScaled"))
    return (deleted if deleted in (RETAIN, DELETE) else RETAIN,
            scaled if scaled in (RETAIN, DELETE) else RETAIN)


def _is_ref_to(ref: Obj, api_version: str, kind: str, name: str) -> bool:
    return ref.get("apiVersion") == api_version and ref.get("kind") == kind and ref.get("name") == name


def desired_claim_refs(claim: Obj, sts: Obj, pod: Obj) -> list[Obj] | None:
    """The owner references ``claim`` should have under the retention policy.

    ``None`` when they are right already, or when the claim must not be touched:
    it refers to an earlier StatefulSet or pod of the same name (left to the
    garbage collector).
    """
    sts_meta, pod_meta = sts["metadata"], pod.get("metadata") or {}
    refs = list((claim.get("metadata") or {}).get("ownerReferences") or [])

    def ours(ref: Obj) -> bool:
        return (_is_ref_to(ref, "apps/v1", "StatefulSet", sts_meta["name"])
                or _is_ref_to(ref, "v1", "Pod", str(pod_meta.get("name", ""))))

    for ref in refs:
        if _is_ref_to(ref, "apps/v1", "StatefulSet", sts_meta["name"]) and ref.get("uid") != sts_meta["uid"]:
            return None
        if _is_ref_to(ref, "v1", "Pod", str(pod_meta.get("name", ""))) and ref.get("uid") != pod_meta.get("uid"):
            return None
    when_deleted, when_scaled = retention_policy(sts)
    kept = [r for r in refs if not ours(r)]
    desired = list(kept)
    other_controller = any(r.get("controller") for r in kept)
    if not (other_controller and (when_deleted, when_scaled) != (RETAIN, RETAIN)):
        scaled_down = not in_range(sts, ordinal_of(pod))
        if when_deleted == DELETE and (when_scaled == RETAIN or not scaled_down):
            desired.append(owner_reference(sts, api_version="apps/v1", kind="StatefulSet"))
        if when_scaled == DELETE and scaled_down and pod_meta.get("uid"):
            desired.append(owner_reference(pod, api_version="v1", kind="Pod"))

    def summary(rs: list[Obj]) -> list[tuple[str, bool]]:
        return sorted((str(r.get("uid")), bool(r.get("controller"))) for r in rs)
    return None if summary(desired) == summary(refs) else desired


def claim_is_stale(claim: Obj, pod: Obj) -> bool:
    """The claim still belongs to an earlier pod of this name (it will be deleted)."""
    name = (pod.get("metadata") or {}).get("name")
    uid = (pod.get("metadata") or {}).get("uid")
    for ref in (claim.get("metadata") or {}).get("ownerReferences") or []:
        if _is_ref_to(ref, "v1", "Pod", str(name)):
            return bool(ref.get("uid") != uid)
    return False
