"""Liveness, readiness and startup probes: one small task per probe of a running container.

::

    container started ──▶ wait initialDelaySeconds ──▶ probe ──▶ wait periodSeconds ──▶ probe ...
                                                        │
      startup probe:   until it succeeds, the other two do not run and the container
                       is not "started"; failureThreshold failures in a row -> restart
      liveness probe:  failureThreshold failures in a row -> the container is killed
                       and restarted per restartPolicy (the task ends)
      readiness probe: the container is ready after successThreshold successes in a
                       row, unready after failureThreshold failures; never restarts

Before its first result a readiness probe counts as failed (not ready), a liveness
probe as passed, a startup probe as not yet passed. Each failed attempt records an
``Unhealthy`` event (``Liveness probe failed: <output>``). A change of any result
calls ``on_change(pod uid)`` — the pod worker then recomputes the status (and
kills a container whose liveness or startup failed). Nothing polls faster than
the probes' own periods.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..client.clock import Clock
from .handlers import Outcome, Target, run_handler
from .runtime.interface import Runtime

Obj = dict[str, Any]
log = logging.getLogger(__name__)

KINDS = ("startupProbe", "livenessProbe", "readinessProbe")
TITLES = {"startupProbe": "Startup", "livenessProbe": "Liveness", "readinessProbe": "Readiness"}
EventSink = Callable[[str, str, str], None]        # (type, reason, message)


@dataclass
class ProbeState:
    """What the probes of one container instance concluded so far."""

    started: bool = True         # startup probe passed (True without one)
    ready: bool = True           # readiness (True without a readiness probe)
    failed: str = ""             # "liveness" / "startup" once a probe demands a restart
    message: str = ""            # why, for the Killing event
    grace: float | None = None   # the probe's terminationGracePeriodSeconds, if any
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class ProbeManager:
    def __init__(self, runtime: Runtime, clock: Clock,
                 on_change: Callable[[str], None]) -> None:
        self.runtime = runtime
        self.clock = clock
        self.on_change = on_change
        self._states: dict[str, ProbeState] = {}          # container id -> state
        self._owners: dict[str, str] = {}                 # container id -> pod uid

    def state(self, container_id: str) -> ProbeState | None:
        return self._states.get(container_id)

    def started(self, container_id: str) -> bool:
        state = self._states.get(container_id)
        return state.started if state is not None else True

    def ready(self, container_id: str) -> bool:
        state = self._states.get(container_id)
        return state.ready and state.started if state is not None else True

    def add(self, pod_uid: str, container: Obj, target: Target, events: EventSink) -> None:
        """Start the probes of a container instance that has just started (or was adopted)."""
        cid = target.container_id
        if cid in self._states:
            return
        state = ProbeState(started=not isinstance(container.get("startupProbe"), dict),
                           ready=not isinstance(container.get("readinessProbe"), dict))
        self._states[cid] = state
        self._owners[cid] = pod_uid
        gate = asyncio.Event()
        if state.started:
            gate.set()
        for kind in KINDS:
            probe = container.get(kind)
            if isinstance(probe, dict):
                state.tasks.append(asyncio.create_task(
                    self._run(pod_uid, kind, probe, target, state, gate, events),
                    name=f"probe-{kind}-{cid[:12]}"))

    def remove(self, container_id: str) -> None:
        state = self._states.pop(container_id, None)
        self._owners.pop(container_id, None)
        if state is not None:
            for task in state.tasks:
                task.cancel()

    def remove_pod(self, pod_uid: str) -> None:
        for cid in [c for c, uid in self._owners.items() if uid == pod_uid]:
            self.remove(cid)

    def close(self) -> None:
        for cid in list(self._states):
            self.remove(cid)

    async def _run(self, pod_uid: str, kind: str, probe: Obj, target: Target, state: ProbeState,
                   gate: asyncio.Event, events: EventSink) -> None:
        if kind != "startupProbe":
            await gate.wait()
        period = max(1.0, float(probe.get("periodSeconds") or 10))
        timeout = max(1.0, float(probe.get("timeoutSeconds") or 1))
        success_needed = max(1, int(probe.get("successThreshold") or 1))
        failure_needed = max(1, int(probe.get("failureThreshold") or 3))
        await self.clock.sleep(float(probe.get("initialDelaySeconds") or 0))
        successes = failures = 0
        title = TITLES[kind]
        while True:
            try:
                outcome = await run_handler(self.runtime, probe, target, timeout)
            except Exception as err:          # a probe must never take the kubelet down
                log.exception("%s probe of %s crashed", title, target.container_id[:12])
                outcome = Outcome(False, str(err))
            if outcome.ok:
                successes, failures = successes + 1, 0
            else:
                successes, failures = 0, failures + 1
                events("Warning", "Unhealthy", f"{title} probe failed: {outcome.message}")
            if kind == "startupProbe":
                if outcome.ok:
                    state.started = True
                    gate.set()
                    self.on_change(pod_uid)
                    return
                if failures >= failure_needed:
                    self._fail(pod_uid, state, "startup", probe,
                               f"failed startup probe, will be restarted")
                    return
            elif kind == "livenessProbe":
                if failures >= failure_needed:
                    self._fail(pod_uid, state, "liveness", probe,
                               f"failed liveness probe, will be restarted")
                    return
            else:
                if not state.ready and successes >= success_needed:
                    state.ready = True
                    self.on_change(pod_uid)
                elif state.ready and failures >= failure_needed:
                    state.ready = False
                    self.on_change(pod_uid)
            await self.clock.sleep(period)

    def _fail(self, pod_uid: str, state: ProbeState, which: str, probe: Obj, message: str) -> None:
        state.failed = which
        state.message = message
        grace = probe.get("terminationGracePeriodSeconds")
        state.grace = float(grace) if grace is not None else None
        self.on_change(pod_uid)
