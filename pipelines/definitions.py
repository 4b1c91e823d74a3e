"""The one Definitions object Dagster loads. Read top to bottom to follow the data:

landing/customers/*                     -> customers
landing/{clickstream,support,surveys}/* -> <table>_files (one partition per file content, launched
                                           by landing_files_sensor; its rows split by customer
                                           bucket) -> clickstream, support, surveys
  (validated; quarantine/ beside, unreadable files set aside in quarantine/files/; checks:
   input_schema, quarantine_share, both blocking; events_before_signup warns)
  -> touchpoint_days (check: event_freshness)
  -> feature_plan (as_of, the cutoffs, the features the data supports) -> feature_dictionary
       -> training_snapshots (checks: label_rate, feature_null_rates)
            -> churn_model (MLflow: a challenger each run, unless the snapshots and settings
                            are unchanged; the promotion gate decides, checked by the blocking
                            check champion_passes_gate)
       -> scoring_features (checks: feature_null_rates, feature_drift vs training)
            -> shap_attributions (the model the gate passed, else the champion)
                 -> touchpoint_drivers, scored_customers -> churn_report
       -> text_themes (each comment's and ticket's theme) -> training_snapshots, scoring_features,
            voice_themes (what customers wrote, as themes per touchpoint and band) -> churn_report
                      -> published_outputs (outputs/ switched to this run's set in one rename)
                           -> champion (the alias moved, last, so a killed run promotes nothing)

The per-customer tables (clickstream, support, surveys, touchpoint_days, text_themes,
training_snapshots, scoring_features, shap_attributions) have one partition per customer bucket
(ChurnSettings.buckets, `pipelines/partitions.py`); the rest read every bucket, one at a time
where they read features or SHAP values (the driver table, the what-if, the report, the checks).

Automation: `daily_scoring_schedule` (scored list with the champion), `weekly_retraining_schedule`
(a new challenger), `landing_files_sensor` (new files); all off by default locally. Resources and
the local/production switch: `pipelines/config.py`. Jobs: `pipelines/jobs.py`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
from pydantic import ValidationError

from features.ingest.pseudonyms import KEY_VARIABLE
from pipelines import checks
from pipelines.assets import explain, feature_tables, ingest, model, voice
from pipelines.config import (
    SETTINGS_FILE,
    Deployment,
    DeploymentError,
    QualityBounds,
    deployment,
    run_settings,
)
from pipelines.jobs import ingest_file_jobs, retraining_job, scoring_job
from pipelines.partitions import backfill_policy, bucket_partitions
from pipelines.resources import ChurnSettings, DataRoot, FrameStore, MlflowTracking
from pipelines.schedules import build_schedules
from pipelines.sensors import build_landing_sensor


def build_definitions(
    data_root: str | Path,
    tracking_uri: str,
    settings: ChurnSettings | None = None,
    quality: QualityBounds | None = None,
    deployment_name: str = "local",
) -> dg.Definitions:
    data_root = Path(data_root).resolve()
    where = Deployment(deployment_name, str(data_root), tracking_uri)
    settings = settings or churn_settings(
        run_settings(data_root, ChurnSettings.model_fields, environ={}),
        str(data_root / SETTINGS_FILE),
    )
    buckets = (bucket_partitions(settings.buckets), backfill_policy(deployment_name))
    return dg.Definitions(
        assets=[
            *dg.load_assets_from_modules([ingest, feature_tables, model, voice, explain]),
            *ingest.bucketed_assets(*buckets),
            *feature_tables.bucketed_assets(*buckets),
            voice.text_themes_asset(*buckets),
            explain.shap_attributions_asset(*buckets),
        ],
        asset_checks=dg.load_asset_checks_from_modules([checks, model]),
        jobs=[*ingest_file_jobs, scoring_job, retraining_job],
        schedules=build_schedules(where, settings.buckets),
        sensors=[build_landing_sensor(where)],
        # A run launched by the daemon (sensor, schedules, backfills) runs its steps one after
        # another in its own process, as `make run` does: a process per step would import the
        # whole stack again for each (seconds each), and the work spreads by runs, one per file
        # or per bucket, not by the steps inside one run.
        executor=dg.in_process_executor,
        resources={
            "data_root": DataRoot(
                path=str(data_root),
                # an EnvVar is read when a run starts and never written to Dagster's storage
                pseudonym_key=dg.EnvVar(KEY_VARIABLE) if os.environ.get(KEY_VARIABLE) else None,
            ),
            "io_manager": FrameStore(base_dir=str(data_root / "assets")),
            "mlflow_tracking": MlflowTracking(tracking_uri=tracking_uri),
            "settings": settings,
            "quality": quality or QualityBounds(),
        },
    )


def churn_settings(values: Mapping[str, object], where: str) -> ChurnSettings:
    """The run settings from `values`, or a DeploymentError that says which one is wrong."""
    try:
        return ChurnSettings.model_validate(values)
    except ValidationError as err:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise DeploymentError(f"the run settings from {where} are not usable: {wrong}") from err


def for_deployment(where: Deployment) -> dg.Definitions:
    """The definitions of a deployment: where data lives, where MLflow tracks, whether automation
    starts on, and the run settings from the data root's settings file and the environment."""
    values = run_settings(where.data_root, ChurnSettings.model_fields)
    settings = churn_settings(values, f"{where.data_root}/{SETTINGS_FILE} and the environment")
    return build_definitions(
        where.data_root, where.tracking_uri, settings=settings, deployment_name=where.name
    )


# `pipelines/config.py` reads the environment
defs = for_deployment(deployment())
