"""apps/v1 StatefulSet: defaults, validation and the ``kubectl get statefulsets`` table.

    NAME   READY   AGE   (wide: CONTAINERS IMAGES)
    db     2/3     5m

Names must be DNS labels (they become pod hostnames).  After creation only
replicas, ordinals, template, updateStrategy, persistentVolumeClaimRetentionPolicy
and minReadySeconds may change.  ``serviceName`` is optional in v1.32.  As in
Kubernetes, the pod template's spec is not run through full PodSpec validation.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo, ScalePaths
from .. import meta as m
from .. import podspec
from . import rollout
from . import selector as sel
from . import workload as w

Obj = dict[str, Any]

POD_MANAGEMENT_POLICIES = ("OrderedReady", "Parallel")
RETENTION_POLICIES = ("Retain", "Delete")
MUTABLE_SPEC_FIELDS = ("replicas", "ordinals", "template", "updateStrategy",
                       "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def default_claim_template(claim: Obj) -> None:
    """A volumeClaimTemplates entry as the API server returns it (a PVC, phase Pending)."""
    claim.setdefault("apiVersion", "v1")
    claim.setdefault("kind", "PersistentVolumeClaim")
    spec = claim.get("spec")
    if not isinstance(spec, dict):
        spec = claim["spec"] = {}
    if not spec.get("volumeMode"):
        spec["volumeMode"] = "Filesystem"
    status = claim.get("status")
    if not isinstance(status, dict):
        status = claim["status"] = {}
    if not status.get("phase"):
        status["phase"] = "Pending"


def default(obj: Obj) -> None:
    """SetDefaults_StatefulSet plus template and claim-template defaults."""
    spec = obj.setdefault("spec", {})
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = spec.get("updateStrategy")
    if not isinstance(strategy, dict):
        strategy = spec["updateStrategy"] = {}
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        if not isinstance(strategy.get("rollingUpdate"), dict):
            strategy["rollingUpdate"] = {}
    rolling = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict) and rolling.get("partition") is None:
        rolling["partition"] = 0
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if not isinstance(retention, dict):
        retention = spec["persistentVolumeClaimRetentionPolicy"] = {}
    for when in ("whenDeleted", "whenScaled"):
        if not retention.get(when):
            retention[when] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    template = spec.get("template")
    if not isinstance(template, dict):
        template = spec["template"] = {}
    podspec.default_pod_template(template)
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            default_claim_template(claim)


def _validate_update_strategy(strategy: Obj, path: str) -> list[Cause]:
    kind = strategy.get("type", "")
    rolling = strategy.get("rollingUpdate")
    rpath = m.child(path, "rollingUpdate")
    if not kind:
        return [m.required(path)]
    if kind == "OnDelete":
        if rolling is not None:
            return [m.invalid(rpath, rolling, "only allowed for updateStrategy 'RollingUpdate'")]
        return []
    if kind == "RollingUpdate":
        if rolling is None:
            return []
        causes = m.validate_nonnegative(rolling.get("partition") or 0, m.child(rpath, "partition"))
        unavailable = rolling.get("maxUnavailable")
        if unavailable is not None:
            upath = m.child(rpath, "maxUnavailable")
            causes += w.validate_positive_int_or_percent(unavailable, upath)
            if w.int_or_percent_value(unavailable) == 0:
                causes.append(sel.invalid_quoted(upath, sel.go_int_or_string(unavailable), "cannot be 0"))
            causes += w.validate_not_more_than_100_percent(unavailable, upath)
        return causes
    return [m.invalid(path, strategy, "must be 'RollingUpdate' or 'OnDelete'")]


def validate_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    """ValidateStatefulSetSpec."""
    causes: list[Cause] = []
    policy = spec.get("podManagementPolicy", "")
    if not policy:
        causes.append(m.required(m.child(path, "podManagementPolicy")))
    elif policy not in POD_MANAGEMENT_POLICIES:
        causes.append(m.invalid(m.child(path, "podManagementPolicy"), policy,
                                "must be 'OrderedReady' or 'Parallel'"))
    causes += _validate_update_strategy(spec.get("updateStrategy") or {}, m.child(path, "updateStrategy"))
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        for when in ("whenDeleted", "whenScaled"):
            if retention.get(when, "") not in RETENTION_POLICIES:
                causes.append(m.not_supported(m.child(m.child(path, "persistentVolumeClaimRetentionPolicy"), when),
                                              retention.get(when, ""), RETENTION_POLICIES))
    causes += m.validate_nonnegative(spec.get("replicas"), m.child(path, "replicas"))
    causes += m.validate_nonnegative(spec.get("minReadySeconds"), m.child(path, "minReadySeconds"))
    if spec.get("ordinals") is not None:
        causes += m.validate_nonnegative((spec["ordinals"] or {}).get("start") or 0,
                                         m.child(path, "ordinals.start"))
    causes += w.validate_required_selector(spec.get("selector"), m.child(path, "selector"), "statefulset")
    template = spec.get("template") or {}
    tpath = m.child(path, "template")
    if not sel.is_well_formed(spec.get("selector")):
        causes.append(sel.invalid_quoted(m.child(path, "selector"), sel.go_selector(spec.get("selector")), ""))
    else:
        causes += w.validate_template_matches(spec.get("selector"), template, tpath)
        tmeta = template.get("metadata") or {}
        causes += m.validate_labels(tmeta.get("labels"), m.child(tpath, "labels"))
        causes += m.validate_annotations(tmeta.get("annotations"), m.child(tpath, "annotations"))
    causes += w.validate_always_restart_template(template, tpath, "StatefulSet")
    return causes


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    spec = obj.get("spec") or {}
    if old is None:
        return (m.validate_object_meta(obj.get("metadata"), True, name_fn=m.name_is_dns_label)
                + validate_spec(spec))
    causes = m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    causes += validate_spec(spec)
    old_spec = old.get("spec") or {}
    frozen_new = copy.deepcopy(spec)
    for name in MUTABLE_SPEC_FIELDS:
        frozen_new.pop(name, None)
        if name in old_spec:
            frozen_new[name] = old_spec[name]
    if not rollout.semantically_equal(frozen_new, old_spec):
        causes.append(m.forbidden("spec", "updates to statefulset spec for fields other than 'replicas', "
                                  "'ordinals', 'template', 'updateStrategy', "
                                  "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
    return causes


COLUMNS = (
    m.NAME_COLUMN,
    Column("Ready", description="Number of the pod with ready state"),
    m.AGE_COLUMN,
    w.CONTAINERS_COLUMN, w.IMAGES_COLUMN,
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    ready = m.get_path(obj, "status.readyReplicas", 0)
    return [m.object_name(obj), f"{ready}/{m.get_path(obj, 'spec.replicas', 0)}",
            m.object_age(obj, now), *w.wide_cells(obj)]


def prepare_create(obj: Obj) -> None:
    rollout.start_generation(obj)


STATEFULSETS = ResourceInfo(
    group="apps", version="v1", kind="StatefulSet", plural="statefulsets", singular="statefulset",
    namespaced=True, schema_type="io.k8s.api.apps.v1.StatefulSet",
    short_names=("sts",), categories=("all",),
    subresources=(w.status_subresource("StatefulSet"), w.SCALE), has_status=True,
    scale=ScalePaths(label_selector="spec.selector"),
    columns=COLUMNS, row=row, default=default, validate=validate,
    prepare_create=prepare_create, prepare_update=rollout.prepare_update_with(default),
)
