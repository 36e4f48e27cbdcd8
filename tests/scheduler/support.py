"""Run a framework made of just the named plugins over a small cluster."""

from __future__ import annotations

import random
from typing import Any

from skiff.scheduler.framework import Framework, ScheduleResult
from skiff.scheduler.profile import PluginRef, Profile
from skiff.scheduler.snapshot import Snapshot

Obj = dict[str, Any]


def framework(*plugins: str | tuple[str, int], args: dict[str, Any] | None = None, seed: int = 0) -> Framework:
    refs = tuple(PluginRef(p) if isinstance(p, str) else PluginRef(p[0], p[1]) for p in plugins)
    return Framework(Profile(plugins=refs, plugin_args=args or {}), rng=random.Random(seed))


def decide(plugins: list[str | tuple[str, int]], nodes: list[Obj], pod: Obj, existing: list[Obj] = (),
           args: dict[str, Any] | None = None, snapshot: Snapshot | None = None) -> ScheduleResult:
    snap = snapshot or Snapshot(nodes, list(existing))
    return framework(*plugins, args=args).schedule_one(snap, pod, with_scores=True)


def feasible(result: ScheduleResult, nodes: list[Obj]) -> set[str]:
    names = {n["metadata"]["name"] for n in nodes}
    return names - set(result.reasons)


def filter_all(plugins: list[str], nodes: list[Obj], pod: Obj, existing: list[Obj] = (),
               args: dict[str, Any] | None = None, snapshot: Snapshot | None = None) -> dict[str, tuple[str, ...]]:
    """Node name -> rejection reasons (empty tuple: the node fits)."""
    snap = snapshot or Snapshot(nodes, list(existing))
    return {n: s.reasons for n, s in framework(*plugins, args=args).filter_all(snap, pod).items()}
