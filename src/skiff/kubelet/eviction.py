"""Node-pressure eviction: the kubelet fails pods before its node runs out of memory, disk or PIDs.

The contract is Kubernetes' eviction manager (v1.32).  Every ``monitoring_interval``
(10 s) one pass runs::

    observations   signal -> (available, capacity), from a SignalReader (see .evictionsignals)
        memory.available     capacity - working set      nodefs.available / nodefs.inodesFree
        imagefs.available    imagefs.inodesFree           pid.available
    met            thresholds with  available < value  (a percentage is of the capacity),
                   plus those met last pass while  available < value + minimumReclaim
    node condition MemoryPressure / DiskPressure / PIDPressure True while a threshold of its
                   signals is met, and for pressure_transition_period (5 min) after the last time
    actionable     met thresholds whose grace period has passed (hard ones: at once; soft
                   ones: continuously met for evictionSoftGracePeriod)
    none -> done.  Otherwise the first (memory before everything else) names the starved
    resource, the active pods are ranked for it, and the first one that is not critical is
    evicted -- ONE pod per pass:

        memory              usage above requests first, then lower priority, then the
                            largest usage above requests
        ephemeral-storage,  the same with local ephemeral storage (writable layers, logs,
        inodes              emptyDir volumes)
        pids                lower priority, then the most processes
        never               critical pods: static or mirror pods, priority >= 2000000000
                            (system-cluster-critical, system-node-critical)

    the pod: a Warning event ``Evicted``; every container stopped within the grace period
    (hard threshold: 1 s, Kubernetes' immediate-eviction grace; soft: min(pod's
    terminationGracePeriodSeconds, max_pod_grace_period)); status phase Failed, reason
    Evicted, the message below, condition DisruptionTarget=True (TerminationByKubelet).
    A workload controller (ReplicaSet, ...) replaces it as it would any failed pod.

    message:  "The node was low on resource: memory. Threshold quantity: 100Mi, available:
               42Mi. Container app was using 200Mi, request is 0, has larger consumption of
               memory. "  (a sentence per container over its request, trailing space kept)

Everything up to the kill is pure (thresholds, :class:`PressureTracker`, :func:`rank_pods`,
:func:`eviction_message`) and tested without a machine; :class:`EvictionManager` is the loop
that reads signals, kills through the pod workers and tells the node status when the
conditions change.  Not done (yet): node-level reclaim before evicting (image and
container GC), pod admission under pressure, the memcg threshold notifier,
allocatable.memory.available, per-pod ephemeral-storage limits and emptyDir sizeLimit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..api.protobuf import parse_duration
from ..api.quantity import Format, Quantity, QuantityError, parse_quantity
from ..api.resourcelist import pod_requests
from ..client.clock import Clock, RealClock
from .machine import Pressure
from .node_status import timestamp

Obj = dict[str, Any]
log = logging.getLogger(__name__)

MEMORY_AVAILABLE = "memory.available"
NODEFS_AVAILABLE = "nodefs.available"
NODEFS_INODES_FREE = "nodefs.inodesFree"
IMAGEFS_AVAILABLE = "imagefs.available"
IMAGEFS_INODES_FREE = "imagefs.inodesFree"
PID_AVAILABLE = "pid.available"

#: The resource each signal starves, and the node condition it raises.
SIGNAL_RESOURCE: Mapping[str, str] = {
    MEMORY_AVAILABLE: "memory", NODEFS_AVAILABLE: "ephemeral-storage",
    IMAGEFS_AVAILABLE: "ephemeral-storage", NODEFS_INODES_FREE: "inodes",
    IMAGEFS_INODES_FREE: "inodes", PID_AVAILABLE: "pids"}
SIGNAL_CONDITION: Mapping[str, str] = {
    MEMORY_AVAILABLE: "MemoryPressure", NODEFS_AVAILABLE: "DiskPressure",
    IMAGEFS_AVAILABLE: "DiskPressure", NODEFS_INODES_FREE: "DiskPressure",
    IMAGEFS_INODES_FREE: "DiskPressure", PID_AVAILABLE: "PIDPressure"}
_BYTES_SIGNALS = frozenset({MEMORY_AVAILABLE, NODEFS_AVAILABLE, IMAGEFS_AVAILABLE})

#: The kubelet's default --eviction-hard on Linux.
DEFAULT_EVICTION_HARD: Mapping[str, str] = {
    MEMORY_AVAILABLE: "100Mi", NODEFS_AVAILABLE: "10%", IMAGEFS_AVAILABLE: "15%",
    NODEFS_INODES_FREE: "5%", IMAGEFS_INODES_FREE: "5%"}

REASON = "Evicted"
HARD_GRACE_PERIOD = 1.0            # Kubernetes' immediateEvictionGracePeriodSeconds
CLEANUP_TIMEOUT = 30.0             # how long a pass waits for an evicted pod to stop
SYSTEM_CRITICAL_PRIORITY = 2_000_000_000
CONFIG_SOURCE_ANNOTATION = "kubernetes.io/config.source"
CONFIG_MIRROR_ANNOTATION = "kubernetes.io/config.mirror"


# -- thresholds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Amount:
    """A threshold value: an absolute quantity or a fraction of the signal's capacity."""

    quantity: Quantity | None = None
    fraction: float | None = None

    @classmethod
    def parse(cls, text: str) -> "Amount":
        text = text.strip()
        if text.endswith("%"):
            try:
                percent = float(text[:-1])
            except ValueError:
                raise ValueError(f"invalid percentage {text!r}") from None
            if not 0 <= percent <= 100:
                raise ValueError(f"eviction percentage threshold must be >= 0% and <= 100%: {text}")
            return cls(fraction=percent / 100)
        try:
            quantity = parse_quantity(text)
        except QuantityError:
            raise ValueError(f"invalid quantity {text!r}") from None
        if quantity.amount < 0:
            raise ValueError(f"eviction threshold cannot be negative: {text}")
        return cls(quantity=quantity)

    def resolve(self, capacity: int) -> int:
        if self.quantity is not None:
            return self.quantity.value()
        return int(capacity * (self.fraction or 0.0))

    def text(self, capacity: int) -> str:
        """As Kubernetes prints the threshold quantity in an eviction message."""
        if self.quantity is not None:
            return str(self.quantity)
        return str(Quantity(self.resolve(capacity), Format.BINARY_SI))

    @property
    def is_zero(self) -> bool:
        return (self.quantity is not None and self.quantity.is_zero()) or self.fraction == 0


