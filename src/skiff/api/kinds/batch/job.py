"""batch/v1 Job: defaults, the generated selector, validation and the ``kubectl get jobs`` table.

    NAME    STATUS     COMPLETIONS   DURATION   AGE   (wide: CONTAINERS IMAGES SELECTOR)
    pi      Complete   1/1           7s         2m

Unless ``spec.manualSelector`` is true, the API server picks the selector when a
Job is created (:func:`prepare_create`, which needs ``metadata.uid``)::

    template labels   controller-uid, batch.kubernetes.io/controller-uid = <uid>
                      job-name,       batch.kubernetes.io/job-name       = <name>
    spec.selector     matchLabels: {batch.kubernetes.io/controller-uid: <uid>}

Pods of a Job must not restart forever: restartPolicy is OnFailure or Never.
Supports the field selector ``status.successful``.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo
from .. import meta as m
from .. import podspec
from ..apps import rollout
from ..apps import selector as sel
from ..apps import workload as w

Obj = dict[str, Any]

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"
MAX_INT32 = 2**31 - 1
MAX_PARALLELISM_FOR_INDEXED_JOB = 100_000
COMPLETION_MODES = ("NonIndexed", "Indexed")
POD_REPLACEMENT_POLICIES = ("Failed", "TerminatingOrFailed")


def default_job_spec_template(template: Obj) -> None:
    """Pod-template defaults for a JobSpec (also used inside CronJob job templates)."""
    podspec.default_pod_template(template)


def default(obj: Obj) -> None:
    """SetDefaults_Job plus the pod template defaults."""
    spec = obj.setdefault("spec", {})
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    template = spec.get("template")
    if not isinstance(template, dict):
        template = spec["template"] = {}
    template_labels = m.get_path(template, "metadata.labels")
    meta = m.ensure_meta(obj)
    if template_labels is not None and not meta.get("labels"):
        meta["labels"] = dict(template_labels)
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    for rule in m.get_path(spec, "podFailurePolicy.rules", []) or []:
        for pattern in rule.get("onPodConditions") or []:
            if not pattern.get("status"):
                pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") is not None else "TerminatingOrFailed"
    if spec.get("manualSelector") is None:
        spec["manualSelector"] = False
    default_job_spec_template(template)


def generate_selector(obj: Obj) -> None:
    """Label the pod template and select on the Job's uid (unless manualSelector is set)."""
    meta = m.ensure_meta(obj)
    spec = obj.setdefault("spec", {})
    if spec.get("manualSelector") is True:
        return
    template = spec.get("template")
    if not isinstance(template, dict):
        template = spec["template"] = {}
    tmeta = template.get("metadata")
    if not isinstance(tmeta, dict):
        tmeta = template["metadata"] = {}
    labels = tmeta.get("labels")
    if not isinstance(labels, dict):
        labels = tmeta["labels"] = {}
    name, uid = meta.get("name", ""), meta.get("uid", "")
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = spec["selector"] = {}
    match_labels = selector.get("matchLabels")
    if not isinstance(match_labels, dict):
        match_labels = selector["matchLabels"] = {}
    match_labels.setdefault(CONTROLLER_UID_LABEL, uid)


def prepare_create(obj: Obj) -> None:
    """Status cleared, generation 1, selector generated (metadata.uid must be set)."""
    rollout.start_generation(obj)
    generate_selector(obj)


def _has_label(template: Obj, key: str, expected: str) -> list[Cause]:
    labels = m.get_path(template, "metadata.labels", {}) or {}
    path = m.key("spec.template.metadata.labels", key)
    if key not in labels:
        return [m.required(path, expected)]
    if labels[key] != expected:
        return [sel.invalid_quoted(path, sel.go_labels(labels), f"must be '{expected}'")]
    return []


def _validate_generated_selector(obj: Obj, require_prefixed: bool) -> list[Cause]:
    spec = obj.get("spec") or {}
    if spec.get("manualSelector") is True or spec.get("selector") is None:
        return []
    meta = obj.get("metadata") or {}
    uid, name = meta.get("uid", ""), meta.get("name", "")
    causes: list[Cause] = []
    if not uid:
        causes.append(m.required("metadata.uid"))
    template = spec.get("template") or {}
    causes += _has_label(template, LEGACY_CONTROLLER_UID_LABEL, uid)
    causes += _has_label(template, LEGACY_JOB_NAME_LABEL, name)
    expected = {LEGACY_CONTROLLER_UID_LABEL: uid, LEGACY_JOB_NAME_LABEL: name}
    if require_prefixed:
        causes += _has_label(template, CONTROLLER_UID_LABEL, uid)
        causes += _has_label(template, JOB_NAME_LABEL, name)
        expected.update({CONTROLLER_UID_LABEL: uid, JOB_NAME_LABEL: name})
    if sel.is_well_formed(spec["selector"]) and not sel.matches(spec["selector"], expected):
        causes.append(sel.invalid_quoted("spec.selector", sel.go_selector(spec["selector"]),
                                         "`selector` not auto-generated"))
    return causes


