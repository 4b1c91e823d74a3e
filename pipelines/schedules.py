"""Schedules: score daily, retrain weekly. Off by default locally (see `pipelines/config.py`).
Each run takes every customer bucket (`pipelines.partitions.every_bucket`)."""

from __future__ import annotations

import dagster as dg

from pipelines.config import Deployment
from pipelines.jobs import retraining_job, scoring_job
from pipelines.partitions import every_bucket


def _schedule(
    name: str,
    job: dg.UnresolvedAssetJobDefinition,
    cron: str,
    deployment: Deployment,
    buckets: int,
    description: str,
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=deployment.schedule_status,
        description=description,
    )
    def _every_bucket() -> dg.RunRequest:
        return dg.RunRequest(partition_key_range=every_bucket(buckets))

    return _every_bucket


def build_schedules(deployment: Deployment, buckets: int) -> list[dg.ScheduleDefinition]:
    return [
        _schedule(
            "daily_scoring_schedule",
            scoring_job,
            "0 6 * * *",
            deployment,
            buckets,
            "Every day at 06:00 UTC: the scored list as of the latest data, with the champion "
            "model.",
        ),
        _schedule(
            "weekly_retraining_schedule",
            retraining_job,
            "0 3 * * 1",
            deployment,
            buckets,
            "Mondays at 03:00 UTC, before scoring: a new challenger from the latest snapshots, "
            "promoted only past the champion gate.",
        ),
    ]
