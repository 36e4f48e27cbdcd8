"""What the pod-owning kinds share: selector + template checks, int-or-percent fields,
status/scale subresource records and the CONTAINERS/IMAGES/SELECTOR wide cells.

Deployment, ReplicaSet, StatefulSet and DaemonSet (and, with small variations,
Job and CronJob) follow one pattern that Kubernetes validates the same way::

    spec.selector            required, well-formed, not empty
    spec.template.metadata.labels   must satisfy the selector
    spec.template.spec       a valid PodSpec whose restartPolicy is Always
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from ...errors import Cause
from ...resource import Column, Subresource
from .. import meta as m
from .. import podspec
from . import rollout
from . import selector as sel

Obj = dict[str, Any]

SCALE = Subresource("scale", kind="Scale", group="autoscaling", version="v1")

CONTAINERS_COLUMN = Column("Containers", priority=1, description="Names of each container in the template.")
IMAGES_COLUMN = Column("Images", priority=1, description="Images referenced by each container in the template.")
SELECTOR_COLUMN = Column("Selector", priority=1, description="Label query over pods of this workload.")

_PERCENT_RE = re.compile(r"^[0-9]+%$")
_PERCENT_MSG = m.regex_error("a valid percent string must be a numeric string followed by an ending '%'",
                             "[0-9]+%", "1%", "93%")


def status_subresource(kind: str) -> Subresource:
    return Subresource("status", kind=kind)


def template_containers(obj: Mapping[str, Any], template_path: str = "spec.template") -> list[Obj]:
    return list(m.get_path(obj, f"{template_path}.spec.containers", []) or [])


# --- int-or-percent (maxSurge, maxUnavailable, minAvailable ...) -----------------------

def int_or_percent_value(value: Any) -> int:
    """The number in ``5`` or ``"5%"`` (0 for anything else), as getIntOrPercentValue."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    digits = text[:-1] if _PERCENT_RE.match(text) else text
    return int(digits) if digits.lstrip("-").isdigit() else 0


def validate_positive_int_or_percent(value: Any, path: str) -> list[Cause]:
    if isinstance(value, str):
        if not _PERCENT_RE.match(value):
            return [sel.invalid_quoted(path, sel.go_int_or_string(value), _PERCENT_MSG)]
        return []
    if isinstance(value, int) and not isinstance(value, bool):
        return m.validate_nonnegative(value, path)
    return [sel.invalid_quoted(path, sel.go_int_or_string(value),
                               "must be an integer or percentage (e.g '5%%')")]


def validate_not_more_than_100_percent(value: Any, path: str) -> list[Cause]:
    if isinstance(value, str) and _PERCENT_RE.match(value) and int(value[:-1]) > 100:
        return [sel.invalid_quoted(path, sel.go_int_or_string(value), "must not be greater than 100%")]
    return []


# --- selector and template ---------------------------------------------------------------

def validate_required_selector(selector: Mapping[str, Any] | None, path: str, owner: str) -> list[Cause]:
    """``spec.selector``: present, valid and not empty (``owner`` names the kind in the message)."""
    if selector is None:
        return [m.required(path)]
    causes = sel.validate_label_selector(selector, path)
    if sel.is_empty(selector):
        causes.append(sel.invalid_quoted(path, sel.go_selector(selector), f"empty selector is invalid for {owner}"))
    return causes


def validate_template_matches(selector: Mapping[str, Any] | None, template: Mapping[str, Any] | None,
                              path: str) -> list[Cause]:
    """The template's labels must satisfy the selector (an empty selector accepts any)."""
    if sel.is_empty(selector) or not sel.is_well_formed(selector):
        return []
    labels = m.get_path(template, "metadata.labels")
    if sel.matches(selector, labels):
        return []
    raw_labels = ((template or {}).get("metadata") or {}).get("labels")
    return [sel.invalid_quoted(m.child(path, "metadata.labels"), sel.go_labels(raw_labels),
                               "`selector` does not match template `labels`")]


def validate_always_restart_template(template: Mapping[str, Any] | None, path: str, kind: str) -> list[Cause]:
    """A pod template for long-running pods: restartPolicy Always, no activeDeadlineSeconds."""
    spec = (template or {}).get("spec") or {}
    causes: list[Cause] = []
    if spec.get("restartPolicy") != "Always":
        causes.append(m.not_supported(m.child(path, "spec.restartPolicy"), spec.get("restartPolicy", ""),
                                      ["Always"]))
    if spec.get("activeDeadlineSeconds") is not None:
        causes.append(m.forbidden(m.child(path, "spec.activeDeadlineSeconds"),
                                  f"activeDeadlineSeconds in {kind} is not Supported"))
    return causes


def validate_replicated_template(spec: Mapping[str, Any], path: str, kind: str) -> list[Cause]:
    """ValidatePodTemplateSpecForReplicaSet: labels match, a valid PodSpec, restart Always."""
    template = spec.get("template") or {}
    tpath = m.child(path, "template")
    if not sel.is_well_formed(spec.get("selector")):
        return [sel.invalid_quoted(m.child(path, "selector"), sel.go_selector(spec.get("selector")),
                                   "invalid label selector")]
    causes = validate_template_matches(spec.get("selector"), template, tpath)
    causes += podspec.validate_pod_template(template, tpath)
    causes += validate_always_restart_template(template, tpath, kind)
    return causes


def wide_cells(obj: Mapping[str, Any], template_path: str = "spec.template") -> list[str]:
    """CONTAINERS and IMAGES cells for a pod template."""
    names, images = m.container_cells(template_containers(obj, template_path))
    return [names, images]


def validator(validate_spec: Callable[[Obj], list[Cause]]) -> Callable[[Obj, Obj | None], list[Cause]]:
    """A workload's ``validate(obj, old)``: metadata, the spec, and -- on update -- a
    ``spec.selector`` that may not change (Deployment, ReplicaSet, DaemonSet)."""

    def validate(obj: Obj, old: Obj | None) -> list[Cause]:
        spec = obj.get("spec") or {}
        if old is None:
            return m.validate_object_meta(obj.get("metadata"), True) + validate_spec(spec)
        causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
        causes += validate_spec(spec)
        old_selector = (old.get("spec") or {}).get("selector")
        if not rollout.semantically_equal(spec.get("selector"), old_selector):
            causes.append(sel.invalid_quoted("spec.selector", sel.go_selector(spec.get("selector")),
                                             m.FIELD_IMMUTABLE))
        return causes

    return validate
