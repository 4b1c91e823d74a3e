"""Jobs: what the landing sensor and the schedules launch.

- `ingest_<table>_files`: one landing file of an event table (one partition), launched by the
  sensor.
- `daily_scoring`: the tables as of the latest data, their features, and the champion's scored list,
  driver table and report. The model is not retrained: scoring loads the `champion` alias, unless
  the run is tagged TRAINED_IN with the run that just trained a model the gate passed (what
  `make run` does): then it scores with that model and its last step, `champion`, promotes it,
  so a run killed before it publishes promotes nothing.
- `weekly_retraining`: the tables, training snapshots and a new model, judged by the model's checks
  (the champion gate decides whether it is promoted).
"""

from __future__ import annotations

import dagster as dg

from features.ingest.contract import EVENT_TABLES
from pipelines.partitions import file_asset_key, ingest_job_name

FILE_ASSETS = dg.AssetSelection.assets(*(file_asset_key(t) for t in EVENT_TABLES))
TRAINING = dg.AssetSelection.assets("training_snapshots", "churn_model")
CHAMPION = dg.AssetSelection.assets("champion")
# a scoring run tagged with the run that trained its model (see the module docstring)
TRAINED_IN = "touchpoint_churn/trained_in"
# carried by every run of the training job: a cluster's run queue starts one such run at a time
# (dagster.kubernetes.yaml), so two never race each other to the champion alias
TRAINS = "touchpoint_churn/trains"


def training_runs(run: dg.DagsterRun) -> set[str]:
    """The runs whose gate-passed model this run scores with and promotes: itself (one run that
    trains and scores) and the run its TRAINED_IN tag names."""
    return {run.run_id, *([run.tags[TRAINED_IN]] if TRAINED_IN in run.tags else [])}


ingest_file_jobs = [
    dg.define_asset_job(
        ingest_job_name(table),
        selection=dg.AssetSelection.assets(file_asset_key(table)),
        description=f"Validate one landing/{table} file (one partition).",
    )
    for table in EVENT_TABLES
]

scoring_job = dg.define_asset_job(
    "daily_scoring",
    selection=(dg.AssetSelection.assets("published_outputs").upstream() - TRAINING - FILE_ASSETS)
    | CHAMPION,
    description=(
        "Fresh scored list, driver table and report as of the latest data, with the champion model."
    ),
)

retraining_job = dg.define_asset_job(
    "weekly_retraining",
    selection=(
        dg.AssetSelection.assets("churn_model").upstream() | dg.AssetSelection.assets("champion")
    )
    - FILE_ASSETS,
    description=(
        "A new challenger trained on the latest snapshots; "
        "the model checks decide whether it becomes champion."
    ),
    tags={TRAINS: "weekly_retraining"},
)
