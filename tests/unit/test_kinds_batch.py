"""batch/v1 kinds and the cron parser: defaults, generated selectors, validation, tables."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest

from skiff.api.kinds.batch import CRONJOBS, JOBS
from skiff.api.kinds.batch import cron

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)
CREATED = "2024-01-01T00:55:00Z"


def messages(causes: list[Any]) -> list[str]:
    return [f"{c.field}: {c.message}" for c in causes]


def job(name: str = "pi", restart: str | None = "Never", **spec: Any) -> dict[str, Any]:
    pod: dict[str, Any] = {"containers": [{"name": "pi", "image": "perl:5"}]}
    if restart:
        pod["restartPolicy"] = restart
    body: dict[str, Any] = {"template": {"spec": pod}}
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "spec": body,
            "metadata": {"name": name, "namespace": "default", "uid": "1234-abcd", "creationTimestamp": CREATED}}


def created_job(obj: dict[str, Any]) -> dict[str, Any]:
    JOBS.prepare_create(obj)
    JOBS.default(obj)
    return obj


def test_job_create_generates_selector_labels_and_defaults() -> None:
    j = created_job(job())
    generated = {"job-name": "pi", "batch.kubernetes.io/job-name": "pi",
                 "controller-uid": "1234-abcd", "batch.kubernetes.io/controller-uid": "1234-abcd"}
    assert j["spec"]["template"]["metadata"]["labels"] == generated
    assert j["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "1234-abcd"}}
    assert j["metadata"]["labels"] == generated
    spec = j["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert (spec["completionMode"], spec["suspend"], spec["manualSelector"]) == ("NonIndexed", False, False)
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert JOBS.validate(j, None) == []


def test_job_defaults_keep_explicit_labels_and_parallelism() -> None:
    j = job(parallelism=3)
    j["metadata"]["labels"] = {"team": "a"}
    created_job(j)
    assert j["metadata"]["labels"] == {"team": "a"}
    assert j["spec"]["parallelism"] == 3 and "completions" not in j["spec"]
    assert created_job(job(backoffLimitPerIndex=1, completionMode="Indexed", completions=2))["spec"][
        "backoffLimit"] == 2**31 - 1
    failure = created_job(job(podFailurePolicy={"rules": [{"action": "Ignore",
                                                           "onPodConditions": [{"type": "DisruptionTarget"}]}]}))
    assert failure["spec"]["podReplacementPolicy"] == "Failed"
    assert failure["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_manual_selector_is_left_alone() -> None:
    j = job(manualSelector=True, selector={"matchLabels": {"app": "x"}})
    j["spec"]["template"]["metadata"] = {"labels": {"app": "x"}}
    created_job(j)
    assert j["spec"]["selector"] == {"matchLabels": {"app": "x"}}
    assert JOBS.validate(j, None) == []


@pytest.mark.parametrize("restart, expected", [
    (None, ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']),
    ("Always", ['spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"']),
    ("OnFailure", []),
])
def test_job_restart_policy(restart: str | None, expected: list[str]) -> None:
    assert messages(JOBS.validate(created_job(job(restart=restart)), None)) == expected


def test_job_validation_of_counts_and_modes() -> None:
    j = created_job(job(parallelism=-1, completions=2))
    assert messages(JOBS.validate(j, None)) == ["spec.parallelism: Invalid value: -1: must be greater than or equal to 0"]
    j = created_job(job(completionMode="Sometimes"))
    assert messages(JOBS.validate(j, None)) == [
        'spec.completionMode: Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"']


def test_job_wrong_generated_label_is_reported() -> None:
    j = job()
    j["spec"]["template"]["metadata"] = {"labels": {"controller-uid": "other"}}
    created_job(j)
    result = messages(JOBS.validate(j, None))
    assert result[0].startswith("spec.template.metadata.labels[controller-uid]: Invalid value: map[string]string{")
    assert result[0].endswith(": must be '1234-abcd'")


def test_job_update_rules() -> None:
    old = created_job(job())
    same = copy.deepcopy(old)
    same["spec"]["suspend"] = True
    assert JOBS.validate(same, old) == []
    changed = copy.deepcopy(old)
    changed["spec"]["completions"] = 5
    assert "spec.completions: Invalid value: 5: field is immutable" in messages(JOBS.validate(changed, old))
    image = copy.deepcopy(old)
    image["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:6"
    assert any(m.startswith("spec.template: Invalid value:") and m.endswith("field is immutable")
               for m in messages(JOBS.validate(image, old)))


def test_suspended_unstarted_job_may_change_scheduling_directives() -> None:
    old = created_job(job(suspend=True))
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    assert JOBS.validate(new, old) == []
    old["status"] = {"startTime": "2024-01-01T00:56:00Z"}
    assert any(m.endswith("field is immutable") for m in messages(JOBS.validate(new, old)))


@pytest.mark.parametrize("status, spec, deleting, cells", [
    ({}, {}, False, ["Running", "0/1", ""]),
    ({"succeeded": 1, "startTime": "2024-01-01T00:56:00Z", "completionTime": "2024-01-01T00:56:07Z",
      "conditions": [{"type": "Complete", "status": "True"}]}, {}, False, ["Complete", "1/1", "7s"]),
    ({"startTime": "2024-01-01T00:58:00Z", "conditions": [{"type": "Failed", "status": "True"}]}, {}, False,
     ["Failed", "0/1", "2m"]),
    ({}, {}, True, ["Terminating", "0/1", ""]),
    ({"conditions": [{"type": "Suspended", "status": "True"}]}, {}, False, ["Suspended", "0/1", ""]),
    ({"succeeded": 2}, {"completions": None, "parallelism": 4}, False, ["Running", "2/1 of 4", ""]),
    ({"succeeded": 2}, {"completions": 5}, False, ["Running", "2/5", ""]),
])
def test_job_row(status: dict[str, Any], spec: dict[str, Any], deleting: bool, cells: list[str]) -> None:
    j = created_job(job())
    j["status"] = status
    for k, v in spec.items():
        if v is None:
            j["spec"].pop(k, None)
        else:
            j["spec"][k] = v
    if deleting:
        j["metadata"]["deletionTimestamp"] = "2024-01-01T00:59:00Z"
    row = JOBS.row(j, NOW)
    assert row[:4] == ["pi", *cells]
    assert row[4:] == ["5m", "pi", "perl:5", "batch.kubernetes.io/controller-uid=1234-abcd"]


def test_job_columns_and_field_label() -> None:
    assert [c.name for c in JOBS.columns][:5] == ["Name", "Status", "Completions", "Duration", "Age"]
    j = created_job(job())
    j["status"] = {"succeeded": 1}
    assert JOBS.field_labels["status.successful"](j) == "1"
    assert JOBS.categories == ("all",) and JOBS.short_names == ()


# --- CronJob ------------------------------------------------------------------------------------

def cronjob(schedule: str = "*/5 * * * *", name: str = "hello", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"name": "hello", "image": "busybox"}], "restartPolicy": "OnFailure"}}}}}
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "spec": body,
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": CREATED}}


def test_cronjob_defaults_leave_the_job_spec_alone() -> None:
    c = cronjob()
    CRONJOBS.default(c)
    spec = c["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"]) == ("Allow", False)
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (3, 1)
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert CRONJOBS.validate(c, None) == []


@pytest.mark.parametrize("schedule, time_zone, expected", [
    ("bad", None, ['spec.schedule: Invalid value: "bad": expected exactly 5 fields, found 1: [bad]']),
    ("61 * * * *", None, ['spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59): 61']),
    ("* * * * 8", None, ['spec.schedule: Invalid value: "* * * * 8": end of range (8) above maximum (6): 8']),
    ("5-1 * * * *", None, ['spec.schedule: Invalid value: "5-1 * * * *": '
                           "beginning of range (5) beyond end of range (1): 5-1"]),
    ("x * * * *", None, ['spec.schedule: Invalid value: "x * * * *": '
                         'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax']),
    ("@fortnightly", None, ['spec.schedule: Invalid value: "@fortnightly": unrecognized descriptor: @fortnightly']),
    ("TZ=UTC 0 * * * *", None, ['spec.schedule: Invalid value: "TZ=UTC 0 * * * *": '
                                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"]),
    ("0 9 * * MON-FRI", "Europe/Berlin", []),
    ("@hourly", "Mars/Olympus", ['spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus']),
    ("@every 1h30m", None, []),
])
def test_cronjob_schedule_validation(schedule: str, time_zone: str | None, expected: list[str]) -> None:
    c = cronjob(schedule)
    if time_zone:
        c["spec"]["timeZone"] = time_zone
    CRONJOBS.default(c)
    assert messages(CRONJOBS.validate(c, None)) == expected


def test_cronjob_name_limit_and_template_selector() -> None:
    c = cronjob(name="a" * 53)
    CRONJOBS.default(c)
    assert messages(CRONJOBS.validate(c, None)) == [
        f'metadata.name: Invalid value: "{"a" * 53}": must be no more than 52 characters']
    c = cronjob()
    c["spec"]["jobTemplate"]["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    CRONJOBS.default(c)
    assert messages(CRONJOBS.validate(c, None)) == [
        'spec.jobTemplate.spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"a":"b"}, '
        "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated"]


def test_cronjob_row() -> None:
    c = cronjob("*/1 * * * *", timeZone="Etc/UTC")
    CRONJOBS.default(c)
    c["status"] = {"active": [{"name": "hello-1"}], "lastScheduleTime": "2024-01-01T00:59:18Z"}
    assert [col.name for col in CRONJOBS.columns][:7] == [
        "Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"]
    assert CRONJOBS.row(c, NOW) == ["hello", "*/1 * * * *", "Etc/UTC", "False", 1, "42s", "5m",
                                    "hello", "busybox", "<none>"]
    c["spec"].pop("timeZone")
    c.pop("status")
    assert CRONJOBS.row(c, NOW)[2:6] == ["<none>", "False", 0, "<none>"]


# --- the cron parser ----------------------------------------------------------------------------

def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize("spec, after, expected", [
    ("*/15 * * * *", utc(2024, 1, 1, 10, 7), utc(2024, 1, 1, 10, 15)),
    ("0 9 * * MON-FRI", utc(2024, 1, 5, 9, 0), utc(2024, 1, 8, 9, 0)),  # Friday 09:00 -> Monday
    ("0 0 1 * *", utc(2024, 1, 31, 12, 0), utc(2024, 2, 1, 0, 0)),
    ("0 0 29 2 *", utc(2024, 3, 1), utc(2028, 2, 29)),
    ("0 12 13 * 5", utc(2024, 1, 1), utc(2024, 1, 5, 12, 0)),  # day-of-month OR day-of-week
    ("@daily", utc(2024, 1, 1, 0, 0), utc(2024, 1, 2, 0, 0)),
    ("5/20 * * * *", utc(2024, 1, 1, 0, 26), utc(2024, 1, 1, 0, 45)),
])
def test_cron_next(spec: str, after: datetime, expected: datetime) -> None:
    assert cron.parse(spec).next(after) == expected


def test_cron_time_zone_and_every() -> None:
    schedule = cron.parse("TZ=Europe/Berlin 0 9 * * *")
    assert schedule.next(utc(2024, 1, 1, 0, 0)) == utc(2024, 1, 1, 8, 0)
    assert cron.parse("@every 90s").next(utc(2024, 1, 1)) == utc(2024, 1, 1, 0, 1, 30)
    assert cron.validate("@every 5") == 'failed to parse duration @every 5: time: missing unit in duration "5"'
    assert cron.validate("TZ=Nowhere/Land * * * * *") == (
        "provided bad location Nowhere/Land: unknown time zone Nowhere/Land")
