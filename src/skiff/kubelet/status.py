"""A pod's status as the kubelet reports it: phase, conditions, container statuses.

Pure: the pod worker describes each container (:class:`ContainerView`: what the
runtime says about its current and previous instance, plus what the kubelet knows
on top — a waiting reason, readiness, the startup probe) and :func:`pod_status`
turns that into ``Pod.status`` with Kubernetes' semantics.

Container state::

    no instance yet          waiting  ContainerCreating (PodInitializing while init runs;
                                      ErrImagePull, ImagePullBackOff,
                                      CreateContainerConfigError ... when starting failed)
    running                  running  startedAt;  lastState = the previous instance
    exited, to be restarted  waiting  CrashLoopBackOff "back-off 10s restarting ...";
                                      lastState = terminated (this instance)
    exited, for good         terminated exitCode, reason (Completed | Error | OOMKilled |
                                      StartError), startedAt, finishedAt, containerID

Phase (regular init containers must all succeed, sidecars must be started, then)::

    any regular container waiting for its first start    Pending
    something running                                    Running
    everything stopped: pod terminal (deleted) or restartPolicy Never/OnFailure
                        all exit 0 -> Succeeded, else Never -> Failed, OnFailure -> Running
                        restartPolicy Always -> Running (restarting)
    a regular init container failed, restartPolicy Never Failed

Conditions: PodReadyToStartContainers (sandbox and network ready), Initialized,
ContainersReady, Ready (ContainersReady and every readiness gate), PodScheduled
(kept as the scheduler wrote it). ``lastTransitionTime`` moves only when the
status flips.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..api.kinds.meta import format_time
from .runtime.interface import ContainerState, ContainerStatus

Obj = dict[str, Any]

KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class ContainerView:
    """Everything the status needs about one container of the pod spec."""

    name: str
    image: str                          # as reported (normalised reference)
    current: ContainerStatus | None = None
    previous: ContainerStatus | None = None
    restart_count: int = 0
    waiting_reason: str = ""            # overrides the state with "waiting" (see module doc)
    waiting_message: str = ""
    ready: bool = False
    started: bool = False
    image_id: str = ""                  # as reported (repo digest or sha256:<id>)
    runtime: str = "runc"
    current_message: str = ""           # termination messages (terminationMessagePath)
    previous_message: str = ""

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.state == ContainerState.RUNNING

    @property
    def exited(self) -> bool:
        return self.current is not None and self.current.state == ContainerState.EXITED


def stamp(when: datetime | None) -> str | None:
    return format_time(when) if when is not None else None


def epoch_stamp(epoch: float) -> str:
    return format_time(datetime.fromtimestamp(epoch, timezone.utc))


def container_id(view: ContainerView, status: ContainerStatus) -> str:
    return f"{view.runtime}://{status.id}"


def _terminated(view: ContainerView, status: ContainerStatus, message: str) -> Obj:
    state: Obj = {"exitCode": status.exit_code if status.exit_code is not None else 0,
                  "reason": status.reason or ("Completed" if not status.exit_code else "Error"),
                  "startedAt": stamp(status.started_at or status.created_at),
                  "finishedAt": stamp(status.finished_at),
                  "containerID": container_id(view, status)}
    text = message or status.message
    if text:
        state["message"] = text
    return state


def container_status(view: ContainerView) -> Obj:
    """One entry of containerStatuses / initContainerStatuses."""
    current, previous = view.current, view.previous
    state: Obj
    last: Obj = {}
    if view.waiting_reason and (current is None or current.state != ContainerState.RUNNING):
        waiting: Obj = {"reason": view.waiting_reason}
        if view.waiting_message:
            waiting["message"] = view.waiting_message
        state = {"waiting": waiting}
        if current is not None and current.state == ContainerState.EXITED:
            last = {"terminated": _terminated(view, current, view.current_message)}
        elif previous is not None:
            last = {"terminated": _terminated(view, previous, view.previous_message)}
    elif current is None or current.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
        state = {"waiting": {"reason": "ContainerCreating"}}
        if previous is not None:
            last = {"terminated": _terminated(view, previous, view.previous_message)}
    elif current.state == ContainerState.RUNNING:
        state = {"running": {"startedAt": stamp(current.started_at or current.created_at)}}
        if previous is not None:
            last = {"terminated": _terminated(view, previous, view.previous_message)}
    else:
        state = {"terminated": _terminated(view, current, view.current_message)}
        if previous is not None:
            last = {"terminated": _terminated(view, previous, view.previous_message)}
    out: Obj = {"name": view.name, "state": state, "lastState": last,
                "ready": view.ready and view.running, "restartCount": view.restart_count,
                "image": view.image, "imageID": view.image_id if current is not None or previous else "",
                "started": view.started and view.running}
    shown = current if current is not None else previous
    if shown is not None:
        out["containerID"] = container_id(view, shown)
    return out


def _is_sidecar(container: Obj) -> bool:
    return container.get("restartPolicy") == "Always"


def pod_phase(spec: Obj, statuses: Mapping[str, Obj], init_statuses: Mapping[str, Obj],
              terminal: bool) -> str:
    """Kubernetes' phase rules over the API container statuses (see module docstring)."""
    restart = spec.get("restartPolicy") or "Always"
    pending_init = failed_init = pending_sidecars = 0
    unknown = running = waiting = stopped = succeeded = 0
    for container in spec.get("initContainers") or []:
        status = init_statuses.get(container.get("name", ""))
        state = (status or {}).get("state") or {}
        last = ((status or {}).get("lastState") or {}).get("terminated")
        if _is_sidecar(container):
            if status is None:
                unknown += 1
            elif "running" in state:
                running += 1
                if not status.get("started"):
                    pending_sidecars += 1
            elif "waiting" in state and last is None:
                pending_sidecars += 1
            continue
        if status is None or "running" in state:
            pending_init += 1
        elif "terminated" in state:
            failed_init += state["terminated"].get("exitCode", 0) != 0
        elif last is not None:
            failed_init += last.get("exitCode", 0) != 0
        else:
            pending_init += 1
    for container in spec.get("containers") or []:
        status = statuses.get(container.get("name", ""))
        state = (status or {}).get("state") or {}
        if status is None:
            unknown += 1
        elif "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode", 0) == 0
        elif ((status.get("lastState") or {}).get("terminated")) is not None:
            stopped += 1
        else:
            waiting += 1
    if failed_init and restart == "Never":
        return "Failed"
    if pending_init or (pending_sidecars and not terminal) or waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if restart == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if restart == "Never" else "Running"
    return "Pending"