@dataclass(frozen=True)
class Threshold:
    """``signal < value``; soft when it has a grace period (it must hold that long)."""

    signal: str
    value: Amount
    grace_period: float = 0.0
    min_reclaim: Amount | None = None

    @property
    def hard(self) -> bool:
        return self.grace_period == 0

    def met(self, observed: "Observation", *, with_reclaim: bool = False) -> bool:
        quantity = self.value.resolve(observed.capacity)
        if with_reclaim and self.min_reclaim is not None:
            quantity += self.min_reclaim.resolve(observed.capacity)
        return observed.available < quantity


def _check_signal(signal: str) -> str:
    if signal not in SIGNAL_RESOURCE:
        raise ValueError(f"unsupported eviction signal {signal}")
    return signal


def parse_thresholds(hard: Mapping[str, str] = DEFAULT_EVICTION_HARD, soft: Mapping[str, str] | None = None,
                     soft_grace_period: Mapping[str, str | float] | None = None,
                     minimum_reclaim: Mapping[str, str] | None = None) -> tuple[Threshold, ...]:
    """Thresholds from the kubelet's maps (``evictionHard`` etc.).  A given ``hard`` map
    replaces the defaults entirely; ``0``/``0%`` disables a signal.  Grace periods are
    seconds or Go durations (``1m30s``); a soft threshold must have one."""
    reclaims = {_check_signal(s): Amount.parse(v) for s, v in (minimum_reclaim or {}).items()}
    out: list[Threshold] = []
    for signal, text in hard.items():
        value = Amount.parse(text)
        if not value.is_zero:
            out.append(Threshold(_check_signal(signal), value, 0.0, reclaims.get(signal)))
    graces = dict(soft_grace_period or {})
    for signal, text in (soft or {}).items():
        value = Amount.parse(text)
        if value.is_zero:
            continue
        grace = graces.get(_check_signal(signal))
        if grace is None:
            raise ValueError(f"grace period must be specified for the soft eviction threshold {signal}")
        seconds = grace if isinstance(grace, (int, float)) else parse_duration(grace) / 1e9
        if seconds <= 0:
            raise ValueError(f"soft eviction grace period for {signal} must be positive")
        out.append(Threshold(signal, value, float(seconds), reclaims.get(signal)))
    return tuple(out)


