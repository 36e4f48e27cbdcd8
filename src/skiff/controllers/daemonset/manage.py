"""What a DaemonSet needs on each node: a pod created, pods deleted, or nothing.

Per node (``should run`` / ``should continue running`` from placement.py)::

    should run, no pod                      ─▶ create one
    should continue running, pods there:
        Failed pod     ─▶ delete it (Warning FailedDaemonPod), at most once per
                          back-off period per node (1 s doubling to 15 min), so a node
                          that keeps rejecting the pod is not hammered
        Succeeded pod  ─▶ delete it (Normal SucceededDaemonPod)
        more than one running pod:
            no surge   ─▶ keep the oldest, delete the rest
            surge      ─▶ keep the oldest new and the oldest old pod; the old one too
                          goes once it is not ready or the new one is available
        none running and should run (surge) ─▶ create one
    should not continue running, pods there ─▶ delete them all
    a pod not yet scheduled whose node no longer exists ─▶ delete it
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import podstate
from ..history import CONTROLLER_REVISION_HASH
from .placement import should_run
from .pods import oldest_first

Obj = dict[str, Any]

BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 900.0


@dataclass
class FailedPodBackoff:
    """Per (DaemonSet, node) back-off for deleting failed pods."""

    clock: Callable[[], float]
    _entries: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def wait(self, key: tuple[str, str]) -> float:
        """Seconds until a failed pod on this node may be deleted again (0: now)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        delay, since = entry
        return max(0.0, since + delay - self.clock())

    def step(self, key: tuple[str, str]) -> None:
        """A failed pod is being deleted: the next one waits twice as long (reset after 2x idle)."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > 2 * BACKOFF_MAX:
            self._entries[key] = (BACKOFF_INITIAL, now)
        else:
            self._entries[key] = (min(entry[0] * 2, BACKOFF_MAX), now)

    def forget(self, ds_key: str) -> None:
        for key in [k for k in self._entries if k[0] == ds_key]:
            del self._entries[key]


@dataclass
class Plan:
    create_on: list[str] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)
    #: (type, reason, message) events to record about the DaemonSet.
    events: list[tuple[str, str, str]] = field(default_factory=list)
    #: Look again after this many seconds (a failed pod in back-off), if set.
    retry_after: float | None = None


def _node_name(node: Obj) -> str:
    return str((node.get("metadata") or {}).get("name", ""))


def plan(ds_key: str, ds: Obj, nodes: Iterable[Obj], node_pods: dict[str, list[Obj]], hash_: str,
         spec: Obj, surge: bool, backoff: FailedPodBackoff, now: float) -> Plan:
    """The creations and deletions for every node (see module docstring).

    ``spec`` is the daemon pod spec (placement.daemon_pod_spec), ``surge`` whether the
    rolling update may surge, ``now`` the wall-clock time (epoch seconds).
    """
    out = Plan()
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    names = set()
    for node in nodes:
        name = _node_name(node)
        names.add(name)
        run, keep = should_run(node, ds, spec)
        pods = node_pods.get(name) or []
        if run and not pods:
            out.create_on.append(name)
        elif keep:
            _node_with_pods(out, ds_key, name, pods, run, hash_, surge, backoff, min_ready, now)
        elif pods:
            out.delete += [p for p in pods if not podstate.is_terminating(p)]
    for name, pods in node_pods.items():
        if name not in names:
            out.delete += [p for p in pods if not (p.get("spec") or {}).get("nodeName")
                           and not podstate.is_terminating(p)]
    return out


def _node_with_pods(out: Plan, ds_key: str, node: str, pods: list[Obj], run: bool, hash_: str,
                    surge: bool, backoff: FailedPodBackoff, min_ready: int, now: float) -> None:
    running: list[Obj] = []
    for pod in pods:
        if podstate.is_terminating(pod):
            continue
        meta, phase = pod["metadata"], (pod.get("status") or {}).get("phase")
        if phase == "Failed":
            wait = backoff.wait((ds_key, node))
            if wait > 0:
                out.retry_after = wait if out.retry_after is None else min(out.retry_after, wait)
                continue
            backoff.step((ds_key, node))
            out.events.append(("Warning", "FailedDaemonPod",
                               f"Found failed daemon pod {meta['namespace']}/{meta['name']} "
                               f"on node {node}, will try to kill it"))
            out.delete.append(pod)
        elif phase == "Succeeded":
            out.events.append(("Normal", "SucceededDaemonPod",
                               f"Found succeeded daemon pod {meta['namespace']}/{meta['name']} "
                               f"on node {node}, will try to delete it"))
            out.delete.append(pod)
        else:
            running.append(pod)
    if not surge:
        out.delete += oldest_first(running)[1:]
        return
    if len(running) <= 1:
        if not running and run:
            out.create_on.append(node)
        return
    oldest_new = oldest_old = None
    for pod in oldest_first(running):
        is_new = ((pod.get("metadata") or {}).get("labels") or {}).get(CONTROLLER_REVISION_HASH) == hash_
        if is_new and oldest_new is None:
            oldest_new = pod
        elif not is_new and oldest_old is None:
            oldest_old = pod
        else:
            out.delete.append(pod)
    if oldest_new is not None and oldest_old is not None:
        if not podstate.is_ready(oldest_old) or podstate.is_available(oldest_new, min_ready, now):
            out.delete.append(oldest_old)

