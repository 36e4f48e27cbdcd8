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

* ``skiff.dev/fake-ready: "false"`` – the containers run but never become ready
  (phase Running, ``Ready=False`` reason ContainersNotReady): a pod whose
  readiness probe never passes.

Pods with ``restartPolicy: Always`` (the default) run until deleted; the
run-seconds and exit-code annotations do not affect them.

Image pulls that fail (see :func:`image_pull_error`): a container whose image
lives on a registry host under the reserved ``.invalid`` top-level domain
(``registry.invalid/app:1``, ``fake.invalid/x``), or matches one of the node
configuration's ``failingImages`` patterns, never starts::

    Pending, waiting ErrImagePull ──1 s──▶ waiting ImagePullBackOff ──back-off──▶ ErrImagePull ...
                                            (10 s, 20 s ... 5 min between tries)

with the kubelet's events (Pulling; Failed "Failed to pull image ..."; Failed
"Error: ErrImagePull"; BackOff "Back-off pulling image ..."; Failed "Error:
ImagePullBackOff").  See :func:`pull_failure_status`.

Statuses follow the kubelet's: phase, the five pod conditions
(PodReadyToStartContainers, Initialized, Ready, ContainersReady,
PodScheduled), per-container states with ``containerID: fake://<pod-uid>/<name>``,
image IDs derived from the image name, hostIP(s), podIP(s) and startTime.
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .node_status import timestamp

Obj = dict[str, Any]

RUN_SECONDS_ANNOTATION = "skiff.dev/fake-run-seconds"
EXIT_CODE_ANNOTATION = "skiff.dev/fake-exit-code"
READY_ANNOTATION = "skiff.dev/fake-ready"

#: Registry hosts under this reserved top-level domain (RFC 2606) never resolve.
INVALID_TLD = "invalid"


@dataclass(frozen=True)
class FakeBehaviour:
    """What a pod asks its simulated node to do."""

    completes: bool  # restartPolicy Never/OnFailure: the containers exit by themselves
    run_seconds: float = 0.0
    exit_code: int = 0
    ready: bool = True  # False: running, never ready
    pull_errors: Mapping[str, str] = field(default_factory=dict)  # container name -> pull error

    @classmethod
    def of(cls, pod: Obj, failing_images: Sequence[str] = ()) -> "FakeBehaviour":
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        errors = {}
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            error = image_pull_error(str(c.get("image") or ""), failing_images)
            if error is not None:
                errors[str(c.get("name", ""))] = error
        return cls(completes=policy != "Always",
                   run_seconds=max(0.0, _number(annotations.get(RUN_SECONDS_ANNOTATION), 0.0)),
                   exit_code=int(_number(annotations.get(EXIT_CODE_ANNOTATION), 0)),
                   ready=str(annotations.get(READY_ANNOTATION, "true")).lower() != "false",
                   pull_errors=errors)


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


def registry_host(image: str) -> str:
    """The registry host an image reference names (``""`` for Docker Hub short names)."""
    name = image.split("@", 1)[0]
    first = name.split("/", 1)[0]
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return first.rsplit(":", 1)[0] if first.count(":") == 1 else first
    return ""


def image_pull_error(image: str, failing_images: Sequence[str] = ()) -> str | None:
    """Why pulling ``image`` fails on a simulated node, or None if the "pull" succeeds.

    Fails: an image on a host under ``.invalid``, and an image matching one of
    ``failing_images`` (shell-style patterns such as ``example.com/broken/*``,
    matched against the image as written and in its normalized form).
    """
    full = normalize_image(image) if image else image
    host = registry_host(image)
    if host == INVALID_TLD or host.endswith("." + INVALID_TLD):
        return (f'failed to pull and unpack image "{full}": failed to resolve reference '
                f'"{full}": failed to do request: dial tcp: lookup {host}: no such host')
    for pattern in failing_images:
        if fnmatch.fnmatchcase(image, pattern) or fnmatch.fnmatchcase(full, pattern):
            return (f'failed to pull and unpack image "{full}": failed to resolve reference '
                    f'"{full}": {full}: not found')
    return None


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
               previous: Mapping[str, Mapping[str, Any]] | None = None, message: str = "") -> Obj:
    old = (previous or {}).get(type_)
    if old is not None and old.get("status") == status and old.get("lastTransitionTime"):
        when = str(old["lastTransitionTime"])
    cond: Obj = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": when}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
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


