"""Which nodes a DaemonSet runs on, and the pod it makes for one node.

A node is eligible for the daemon pod when the pod, as the DaemonSet would
make it for that node, fits it::

    template spec.nodeName set to another node    ─▶ (no, no)
    spec.nodeSelector / required node affinity     ─▶ not matching: (no, no)
    taints with effect NoSchedule or NoExecute     ─▶ one not tolerated: no;
                                                      keep an existing pod unless a
                                                      NoExecute taint is not tolerated
    otherwise                                      ─▶ (yes, yes)

:func:`should_run` answers (should run, should continue running).

Daemon pods tolerate what a node in trouble is tainted with, so node problems
never evict them and cordoning never keeps them away (as Kubernetes adds)::

    node.kubernetes.io/not-ready           Exists  NoExecute
    node.kubernetes.io/unreachable         Exists  NoExecute
    node.kubernetes.io/disk-pressure       Exists  NoSchedule
    node.kubernetes.io/memory-pressure     Exists  NoSchedule
    node.kubernetes.io/pid-pressure        Exists  NoSchedule
    node.kubernetes.io/unschedulable       Exists  NoSchedule
    node.kubernetes.io/network-unavailable Exists  NoSchedule   (hostNetwork pods only)

A pod for node N is placed by the default scheduler, held to N by a required
node affinity term ``matchFields: metadata.name In [N]`` that replaces the
template's required terms (N was already checked against them).
"""

from __future__ import annotations

import copy
from typing import Any

from ..nodelifecycle.health import toleration_matches

Obj = dict[str, Any]

NO_SCHEDULE = "NoSchedule"
NO_EXECUTE = "NoExecute"

DAEMON_TOLERATIONS: tuple[Obj, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": NO_EXECUTE},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": NO_EXECUTE},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": NO_SCHEDULE},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": NO_SCHEDULE},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": NO_SCHEDULE},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": NO_SCHEDULE},
)
NETWORK_UNAVAILABLE_TOLERATION: Obj = {
    "key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": NO_SCHEDULE}


# -- tolerations -------------------------------------------------------------------------


def _same_toleration(a: Obj, b: Obj) -> bool:
    """Kubernetes' MatchToleration: same key, operator, value and effect."""
    return all((a.get(f) or "") == (b.get(f) or "")
               for f in ("key", "operator", "value", "effect"))


def add_daemon_tolerations(spec: Obj) -> None:
    """Add (or replace equal ones with) the daemon tolerations, in place."""
    wanted = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        wanted.append(NETWORK_UNAVAILABLE_TOLERATION)
    tolerations = list(spec.get("tolerations") or [])
    for toleration in wanted:
        for i, existing in enumerate(tolerations):
            if _same_toleration(existing, toleration):
                tolerations[i] = dict(toleration)
                break
        else:
            tolerations.append(dict(toleration))
    spec["tolerations"] = tolerations


def _untolerated(taints: list[Obj], tolerations: list[Obj], effects: tuple[str, ...]) -> bool:
    return any(t.get("effect") in effects and not any(toleration_matches(tol, t) for tol in tolerations)
               for t in taints)


# -- node selectors --------------------------------------------------------------------------


def _requirement_matches(values: dict[str, str], req: Obj) -> bool:
    key, op = str(req.get("key", "")), req.get("operator")
    wanted = [str(v) for v in req.get("values") or []]
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, bound = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def _term_matches(term: Obj, node: Obj) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term matches nothing
    labels = {str(k): str(v) for k, v in ((node.get("metadata") or {}).get("labels") or {}).items()}
    node_fields = {"metadata.name": str((node.get("metadata") or {}).get("name", ""))}
    return (all(_requirement_matches(labels, r) for r in expressions)
            and all(_requirement_matches(node_fields, r) for r in fields))


def _required_terms(spec: Obj) -> list[Obj] | None:
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {})
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return None
    return list(required.get("nodeSelectorTerms") or [])


def fits_node_affinity(spec: Obj, node: Obj) -> bool:
    """``spec.nodeSelector`` and the required node affinity (terms ORed) match ``node``."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False
    terms = _required_terms(spec)
    return terms is None or any(_term_matches(t, node) for t in terms)


# -- the decision and the pod -------------------------------------------------------------


def daemon_pod_spec(ds: Obj) -> Obj:
    """The template's pod spec with the daemon tolerations added (a copy)."""
    spec = copy.deepcopy(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    add_daemon_tolerations(spec)
    return spec


def should_run(node: Obj, ds: Obj, spec: Obj | None = None) -> tuple[bool, bool]:
    """(should run a daemon pod on ``node``, should keep one running there).

    ``spec`` is :func:`daemon_pod_spec` of ``ds`` (computed once per sync by callers
    that look at many nodes).
    """
    spec = spec if spec is not None else daemon_pod_spec(ds)
    name = str((node.get("metadata") or {}).get("name", ""))
    if spec.get("nodeName") and spec["nodeName"] != name:
        return False, False
    if not fits_node_affinity(spec, node):
        return False, False
    taints = [t for t in (node.get("spec") or {}).get("taints") or [] if isinstance(t, dict)]
    tolerations = list(spec.get("tolerations") or [])
    if _untolerated(taints, tolerations, (NO_SCHEDULE, NO_EXECUTE)):
        return False, not _untolerated(taints, tolerations, (NO_EXECUTE,))
    return True, True


def with_node_affinity(spec: Obj, node_name: str) -> None:
    """Hold the pod to ``node_name``: required terms become ``metadata.name In [node]`` (in place)."""
    affinity = spec.get("affinity")
    if not isinstance(affinity, dict):
        affinity = spec["affinity"] = {}
    node_affinity = affinity.get("nodeAffinity")
    if not isinstance(node_affinity, dict):
        node_affinity = affinity["nodeAffinity"] = {}
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}


def target_node(pod: Obj) -> str:
    """The node a daemon pod is for: ``spec.nodeName``, or its affinity's single node name."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    for term in _required_terms(spec) or []:
        for req in term.get("matchFields") or []:
            values = req.get("values") or []
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return ""
