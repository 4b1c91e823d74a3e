"""Schedules: score daily, retrain weekly. Off by default locally (see `pipelines/config.py`)."""

from __future__ import annotations

import dagster as dg

from pipelines.config import Deployment
from pipelines.jobs import retraining_job, scoring_job


def build_schedules(deployment: Deployment) -> list[dg.ScheduleDefinition]:
    return [
        dg.ScheduleDefinition(
            name="daily_scoring_schedule",
            job=scoring_job,
            cron_schedule="0 6 * * *",
            execution_timezone="UTC",
            default_status=deployment.schedule_status,
            description=(
                "Every day at 06:00 UTC: the scored list as of the latest data, "
                "with the champion model."
            ),
        ),
        dg.ScheduleDefinition(
            name="weekly_retraining_schedule",
            job=retraining_job,
            cron_schedule="0 3 * * 1",
            execution_timezone="UTC",
            default_status=deployment.schedule_status,
            description=(
                "Mondays at 03:00 UTC, before scoring: a new challenger from the latest snapshots, "
                "promoted only past the champion gate."
            ),
        ),
    ]
