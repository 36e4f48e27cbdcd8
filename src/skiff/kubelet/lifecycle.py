"""What to start, restart or stop next in a pod: Kubernetes' rules as pure functions.

Init containers run one at a time, in order, each to a successful exit, before
any regular container starts. A *sidecar* (an init container with
``restartPolicy: Always``) is started in its turn and, once it counts as started
(running, and its startup probe passed), the next init container goes; it then
keeps running next to the regular containers and is restarted whenever it exits::

    init[0] ──exit 0──▶ init[1] ──exit 0──▶ sidecar ──started──▶ init[2] ──exit 0──▶ containers...
       │ exit ≠ 0: restartPolicy Never -> the pod fails; else run it again (back-off)

Regular containers all start together. One that exits is restarted according to
the pod's ``restartPolicy``::

    Always      always                 OnFailure   when the exit code is not 0
    Never       never

Restarts back off exponentially per container (:class:`BackOff`, Kubernetes'
CrashLoopBackOff): the first restart is immediate, then 10 s, 20 s, 40 s ... at
most 5 min; a container that ran for 10 min (twice the cap) starts from scratch.
Image pulls back off the same way (ImagePullBackOff).

When a pod with restartPolicy Never/OnFailure has all its regular containers
finished for good, its sidecars are stopped (last first) and the pod is done.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .runtime.interface import ContainerState, ContainerStatus

Obj = dict[str, Any]

DEFAULT_BACKOFF_BASE = 10.0
DEFAULT_BACKOFF_CAP = 300.0


class BackOff:
    """Per-key exponential back-off (flowcontrol.Backoff's semantics).

    ``step(key, event_time)`` is called when an action is taken (a restart, a
    pull); ``remaining(key, event_time, now)`` says how long to wait after
    ``event_time`` (a container's exit, a failed pull) before the next one.
    Entries whose last step is older than ``reset_after`` are forgotten.
    """

    def __init__(self, base: float = DEFAULT_BACKOFF_BASE, cap: float = DEFAULT_BACKOFF_CAP,
                 reset_after: float | None = None) -> None:
        self.base = base
        self.cap = cap
        self.reset_after = reset_after if reset_after is not None else 2 * cap
        self._entries: dict[str, tuple[float, float]] = {}   # key -> (delay, last step)

    def _live(self, key: str, event_time: float) -> tuple[float, float] | None:
        entry = self._entries.get(key)
        if entry is not None and event_time - entry[1] > self.reset_after:
            del self._entries[key]
            return None
        return entry

    def step(self, key: str, event_time: float) -> float:
        """Record an action at ``event_time``; the delay the next one will wait."""
        entry = self._live(key, event_time)
        delay = self.base if entry is None else min(entry[0] * 2, self.cap)
        self._entries[key] = (delay, event_time)
        return delay

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry[0] if entry else 0.0

    def remaining(self, key: str, event_time: float, now: float) -> float:
        """Seconds still to wait after ``event_time`` (0: go ahead)."""
        entry = self._live(key, event_time)
        if entry is None:
            return 0.0
        return max(0.0, entry[0] - (now - event_time))

    def forget(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]


def restart_wanted(policy: str, exit_code: int | None) -> bool:
    """Whether a regular container that exited with ``exit_code`` runs again."""
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def is_sidecar(container: Obj) -> bool:
    return container.get("restartPolicy") == "Always"


class InitAction(enum.Enum):
    START = "start"             # start ``name`` (first run or a restart)
    WAIT = "wait"               # something is running or starting: wait for it
    FAILED = "failed"           # a regular init container failed and may not run again
    DONE = "done"               # every init container did its part


@dataclass(frozen=True)
class InitStep:
    action: InitAction
    name: str = ""


def _state(status: ContainerStatus | None) -> ContainerState | None:
    return status.state if status is not None else None


def next_init_step(spec: Obj, current: Mapping[str, ContainerStatus | None],
                   started: Mapping[str, bool], completed: set[str]) -> InitStep:
    """The next thing to do about init containers.

    ``current``: each init container's latest instance; ``started``: sidecars whose
    startup is confirmed; ``completed``: regular init containers that already
    succeeded during this pod's life (their instance may since have been removed).
    """
    policy = spec.get("restartPolicy") or "Always"
    for container in spec.get("initContainers") or []:
        name = container.get("name", "")
        status = current.get(name)
        state = _state(status)
        if is_sidecar(container):
            if state == ContainerState.RUNNING:
                if started.get(name):
                    continue
                return InitStep(InitAction.WAIT, name)
            return InitStep(InitAction.START, name)
        if name in completed:
            continue
        if state is None:
            return InitStep(InitAction.START, name)
        if state in (ContainerState.RUNNING, ContainerState.CREATED):
            return InitStep(InitAction.WAIT, name)
        assert status is not None
        if status.exit_code == 0:
            continue
        if policy == "Never":
            return InitStep(InitAction.FAILED, name)
        return InitStep(InitAction.START, name)
    return InitStep(InitAction.DONE)


def sidecars_in_stop_order(spec: Obj) -> list[str]:
    """Sidecars are stopped after the regular containers, the last one first."""
    return [c["name"] for c in reversed(spec.get("initContainers") or []) if is_sidecar(c)]


def regular_all_done(spec: Obj, current: Mapping[str, ContainerStatus | None]) -> bool:
    """restartPolicy Never/OnFailure: every regular container finished for good."""
    policy = spec.get("restartPolicy") or "Always"
    if policy == "Always":
        return False
    for container in spec.get("containers") or []:
        status = current.get(container.get("name", ""))
        if status is None or status.state != ContainerState.EXITED:
            return False
        if restart_wanted(policy, status.exit_code):
            return False
    return True


def grace_period(pod: Obj) -> float:
    """Seconds a deleted pod's containers get: the deletion's, else the spec's."""
    meta = pod.get("metadata") or {}
    value = meta.get("deletionGracePeriodSeconds")
    if value is None:
        value = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    return max(0.0, float(value if value is not None else 30))


def container_specs(spec: Obj) -> Sequence[tuple[str, Obj]]:
    """(kind, container) for every init, regular and ephemeral container, in that order."""
    return ([("init", c) for c in spec.get("initContainers") or []]
            + [("regular", c) for c in spec.get("containers") or []]
            + [("ephemeral", c) for c in spec.get("ephemeralContainers") or []])
