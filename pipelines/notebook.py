"""What a notebook needs, one line each: any asset's latest value, through the same Dagster
definitions and asset store the pipeline uses, and the champion with its MLflow run.

    from pipelines.notebook import champion, definitions, load
    defs = definitions("data")  # or definitions(): TOUCHPOINT_CHURN_DATA, as `make run` uses
    scored = load("scored_customers", defs)
    model, version, run = champion(defs)

Nothing here computes: a notebook that needs logic imports it from `features/` or `models/`, so
what it shows is what the pipeline does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from mlflow.entities import Run

from models.calibration import CalibratedModel
from models.explain.published_outputs import OUTPUTS
from models.tracking import load_champion, run_plots, version_run_id
from pipelines.config import Deployment, deployment
from pipelines.partitions import BUCKETED, bucketed_table
from pipelines.resources import ChurnSettings

REPO = Path(__file__).resolve().parents[1]
_SQLITE = "sqlite:///"


def _from_repo(where: Deployment) -> Deployment:
    """The defaults are relative to the repository, where `make` runs; a kernel runs elsewhere
    (in notebooks/)."""
    root = Path(where.data_root)
    uri = where.tracking_uri
    if uri.startswith(_SQLITE) and not uri.removeprefix(_SQLITE).startswith("/"):
        uri = _SQLITE + str(REPO / uri.removeprefix(_SQLITE))
    return Deployment(where.name, str(root if root.is_absolute() else REPO / root), uri)


def definitions(
    data_root: str | Path | None = None, tracking_uri: str | None = None
) -> dg.Definitions:
    """The pipeline's definitions over `data_root` and the MLflow store at `tracking_uri`; each
    left out is the one `make run` uses (TOUCHPOINT_CHURN_DATA, MLFLOW_TRACKING_URI, else the
    repository's data/ and .mlflow/), with the same run settings."""
    from pipelines.definitions import for_deployment  # builds the definitions: only when asked

    where = _from_repo(deployment())
    return for_deployment(
        Deployment(
            where.name,
            str(data_root) if data_root is not None else where.data_root,
            tracking_uri or where.tracking_uri,
        )
    )


def _resources(defs: dg.Definitions | None) -> dict[str, Any]:
    resources = (defs or definitions()).resources
    assert resources is not None  # build_definitions always binds the resources
    return dict(resources)


def settings(defs: dg.Definitions | None = None) -> ChurnSettings:
    """The run settings (horizon, catalogue, playbook...) the pipeline runs with."""
    return _resources(defs)["settings"]


def data_root(defs: dg.Definitions | None = None) -> Path:
    """The data root the pipeline reads landing/ from and writes outputs/ into."""
    return Path(_resources(defs)["data_root"].path)


def published(name: str, defs: dg.Definitions | None = None) -> pl.DataFrame:
    """An output as retention teams get it, `outputs/<name>.parquet` of the last published run:
    the scored list there holds real customer ids where the asset store keeps pseudonyms."""
    path = data_root(defs) / OUTPUTS / f"{name}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run the pipeline first (`make run`)")
    return pl.read_parquet(path)


def load(asset: str, defs: dg.Definitions | None = None) -> Any:
    """The asset's latest stored value, in the type its asset returns (a Polars frame, the
    FeaturePlan, the ChurnModel): the store keeps the last two as JSON. A bucketed table
    (`pipelines.partitions.BUCKETED`) comes as one frame of every bucket."""
    defs = defs or definitions()
    if asset in BUCKETED:
        resources = _resources(defs)
        return bucketed_table(
            resources["data_root"], asset, resources["settings"].buckets
        ).collect()
    returns = defs.resolve_assets_def(asset).op.output_defs[0].dagster_type.typing_type
    return defs.load_asset_value(asset, python_type=returns)


def champion(defs: dg.Definitions | None = None) -> tuple[CalibratedModel, str, Run]:
    """The champion model, its version, and its MLflow run (params, metrics, tags)."""
    tracking = _resources(defs)["mlflow_tracking"].tracking()
    model, version = load_champion(tracking)
    run_id = version_run_id(tracking, version)
    assert run_id is not None  # every version this project registers comes from a run
    return model, version, tracking.client().get_run(run_id)


def logged_plots(run: Run, defs: dg.Definitions | None = None) -> dict[str, bytes]:
    """{file name: PNG} of the plots a training run logged to MLflow (ROC, calibration, lift,
    SHAP summary...): show one with `IPython.display.Image(data=...)`."""
    return run_plots(_resources(defs)["mlflow_tracking"].tracking(), run.info.run_id)
