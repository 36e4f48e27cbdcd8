"""The ``batch/v1`` group: Job and CronJob (plus the cron schedule parser they need)."""

from __future__ import annotations

from ...resource import ResourceInfo
from .cronjob import CRONJOBS
from .job import JOBS

RESOURCES: tuple[ResourceInfo, ...] = (JOBS, CRONJOBS)

__all__ = ["RESOURCES", "JOBS", "CRONJOBS"]
