"""batch/v1 CronJob: defaults, validation (schedule, time zone) and the ``kubectl get cronjobs`` table.

    NAME    SCHEDULE      TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE
    hello   */1 * * * *   <none>     False     0        42s             10m
                                                   (wide: CONTAINERS IMAGES SELECTOR)

The job template's selector is always generated, so users may not set it.
Names are at most 52 characters (the controller appends an 11-character suffix).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ...errors import Cause
from ...resource import Column, ResourceInfo
from .. import meta as m
from ..apps import rollout
from ..apps import selector as sel
from ..apps import workload as w
from . import cron
from .job import default_job_spec_template, validate_job_spec_fields

Obj = dict[str, Any]

CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
MAX_NAME_LENGTH = 52
_TZ_PART = re.compile(r"^[A-Za-z.\-_0-9+]{1,14}$")


def default(obj: Obj) -> None:
    """SetDefaults_CronJob plus pod defaults inside the job template (no Job defaults there)."""
    spec = obj.setdefault("spec", {})
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_template = spec.get("jobTemplate")
    if not isinstance(job_template, dict):
        job_template = spec["jobTemplate"] = {}
    job_spec = job_template.get("spec")
    if not isinstance(job_spec, dict):
        job_spec = job_template["spec"] = {}
    template = job_spec.get("template")
    if not isinstance(template, dict):
        template = job_spec["template"] = {}
    default_job_spec_template(template)


def _validate_schedule(schedule: str, allow_tz: bool, time_zone: str | None, path: str) -> list[Cause]:
    causes: list[Cause] = []
    problem = cron.validate(schedule)
    if problem is not None:
        causes.append(m.invalid(path, schedule, problem))
    if allow_tz and "TZ" in schedule and time_zone is not None:
        causes.append(m.invalid(path, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
    elif not allow_tz and "TZ" in schedule:
        causes.append(m.invalid(path, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    return causes


def validate_time_zone(time_zone: str | None, path: str) -> list[Cause]:
    if time_zone is None:
        return []
    if not time_zone:
        return [m.invalid(path, time_zone, "timeZone must be nil or non-empty string")]
    for part in time_zone.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.match(part):
            return [m.invalid(path, time_zone, f"unknown time zone {time_zone}")]
    causes: list[Cause] = []
    if time_zone.lower() == "local":
        causes.append(m.invalid(path, time_zone,
                                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"))
    try:
        cron.load_location(time_zone)
    except cron.CronError as exc:
        causes.append(m.invalid(path, time_zone, str(exc)))
    return causes


def _validate_job_template(job_template: Obj, path: str) -> list[Cause]:
    job_spec = job_template.get("spec") or {}
    spath = m.child(path, "spec")
    causes = validate_job_spec_fields(job_spec, spath)
    if job_spec.get("selector") is not None:
        causes.append(sel.invalid_quoted(m.child(spath, "selector"), sel.go_selector(job_spec["selector"]),
                                         "`selector` will be auto-generated"))
    if job_spec.get("manualSelector") is True:
        causes.append(m.not_supported(m.child(spath, "manualSelector"), True, ["nil", "false"]))
    return causes


def validate_spec(spec: Obj, old_spec: Obj | None, path: str = "spec") -> list[Cause]:
    causes: list[Cause] = []
    schedule = spec.get("schedule") or ""
    time_zone = spec.get("timeZone")
    if not schedule:
        causes.append(m.required(m.child(path, "schedule")))
    else:
        allow_tz = old_spec is not None and "TZ" in (old_spec.get("schedule") or "")
        causes += _validate_schedule(schedule, allow_tz, time_zone, m.child(path, "schedule"))
    causes += m.validate_nonnegative(spec.get("startingDeadlineSeconds"), m.child(path, "startingDeadlineSeconds"))
    if old_spec is None or old_spec.get("timeZone") != time_zone:
        causes += validate_time_zone(time_zone, m.child(path, "timeZone"))
    policy = spec.get("concurrencyPolicy") or ""
    if not policy:
        causes.append(m.required(m.child(path, "concurrencyPolicy")))
    elif policy not in CONCURRENCY_POLICIES:
        causes.append(m.not_supported(m.child(path, "concurrencyPolicy"), policy, CONCURRENCY_POLICIES))
    causes += _validate_job_template(spec.get("jobTemplate") or {}, m.child(path, "jobTemplate"))
    for name in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        causes += m.validate_nonnegative(spec.get(name), m.child(path, name))
    return causes


def validate(obj: Obj, old: Obj | None) -> list[Cause]:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    if old is None:
        causes = m.validate_object_meta(meta, True) + validate_spec(spec, None)
        name = meta.get("name") or ""
        if len(name) > MAX_NAME_LENGTH:
            causes.append(m.invalid("metadata.name", name, f"must be no more than {MAX_NAME_LENGTH} characters"))
        return causes
    causes = m.validate_object_meta_update(meta, old.get("metadata"))
    causes += validate_spec(spec, old.get("spec") or {})
    causes += m.validate_labels(m.get_path(spec, "jobTemplate.metadata.labels"), "spec.jobTemplate.labels")
    return causes


COLUMNS = (
    m.NAME_COLUMN,
    Column("Schedule", description="The schedule in Cron format."),
    Column("Timezone", description="The time zone the schedule is interpreted in."),
    Column("Suspend", type="boolean", description="Whether new jobs are held back (True/False)."),
    Column("Active", type="integer", description="Number of currently running jobs."),
    Column("Last Schedule", description="Time since a job was last scheduled."),
    m.AGE_COLUMN,
    w.CONTAINERS_COLUMN, w.IMAGES_COLUMN, w.SELECTOR_COLUMN,
)


def row(obj: Obj, now: datetime | None = None) -> list[Any]:
    spec = obj.get("spec") or {}
    last = m.get_path(obj, "status.lastScheduleTime")
    suspend = spec.get("suspend")
    return [m.object_name(obj), spec.get("schedule", ""),
            spec["timeZone"] if spec.get("timeZone") is not None else "<none>",
            ("True" if suspend else "False") if suspend is not None else "<unset>",
            len(m.get_path(obj, "status.active", []) or []),
            m.format_age(last, now) if last else "<none>",
            m.object_age(obj, now), *w.wide_cells(obj, "spec.jobTemplate.spec.template"),
            m.format_selector(m.get_path(obj, "spec.jobTemplate.spec.selector"))]


def prepare_create(obj: Obj) -> None:
    rollout.start_generation(obj)


CRONJOBS = ResourceInfo(
    group="batch", version="v1", kind="CronJob", plural="cronjobs", singular="cronjob",
    namespaced=True, schema_type="io.k8s.api.batch.v1.CronJob",
    short_names=("cj",), categories=("all",),
    subresources=(w.status_subresource("CronJob"),), has_status=True,
    columns=COLUMNS, row=row, default=default, validate=validate,
    prepare_create=prepare_create, prepare_update=rollout.prepare_update_with(default),
)
