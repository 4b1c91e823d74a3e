"""The landing sensor: new or changed event files in landing/ become partitions and are ingested,
once each."""

from __future__ import annotations

import json

import dagster as dg

from pipelines.config import Deployment
from pipelines.jobs import ingest_file_jobs
from pipelines.partitions import ingest_job_name, landing_changes
from pipelines.resources import ChurnSettings, DataRoot


def build_landing_sensor(deployment: Deployment) -> dg.SensorDefinition:
    @dg.sensor(
        name="landing_files_sensor",
        jobs=ingest_file_jobs,
        minimum_interval_seconds=60,
        default_status=deployment.sensor_status,
        description=(
            "Hashes the event files in landing/ and launches one ingestion run per new content "
            "(or per content whose stored result is gone); retires partitions whose file is gone."
        ),
    )
    def landing_files_sensor(
        context: dg.SensorEvaluationContext, data_root: DataRoot, settings: ChurnSettings
    ) -> dg.SensorResult:
        # the cursor caches content hashes by (size, mtime), so unchanged files are not re-read
        # each tick
        tables, cache = landing_changes(
            context.instance,
            data_root,
            settings.buckets,
            json.loads(context.cursor) if context.cursor else None,
        )
        runs = [
            dg.RunRequest(
                job_name=ingest_job_name(t.table), partition_key=key, run_key=t.run_key(key)
            )
            for t in tables
            for key in t.unprocessed
        ]
        for t in tables:
            if t.changes.add or t.changes.retire:
                context.log.info(
                    f"{t.table}: {len(t.changes.add)} new files {list(t.changes.add)}, "
                    f"{len(t.changes.retire)} retired {list(t.changes.retire)}"
                )
        partition_requests = [r for t in tables for r in t.requests()]
        return dg.SensorResult(
            run_requests=runs,
            dynamic_partitions_requests=partition_requests,
            cursor=json.dumps(cache),
            skip_reason=None if runs or partition_requests else "no new landing files",
        )

    return landing_files_sensor