def parse_threshold_flag(text: str) -> dict[str, str]:
    """``memory.available<100Mi,nodefs.available<10%`` (--eviction-hard / --eviction-soft)."""
    out: dict[str, str] = {}
    for statement in filter(None, (s.strip() for s in text.split(","))):
        signal, sep, value = statement.partition("<")
        if not sep:
            raise ValueError(f"invalid eviction threshold {statement!r} (want signal<value)")
        out[_check_signal(signal.strip())] = value.strip()
    return out


def parse_map_flag(text: str) -> dict[str, str]:
    """``memory.available=1m30s,...`` (--eviction-soft-grace-period, --eviction-minimum-reclaim)."""
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        signal, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"invalid entry {item!r} (want signal=value)")
        out[_check_signal(signal.strip())] = value.strip()
    return out


@dataclass(frozen=True)
class EvictionConfig:
    """The eviction settings (kubelet flag in brackets)."""

    thresholds: tuple[Threshold, ...] = field(default_factory=parse_thresholds)
    #: [--eviction-pressure-transition-period, 5m] how long a pressure condition stays True.
    pressure_transition_period: float = 300.0
    #: [--eviction-max-pod-grace-period, 0] the grace cap of soft evictions.
    max_pod_grace_period: float = 0.0
    #: [--housekeeping-interval, 10s] time between passes.
    monitoring_interval: float = 10.0

    @classmethod
    def from_flags(cls, *, eviction_hard: str | None = None, eviction_soft: str = "",
                   eviction_soft_grace_period: str = "", eviction_minimum_reclaim: str = "",
                   eviction_pressure_transition_period: str = "5m",
                   eviction_max_pod_grace_period: int = 0) -> "EvictionConfig":
        """From the kubelet's flag syntax; ``eviction_hard=None`` keeps the defaults."""
        hard = DEFAULT_EVICTION_HARD if eviction_hard is None else parse_threshold_flag(eviction_hard)
        thresholds = parse_thresholds(hard, parse_threshold_flag(eviction_soft),
                                      parse_map_flag(eviction_soft_grace_period),
                                      parse_map_flag(eviction_minimum_reclaim))
        return cls(thresholds=thresholds,
                   pressure_transition_period=parse_duration(eviction_pressure_transition_period) / 1e9,
                   max_pod_grace_period=float(eviction_max_pod_grace_period))


# -- observations and the pressure state ------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    available: int
    capacity: int


Observations = Mapping[str, Observation]


class PressureTracker:
    """The state one eviction pass carries to the next (pure: time is passed in)."""

    def __init__(self, config: EvictionConfig) -> None:
        self.config = config
        self.first_met: dict[Threshold, float] = {}       # when each met threshold was first met
        self.condition_seen: dict[str, float] = {}       # when each condition was last observed
        self.actionable: list[Threshold] = []
        self.conditions: frozenset[str] = frozenset()

    def update(self, observations: Observations, now: float) -> list[Threshold]:
        """Record one pass's observations; the thresholds to act on, memory first."""
        met = [t for t in self.config.thresholds
               if t.signal in observations and t.met(observations[t.signal])]
        for t in self.actionable:     # not yet reclaimed down to value + minimumReclaim
            if t not in met and t.signal in observations \
                    and t.met(observations[t.signal], with_reclaim=True):
                met.append(t)
        self.first_met = {t: self.first_met.get(t, now) for t in met}
        seen_now = {SIGNAL_CONDITION[t.signal] for t in met}
        self.condition_seen.update({c: now for c in seen_now})
        period = self.config.pressure_transition_period
        self.conditions = frozenset(seen_now | {c for c, at in self.condition_seen.items()
                                                if now - at < period})
        self.actionable = [t for t, at in self.first_met.items() if now - at >= t.grace_period]
        return sorted(self.actionable, key=lambda t: t.signal != MEMORY_AVAILABLE)

    def pressure(self) -> Pressure:
        return Pressure(memory="MemoryPressure" in self.conditions,
                        disk="DiskPressure" in self.conditions, pid="PIDPressure" in self.conditions)


# -- pod usage, ranking, messages ------------------------------------------------------------


@dataclass(frozen=True)
class ContainerUsage:
    name: str
    memory: int | None = None          # working set, bytes
    disk: int | None = None            # writable layer + logs, bytes
    inodes: int | None = None


@dataclass(frozen=True)
class PodUsage:
    containers: tuple[ContainerUsage, ...] = ()
    volume_disk: int = 0               # local (disk-backed emptyDir) volumes
    volume_inodes: int = 0
    processes: int = 0

    def total(self, resource: str) -> int:
        if resource == "memory":
            return sum(c.memory or 0 for c in self.containers)
        if resource == "inodes":
            return self.volume_inodes + sum(c.inodes or 0 for c in self.containers)
        if resource == "pids":
            return self.processes
        return self.volume_disk + sum(c.disk or 0 for c in self.containers)


