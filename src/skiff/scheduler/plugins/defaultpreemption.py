"""DefaultPreemption (PostFilter): make room for a pod by evicting lower-priority pods.

Runs when no node fits.  It only *decides*; the component deletes the victims
and sets the pod's ``status.nominatedNodeName``.

::

    preemptionPolicy: Never ─▶ "preemption: not eligible due to preemptionPolicy=Never."
    nodes rejected as unresolvable ─▶ "Preemption is not helpful for scheduling"
    for each other node (from a random offset, until enough candidates):
        remove every pod with lower priority (none ─▶ "No preemption victims found for incoming pod")
        pod still does not fit ─▶ that filter's reasons
        add victims back, most important first (PDB-protected ones before the rest),
        keeping each one the pod still fits with; the rest are the victims
    pick a node: fewest PDB violations, then the lowest highest-victim priority,
    the lowest sum of victim priorities, the fewest victims, the latest start of
    the most important victims, then the first found.

With no candidate the message is ``preemption: 0/N nodes are available: ...``
in the same counted form as the main FitError message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..framework import Handle, fit_error_message
from ..interface import (Code, CycleState, PostFilterResult, Status, unresolvable, unschedulable)
from ..podinfo import PodInfo
from ..selectors import label_selector
from ..snapshot import NodeInfo, Snapshot

NAME = "DefaultPreemption"
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_ELIGIBLE_POLICY = "not eligible due to preemptionPolicy=Never."
NOT_ELIGIBLE_TERMINATING = "not eligible due to a terminating pod on the nominated node."
INT32_OFFSET = (1 << 31)


@dataclass
class Candidate:
    node_name: str
    victims: list[PodInfo]
    pdb_violations: int


def more_important(a: PodInfo, b: PodInfo) -> bool:
    if a.priority != b.priority:
        return a.priority > b.priority
    return (a.start_time or "") < (b.start_time or "")


def _importance_key(p: PodInfo) -> tuple[int, str]:
    return (-p.priority, p.start_time or "")


def split_by_pdb(pods: list[PodInfo], pdbs: Sequence[Mapping[str, Any]]) -> tuple[list[PodInfo], list[PodInfo]]:
    """(violating, non-violating): evicting a violating pod would exceed its PDB's allowance."""
    allowed = [int((pdb.get("status") or {}).get("disruptionsAllowed") or 0) for pdb in pdbs]
    selectors = [label_selector((pdb.get("spec") or {}).get("selector")) for pdb in pdbs]
    violating: list[PodInfo] = []
    ok: list[PodInfo] = []
    for p in pods:
        violates = False
        for i, pdb in enumerate(pdbs):
            meta = pdb.get("metadata") or {}
            if (meta.get("namespace") or "default") != p.namespace:
                continue
            sel = selectors[i]
            if sel.everything or sel.nothing or not sel.matches(p.labels):
                continue
            if p.name in ((pdb.get("status") or {}).get("disruptedPods") or {}):
                continue
            allowed[i] -= 1
            if allowed[i] < 0:
                violates = True
        (violating if violates else ok).append(p)
    return violating, ok


