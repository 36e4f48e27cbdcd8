"""Priority admission: a pod's ``priorityClassName`` becomes its ``spec.priority``.

As Kubernetes' Priority admission plugin, on pod create:

* a named class sets ``spec.priority`` to the class's value and, unless the pod
  says otherwise, ``spec.preemptionPolicy`` to the class's policy;
* an unknown name is refused: 403 ``pods "x" is forbidden: no PriorityClass with
  name foo was found``;
* a pod without a class gets the ``globalDefault`` class, if one exists;
* a ``spec.priority`` that disagrees with the class is refused.

The classes live in memory (:class:`PriorityClasses`, the hooks of
``scheduling.k8s.io/priorityclasses``), rebuilt from the store at start and kept
current by the writes that go through this server.  The built-in
``system-node-critical`` and ``system-cluster-critical`` are created at start.
"""

from __future__ import annotations

from typing import Any

from ..api.errors import forbidden
from .hooks import NO_RESERVATION, ClassCache, Reservation
from .lifecycle import PodLifecycle

Obj = dict[str, Any]
PREFIX = "/registry/scheduling.k8s.io/priorityclasses/"


class PriorityClasses(ClassCache):
    def __init__(self) -> None:
        super().__init__(PREFIX)

    def global_default(self) -> Obj | None:
        defaults = [c for c in self.classes.values() if c.get("globalDefault")]
        return max(defaults, key=lambda c: int(c.get("value", 0)), default=None)

    def admit_pod(self, pod: Obj) -> None:
        spec = pod.setdefault("spec", {})
        name = spec.get("priorityClassName") or ""
        given = spec.get("priority")
        if not name:
            chosen = self.global_default()
            if chosen is None or given not in (None, 0):  # 0: the pod defaults' own value
                return
            spec["priorityClassName"] = chosen["metadata"]["name"]
            given = None
        else:
            chosen = self.classes.get(name)
            if chosen is None:
                raise forbidden("pods", "", pod["metadata"].get("name", ""),
                                f"no PriorityClass with name {name} was found")
        value = int(chosen.get("value", 0))
        if given is not None and given != value:
            raise forbidden("pods", "", pod["metadata"].get("name", ""),
                            f"the integer value of priority ({given}) must not be provided in pod "
                            f"spec; priority admission controller computed {value} from the given "
                            f"PriorityClass name")
        spec["priority"] = value
        if not spec.get("preemptionPolicy"):
            spec["preemptionPolicy"] = chosen.get("preemptionPolicy") or "PreemptLowerPriority"


class PodAdmission(PodLifecycle):
    """Pods: graceful deletion (:class:`PodLifecycle`) plus priority admission on create."""

    def __init__(self, priorities: PriorityClasses) -> None:
        self.priorities = priorities

    def admit(self, obj: Obj, old: Obj | None) -> Reservation:
        if old is None:
            self.priorities.admit_pod(obj)
        return NO_RESERVATION
