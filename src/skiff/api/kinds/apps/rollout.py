"""Generation bookkeeping shared by the kinds whose controllers report ``observedGeneration``.

Kubernetes' strategies for these kinds (Deployment, ReplicaSet, StatefulSet,
DaemonSet, Job, CronJob, Ingress, NetworkPolicy, PodDisruptionBudget) do the
same two things before validation::

    create:  metadata.generation = 1, status = {}
    update:  status kept from the stored object; generation + 1 when the spec changed

The comparison is made after defaulting a copy of the incoming object, so a
client that omits defaulted fields does not cause a spurious new generation.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

from .. import meta as m

Obj = dict[str, Any]


def _normalized(value: Any) -> Any:
    """Drop empty maps/lists/None so that "absent" and "empty" compare equal, as Go's
    semantic equality treats nil and empty collections."""
    if isinstance(value, dict):
        out = {k: _normalized(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_normalized(v) for v in value]
    return value


def semantically_equal(a: Any, b: Any) -> bool:
    return bool(_normalized(a) == _normalized(b))


def start_generation(obj: Obj, *, clear_status: bool = True) -> None:
    """``prepare_create``: the first generation, and no status from the client."""
    m.ensure_meta(obj)["generation"] = 1
    if clear_status:
        obj.pop("status", None)


def next_generation(obj: Obj, old: Obj, default: Callable[[Obj], None],
                    *, watch_annotations: bool = False) -> None:
    """``prepare_update``: bump the generation when the (defaulted) spec changed."""
    probe = copy.deepcopy(obj)
    default(probe)
    changed = not semantically_equal(probe.get("spec"), old.get("spec"))
    if watch_annotations:
        changed = changed or not semantically_equal(m.get_path(probe, "metadata.annotations"),
                                                    m.get_path(old, "metadata.annotations"))
    meta = m.ensure_meta(obj)
    old_generation = m.get_path(old, "metadata.generation")
    if changed:
        meta["generation"] = (old_generation or 0) + 1
    elif old_generation is not None:
        meta["generation"] = old_generation
    else:
        meta.pop("generation", None)


def keep_status(obj: Obj, old: Obj) -> None:
    if "status" in old:
        obj["status"] = copy.deepcopy(old["status"])
    else:
        obj.pop("status", None)


def prepare_update_with(default: Callable[[Obj], None], *, watch_annotations: bool = False
                        ) -> Callable[[Obj, Obj], None]:
    """A ``prepare_update`` that keeps status and maintains the generation."""
    def prepare_update(obj: Obj, old: Obj) -> None:
        keep_status(obj, old)
        next_generation(obj, old, default, watch_annotations=watch_annotations)
    return prepare_update
