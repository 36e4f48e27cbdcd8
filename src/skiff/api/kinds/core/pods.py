"""Pods (and PodTemplates, Bindings): the unit the scheduler places and the kubelet runs.

A Pod's life as the API server sees it::

    create ──▶ prepare_create: status = {phase: Pending, qosClass}; admission defaults
               (priority 0 / PreemptLowerPriority, not-ready/unreachable tolerations)
           ──▶ default: PodSpec defaults + Pod-only extras (see skiff.api.kinds.podspec)
           ──▶ validate: metadata + PodSpec
    update ──▶ only images, activeDeadlineSeconds, tolerations (additions) and
               scheduling gates (removals) may change in spec

The STATUS column of ``kubectl get pods`` is computed here (:func:`pod_status_reason`)
from the phase, the init/regular container states and the deletion timestamp, the way
``kubectl`` users know it: ``Pending``, ``ContainerCreating``, ``Init:0/1``,
``Init:CrashLoopBackOff``, ``Running``, ``NotReady``, ``Completed``, ``Error``,
``CrashLoopBackOff``, ``Terminating`` ...
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from ...errors import Cause
from ...resource import Column, ResourceInfo, Subresource
from .. import meta as m
from .. import podspec

Obj = dict[str, Any]

NODE_UNREACHABLE_REASON = "NodeLost"
#: tolerationSeconds the DefaultTolerationSeconds admission step gives every pod for the
#: not-ready and unreachable NoExecute taints.  Kubernetes defaults to 300 s (flags
#: --default-not-ready/unreachable-toleration-seconds); skiff is sized for small clusters:
#: with the node monitor grace period (22 s) a dead node's pods are replaced in under 30 s.
DEFAULT_TOLERATION_SECONDS = 5
#: Priority values of the built-in PriorityClasses.
SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}

POD_COLUMNS = (
    m.NAME_COLUMN,
    Column("Ready", description="Ready containers out of all containers."),
    Column("Status", description="Aggregate state of the pod's containers."),
    Column("Restarts", description="Container restarts, and how long ago the last one was."),
    m.AGE_COLUMN,
    Column("IP", priority=1, description="The pod's IP address."),
    Column("Node", priority=1, description="The node the pod is bound to."),
    Column("Nominated Node", priority=1, description="The node preemption made room on."),
    Column("Readiness Gates", priority=1, description="Readiness gates that are true, out of all."),
)


def _is_restartable_init(container: Obj | None) -> bool:
    return bool(container) and (container or {}).get("restartPolicy") == "Always"


def _condition_true(status: Obj, kind: str) -> bool:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return bool(cond.get("status") == "True")
    return False


def _terminated_reason(term: Obj, prefix: str = "") -> str:
    if term.get("reason"):
        return prefix + str(term["reason"])
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def pod_status_reason(pod: Obj) -> tuple[str, int, int, int, str | None]:
    """(STATUS cell, ready containers, total containers, restarts, last restart time)."""
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    total = len(spec.get("containers") or [])
    ready = 0
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total += sum(1 for c in init_specs.values() if _is_restartable_init(c))

    restarts = sidecar_restarts = 0
    last_restart: str | None = None
    last_sidecar_restart: str | None = None
    initializing = False
    for i, cs in enumerate(status.get("initContainerStatuses") or []):
        restarts += cs.get("restartCount") or 0
        finished = m.get_path(cs, "lastState.terminated.finishedAt")
        last_restart = _later(last_restart, finished)
        sidecar = _is_restartable_init(init_specs.get(cs.get("name")))
        if sidecar:
            sidecar_restarts += cs.get("restartCount") or 0
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        state = cs.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and (terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and cs.get("started"):
            if cs.get("ready"):
                ready += 1
            continue
        if terminated is not None:
            reason = _terminated_reason(terminated, "Init:")
        elif waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or _condition_true(status, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts += cs.get("restartCount") or 0
            last_restart = _later(last_restart, m.get_path(cs, "lastState.terminated.finishedAt"))
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None:
                reason = _terminated_reason(terminated)
            elif cs.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"

    deleting = bool(m.get_path(pod, "metadata.deletionTimestamp"))
    if deleting and status.get("reason") == NODE_UNREACHABLE_REASON:
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return reason, ready, total, restarts, last_restart


def _later(current: str | None, candidate: str | None) -> str | None:
    if not candidate:
        return current
    if current is None:
        return candidate
    a, b = m.parse_time(current), m.parse_time(candidate)
    return candidate if a is not None and b is not None and b > a else current


def pod_row(pod: Obj, now: datetime | None = None) -> list[Any]:
    reason, ready, total, restarts, last_restart = pod_status_reason(pod)
    restarts_cell = str(restarts)
    if restarts and last_restart:
        restarts_cell = f"{restarts} ({m.format_age(last_restart, now)} ago)"
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ips = status.get("podIPs") or []
    pod_ip = (ips[0].get("ip") if ips else "") or "<none>"
    gates = spec.get("readinessGates") or []
    gates_cell = "<none>"
    if gates:
        true_count = sum(1 for g in gates if _condition_true(status, g.get("conditionType", "")))
        gates_cell = f"{true_count}/{len(gates)}"
    return [m.object_name(pod), f"{ready}/{total}", reason, restarts_cell, m.object_age(pod, now),
            pod_ip, spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>",
            gates_cell]


def default_pod(pod: Obj) -> None:
    podspec.default_pod(pod)


def _tolerates(tolerations: list[Obj], key: str) -> bool:
    return any((not t.get("key") or t.get("key") == key) and t.get("effect") in (None, "", "NoExecute")
               for t in tolerations)


def prepare_pod_create(pod: Obj) -> None:
    """What kube-apiserver does to a new Pod before defaulting: a fresh Pending status
    with its QoS class, and the default admission plugins' additions."""
    spec = pod.setdefault("spec", {})
    pod["status"] = {"phase": "Pending", "qosClass": podspec.pod_qos_class(spec)}
    if spec.get("schedulingGates"):
        pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False",
                                        "reason": "SchedulingGated",
                                        "message": "Scheduling is blocked due to non-empty scheduling gates",
                                        "lastProbeTime": None, "lastTransitionTime": None}]
    # ServiceAccount admission: every pod runs as some service account.
    if not spec.get("serviceAccountName") and not spec.get("serviceAccount"):
        spec["serviceAccountName"] = "default"
    # Priority admission: pods without a class get priority 0 and the default policy.
    class_name = spec.get("priorityClassName") or ""
    if spec.get("priority") is None and (not class_name or class_name in SYSTEM_PRIORITIES):
        spec["priority"] = SYSTEM_PRIORITIES.get(class_name, 0)
    if not spec.get("preemptionPolicy") and (not class_name or class_name in SYSTEM_PRIORITIES):
        spec["preemptionPolicy"] = "PreemptLowerPriority"
    add_default_tolerations(spec)