class DefaultPreemption:
    name = NAME

    def __init__(self, args: Mapping[str, Any], handle: Handle) -> None:
        self.handle = handle
        self.min_candidate_percentage = int(args.get("minCandidateNodesPercentage", 10))
        self.min_candidate_absolute = int(args.get("minCandidateNodesAbsolute", 100))

    def post_filter(self, state: CycleState, pod: PodInfo, snapshot: Snapshot,
                    statuses: dict[str, Status]) -> tuple[PostFilterResult | None, Status]:
        eligible, why = self.eligible(pod, snapshot, statuses)
        if not eligible:
            return None, unschedulable(f"preemption: {why}")
        all_nodes = snapshot.node_infos()
        outcome: dict[str, Status] = {}
        potential: list[NodeInfo] = []
        for node in all_nodes:
            status = statuses.get(node.name)
            if status is not None and status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                outcome[node.name] = unresolvable(NOT_HELPFUL)
            else:
                potential.append(node)
        candidates: list[Candidate] = []
        if potential:
            want = self.num_candidates(len(potential))
            offset = self.handle.rng.randrange(len(potential))
            for i in range(len(potential)):
                node = potential[(offset + i) % len(potential)]
                victims, violations, status = self.select_victims(state, pod, node, snapshot.pdbs)
                if status.is_success:
                    candidates.append(Candidate(node.name, victims, violations))
                    if len(candidates) >= want:
                        break
                else:
                    outcome[node.name] = status
        if not candidates:
            msg = fit_error_message(len(all_nodes), outcome)
            return None, unschedulable(f"preemption: {msg}")
        best = pick_one(candidates)
        return PostFilterResult(best.node_name, [v.pod for v in best.victims]), Status()

    def eligible(self, pod: PodInfo, snapshot: Snapshot, statuses: Mapping[str, Status]) -> tuple[bool, str]:
        if (pod.pod.get("spec") or {}).get("preemptionPolicy") == "Never":
            return False, NOT_ELIGIBLE_POLICY
        nominated = (pod.pod.get("status") or {}).get("nominatedNodeName") or ""
        if nominated:
            status = statuses.get(nominated)
            if status is not None and status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                return True, ""
            node = snapshot.get(nominated)
            if node is not None:
                for p in node.pods.values():
                    if p.deleting and p.priority < pod.priority:
                        return False, NOT_ELIGIBLE_TERMINATING
        return True, ""

    def num_candidates(self, num_nodes: int) -> int:
        n = num_nodes * self.min_candidate_percentage // 100
        return min(max(n, self.min_candidate_absolute), num_nodes)

    def select_victims(self, state: CycleState, pod: PodInfo, node: NodeInfo,
                       pdbs: Sequence[Mapping[str, Any]]) -> tuple[list[PodInfo], int, Status]:
        fw = self.handle.framework
        assert fw is not None
        sim_state, sim_node = state.clone(), node.clone()
        potential = [p for p in node.pods.values() if p.priority < pod.priority]
        if not potential:
            return [], 0, unresolvable(NO_VICTIMS)
        for p in potential:
            sim_node.remove_pod(p.key)
            fw.run_remove_pod(sim_state, pod, p, sim_node)
        status = fw.run_filter(sim_state, pod, sim_node)
        if not status.is_success:
            return [], 0, status
        potential.sort(key=_importance_key)
        violating, ok = split_by_pdb(potential, pdbs)
        victims: list[PodInfo] = []
        violations = 0

        def reprieve(p: PodInfo) -> bool:
            sim_node.add_pod(p)
            fw.run_add_pod(sim_state, pod, p, sim_node)
            if fw.run_filter(sim_state, pod, sim_node).is_success:
                return True
            sim_node.remove_pod(p.key)
            fw.run_remove_pod(sim_state, pod, p, sim_node)
            victims.append(p)
            return False

        for p in violating:
            if not reprieve(p):
                violations += 1
        for p in ok:
            reprieve(p)
        victims.sort(key=_importance_key)
        return victims, violations, Status()


def pick_one(candidates: list[Candidate]) -> Candidate:
    """Kubernetes' pickOneNodeForPreemption criteria, applied in turn."""
    def narrow(pool: list[Candidate], key: Any) -> list[Candidate]:
        best = min(key(c) for c in pool)
        return [c for c in pool if key(c) == best]

    pool = [c for c in candidates if not c.victims] or candidates
    if not pool[0].victims:
        return pool[0]
    pool = narrow(pool, lambda c: c.pdb_violations)
    pool = narrow(pool, lambda c: c.victims[0].priority)
    pool = narrow(pool, lambda c: sum(v.priority + INT32_OFFSET for v in c.victims))
    pool = narrow(pool, lambda c: len(c.victims))
    if len(pool) > 1:
        def earliest_top(c: Candidate) -> str:
            top = c.victims[0].priority
            return min(v.start_time or "" for v in c.victims if v.priority == top)
        latest = max(earliest_top(c) for c in pool)
        pool = [c for c in pool if earliest_top(c) == latest]
    return pool[0]


def new(args: Mapping[str, Any], handle: Handle) -> DefaultPreemption:
    return DefaultPreemption(args, handle)