def _running_container(pod: Obj, c: Obj, started: str, ready: bool) -> Obj:
    return {"name": c["name"], "state": {"running": {"startedAt": started}}, "lastState": {},
            "ready": ready, "restartCount": 0, "image": normalize_image(c.get("image", "")),
            "imageID": image_id(c.get("image", "")), "containerID": _container_id(pod, c["name"]),
            "started": True}


def _waiting_container(c: Obj, reason: str, message: str = "") -> Obj:
    waiting = {"reason": reason, "message": message} if message else {"reason": reason}
    return {"name": c["name"], "state": {"waiting": waiting}, "lastState": {}, "ready": False,
            "restartCount": 0, "image": c.get("image", ""), "imageID": "", "started": False}


def _unready(names: Sequence[str]) -> str:
    return f"containers with unready status: [{' '.join(names)}]"


def running_status(pod: Obj, *, host_ip: str, pod_ip: str, started_at: float,
                   ready: bool = True) -> Obj:
    """Status of a pod whose containers all started (and are ready unless ``ready=False``)."""
    started = timestamp(started_at)
    previous = _previous_conditions(pod)
    containers = [_running_container(pod, c, started, ready)
                  for c in (pod.get("spec") or {}).get("containers") or []]
    if ready:
        ready_conditions = [_condition("Ready", "True", started, previous=previous),
                            _condition("ContainersReady", "True", started, previous=previous)]
    else:
        message = _unready([c["name"] for c in containers])
        ready_conditions = [
            _condition("Ready", "False", started, "ContainersNotReady", previous, message),
            _condition("ContainersReady", "False", started, "ContainersNotReady", previous, message)]
    status: Obj = {
        "phase": "Running",
        "conditions": [
            _condition("PodReadyToStartContainers", "True", started, previous=previous),
            _condition("Initialized", "True", started, previous=previous),
            *ready_conditions,
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
    ephemeral = [_running_container(pod, c, started, False)        # kubectl debug: never ready
                 for c in (pod.get("spec") or {}).get("ephemeralContainers") or []]
    if ephemeral:
        status["ephemeralContainerStatuses"] = ephemeral
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


def pull_failure_status(pod: Obj, *, host_ip: str, pod_ip: str, started_at: float,
                        waiting: Mapping[str, tuple[str, str]]) -> Obj:
    """Status of a pod some of whose images cannot be pulled (phase Pending).

    ``waiting`` maps container names to ``(reason, message)`` (ErrImagePull or
    ImagePullBackOff).  An init container that cannot start holds everything
    after it (``PodInitializing``); app containers whose images pulled run.
    """
    started = timestamp(started_at)
    previous = _previous_conditions(pod)
    spec = pod.get("spec") or {}
    inits, apps = spec.get("initContainers") or [], spec.get("containers") or []
    blocked = next((i for i, c in enumerate(inits) if c.get("name") in waiting), None)
    init_statuses = []
    for i, c in enumerate(inits):
        if blocked is None or i < blocked:
            init_statuses.extend(_init_statuses({**pod, "spec": {"initContainers": [c]}}, started))
        elif i == blocked:
            init_statuses.append(_waiting_container(c, *waiting[c["name"]]))
        else:
            init_statuses.append(_waiting_container(c, "PodInitializing"))
    containers = []
    for c in apps:
        if blocked is not None:
            containers.append(_waiting_container(c, "PodInitializing"))
        elif c.get("name") in waiting:
            containers.append(_waiting_container(c, *waiting[c["name"]]))
        else:
            containers.append(_running_container(pod, c, started, True))
    unready = [c["name"] for c in containers if not c["ready"]]
    if blocked is not None:
        incomplete = [c["name"] for c in inits[blocked:] if c.get("restartPolicy") != "Always"]
        initialized = _condition("Initialized", "False", started, "ContainersNotInitialized", previous,
                                 f"containers with incomplete status: [{' '.join(incomplete)}]")
    else:
        initialized = _condition("Initialized", "True", started, previous=previous)
    status: Obj = {
        "phase": "Pending",
        "conditions": [
            _condition("PodReadyToStartContainers", "True", started, previous=previous),
            initialized,
            _condition("Ready", "False", started, "ContainersNotReady", previous, _unready(unready)),
            _condition("ContainersReady", "False", started, "ContainersNotReady", previous,
                       _unready(unready)),
            _condition("PodScheduled", "True", started, previous=previous),
        ],
        "hostIP": host_ip, "hostIPs": _ips(host_ip),
        "podIP": pod_ip, "podIPs": _ips(pod_ip),
        "startTime": started,
        "containerStatuses": containers,
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
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