def add_default_tolerations(spec: Obj) -> None:
    """DefaultTolerationSeconds admission: tolerate not-ready/unreachable nodes for 300s."""
    tolerations = spec.get("tolerations") or []
    added = [{"key": key, "operator": "Exists", "effect": "NoExecute",
              "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}
             for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
             if not _tolerates(tolerations, key)]
    if added:
        spec["tolerations"] = tolerations + added


def prepare_pod_update(pod: Obj, old: Obj) -> None:
    """Admission on update: the priority set at creation is kept when the client omits it,
    and the default tolerations are added again."""
    spec, old_spec = pod.setdefault("spec", {}), old.get("spec") or {}
    for f in ("priority", "preemptionPolicy"):
        if spec.get(f) is None and old_spec.get(f) is not None:
            spec[f] = old_spec[f]
    add_default_tolerations(spec)


def validate_pod(pod: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(pod.get("metadata"), True) if old is None else \
        m.validate_object_meta_update(pod.get("metadata"), old.get("metadata"))
    if old is not None and _same_json(pod.get("spec"), old.get("spec")):
        # Every status write (the kubelet's, ...): the spec is the one validated when
        # it was written, and Kubernetes does not validate it again.
        return causes
    causes += podspec.validate_pod_spec(pod.get("spec"), "spec")
    if old is not None:
        causes += podspec.validate_pod_spec_update(pod.get("spec") or {}, old.get("spec") or {}, "spec")
    return causes


def _same_json(a: Any, b: Any) -> bool:
    """The same JSON value (``==`` alone takes ``1`` for ``true``: equal texts settle it)."""
    if a != b:
        return False
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except TypeError:  # not plain JSON: not known to be the same
        return False


def _bool(value: Any) -> str:
    return "true" if value else "false"


POD_FIELD_LABELS = {
    "spec.nodeName": lambda o: m.get_path(o, "spec.nodeName", ""),
    "spec.restartPolicy": lambda o: m.get_path(o, "spec.restartPolicy", ""),
    "spec.schedulerName": lambda o: m.get_path(o, "spec.schedulerName", ""),
    "spec.serviceAccountName": lambda o: m.get_path(o, "spec.serviceAccountName", ""),
    "spec.hostNetwork": lambda o: _bool(m.get_path(o, "spec.hostNetwork", False)),
    "status.phase": lambda o: m.get_path(o, "status.phase", ""),
    "status.podIP": lambda o: ((m.get_path(o, "status.podIPs", []) or [{}])[0].get("ip")
                               or m.get_path(o, "status.podIP", "")),
    "status.nominatedNodeName": lambda o: m.get_path(o, "status.nominatedNodeName", ""),
}

PODS = ResourceInfo(
    group="", version="v1", kind="Pod", plural="pods", singular="pod", namespaced=True,
    schema_type="io.k8s.api.core.v1.Pod", short_names=("po",), categories=("all",),
    subresources=(
        Subresource("attach", "PodAttachOptions", verbs=("create", "get")),
        Subresource("binding", "Binding", verbs=("create",)),
        Subresource("ephemeralcontainers", "Pod", verbs=("get", "patch", "update")),
        Subresource("eviction", "Eviction", group="policy", version="v1", verbs=("create",)),
        Subresource("exec", "PodExecOptions", verbs=("create", "get")),
        Subresource("log", "Pod", verbs=("get",)),
        Subresource("portforward", "PodPortForwardOptions", verbs=("create", "get")),
        Subresource("proxy", "PodProxyOptions", verbs=("create", "delete", "get", "patch", "update")),
        Subresource("status", "Pod"),
    ),
    has_status=True, columns=POD_COLUMNS, row=pod_row, default=default_pod, validate=validate_pod,
    prepare_create=prepare_pod_create, prepare_update=prepare_pod_update, field_labels=POD_FIELD_LABELS,
)


# --- PodTemplate ------------------------------------------------------------

POD_TEMPLATE_COLUMNS = (
    m.NAME_COLUMN,
    Column("Containers", description="Names of the template's containers."),
    Column("Images", description="Images of the template's containers."),
    Column("Pod Labels", description="Labels of the pod template."),
)


def pod_template_row(obj: Obj, now: datetime | None = None) -> list[Any]:
    names, images = m.container_cells(m.get_path(obj, "template.spec.containers", []))
    return [m.object_name(obj), names, images, m.format_labels(m.get_path(obj, "template.metadata.labels"))]


def default_pod_template_object(obj: Obj) -> None:
    podspec.default_pod_template(obj.setdefault("template", {}))


def validate_pod_template_object(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), True) if old is None else \
        m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    return causes + podspec.validate_pod_template(obj.get("template"), "template")


POD_TEMPLATES = ResourceInfo(
    group="", version="v1", kind="PodTemplate", plural="podtemplates", singular="podtemplate",
    namespaced=True, schema_type="io.k8s.api.core.v1.PodTemplate",
    columns=POD_TEMPLATE_COLUMNS, row=pod_template_row, default=default_pod_template_object,
    validate=validate_pod_template_object,
)


# --- Binding (create-only: binds a pod to a node) ---------------------------


def validate_binding(obj: Obj, old: Obj | None) -> list[Cause]:
    causes = m.validate_object_meta(obj.get("metadata"), True)
    target = obj.get("target") or {}
    if target.get("kind") not in (None, "", "Node"):
        causes.append(m.not_supported("target.kind", target.get("kind"), ["Node", "<empty>"]))
    if not target.get("name"):
        causes.append(m.required("target.name"))
    return causes


BINDINGS = ResourceInfo(
    group="", version="v1", kind="Binding", plural="bindings", singular="binding", namespaced=True,
    schema_type="io.k8s.api.core.v1.Binding", verbs=("create",), validate=validate_binding,
)
