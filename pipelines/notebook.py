"""What a notebook needs, one line each: any asset's latest value, through the same Dagster
definitions and asset store the pipeline uses, and the champion with its MLflow run.

    from pipelines.notebook import champion, load
    scored = load("scored_customers")
    model, version, run = champion()

Nothing here computes: a notebook that needs logic imports it from `features/` or `models/`, so
what it shows is what the pipeline does. The data root and the MLflow store are the ones
`make run` uses (TOUCHPOINT_CHURN_DATA, MLFLOW_TRACKING_URI).
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from mlflow.entities import Run

from models.calibration import CalibratedModel
from models.tracking import load_champion


def _definitions() -> dg.Definitions:
    from pipelines.definitions import defs  # reads the environment, so only when first asked

    return defs


def load(asset: str, defs: dg.Definitions | None = None) -> Any:
    """The asset's latest stored value, in the type its asset returns (a Polars frame, the
    FeaturePlan, the ChurnModel): the store keeps the last two as JSON."""
    defs = defs or _definitions()
    returns = defs.resolve_assets_def(asset).op.output_defs[0].dagster_type.typing_type
    return defs.load_asset_value(asset, python_type=returns)


def champion(defs: dg.Definitions | None = None) -> tuple[CalibratedModel, str, Run]:
    """The champion model, its version, and its MLflow run (params, metrics, tags)."""
    resources = (defs or _definitions()).resources
    assert resources is not None  # build_definitions always binds the resources
    tracking = resources["mlflow_tracking"].tracking()
    model, version = load_champion(tracking)
    run_id = tracking.client().get_model_version(tracking.model_name, version).run_id
    assert run_id is not None  # every version this project registers comes from a run
    return model, version, tracking.client().get_run(run_id)
