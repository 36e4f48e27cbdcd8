"""Deletion behaviour of Pods and Namespaces, as :class:`KindHooks`.

Pods are deleted gracefully: a DELETE marks the pod (``deletionTimestamp`` =
now + grace) and the kubelet removes it once its containers stopped, with a
DELETE of grace 0.  The grace period is the request's ``gracePeriodSeconds``,
else ``spec.terminationGracePeriodSeconds`` (30); it is 0 -- immediate -- for a
pod not bound to a node or already Succeeded/Failed.

Namespaces are finalized: a DELETE turns the namespace ``Terminating`` and it
stays while ``spec.finalizers`` is non-empty (the namespace controller empties
the namespace, then clears them through ``namespaces/<name>/finalize``).
``default``, ``kube-system`` and ``kube-public`` may not be deleted (403 Forbidden).
"""

from __future__ import annotations

from typing import Any

from ..api.errors import forbidden
from .hooks import KindHooks

Obj = dict[str, Any]

DEFAULT_POD_GRACE = 30


class PodLifecycle(KindHooks):
    def grace_period(self, obj: Obj, requested: int | None) -> int:
        spec = obj.get("spec") or {}
        if not spec.get("nodeName"):
            return 0
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return 0
        if requested is not None:
            return max(0, requested)
        grace = spec.get("terminationGracePeriodSeconds")
        return DEFAULT_POD_GRACE if grace is None else max(0, int(grace))


#: Namespaces that may not be deleted (kube-apiserver's NamespaceLifecycle admission).
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")


class NamespaceLifecycle(KindHooks):
    def check_delete(self, obj: Obj) -> None:
        name = str((obj.get("metadata") or {}).get("name", ""))
        if name in IMMORTAL_NAMESPACES:
            raise forbidden("namespaces", "", name, "this namespace may not be deleted")

    def blocks_removal(self, obj: Obj) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))

    def mark_deleting(self, obj: Obj) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"
