"""Resource vectors and what a pod requests, counted as the scheduler counts them.

``Resources`` holds integers: CPU in millicores, memory and ephemeral storage
in bytes, a pod count, and *scalar* resources (extended resources such as
``nvidia.com/gpu``, ``hugepages-*``, ``attachable-volumes-*``) in whole units.

A pod's effective request (Kubernetes' ``PodRequests``)::

    app      = sum(regular containers) + sum(restartable init containers, i.e. sidecars)
    init     = max over init containers, in order, of
                 sidecar:      sum of the sidecars started so far (itself included)
                 regular init: its own request + sum of the sidecars started before it
    request  = max(app, init) per resource  +  spec.overhead

For *scoring* only, a container that requests no CPU counts as 100m and one
that requests no memory as 200Mi (Kubernetes' non-zero defaults), so that
best-effort pods still spread.
"""

from __future__ import annotations

import functools
from typing import Any, Iterable, Mapping

from skiff.api.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL_STORAGE = "ephemeral-storage"
PODS = "pods"

DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024


def is_scalar_resource(name: str) -> bool:
    """Extended (a domain-prefixed name outside kubernetes.io), hugepages-* or attachable-volumes-*."""
    if name.startswith("hugepages-") or name.startswith("attachable-volumes-"):
        return True
    if "/" not in name:
        return False
    if name.startswith("requests."):
        return False
    domain = name.split("/", 1)[0]
    return not (domain == "kubernetes.io" or domain.endswith(".kubernetes.io"))


class Resources:
    """A mutable resource vector (the unit NodeInfo aggregates)."""

    __slots__ = ("milli_cpu", "memory", "ephemeral_storage", "pods", "scalars")

    def __init__(self, milli_cpu: int = 0, memory: int = 0, ephemeral_storage: int = 0,
                 pods: int = 0, scalars: dict[str, int] | None = None) -> None:
        self.milli_cpu = milli_cpu
        self.memory = memory
        self.ephemeral_storage = ephemeral_storage
        self.pods = pods
        self.scalars: dict[str, int] = scalars if scalars is not None else {}

    @classmethod
    def from_list(cls, rl: Mapping[str, Any] | None) -> Resources:
        r = cls()
        r.add_list(rl)
        return r

    def add_list(self, rl: Mapping[str, Any] | None) -> None:
        for name, value in (rl or {}).items():
            self._apply(name, _amount(name, value), add=True)

    def max_list(self, rl: Mapping[str, Any] | None) -> None:
        for name, value in (rl or {}).items():
            self._apply(name, _amount(name, value), add=False)

    def _apply(self, name: str, amount: int, *, add: bool) -> None:
        if name == CPU:
            self.milli_cpu = self.milli_cpu + amount if add else max(self.milli_cpu, amount)
        elif name == MEMORY:
            self.memory = self.memory + amount if add else max(self.memory, amount)
        elif name == EPHEMERAL_STORAGE:
            self.ephemeral_storage = self.ephemeral_storage + amount if add else max(self.ephemeral_storage, amount)
        elif name == PODS:
            self.pods = self.pods + amount if add else max(self.pods, amount)
        elif is_scalar_resource(name):
            have = self.scalars.get(name, 0)
            self.scalars[name] = have + amount if add else max(have, amount)

    def add(self, other: Resources, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        self.pods += sign * other.pods
        for name, v in other.scalars.items():
            self.scalars[name] = self.scalars.get(name, 0) + sign * v

    def set_max(self, other: Resources) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        self.pods = max(self.pods, other.pods)
        for name, v in other.scalars.items():
            self.scalars[name] = max(self.scalars.get(name, 0), v)

    def clone(self) -> Resources:
        return Resources(self.milli_cpu, self.memory, self.ephemeral_storage, self.pods, dict(self.scalars))

    def get(self, name: str) -> int:
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL_STORAGE:
            return self.ephemeral_storage
        if name == PODS:
            return self.pods
        return self.scalars.get(name, 0)

    def is_zero(self) -> bool:
        return not (self.milli_cpu or self.memory or self.ephemeral_storage or any(self.scalars.values()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return (self.milli_cpu, self.memory, self.ephemeral_storage, self.pods,
                {k: v for k, v in self.scalars.items() if v}) == (
            other.milli_cpu, other.memory, other.ephemeral_storage, other.pods,
            {k: v for k, v in other.scalars.items() if v})

    def __repr__(self) -> str:
        return (f"Resources(cpu={self.milli_cpu}m, memory={self.memory}, "
                f"ephemeral_storage={self.ephemeral_storage}, pods={self.pods}, scalars={self.scalars})")


def _amount(name: str, value: Any) -> int:
    """A quantity as an integer: millicores for cpu, whole units (bytes, ...) otherwise."""
    if isinstance(value, str):
        return _parsed_amount(name == CPU, value)
    return _parse_amount(name == CPU, value)


def _parse_amount(milli: bool, value: Any) -> int:
    try:
        q = parse_quantity(value)
    except QuantityError:
        return 0
    return q.milli_value() if milli else q.value()


# The same few texts ("100m", "128Mi", "4") come by again and again: parse each once.
_parsed_amount = functools.lru_cache(maxsize=4096)(_parse_amount)


def _requests(container: Obj) -> Mapping[str, Any]:
    return ((container.get("resources") or {}).get("requests")) or {}


def _is_sidecar(container: Obj) -> bool:
    return container.get("restartPolicy") == "Always"


def _combine(spec: Obj, per_container: Any) -> Resources:
    """The PodRequests formula over a per-container request function."""
    app = Resources()
    for c in spec.get("containers") or ():
        app.add(per_container(c))
    sidecars = Resources()
    init = Resources()
    for c in spec.get("initContainers") or ():
        req = per_container(c)
        if _is_sidecar(c):
            app.add(req)
            sidecars.add(req)
            running = sidecars.clone()
        else:
            running = req.clone()
            running.add(sidecars)
        init.set_max(running)
    app.set_max(init)
    overhead = spec.get("overhead")
    if overhead:
        app.add_list(overhead)
    return app


def pod_requests(pod: Obj) -> Resources:
    """The pod's effective request (``pods`` is left 0: a pod counts once, elsewhere)."""
    spec = pod.get("spec") or {}
    return _combine(spec, lambda c: Resources.from_list(_requests(c)))


def _non_zero(container: Obj) -> Resources:
    req = _requests(container)
    r = Resources()
    r.milli_cpu = _amount(CPU, req[CPU]) if CPU in req else DEFAULT_MILLI_CPU_REQUEST
    r.memory = _amount(MEMORY, req[MEMORY]) if MEMORY in req else DEFAULT_MEMORY_REQUEST
    return r


def pod_non_zero_requests(pod: Obj) -> tuple[int, int]:
    """(millicores, bytes) with the scheduler's non-zero defaults, for scoring."""
    r = _combine(pod.get("spec") or {}, _non_zero)
    return r.milli_cpu, r.memory


def sum_requests(pods: Iterable[Obj]) -> Resources:
    total = Resources()
    for p in pods:
        total.add(pod_requests(p))
    return total
