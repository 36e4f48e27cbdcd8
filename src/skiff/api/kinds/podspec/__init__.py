"""PodSpec defaults and validation, shared by Pods and every kind with a pod template.

Kubernetes defaults a PodSpec the same way wherever it appears (Pod,
PodTemplate, Deployment, Job ...), with a few extras that only a real Pod gets.
Likewise one validation routine checks every PodSpec, with the same field paths
(``spec.template.spec.containers[0].image`` inside a Deployment)::

    default_pod_spec(spec)            SetDefaults_PodSpec + containers, probes, volumes
    default_pod(pod)                  default_pod_spec + the Pod-only extras
                                      (enableServiceLinks, requests from limits,
                                      hostNetwork host ports)
    default_pod_template(template)    a PodTemplateSpec (metadata + spec)
    validate_pod_spec(spec, path)     -> list[Cause]
    validate_pod_template(template, path)
    validate_pod_spec_update(new, old, path)   the "pod updates may not change..." rule
    pod_qos_class(spec)               BestEffort | Burstable | Guaranteed

Everything mutates or reads plain JSON dicts; nothing here does I/O.
"""

from __future__ import annotations

from .defaults import (  # noqa: F401
    DEFAULT_TERMINATION_GRACE_PERIOD,
    DEFAULT_SCHEDULER_NAME,
    TERMINATION_MESSAGE_PATH,
    DEFAULT_FILE_MODE,
    RESTART_POLICIES,
    DNS_POLICIES,
    PULL_POLICIES,
    PORT_PROTOCOLS,
    TERMINATION_MESSAGE_POLICIES,
    TAINT_EFFECTS,
    TOLERATION_OPERATORS,
    URI_SCHEMES,
    VOLUME_SOURCES,
    image_tag,
    default_container,
    default_volume,
    default_pod_spec,
    default_pod,
    default_pod_template,
)
from .qos import (  # noqa: F401
    pod_qos_class,
)
from .validation import (  # noqa: F401
    validate_pod_spec,
    validate_pod_template,
    UPDATE_FORBIDDEN_MESSAGE,
    validate_pod_spec_update,
)

__all__ = [
    "DEFAULT_TERMINATION_GRACE_PERIOD",
    "DEFAULT_SCHEDULER_NAME",
    "TERMINATION_MESSAGE_PATH",
    "DEFAULT_FILE_MODE",
    "RESTART_POLICIES",
    "DNS_POLICIES",
    "PULL_POLICIES",
    "PORT_PROTOCOLS",
    "TERMINATION_MESSAGE_POLICIES",
    "TAINT_EFFECTS",
    "TOLERATION_OPERATORS",
    "URI_SCHEMES",
    "VOLUME_SOURCES",
    "image_tag",
    "default_container",
    "default_volume",
    "default_pod_spec",
    "default_pod",
    "default_pod_template",
    "pod_qos_class",
    "validate_pod_spec",
    "validate_pod_template",
    "UPDATE_FORBIDDEN_MESSAGE",
    "validate_pod_spec_update",
]
