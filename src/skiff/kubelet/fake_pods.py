"""How a simulated node pretends to run pods: statuses, behaviour knobs, pod IPs.

Pure functions and small value types used by :mod:`skiff.kubelet.fake`.

A fake pod's life::

    Pending ──start──▶ Running ──(restartPolicy Never/OnFailure, after run-seconds)──▶ Succeeded
       │                                                                        └───▶ Failed
       └──(restartPolicy Never/OnFailure and run-seconds 0)──▶ Succeeded / Failed directly

Behaviour comes from pod annotations (the pod author's knobs):

* ``skiff.dev/fake-run-seconds: "N"`` – how long a Job-style pod (``restartPolicy``
  Never or OnFailure) runs before it completes.  Default ``0``: it completes at once.
* ``skiff.dev/fake-exit-code: "N"`` – exit code of its containers when it completes.
  Default ``0`` (Succeeded, reason Completed); non-zero gives Failed, reason Error.
  There is no restart simulation: an OnFailure pod that "fails" stays Failed.

Pods with ``restartPolicy: Always`` (the default) run until deleted; the
annotations do not affect them.

Statuses follow the kubelet's: phase, the five pod conditions
(PodReadyToStartContainers, Initialized, Ready, ContainersReady,
PodScheduled), per-container states with ``containerID: fake://<pod-uid>/<name>``,
image IDs derived from the image name, hostIP(s), podIP(s) and startTime.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .node_status import timestamp

Obj = dict[str, Any]

RUN_SECONDS_ANNOTATION = "skiff.dev/fake-run-seconds"
EXIT_CODE_ANNOTATION = "skiff.dev/fake-exit-code"


@dataclass(frozen=True)
class FakeBehaviour:
    """What a pod asks its simulated node to do."""

    completes: bool  # restartPolicy Never/OnFailure: the containers exit by themselves
    run_seconds: float = 0.0
    exit_code: int = 0

    @classmethod
    def of(cls, pod: Obj) -> "FakeBehaviour":
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        return cls(completes=policy != "Always",
                   run_seconds=max(0.0, _number(annotations.get(RUN_SECONDS_ANNOTATION), 0.0)),
                   exit_code=int(_number(annotations.get(EXIT_CODE_ANNOTATION), 0)))


def _number(raw: Any, default: float) -> float:
    try:
        return float(raw) if raw is not None else default
    except (TypeError, ValueError):
        return default


def normalize_image(image: str) -> str:
    """``nginx`` -> ``docker.io/library/nginx:latest``, as a containerd runtime reports it."""
    name, digest = (image.split("@", 1) + [""])[:2]
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif not ("." in first or ":" in first or first == "localhost"):
        name = f"docker.io/{name}"
    if digest:
        return f"{name}@{digest}"
    last = name.rsplit("/", 1)[1]
    return name if ":" in last else f"{name}:latest"


def image_id(image: str) -> str:
    """A stable fake digest reference for ``image``."""
    normalized = normalize_image(image)
    if "@" in normalized:
        return normalized
    repo = normalized.rsplit(":", 1)[0]
    return f"{repo}@sha256:{hashlib.sha256(normalized.encode()).hexdigest()}"


def _ips(ip: str) -> list[Obj]:
    return [{"ip": ip}] if ip else []


def _condition(type_: str, status: str, when: str, reason: str = "",
               previous: Mapping[str, Mapping[str, Any]] | None = None) -> Obj:
    old = (previous or {}).get(type_)
    if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
        when = str(old["lastTransitionTime"])
    cond: Obj = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": when}
    if reason:
        cond["reason"] = reason
    return cond


def _container_id(pod: Obj, name: str) -> str:
    return f"fake://{(pod.get('metadata') or {}).get('uid', '')}/{name}"


def _init_statuses(pod: Obj, started: str) -> list[Obj]:
    out = []
    for c in (pod.get("spec") or {}).get("initContainers") or []:
        sidecar = c.get("restartPolicy") == "Always"
        state = ({"running": {"startedAt": started}} if sidecar else
                 {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": started,
                                 "finishedAt": started, "containerID": _container_id(pod, c["name"])}})
        out.append({"name": c["name"], "state": state, "lastState": {}, "ready": True,
                    "restartCount": 0, "image": normalize_image(c.get("image", "")),
                    "imageID": image_id(c.get("image", "")),
                    "containerID": _container_id(pod, c["name"]), "started": sidecar})
    return out


def running_status(pod: Obj, *, host_ip: str, pod_ip: str, started_at: float) -> Obj:
    """Status of a pod whose containers all started and are ready."""
    started = timestamp(started_at)
    previous = _previous_conditions(pod)
    containers = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        containers.append({
            "name": c["name"], "state": {"running": {"startedAt": started}}, "lastState": {},
            "ready": True, "restartCount": 0, "image": normalize_image(c.get("image", "")),
            "imageID": image_id(c.get("image", "")), "containerID": _container_id(pod, c["name"]),
            "started": True})
    status: Obj = {
        "phase": "Running",
        "conditions": [
            _condition("PodReadyToStartContainers", "True", started, previous=previous),
            _condition("Initialized", "True", started, previous=previous),
            _condition("Ready", "True", started, previous=previous),
            _condition("ContainersReady", "True", started, previous=previous),
            _condition("PodScheduled", "True", started, previous=previous),
        ],
        "hostIP": host_ip, "hostIPs": _ips(host_ip),
        "podIP": pod_ip, "podIPs": _ips(pod_ip),
        "startTime": started,
        "containerStatuses": containers,
    }
    init = _init_statuses(pod, started)
    if init:
        status["initContainerStatuses"] = init
    return status


def terminated_status(pod: Obj, *, host_ip: str, pod_ip: str, started_at: float,
                      finished_at: float, exit_code: int) -> Obj:
    """Status of a pod whose containers all exited with ``exit_code`` (0: Succeeded)."""
    started, finished = timestamp(started_at), timestamp(finished_at)
    succeeded = exit_code == 0
    why = "PodCompleted" if succeeded else "PodFailed"
    previous = _previous_conditions(pod)
    containers = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        cid = _container_id(pod, c["name"])
        containers.append({
            "name": c["name"],
            "state": {"terminated": {"exitCode": exit_code,
                                     "reason": "Completed" if succeeded else "Error",
                                     "startedAt": started, "finishedAt": finished,
                                     "containerID": cid}},
            "lastState": {}, "ready": False, "restartCount": 0,
            "image": normalize_image(c.get("image", "")), "imageID": image_id(c.get("image", "")),
            "containerID": cid, "started": False})
    status: Obj = {
        "phase": "Succeeded" if succeeded else "Failed",
        "conditions": [
            _condition("PodReadyToStartContainers", "False", finished, previous=previous),
            _condition("Initialized", "True", started, previous=previous),
            _condition("Ready", "False", finished, why, previous=previous),
            _condition("ContainersReady", "False", finished, why, previous=previous),
            _condition("PodScheduled", "True", started, previous=previous),
        ],
        "hostIP": host_ip, "hostIPs": _ips(host_ip),
        "podIP": pod_ip, "podIPs": _ips(pod_ip),
        "startTime": started,
        "containerStatuses": containers,
    }
    init = _init_statuses(pod, started)
    if init:
        status["initContainerStatuses"] = init
    return status


def _previous_conditions(pod: Obj) -> dict[str, Mapping[str, Any]]:
    return {c.get("type", ""): c for c in (pod.get("status") or {}).get("conditions") or []}


class PodIPAllocator:
    """Hands out the addresses of one node's pod CIDR (``.1`` is kept for the gateway)."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)
        self._first = int(self.network.network_address) + 2
        self._last = int(self.network.broadcast_address) - 1
        self._next = self._first
        self._by_owner: dict[str, int] = {}
        self._used: set[int] = set()

    def allocate(self, owner: str) -> str:
        """An address for ``owner`` (a pod UID); the same one if it already has one."""
        if owner in self._by_owner:
            return str(ipaddress.ip_address(self._by_owner[owner]))
        size = self._last - self._first + 1
        for step in range(size):
            candidate = self._first + (self._next - self._first + step) % size
            if candidate not in self._used:
                self._next = candidate + 1
                self._used.add(candidate)
                self._by_owner[owner] = candidate
                return str(ipaddress.ip_address(candidate))
        raise RuntimeError(f"pod CIDR {self.network} is exhausted")

    def adopt(self, owner: str, ip: str) -> None:
        """Record an address given out before (e.g. by a previous run of the agent)."""
        try:
            value = int(ipaddress.ip_address(ip))
        except ValueError:
            return
        if self._first <= value <= self._last and value not in self._used:
            self._used.add(value)
            self._by_owner[owner] = value

    def release(self, owner: str) -> None:
        value = self._by_owner.pop(owner, None)
        if value is not None:
            self._used.discard(value)

    def __len__(self) -> int:
        return len(self._used)