def validate_job_spec_fields(spec: Obj, path: str) -> list[Cause]:
    """validateJobSpec: counts, modes, the pod template and its restart policy."""
    causes: list[Cause] = []
    for name in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                 "ttlSecondsAfterFinished", "backoffLimitPerIndex", "maxFailedIndexes"):
        causes += m.validate_nonnegative(spec.get(name), m.child(path, name))
    mode = spec.get("completionMode")
    if mode is not None:
        if mode not in COMPLETION_MODES:
            causes.append(m.not_supported(m.child(path, "completionMode"), mode, COMPLETION_MODES))
        if mode == "Indexed":
            if spec.get("completions") is None:
                causes.append(m.required(m.child(path, "completions"), "when completion mode is Indexed"))
            parallelism = spec.get("parallelism")
            if parallelism is not None and parallelism > MAX_PARALLELISM_FOR_INDEXED_JOB:
                causes.append(m.invalid(m.child(path, "parallelism"), parallelism,
                                        f"must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} "
                                        "when completion mode is Indexed"))
    if spec.get("backoffLimitPerIndex") is not None and mode != "Indexed":
        causes.append(m.required(m.child(path, "completionMode"),
                                 'when backoffLimitPerIndex is specified, completionMode must be "Indexed"'))
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None:
        rpath = m.child(path, "podReplacementPolicy")
        if spec.get("podFailurePolicy") is not None and replacement != "Failed":
            causes.append(m.not_supported(rpath, replacement, ["Failed"]))
        elif replacement not in POD_REPLACEMENT_POLICIES:
            causes.append(m.not_supported(rpath, replacement, POD_REPLACEMENT_POLICIES))
    template = spec.get("template") or {}
    tpath = m.child(path, "template")
    causes += podspec.validate_pod_template(template, tpath)
    restart = m.get_path(template, "spec.restartPolicy", "")
    rp_path = m.child(tpath, "spec.restartPolicy")
    if restart in ("Always", ""):
        causes.append(m.required(rp_path, 'valid values: "OnFailure", "Never"'))
    elif restart not in ("OnFailure", "Never"):
        causes.append(m.not_supported(rp_path, restart, ["OnFailure", "Never"]))
    elif spec.get("podFailurePolicy") is not None and restart != "Never":
        causes.append(m.invalid(rp_path, restart, 'only "Never" is supported when podFailurePolicy is specified'))
    return causes


def validate_spec(spec: Obj, path: str = "spec") -> list[Cause]:
    """ValidateJobSpec: the fields, a valid selector, and template labels that match it."""
    causes = validate_job_spec_fields(spec, path)
    selector = spec.get("selector")
    if selector is None:
        causes.append(m.required(m.child(path, "selector")))
    else:
        causes += sel.validate_label_selector(selector, m.child(path, "selector"))
    template = spec.get("template") or {}
    if sel.is_well_formed(selector) and not sel.matches(selector, m.get_path(template, "metadata.labels")) \
            and not sel.is_empty(selector):
        causes.append(sel.invalid_quoted(m.child(path, "template.metadata.labels"),
                                         sel.go_labels((template.get("metadata") or {}).get("labels")),
                                         "`selector` does not match template `labels`"))
    return causes


def _validate_job(obj: Obj, require_prefixed: bool) -> list[Cause]:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    causes = m.validate_object_meta(meta, True)
    causes += _validate_generated_selector(obj, require_prefixed)
    causes += validate_spec(spec)
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and completions is not None and completions > 0:
        hostname = f"{meta.get('name', '')}-{completions - 1}"
        if m.is_dns1123_label(hostname):
            causes.append(m.invalid("metadata.name", meta.get("name", ""),
                                    f"will not able to create pod with invalid DNS label: {hostname}"))
    return causes