def pod_priority(pod: Obj) -> int:
    return int((pod.get("spec") or {}).get("priority") or 0)


def is_critical(pod: Obj) -> bool:
    """Static and mirror pods, and system-critical priorities, are never evicted."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    source = annotations.get(CONFIG_SOURCE_ANNOTATION)
    if (source and source != "api") or CONFIG_MIRROR_ANNOTATION in annotations:
        return True
    return pod_priority(pod) >= SYSTEM_CRITICAL_PRIORITY


def _request(pod: Obj, resource: str) -> int:
    if resource not in ("memory", "ephemeral-storage"):
        return 0
    quantity = pod_requests(pod.get("spec") or {}).get(resource)
    return quantity.value() if quantity is not None else 0


def rank_pods(pods: Iterable[Obj], resource: str, usage: Mapping[str, PodUsage]) -> list[Obj]:
    """The pods in eviction order for a starved ``resource`` (see the module docstring).
    A pod without usage figures goes first, as in Kubernetes."""
    def key(pod: Obj) -> tuple[int, int, int, int]:
        stats = usage.get(str((pod.get("metadata") or {}).get("uid", "")))
        if resource == "pids":
            return (pod_priority(pod), stats is not None, -(stats.processes if stats else 0), 0)
        if stats is None:
            return (0, 0, pod_priority(pod), 0)
        used = stats.total(resource)
        request = _request(pod, resource)
        return (1, 0 if used > request else 1, pod_priority(pod), request - used)
    return sorted(pods, key=key)


def _size(amount: int, resource: str) -> str:
    return str(Quantity(amount, Format.BINARY_SI if resource in ("memory", "ephemeral-storage")
                        else Format.DECIMAL_SI))


def eviction_message(resource: str, pod: Obj, usage: PodUsage | None,
                     thresholds: Sequence[Threshold], observations: Observations) -> tuple[str, dict[str, str]]:
    """The pod's status message and the Evicted event's annotations, as Kubernetes words them."""
    message = f"The node was low on resource: {resource}. "
    for threshold in thresholds:
        observed = observations.get(threshold.signal)
        if SIGNAL_RESOURCE[threshold.signal] == resource and observed is not None:
            available = Quantity(observed.available, Format.BINARY_SI if threshold.signal in _BYTES_SIGNALS
                                 else Format.DECIMAL_SI)
            message += (f"Threshold quantity: {threshold.value.text(observed.capacity)}, "
                        f"available: {available}. ")
            break
    if usage is None:
        return message, {}
    spec = pod.get("spec") or {}
    specs = {c.get("name"): c for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
    offenders: list[str] = []
    amounts: list[str] = []
    for container in usage.containers:
        declared = specs.get(container.name)
        used = container.memory if resource == "memory" else (
            container.disk if resource == "ephemeral-storage" else None)
        if declared is None or used is None:
            continue
        request_text = ((declared.get("resources") or {}).get("requests") or {}).get(resource)
        request = parse_quantity(request_text) if request_text is not None else Quantity(0)
        if used > request.value():
            shown = _size(used, resource)
            message += (f"Container {container.name} was using {shown}, request is {request}, "
                        f"has larger consumption of {resource}. ")
            offenders.append(container.name)
            amounts.append(shown)
    return message, {"offending_containers": ",".join(offenders),
                     "offending_containers_usage": ",".join(amounts), "starved_resource": resource}


def disruption_condition(message: str, now: float) -> Obj:
    return {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": timestamp(now),
            "reason": "TerminationByKubelet", "message": message}


def grace_for(threshold: Threshold, pod: Obj, config: EvictionConfig) -> float:
    if threshold.hard:
        return HARD_GRACE_PERIOD
    pod_grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds")
    cap = config.max_pod_grace_period
    return float(min(cap, pod_grace) if pod_grace is not None else cap)


# -- the manager (I/O: signals, pod workers, events) -----------------------------------------


class SignalReader(Protocol):
    """Where the signals come from (the machine in production, a script in tests)."""

    async def observe(self) -> dict[str, Observation]: ...
    async def pod_usage(self, pods: Sequence[Obj], resource: str) -> dict[str, PodUsage]: ...


class PodHandle(Protocol):
    """What the manager needs of a pod worker (.podworker.PodWorker)."""

    pod: Obj | None
    terminal: bool

    def evict(self, grace: float, message: str, condition: Obj) -> asyncio.Event: ...


class EventSink(Protocol):
    def event(self, obj: Obj, type_: str, reason: str, message: str, *, component: str) -> None: ...


def active_pods(handles: Iterable[PodHandle]) -> list[Obj]:
    """Pods that still run something and are not already on their way out."""
    out = []
    for handle in handles:
        pod = handle.pod
        if pod is None or handle.terminal or (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        out.append(pod)
    return out


class EvictionManager:
    """Runs the passes (module docstring); ``pressure()`` feeds the node conditions."""

    def __init__(self, config: EvictionConfig, signals: SignalReader, pods: Mapping[str, PodHandle],
                 recorder: EventSink, *, node_name: str, clock: Clock | None = None) -> None:
        self.config = config
        self.signals = signals
        self.pods = pods
        self.recorder = recorder
        self.node_name = node_name
        self.clock: Clock = clock or RealClock()
        self.tracker = PressureTracker(config)
        self.observations: dict[str, Observation] = {}
        self.evicted: list[str] = []                       # "namespace/name", in order
        self._changed = asyncio.Event()

    def pressure(self) -> Pressure:
        return self.tracker.pressure()

    def configure(self, config: EvictionConfig) -> None:
        """New settings from the next pass on (what was observed so far is kept)."""
        self.config = config
        self.tracker.config = config

    async def pressure_changed(self, timeout: float) -> None:
        """Return when a pressure condition flips, or after ``timeout`` seconds."""
        sleeper = asyncio.ensure_future(self.clock.sleep(timeout))
        waiter = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait([sleeper, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()
        self._changed.clear()

    async def run(self) -> None:
        while True:
            try:
                evicted = await self.synchronize()
            except Exception:
                log.exception("eviction manager: pass failed")
                evicted = False
            if not evicted:
                await self.clock.sleep(self.config.monitoring_interval)

    async def synchronize(self) -> bool:
        """One pass; True when a pod was evicted (and has stopped, or the wait timed out)."""
        self.observations = await self.signals.observe()
        before = self.tracker.conditions
        thresholds = self.tracker.update(self.observations, self.clock.time())
        if self.tracker.conditions != before:
            log.info("node %s: pressure conditions now %s", self.node_name, sorted(self.tracker.conditions))
            self._changed.set()
        if not thresholds:
            return False
        threshold = thresholds[0]
        resource = SIGNAL_RESOURCE[threshold.signal]
        self.recorder.event({"kind": "Node", "apiVersion": "v1",
                             "metadata": {"name": self.node_name, "uid": self.node_name}},
                            "Warning", "EvictionThresholdMet", f"Attempting to reclaim {resource}",
                            component="kubelet")
        candidates = active_pods(self.pods.values())
        if not candidates:
            log.error("eviction manager: %s is starved but no pod is active to evict", resource)
            return False
        usage = await self.signals.pod_usage(candidates, resource)
        for pod in rank_pods(candidates, resource, usage):
            if is_critical(pod):
                continue
            meta = pod.get("metadata") or {}
            message, annotations = eviction_message(resource, pod, usage.get(str(meta.get("uid"))),
                                                    thresholds, self.observations)
            await self._evict(pod, grace_for(threshold, pod, self.config), message, annotations)
            return True
        log.error("eviction manager: unable to evict any pod from node %s", self.node_name)
        return False

    async def _evict(self, pod: Obj, grace: float, message: str, annotations: Mapping[str, str]) -> None:
        meta = pod.get("metadata") or {}
        handle = self.pods.get(str(meta.get("uid", "")))
        if handle is None:
            return
        log.info("evicting pod %s/%s (grace %.0fs): %s %s", meta.get("namespace"), meta.get("name"),
                 grace, message, dict(annotations))
        self.recorder.event({"kind": "Pod", "apiVersion": "v1", "metadata": meta}, "Warning", REASON,
                            message, component="kubelet")
        self.evicted.append(f"{meta.get('namespace', '')}/{meta.get('name', '')}")
        stopped = handle.evict(grace, message, disruption_condition(message, self.clock.time()))
        try:
            await asyncio.wait_for(stopped.wait(), grace + CLEANUP_TIMEOUT)
        except TimeoutError:
            log.warning("eviction manager: pod %s/%s did not stop in time", meta.get("namespace"),
                        meta.get("name"))

