"""Container lifecycle hooks: ``postStart`` and ``preStop``.

::

    start(container) ──▶ postStart runs (exec / httpGet / sleep) ──ok──▶ the container counts
                                 │                                      as started
                                 └─fails──▶ event FailedPostStartHook; the container is killed
                                            (and restarted per restartPolicy)

    stop(container) ──▶ preStop runs, within the grace period ──▶ stop signal ──▶ the rest
                        of the grace period ──▶ SIGKILL     (a failing preStop only records
                                                             FailedPreStopHook)

Messages read like the kubelet's, e.g. ``Exec lifecycle hook ([sh -c false]) for
Container "web" in Pod "web_default(<uid>)" failed - error: command 'sh -c false'
exited with 1: , message: ""``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .handlers import Outcome, Target, run_handler
from .runtime.interface import Runtime

Obj = dict[str, Any]
#: postStart has no deadline in Kubernetes; skiff caps it so a hung hook cannot wedge a pod.
POST_START_TIMEOUT = 300.0


def pod_description(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('name', '')}_{meta.get('namespace', '')}({meta.get('uid', '')})"


def _failure_message(pod: Obj, container: Obj, handler: Obj, outcome: Outcome) -> str:
    name = container.get("name", "")
    where = f'for Container "{name}" in Pod "{pod_description(pod)}"'
    if isinstance(handler.get("exec"), dict):
        command = [str(a) for a in handler["exec"].get("command") or []]
        return (f"Exec lifecycle hook ([{' '.join(command)}]) {where} failed - error: command "
                f"'{' '.join(command)}' exited with a failure: , message: {outcome.message!r}")
    if isinstance(handler.get("httpGet"), dict):
        path = handler["httpGet"].get("path") or "/"
        return f"HTTP lifecycle hook ({path}) {where} failed - error: {outcome.message}, message: \"\""
    return f"Lifecycle hook {where} failed - error: {outcome.message}"


async def post_start(runtime: Runtime, pod: Obj, container: Obj, target: Target) -> str | None:
    """Run the container's postStart hook; the failure message, or None when it passed."""
    handler = (container.get("lifecycle") or {}).get("postStart")
    if not isinstance(handler, dict):
        return None
    outcome = await run_handler(runtime, handler, target, POST_START_TIMEOUT)
    return None if outcome.ok else _failure_message(pod, container, handler, outcome)


async def pre_stop(runtime: Runtime, pod: Obj, container: Obj, target: Target,
                   grace: float) -> str | None:
    """Run the preStop hook for at most ``grace`` seconds; a failure message or None."""
    handler = (container.get("lifecycle") or {}).get("preStop")
    if not isinstance(handler, dict) or grace <= 0:
        return None
    try:
        outcome = await asyncio.wait_for(run_handler(runtime, handler, target, grace), grace)
    except asyncio.TimeoutError:
        return None          # the grace period ran out: the container is stopped anyway
    return None if outcome.ok else _failure_message(pod, container, handler, outcome)
