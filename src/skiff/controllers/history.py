"""ControllerRevisions: the template history of StatefulSets and DaemonSets.

Every distinct pod template such an owner has had is kept as an immutable
apps/v1 ControllerRevision that the owner controls (``kubectl rollout
history`` lists them, ``kubectl rollout undo`` sends one back)::

    NAME            CONTROLLER             REVISION
    web-5b7d8c6f4   statefulset.apps/web   1        data: {"spec":{"template":{... "$patch":"replace"}}}
    web-6c9f4b8d7   statefulset.apps/web   2        <- the template web has now

* ``data`` is a strategic merge patch that puts the template back, with map
  keys sorted and ``metadata.creationTimestamp: null`` in the template, as
  Kubernetes' JSON encoder writes it: kubectl compares it byte for byte with the
  patch it computes from the live object to tell whether an undo is a no-op.
* The name is ``<owner>-<hash>``: FNV-1 (32 bit) of the data (and of the
  collision count, once a name has collided), written in decimal and each
  digit spelled in the consonant-and-digit alphabet of generated names.  The
  hash is also a label: ``controller.kubernetes.io/hash`` on a StatefulSet's
  revisions, ``controller-revision-hash`` on a DaemonSet's.
* Revision numbers: a new template gets the highest number + 1; going back to
  an older template renumbers that revision to the highest + 1 instead of
  making a copy.
* History is cut to ``revisionHistoryLimit``: the lowest revisions go first,
  never a *live* one (one the owner or any of its pods still uses).

Pure helpers first; the three writes (create with collision handling,
renumber, delete) at the bottom.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from ..api.errors import StatusError
from ..api.kinds.apps.rollout import semantically_equal
from ..api.kinds.meta.cells import parse_time
from ..client.resources import CONTROLLERREVISIONS
from ..client.rest import ApiClient

Obj = dict[str, Any]

#: The label a DaemonSet's revisions and the pods of both kinds carry.
CONTROLLER_REVISION_HASH = "controller-revision-hash"
#: The label a StatefulSet's revisions carry (Kubernetes' generic revision helper).
REVISION_HASH = "controller.kubernetes.io/hash"

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193
#: Revision names keep at most this much of the owner's name (253 - 1 - hash).
_MAX_PREFIX = 223


# -- the data of a revision ------------------------------------------------------------


def canonical(value: Any) -> Any:
    """``value`` with every map's keys in sorted order (how Go encodes a map)."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def template_patch(owner: Obj) -> Obj:
    """The revision data for ``owner``'s current pod template."""
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    meta = template.get("metadata")
    if not isinstance(meta, dict):
        meta = template["metadata"] = {}
    meta.setdefault("creationTimestamp", None)
    template["$patch"] = "replace"
    data: Obj = canonical({"spec": {"template": template}})
    return data


def revision_template(revision: Obj) -> Obj:
    """The pod template a revision holds (without the patch directive and null stamps)."""
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    meta = template.get("metadata")
    if isinstance(meta, dict) and meta.get("creationTimestamp") is None:
        meta.pop("creationTimestamp", None)
    return template


def with_template(owner: Obj, revision: Obj) -> Obj:
    """A copy of ``owner`` whose pod template is the one saved in ``revision``."""
    out = copy.deepcopy(owner)
    out.setdefault("spec", {})["template"] = revision_template(revision)
    return out


def same_data(a: Obj, b: Obj) -> bool:
    """Do two revisions hold the same template?"""
    return semantically_equal(canonical(a.get("data")), canonical(b.get("data")))


# -- names and numbers -------------------------------------------------------------------


def _fnv1_32(data: bytes, value: int = _FNV_OFFSET) -> int:
    for byte in data:
        value = (value * _FNV_PRIME) & 0xFFFFFFFF
        value ^= byte
    return value


def revision_hash(data: Obj, collision_count: int | None = None) -> str:
    """The hash part of a revision's name (see module docstring)."""
    value = _fnv1_32(orjson.dumps(canonical(data)))
    if collision_count:
        value = _fnv1_32(str(collision_count).encode(), value)
    return safe_encode(value)