def _validate_template_update(spec: Obj, old_spec: Obj, old: Obj) -> list[Cause]:
    template = spec.get("template") or {}
    old_template = copy.deepcopy(old_spec.get("template") or {})
    suspended = m.get_path(old, "spec.suspend") is True
    never_started = m.get_path(old, "status.startTime") is None
    if suspended and never_started:
        # scheduling directives of a suspended, never-started Job may change
        tspec, ospec = template.get("spec") or {}, old_template.setdefault("spec", {})
        for name in ("nodeSelector", "tolerations", "schedulingGates"):
            ospec[name] = tspec.get(name)
        affinity = dict(ospec.get("affinity") or {})
        affinity["nodeAffinity"] = (tspec.get("affinity") or {}).get("nodeAffinity")
        ospec["affinity"] = tspec.get("affinity") if not any(affinity.values()) else affinity
        ometa = old_template.setdefault("metadata", {})
        for name in ("labels", "annotations"):
            ometa[name] = (template.get("metadata") or {}).get(name)
    if rollout.semantically_equal(template, old_template):
        return []
    return [m.invalid("spec.template", template, m.FIELD_IMMUTABLE)]


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    if old is None:
        return _validate_job(obj, require_prefixed=True)
    old_labels = m.get_path(old, "spec.template.metadata.labels", {}) or {}
    require_prefixed = JOB_NAME_LABEL in old_labels and CONTROLLER_UID_LABEL in old_labels
    causes = _validate_job(obj, require_prefixed)
    causes += m.validate_object_meta_update(obj.get("metadata"), old.get("metadata"))
    spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    causes += validate_spec(spec)
    completions, old_completions = spec.get("completions"), old_spec.get("completions")
    if completions != old_completions:
        if spec.get("completionMode") != "Indexed":
            causes += m.validate_immutable(completions, old_completions, "spec.completions")
        elif completions is not None and completions != spec.get("parallelism"):
            causes.append(m.invalid("spec.completions", completions,
                                    "can only be modified in tandem with spec.parallelism"))
    if not rollout.semantically_equal(spec.get("selector"), old_spec.get("selector")):
        causes.append(sel.invalid_quoted("spec.selector", sel.go_selector(spec.get("selector")),
                                         m.FIELD_IMMUTABLE))
    causes += _validate_template_update(spec, old_spec, old)
    for name in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        if not rollout.semantically_equal(spec.get(name), old_spec.get(name)):
            causes.append(m.invalid(m.child("spec", name), spec.get(name), m.FIELD_IMMUTABLE))
    return causes


# --- table -------------------------------------------------------------------------

COLUMNS = (
    m.NAME_COLUMN,
    Column("Status", description="Status of the job."),
    Column("Completions", description="The number of pods which reached phase Succeeded."),
    Column("Duration", description="Time required to complete the job."),
    m.AGE_COLUMN,
    w.CONTAINERS_COLUMN, w.IMAGES_COLUMN, w.SELECTOR_COLUMN,
)


def _condition_true(obj: Obj, kind: str) -> bool:
    for cond in m.get_path(obj, "status.conditions", []) or []:
        if cond.get("type") == kind:
            return bool(cond.get("status") == "True")
    return False


def job_status(obj: Obj) -> str:
    """The STATUS cell: Complete, Failed, Terminating, Suspended, FailureTarget or Running."""
    if _condition_true(obj, "Complete"):
        return "Complete"
    if _condition_true(obj, "Failed"):
        return "Failed"
    if m.get_path(obj, "metadata.deletionTimestamp"):
        return "Terminating"
    if _condition_true(obj, "Suspended"):
        return "Suspended"
    if _condition_true(obj, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def completions_cell(obj: Obj) -> str:
    succeeded = m.get_path(obj, "status.succeeded", 0)
    completions = m.get_path(obj, "spec.completions")
    if completions is not None:
        return f"{succeeded}/{completions}"
    parallelism = m.get_path(obj, "spec.parallelism", 0)
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def duration_cell(obj: Obj, now: datetime | None = None) -> str:
    start = m.parse_time(m.get_path(obj, "status.startTime"))
    if start is None:
        return ""
    end = m.parse_time(m.get_path(obj, "status.completionTime")) or now or m.utc_now()
    return m.human_duration((end - start).total_seconds())


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    return [m.object_name(obj), job_status(obj), completions_cell(obj), duration_cell(obj, now),
            m.object_age(obj, now), *w.wide_cells(obj), m.format_selector(m.get_path(obj, "spec.selector"))]


JOBS = ResourceInfo(
    group="batch", version="v1", kind="Job", plural="jobs", singular="job",
    namespaced=True, schema_type="io.k8s.api.batch.v1.Job", categories=("all",),
    subresources=(w.status_subresource("Job"),), has_status=True,
    columns=COLUMNS, row=row, default=default, validate=validate,
    prepare_create=prepare_create, prepare_update=rollout.prepare_update_with(default),
    field_labels={"status.successful": lambda o: str(m.get_path(o, "status.succeeded", 0))},
)
