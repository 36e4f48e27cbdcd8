"""PodSpec defaults (SetDefaults_PodSpec, SetDefaults_Container, SetDefaults_Volume ...).

:func:`default_pod_spec` applies to every PodSpec (Pods and templates alike);
:func:`default_pod` adds what only a real Pod gets (enableServiceLinks, requests
from limits, host ports under hostNetwork).
"""

from __future__ import annotations

from typing import Any, Iterable

from .. import meta as m

Obj = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD = 30
DEFAULT_SCHEDULER_NAME = "default-scheduler"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
DEFAULT_FILE_MODE = 420  # 0644

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
TOLERATION_OPERATORS = ("Equal", "Exists")
URI_SCHEMES = ("HTTP", "HTTPS")

#: Volume source fields of a ``Volume`` (exactly one must be set).
VOLUME_SOURCES = (  # in the order Kubernetes checks them
    "hostPath", "emptyDir", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs",
    "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "downwardAPI",
    "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


# ---------------------------------------------------------------------------
# Defaults
# ---------------------------------------------------------------------------


def image_tag(image: str) -> str:
    """The tag of an image reference: ``latest`` when neither tag nor digest is given,
    ``""`` when only a digest is given (``nginx@sha256:...``)."""
    if not image:
        return ""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else "latest"


def _default_probe(probe: Obj | None) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    _default_handler(probe)


def _default_handler(handler: Obj | None) -> None:
    if not isinstance(handler, dict):
        return
    http = handler.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")
    grpc = handler.get("grpc")
    if isinstance(grpc, dict):
        grpc.setdefault("service", "")


def _default_env(env: Iterable[Obj]) -> None:
    for var in env:
        source = var.get("valueFrom") if isinstance(var, dict) else None
        if not isinstance(source, dict):
            continue
        if isinstance(source.get("fieldRef"), dict):
            source["fieldRef"].setdefault("apiVersion", "v1")
        if isinstance(source.get("resourceFieldRef"), dict):
            source["resourceFieldRef"].setdefault("divisor", "0")


def default_container(container: Obj) -> None:
    """SetDefaults_Container plus its nested types (ports, probes, env, handlers)."""
    if not container.get("imagePullPolicy"):
        tag = image_tag(container.get("image") or "")
        container["imagePullPolicy"] = "Always" if tag == "latest" else "IfNotPresent"
    container.setdefault("terminationMessagePath", TERMINATION_MESSAGE_PATH)
    if not container.get("terminationMessagePolicy"):
        container["terminationMessagePolicy"] = "File"
    if not isinstance(container.get("resources"), dict):
        container["resources"] = {}
    for port in container.get("ports") or []:
        if isinstance(port, dict) and not port.get("protocol"):
            port["protocol"] = "TCP"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(container.get(probe))
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        _default_handler(lifecycle.get("postStart"))
        _default_handler(lifecycle.get("preStop"))
    _default_env(container.get("env") or [])


def default_volume(volume: Obj) -> None:
    """SetDefaults_Volume and the per-source defaults (file modes, projections ...)."""
    if not any(volume.get(s) is not None for s in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", DEFAULT_FILE_MODE)
    host_path = volume.get("hostPath")
    if isinstance(host_path, dict):
        host_path.setdefault("type", "")
    for item in m.get_path(volume, "downwardAPI.items", []) or []:
        if isinstance(item.get("fieldRef"), dict):
            item["fieldRef"].setdefault("apiVersion", "v1")
    for source in m.get_path(volume, "projected.sources", []) or []:
        token = source.get("serviceAccountToken")
        if isinstance(token, dict):
            token.setdefault("expirationSeconds", 3600)
        for item in m.get_path(source, "downwardAPI.items", []) or []:
            if isinstance(item.get("fieldRef"), dict):
                item["fieldRef"].setdefault("apiVersion", "v1")
    claim_spec = m.get_path(volume, "ephemeral.volumeClaimTemplate.spec")
    if isinstance(claim_spec, dict):
        claim_spec.setdefault("volumeMode", "Filesystem")


def default_pod_spec(spec: Obj) -> None:
    """Kubernetes' defaults for any PodSpec (Pod, template, workload), in place."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if not isinstance(spec.get("securityContext"), dict):
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD
    if not spec.get("schedulerName"):
        spec["schedulerName"] = DEFAULT_SCHEDULER_NAME
    if spec.get("hostNetwork"):
        _default_host_network_ports(spec)
    # v1 keeps the deprecated ``serviceAccount`` alias in step with serviceAccountName.
    if not spec.get("serviceAccountName") and spec.get("serviceAccount"):
        spec["serviceAccountName"] = spec["serviceAccount"]
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    for name in _CONTAINER_LISTS:
        for container in spec.get(name) or []:
            if isinstance(container, dict):
                default_container(container)
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            default_volume(volume)


def _default_host_network_ports(spec: Obj) -> None:
    for name in ("initContainers", "containers"):
        for container in spec.get(name) or []:
            for port in container.get("ports") or []:
                if isinstance(port, dict) and not port.get("hostPort"):
                    port["hostPort"] = port.get("containerPort")


def default_pod(pod: Obj) -> None:
    """Defaults for a Pod object: its spec, plus what only a real Pod gets."""
    spec = pod.setdefault("spec", {})
    default_pod_spec(spec)
    for name in ("initContainers", "containers"):
        for container in spec.get(name) or []:
            resources = container.get("resources") or {}
            limits = resources.get("limits")
            if isinstance(limits, dict) and limits:
                requests = resources.setdefault("requests", {})
                for resource, value in limits.items():
                    requests.setdefault(resource, value)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True


def default_pod_template(template: Obj) -> None:
    """Defaults for a PodTemplateSpec (``spec.template`` of workloads)."""
    if not isinstance(template.get("spec"), dict):
        template["spec"] = {}
    default_pod_spec(template["spec"])