def safe_encode(value: int) -> str:
    """A 32-bit hash as Kubernetes writes it into names and labels: its decimal digits, each
    mapped into a vowel-free alphabet (so 7-10 characters from ``4-9 b c d f``, as in
    ``web-7c5ddbdf54``); a hash never spells a word."""
    return "".join(_ALPHABET[ord(digit) % len(_ALPHABET)] for digit in str(value))


def revision_name(owner_name: str, hash_: str) -> str:
    return f"{owner_name[:_MAX_PREFIX]}-{hash_}"


def number(revision: Obj) -> int:
    return int(revision.get("revision") or 0)


def _order(revision: Obj) -> tuple[int, float, str]:
    created = parse_time((revision.get("metadata") or {}).get("creationTimestamp"))
    return (number(revision), created.timestamp() if created else 0.0,
            str((revision.get("metadata") or {}).get("name", "")))


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """Lowest revision first (ties: older first, then by name)."""
    return sorted(revisions, key=_order)


def next_number(revisions: Iterable[Obj]) -> int:
    return max((number(r) for r in revisions), default=0) + 1


def new_revision(owner: Obj, *, api_version: str, kind: str, data: Obj, revision: int,
                 collision_count: int | None, hash_label: str,
                 annotations: dict[str, str] | None = None) -> Obj:
    """The ControllerRevision to create for ``data`` (not yet sent)."""
    meta = owner["metadata"]
    hash_ = revision_hash(data, collision_count)
    labels = dict((((owner.get("spec") or {}).get("template") or {}).get("metadata") or {})
                  .get("labels") or {})
    labels[hash_label] = hash_
    out_meta: Obj = {
        "name": revision_name(meta["name"], hash_), "namespace": meta.get("namespace"),
        "labels": labels,
        "ownerReferences": [{"apiVersion": api_version, "kind": kind, "name": meta["name"],
                             "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
    }
    if annotations:
        out_meta["annotations"] = dict(annotations)
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": out_meta,
            "data": data, "revision": revision}


def to_truncate(revisions: Iterable[Obj], live: set[str], limit: int | None) -> list[Obj]:
    """Revisions to delete so that at most ``limit`` non-live ones remain (lowest first)."""
    if limit is None or limit < 0:
        return []
    history = [r for r in sort_revisions(revisions)
               if r["metadata"].get("name") not in live and not r["metadata"].get("deletionTimestamp")]
    extra = len(history) - limit
    return history[:extra] if extra > 0 else []


# -- writes --------------------------------------------------------------------------------


async def create_revision(client: ApiClient, build: Callable[[int], Obj],
                          collision_count: int) -> tuple[Obj, int]:
    """Create the revision ``build(collision_count)``; (revision, final collision count).

    A name taken by a revision with other data is a hash collision: the count
    goes up by one and the name is computed again, until the create succeeds or
    an existing revision turns out to hold the same data (then that one is used).
    """
    while True:
        body = build(collision_count)
        meta = body["metadata"]
        try:
            created: Obj = await client.create(CONTROLLERREVISIONS, body,
                                               namespace=meta["namespace"])
            return created, collision_count
        except StatusError as e:
            if e.code != 409:
                raise
        existing: Obj = await client.get(CONTROLLERREVISIONS, meta["name"],
                                         namespace=meta["namespace"])
        if same_data(existing, body):
            return existing, collision_count
        collision_count += 1


async def renumber(client: ApiClient, revision: Obj, new_number: int) -> Obj:
    """Give an existing revision a new number (retried on a fresh copy after a conflict)."""
    body = copy.deepcopy(revision)
    for _ in range(5):
        if number(body) == new_number:
            return body
        body["revision"] = new_number
        try:
            updated: Obj = await client.update(CONTROLLERREVISIONS, body)
            return updated
        except StatusError as e:
            if e.code != 409:
                raise
        meta = revision["metadata"]
        body = await client.get(CONTROLLERREVISIONS, meta["name"], namespace=meta.get("namespace"))
    raise StatusError(409, "Conflict", f"could not renumber controllerrevision "
                                       f"{revision['metadata']['name']}")


async def delete_revision(client: ApiClient, revision: Obj) -> None:
    """Delete a revision (already gone is fine)."""
    meta = revision["metadata"]
    try:
        await client.delete(CONTROLLERREVISIONS, meta["name"], namespace=meta.get("namespace"),
                            preconditions={"uid": meta["uid"]})
    except StatusError as e:
        if e.code not in (404, 409):
            raise
