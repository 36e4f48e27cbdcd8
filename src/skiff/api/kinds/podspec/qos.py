"""A Pod's quality-of-service class, as kube-apiserver computes it on create."""

from __future__ import annotations

from typing import Any

from .. import meta as m

Obj = dict[str, Any]


def pod_qos_class(spec: Obj) -> str:
    """BestEffort, Burstable or Guaranteed from cpu/memory requests and limits
    (requests default to limits, as they do for Pods)."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for name in ("initContainers", "containers"):
        for container in spec.get(name) or []:
            res = container.get("resources") or {}
            lim = {k: q for k, v in (res.get("limits") or {}).items() if (q := m.parse_quantity(v)) is not None}
            req = {k: q for k, v in (res.get("requests") or {}).items() if (q := m.parse_quantity(v)) is not None}
            for k, v in lim.items():
                req.setdefault(k, v)
            found = set()
            for k in ("cpu", "memory"):
                if k in req and req[k] > 0:
                    requests[k] = requests.get(k, 0) + req[k]
                if k in lim and lim[k] > 0:
                    limits[k] = limits.get(k, 0) + lim[k]
                    found.add(k)
            if found != {"cpu", "memory"}:
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(k) == v for k, v in requests.items()) and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"
