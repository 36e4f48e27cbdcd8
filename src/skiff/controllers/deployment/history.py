"""A Deployment's history: its ReplicaSets, their revisions, and which one is "new".

Every pod template a Deployment has had lives on as a ReplicaSet named
``<deployment>-<pod-template-hash>``; the hash is also a label on the
ReplicaSet, its selector and its pods, so ReplicaSets never fight over pods::

    web-6b7f9c8d4  revision 1   nginx:1.26   replicas 0   (kept for rollback)
    web-59d4kq7xb  revision 2   nginx:1.27   replicas 3   <- "new": template == deployment's

Revisions (``deployment.kubernetes.io/revision``) grow by one each time a
ReplicaSet becomes the new one; a ReplicaSet that becomes new again (rollback)
gets the next number and remembers its earlier ones in
``deployment.kubernetes.io/revision-history`` ("1,3").  ``kubectl rollout
history`` lists these; ``kubectl rollout undo`` copies an old ReplicaSet's
template back into the Deployment.

The template hash is skiff's own: SHA-256 of the template as canonical JSON
(plus the collision count, when a hash once collided), 32 bits of it written
in the consonant-and-digit alphabet Kubernetes uses for generated names (no
vowels, so no words).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import orjson

from ...api.kinds.apps.rollout import semantically_equal
from ...api.kinds.meta.cells import parse_time
from ..history import canonical, safe_encode

Obj = dict[str, Any]

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
REVISION_HISTORY_ANNOTATION = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS_ANNOTATION = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS_ANNOTATION = "deployment.kubernetes.io/max-replicas"
#: Deployment annotations that are not copied onto its ReplicaSets.
NOT_COPIED = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration", REVISION_ANNOTATION,
    REVISION_HISTORY_ANNOTATION, DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION,
    "deprecated.deployment.rollback.to",
})
#: The revision-history annotation is kept under this many characters.
MAX_HISTORY_CHARS = 2000

def template_hash(template: Obj, collision_count: int | None = None) -> str:
    """The pod-template-hash of ``template``: a 32-bit FNV-1a hash of it (and of the
    Deployment's collisionCount, when set), written as Kubernetes writes it."""
    value = _fnv1a_32(orjson.dumps(canonical(template)))
    if collision_count:
        value = _fnv1a_32(str(collision_count).encode(), value)
    return safe_encode(value)


def _fnv1a_32(data: bytes, value: int = 0x811C9DC5) -> int:
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def without_hash(template: Obj | None) -> Obj:
    """A copy of ``template`` without the pod-template-hash label."""
    out = copy.deepcopy(template or {})
    labels = (out.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(POD_TEMPLATE_HASH, None)
    return out


def templates_equal(rs_template: Obj | None, d_template: Obj | None) -> bool:
    """Equal apart from the pod-template-hash label (Kubernetes' EqualIgnoreHash)."""
    return semantically_equal(without_hash(rs_template), without_hash(d_template))


def annotation(obj: Obj | None, name: str) -> str | None:
    if obj is None:
        return None
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(name)
    return None if value is None else str(value)


def annotation_int(obj: Obj | None, name: str) -> int | None:
    raw = annotation(obj, name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def revision(rs: Obj | None) -> int:
    return annotation_int(rs, REVISION_ANNOTATION) or 0


def max_revision(rss: list[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def _created(rs: Obj) -> tuple[float, str]:
    when = parse_time((rs.get("metadata") or {}).get("creationTimestamp"))
    return (when.timestamp() if when else 0.0, str(rs["metadata"].get("name", "")))


def by_creation(rss: list[Obj], *, newest_first: bool = False) -> list[Obj]:
    """Oldest first (ties by name), or newest first."""
    return sorted(rss, key=_created, reverse=newest_first)


def by_size_then_age(rss: list[Obj], *, newer_first: bool) -> list[Obj]:
    """Largest first; equal sizes newest first (``newer_first``) or oldest first."""
    def compare(a: Obj, b: Obj) -> int:
        sa, sb = _spec(a), _spec(b)
        if sa != sb:
            return -1 if sa > sb else 1
        ka, kb = _created(a), _created(b)
        if ka == kb:
            return 0
        older = ka < kb
        return (1 if older else -1) if newer_first else (-1 if older else 1)
    return sorted(rss, key=functools.cmp_to_key(compare))


def _spec(rs: Obj) -> int:
    return int((rs.get("spec") or {}).get("replicas") or 0)


def find_new(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template equals the Deployment's."""
    template = (d.get("spec") or {}).get("template")
    for rs in by_creation(rss):
        if templates_equal((rs.get("spec") or {}).get("template"), template):
            return rs
    return None


def find_old(new_rs: Obj | None, rss: list[Obj]) -> list[Obj]:
    uid = new_rs["metadata"]["uid"] if new_rs is not None else None
    return [rs for rs in rss if rs["metadata"].get("uid") != uid]


def copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    """Copy the Deployment's own annotations onto ``rs``; True if anything changed."""
    rs_annotations = rs["metadata"].setdefault("annotations", {})
    changed = False
    for key, value in ((d.get("metadata") or {}).get("annotations") or {}).items():
        if key in NOT_COPIED or rs_annotations.get(key) == value:
            continue
        rs_annotations[key] = value
        changed = True
    return changed


def set_replicas_annotations(rs: Obj, desired: int, most: int) -> bool:
    """desired-replicas / max-replicas annotations; True if they changed."""
    annotations = rs["metadata"].setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS_ANNOTATION, str(desired)),
                       (MAX_REPLICAS_ANNOTATION, str(most))):
        if annotations.get(key) != value:
            annotations[key] = value
            changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, *, exists: bool,
                           desired: int, most: int) -> bool:
    """Annotations of the Deployment's new ReplicaSet; True if anything changed.

    Its revision becomes ``new_revision`` when that is higher; the revision it had
    is appended to its revision history.  A ReplicaSet about to be created also
    gets the replica annotations.
    """
    changed = copy_deployment_annotations(d, rs)
    annotations = rs["metadata"].setdefault("annotations", {})
    old_raw = annotations.get(REVISION_ANNOTATION)
    try:
        old = int(old_raw) if old_raw else 0
    except ValueError:
        return changed
    if old < new_revision:
        annotations[REVISION_ANNOTATION] = str(new_revision)
        changed = True
        if old_raw:
            history = [h for h in (annotations.get(REVISION_HISTORY_ANNOTATION) or "").split(",") if h]
            history.append(old_raw)
            while len(",".join(history)) > MAX_HISTORY_CHARS and len(history) > 1:
                history.pop(0)
            annotations[REVISION_HISTORY_ANNOTATION] = ",".join(history)
    if not exists and set_replicas_annotations(rs, desired, most):
        changed = True
    return changed


def to_clean_up(d: Obj, old_rss: list[Obj]) -> list[Obj]:
    """Old ReplicaSets beyond ``revisionHistoryLimit`` that may be deleted now.

    The lowest revisions go first; one still having (or wanting) pods, not yet
    observed by its controller, or already being deleted is spared.
    """
    limit = (d.get("spec") or {}).get("revisionHistoryLimit")
    if limit is None:
        return []
    alive = [rs for rs in old_rss if not rs["metadata"].get("deletionTimestamp")]
    extra = len(alive) - int(limit)
    if extra <= 0:
        return []
    alive.sort(key=lambda rs: (revision(rs), _created(rs)))
    out = []
    for rs in alive[:extra]:
        status = rs.get("status") or {}
        if (int(status.get("replicas") or 0) != 0 or _spec(rs) != 0
                or int(rs["metadata"].get("generation") or 0) > int(status.get("observedGeneration") or 0)):
            continue
        out.append(rs)
    return out
