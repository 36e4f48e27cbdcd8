"""A DaemonSet's RollingUpdate: which old pods go and which nodes get a new pod now.

Both limits are counts of nodes, from ``maxUnavailable`` / ``maxSurge`` (ints, or
percentages of the nodes that should run the pod, rounded up); exactly one of
them is non-zero (both zero counts as maxUnavailable 1)::

    maxSurge 0: delete old pods; the normal sync makes the new ones.
        node with an unavailable old pod      ─▶ delete it now (it counts as unavailable)
        node with an available old pod        ─▶ candidate
        node with no pod, an unavailable new pod, or two pods ─▶ counts as unavailable
        delete candidates while unavailable < maxUnavailable

    maxSurge > 0: start the new pod first, keep the old one until the new is available.
        old pod unavailable                   ─▶ new pod on that node now
        old pod available                     ─▶ candidate, while surging < maxSurge
        new and old pod, new one available    ─▶ delete the old one
        new and old pod, new one not yet      ─▶ counts as surging
        old pods on nodes the DaemonSet no longer wants go only while more
        pods are available than nodes want one

Terminating pods are ignored (a node being drained must not stall an update).
"""

from __future__ import annotations

from typing import Any

from .. import podstate
from ..deployment.replicas import scaled_value
from .pods import is_updated

Obj = dict[str, Any]


def limits(ds: Obj, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as node counts."""
    rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge"), desired, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable", 1), desired, round_up=True)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _new_and_old(pods: list[Obj], hash_: str, generation: str | None) -> tuple[Obj | None, Obj | None, bool]:
    """(new pod, old pod, at most one of each) among a node's live pods."""
    new = old = None
    for pod in pods:
        if podstate.is_terminating(pod):
            continue
        if is_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def plan(ds: Obj, node_pods: dict[str, list[Obj]], wanted: dict[str, bool], hash_: str,
         generation: str | None, now: float) -> tuple[list[Obj], list[str]]:
    """(old pods to delete, nodes to create a new pod on) for one step of the update.

    ``node_pods`` maps node names to their daemon pods; ``wanted`` says for every
    existing node whether the DaemonSet should run there.
    """
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    desired = sum(1 for run in wanted.values() if run)
    nodes = {**{n: [] for n, run in wanted.items() if run}, **node_pods}
    surge, max_unavailable = limits(ds, desired)

    def available(pod: Obj) -> bool:
        return podstate.is_available(pod, min_ready, now)

    if surge == 0:
        unavailable = 0
        replace: list[Obj] = []
        candidates: list[Obj] = []
        for name in sorted(nodes):
            new, old, ok = _new_and_old(nodes[name], hash_, generation)
            if not ok or (new is None) == (old is None):
                unavailable += 1
            elif new is not None:
                unavailable += not available(new)
            elif old is not None and not available(old):
                replace.append(old)
                unavailable += 1
            elif old is not None and unavailable < max_unavailable:
                candidates.append(old)
        room = max(0, min(max_unavailable - unavailable, len(candidates)))
        return replace + candidates[:room], []

    deletes: list[Obj] = []
    off_nodes: list[Obj] = []
    allowed: list[str] = []
    candidate_nodes: list[str] = []
    surging = available_count = 0
    for name in sorted(nodes):
        new, old, ok = _new_and_old(nodes[name], hash_, generation)
        if not ok:
            surging += 1
            continue
        shown = old if old is not None else new
        available_count += shown is not None and available(shown)
        if old is None:
            continue
        if new is None:
            if not wanted.get(name, False):
                (off_nodes if available(old) else deletes).append(old)
            elif not available(old):
                allowed.append(name)
            elif surging < surge:
                candidate_nodes.append(name)
        elif not available(new):
            surging += 1
        else:
            deletes.append(old)
    spare = available_count - desired
    if spare > 0:
        deletes += off_nodes[:spare]
    room = max(0, min(surge - surging, len(candidate_nodes)))
    return deletes, allowed + candidate_nodes[:room]