def _condition(type_: str, ok: bool, now: str, previous: Mapping[str, Obj], reason: str = "",
               message: str = "") -> Obj:
    status = "True" if ok else "False"
    old = previous.get(type_)
    when = now
    if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
        when = str(old["lastTransitionTime"])
    cond: Obj = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": when}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _without_nulls(condition: Obj) -> Obj:
    """A condition the kubelet passes on, as the API server stores it (null fields
    dropped), so that the next status computed from the stored pod is equal."""
    return {key: value for key, value in condition.items() if value is not None}


def _names(names: Sequence[str]) -> str:
    return "[" + " ".join(names) + "]"


def pod_status(pod: Obj, *, init: Sequence[ContainerView], regular: Sequence[ContainerView],
               sandbox_ready: bool, initialized: bool, pod_ips: Sequence[str],
               host_ips: Sequence[str], start_time: float | None, now: float,
               terminal: bool = False, failure: tuple[str, str] | None = None,
               ephemeral: Sequence[ContainerView] = ()) -> Obj:
    """``Pod.status`` (see module docstring). ``terminal``: the pod is being deleted and
    nothing of it runs any more, so its phase must end Succeeded or Failed. ``failure``:
    (reason, message) of a pod the kubelet failed as a whole (DeadlineExceeded)."""
    spec = pod.get("spec") or {}
    old_status = pod.get("status") or {}
    previous = {c.get("type", ""): c for c in old_status.get("conditions") or []}
    when = epoch_stamp(now)
    init_statuses = {v.name: container_status(v) for v in init}
    statuses = {v.name: container_status(v) for v in regular}
    phase = pod_phase(spec, statuses, init_statuses, terminal)
    if failure is not None:
        phase = "Failed"
    if old_status.get("phase") in TERMINAL_PHASES:
        phase = old_status["phase"]            # a terminal phase never changes again

    incomplete = []
    for container in spec.get("initContainers") or []:
        entry = init_statuses.get(container["name"]) or {}
        state = entry.get("state") or {}
        if _is_sidecar(container):
            if not entry.get("started"):
                incomplete.append(container["name"])
        elif (state.get("terminated") or {}).get("exitCode", 1) != 0:
            incomplete.append(container["name"])
    init_done = initialized or not incomplete
    unready = [v.name for v in init if _is_sidecar(_spec_of(spec, "initContainers", v.name))
               and not statuses_ready(init_statuses, v.name)]
    unready += [v.name for v in regular if not statuses_ready(statuses, v.name)]

    conditions = [_condition("PodReadyToStartContainers", sandbox_ready, when, previous)]
    if phase == "Succeeded":
        conditions.append(_condition("Initialized", True, when, previous, "PodCompleted"))
    elif init_done:
        conditions.append(_condition("Initialized", True, when, previous))
    else:
        conditions.append(_condition("Initialized", False, when, previous, "ContainersNotInitialized",
                                     f"containers with incomplete status: {_names(incomplete)}"))
    if phase == "Succeeded":
        ready_cond = _condition("ContainersReady", False, when, previous, "PodCompleted")
    elif unready:
        ready_cond = _condition("ContainersReady", False, when, previous, "ContainersNotReady",
                                f"containers with unready status: {_names(unready)}")
    else:
        ready_cond = _condition("ContainersReady", True, when, previous)
    gates_missing, gates_false = [], []
    for gate in spec.get("readinessGates") or []:
        gate_type = gate.get("conditionType", "")
        cond = previous.get(gate_type)
        if cond is None:
            gates_missing.append(gate_type)
        elif cond.get("status") != "True":
            gates_false.append(gate_type)
    if ready_cond["status"] != "True":
        pod_ready = _condition("Ready", False, when, previous, ready_cond.get("reason", ""),
                               ready_cond.get("message", ""))
    elif gates_missing or gates_false:
        messages = [f'corresponding condition of pod readiness gate "{g}" does not exist.'
                    for g in gates_missing]
        messages += [f'the status of pod readiness gate "{g}" is not "True", but False'
                     for g in gates_false]
        pod_ready = _condition("Ready", False, when, previous, "ReadinessGatesNotReady",
                               ", ".join(messages))
    else:
        pod_ready = _condition("Ready", True, when, previous)
    conditions += [pod_ready, ready_cond]
    for type_, cond in previous.items():
        if type_ not in KUBELET_CONDITIONS:      # PodScheduled, DisruptionTarget, gates ...
            conditions.append(_without_nulls(cond))
    if "PodScheduled" not in previous:
        conditions.append(_without_nulls(_condition("PodScheduled", True, when, previous)))

    status: Obj = {"phase": phase, "conditions": conditions,
                   "hostIP": host_ips[0] if host_ips else None,
                   "hostIPs": [{"ip": ip} for ip in host_ips] or None,
                   "podIP": pod_ips[0] if pod_ips else None,
                   "podIPs": [{"ip": ip} for ip in pod_ips] or None,
                   "startTime": epoch_stamp(start_time) if start_time is not None else None,
                   "containerStatuses": [statuses[v.name] for v in regular]}
    if init:
        status["initContainerStatuses"] = [init_statuses[v.name] for v in init]
    if ephemeral:        # kubectl debug: they count for neither phase nor readiness
        status["ephemeralContainerStatuses"] = [container_status(v) for v in ephemeral]
    if old_status.get("qosClass"):
        status["qosClass"] = old_status["qosClass"]
    if failure is not None:
        status["reason"], status["message"] = failure
    return status


def statuses_ready(statuses: Mapping[str, Obj], name: str) -> bool:
    return bool((statuses.get(name) or {}).get("ready"))


def _spec_of(spec: Obj, field: str, name: str) -> Obj:
    for container in spec.get(field) or []:
        if container.get("name") == name:
            return dict(container)
    return {}


def same_status(a: Obj | None, b: Obj | None) -> bool:
    """Equal statuses (conditions compared without their timestamps' churn)."""
    return a == b
