"""Taints and tolerations: does a pod's toleration list tolerate a node's taint?

A toleration matches a taint when:

- its ``effect`` is empty (all effects) or equals the taint's effect;
- its ``key`` is empty (only allowed with ``Exists``: every key) or equals the taint's key;
- ``operator: Exists`` matches any value; ``Equal`` (the default) needs equal values.

Used by TaintToleration, NodeUnschedulable and PodTopologySpread's
``nodeTaintsPolicy: Honor``.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

Obj = Mapping[str, Any]

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"
PREFER_NO_SCHEDULE = "PreferNoSchedule"


def toleration_matches(toleration: Obj, taint: Obj) -> bool:
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return (toleration.get("value") or "") == (taint.get("value") or "")
    return False


def tolerates(tolerations: Iterable[Obj], taint: Obj) -> bool:
    for t in tolerations:
        if toleration_matches(t, taint):
            return True
    return False


def first_untolerated(taints: Iterable[Obj], tolerations: Iterable[Obj],
                      effects: tuple[str, ...] = (NO_SCHEDULE, NO_EXECUTE)) -> Obj | None:
    """The first taint with one of ``effects`` that no toleration tolerates."""
    tols = list(tolerations)
    for taint in taints:
        if taint.get("effect") in effects and not tolerates(tols, taint):
            return taint
    return None
