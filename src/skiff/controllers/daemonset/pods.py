"""Daemon pods: the pod for a node, whether a pod is up to date, pods by node.

A daemon pod is the template plus::

    labels       controller-revision-hash=<hash of the current revision>
                 pod-template-generation=<n>   (only when the DaemonSet carries the
                                               deprecated.daemonset.template.generation
                                               annotation)
    tolerations  the daemon tolerations (placement.py)
    affinity     required node affinity metadata.name In [<node>]
    generateName <ds>-, an owner reference to the DaemonSet (controller)

A pod is *updated* when its hash label is the current revision's (or its
generation label is the DaemonSet's template generation).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from .. import podstate
from ..history import CONTROLLER_REVISION_HASH
from ..podcontrol import pod_from_template
from .placement import add_daemon_tolerations, target_node, with_node_affinity

Obj = dict[str, Any]

TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"


def template_generation(ds: Obj) -> str | None:
    value = ((ds.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    return None if value is None else str(value)


def daemon_template(ds: Obj, hash_: str) -> Obj:
    """The template every new daemon pod is made from (without the node affinity)."""
    template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    spec = template.setdefault("spec", {})
    add_daemon_tolerations(spec)
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    generation = template_generation(ds)
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = generation
    if hash_:
        labels[CONTROLLER_REVISION_HASH] = hash_
    return template


def pod_for_node(ds: Obj, template: Obj, node_name: str, owner_ref: Obj) -> Obj:
    meta = ds["metadata"]
    pod = pod_from_template(template, namespace=meta["namespace"], owner_name=meta["name"],
                            owner_ref=owner_ref)
    with_node_affinity(pod["spec"], node_name)
    return pod


def is_updated(pod: Obj, hash_: str, generation: str | None) -> bool:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return bool((hash_ and labels.get(CONTROLLER_REVISION_HASH) == hash_)
                or (generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation))


def by_node(pods: Iterable[Obj]) -> dict[str, list[Obj]]:
    """Daemon pods grouped by the node they are for (finished pods being deleted left out)."""
    out: dict[str, list[Obj]] = {}
    for pod in pods:
        phase = (pod.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed") and podstate.is_terminating(pod):
            continue
        out.setdefault(target_node(pod), []).append(pod)
    return out


def oldest_first(pods: Iterable[Obj]) -> list[Obj]:
    """Scheduled pods first, then by creation time, then by name (Kubernetes' order)."""
    def key(pod: Obj) -> tuple[int, float, str]:
        created = podstate.creation_time(pod)
        return (0 if (pod.get("spec") or {}).get("nodeName") else 1,
                created.timestamp() if created else 0.0,
                str((pod.get("metadata") or {}).get("name", "")))
    return sorted(pods, key=key)
