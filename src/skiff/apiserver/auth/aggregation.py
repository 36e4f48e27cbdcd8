"""ClusterRole aggregation: ``admin``/``edit``/``view`` (and any role with an aggregationRule)
hold the union of the rules of the ClusterRoles their selectors match.

::

    policy change (any ClusterRole) ──▶ dirty ──▶ sync():
        for each ClusterRole with aggregationRule.clusterRoleSelectors, by name:
            rules = rules of every other ClusterRole matching a selector, in name
                    order, duplicates dropped
            differs from the stored rules?  write them (read-modify-write)

Aggregation chains (``view`` is labelled to aggregate into ``edit``, ``edit`` into
``admin``): each write is itself a ClusterRole change, so the next sync carries
it one level further until nothing changes.  Like kube-controller-manager's
clusterrole-aggregation controller, the result is stored, so ``kubectl get
clusterrole view -o yaml`` shows the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from ...api.errors import StatusError
from ...api.selectors import SelectorError, label_selector_from_object
from ..context import ServerContext
from ..writes import WriteOptions, Writer
from .policy import GROUP, Key, PolicyCache

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MANAGER = WriteOptions(field_manager="clusterrole-aggregation-controller")


def aggregated_rules(name: str, role: Obj, roles: dict[str, Obj]) -> list[Obj] | None:
    """The rules ``role`` should hold (None when it does not aggregate)."""
    rule = role.get("aggregationRule")
    if not isinstance(rule, dict):
        return None
    selectors = []
    for raw in rule.get("clusterRoleSelectors") or []:
        try:
            selectors.append(label_selector_from_object(raw))
        except SelectorError:
            continue
    out: list[Obj] = []
    for other_name in sorted(roles):
        if other_name == name:
            continue
        other = roles[other_name]
        if any(s.matches_object(other) for s in selectors):
            for r in other.get("rules") or []:
                if r not in out:
                    out.append(r)
    return out


class ClusterRoleAggregator:
    def __init__(self, ctx: ServerContext, writer: Writer, policy: PolicyCache) -> None:
        self.ctx = ctx
        self.writer = writer
        self.policy = policy
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        policy.listeners.append(self._changed)

    def _changed(self, plural: str, key: Key) -> None:
        if plural in ("clusterroles", ""):
            self._dirty.set()

    def start(self) -> None:
        self._dirty.set()
        self._task = asyncio.create_task(self._run(), name="skiff-clusterrole-aggregation")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.sync()
            except Exception:  # keep aggregating later changes; this one is logged
                log.exception("ClusterRole aggregation failed")

    async def sync(self) -> int:
        """Write every aggregated ClusterRole whose rules are out of date; returns how many."""
        info = self.ctx.registry.get(GROUP, "v1", "clusterroles")
        if info is None:
            return 0
        roles = dict(self.policy.cluster_roles())
        written = 0
        for name in sorted(roles):
            wanted = aggregated_rules(name, roles[name], roles)
            if wanted is None or wanted == (roles[name].get("rules") or []):
                continue

            def put(current: Obj, _old: Obj, rules: list[Obj] = wanted) -> Obj:
                current["rules"] = rules
                return current
            try:
                await self.writer.read_modify_write(info, "", name, put, MANAGER)
                written += 1
            except StatusError as err:
                if err.code not in (404, 409):
                    raise
        return written
