"""The one Definitions object Dagster loads. Read top to bottom to follow the data:

landing files -> customers, clickstream, support, surveys (validated, quarantine beside)
  -> touchpoint_events -> training_snapshots -> churn_model (MLflow: challenger; champion only through the gate,
                                                               checked by the blocking champion_passes_gate)
                        -> scoring_features  -> shap_attributions -> touchpoint_drivers, scored_customers -> churn_report
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from pipelines.assets import features, ingest, model, outputs
from pipelines.resources import ChurnSettings, DataRoot, FrameStore, MlflowTracking

DEFAULT_DATA_ROOT = "data"
DEFAULT_TRACKING_URI = "sqlite:///.mlflow/mlflow.db"


def build_definitions(data_root: str | Path, tracking_uri: str, settings: ChurnSettings | None = None) -> dg.Definitions:
    data_root = Path(data_root).resolve()
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingest, features, model, outputs]),
        asset_checks=dg.load_asset_checks_from_modules([model]),
        resources={
            "data_root": DataRoot(path=str(data_root)),
            "io_manager": FrameStore(base_dir=str(data_root / "assets")),
            "mlflow_tracking": MlflowTracking(tracking_uri=tracking_uri),
            "settings": settings or ChurnSettings(),
        },
    )


def _from_environment() -> dg.Definitions:
    """The only place that reads the environment: where data lives and where MLflow tracks."""
    return build_definitions(
        os.environ.get("TOUCHPOINT_CHURN_DATA", DEFAULT_DATA_ROOT),
        os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI),
    )


defs = _from_environment()
