"""The churn model: backtested by time against baselines, refit on every labelled cutoff, tracked
in MLflow, registered as `challenger`, and promoted to `champion` only through the gate
(`models.training.churn_model`)."""

import base64

import dagster as dg
import polars as pl
from pydantic import Field

from features.feature_plan import FeaturePlan
from features.touchpoint_days import ACTIVITY
from models.tracking import champion_version, promote, run_url
from models.training.churn_model import ChurnModel, train_and_register
from models.training.cluster import training_client
from models.training.promotion import GateConfig
from models.training.train import TrainConfig
from pipelines.jobs import training_runs
from pipelines.metadata import figure, preview
from pipelines.resources import ChurnSettings, MlflowTracking

OWNERS = ["team:data-science"]


class ModelConfig(GateConfig, TrainConfig, dg.Config):
    """Hyperparameters (TrainConfig), the promotion gate (GateConfig), where to train and the
    optional search; the seed comes from ChurnSettings."""

    dask_workers: int = Field(
        default=0,
        ge=0,
        description=(
            "0: train in this process. n > 0: train with xgboost.dask on a LocalCluster of n "
            "workers; with DASK_SCHEDULER_ADDRESS set, on that cluster whatever this says."
        ),
    )
    search_trials: int = Field(
        default=0,
        description="If > 0, a bounded random search of this many trials on the validation "
        "cutoff, logged as nested runs.",
    )


def _image(png: bytes) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![plot](data:image/png;base64,{base64.b64encode(png).decode()})")


@dg.asset(group_name="model", kinds={"xgboost", "mlflow"}, owners=OWNERS)
def churn_model(
    context: dg.AssetExecutionContext,
    config: ModelConfig,
    settings: ChurnSettings,
    mlflow_tracking: MlflowTracking,
    feature_plan: FeaturePlan,
    training_snapshots: pl.LazyFrame,
    touchpoint_days: pl.LazyFrame,
    customers: pl.DataFrame,
) -> dg.Output[ChurnModel]:
    """The rolling-origin backtest chooses the form, trees and calibration against five
    baselines; the model is refit on every labelled cutoff, registered as `challenger`, and
    promoted by the gate. The snapshots hold the plan's training sample (every customer below
    ChurnSettings.max_training_rows); the baselines read the same customers' days."""
    tracking = mlflow_tracking.tracking()
    registry = feature_plan.registry(settings.catalogue())
    features = [d.name for d in registry]
    if missing := sorted(set(features) - set(training_snapshots.collect_schema().names())):
        raise ValueError(
            f"training_snapshots lacks {len(missing)} features of the current feature plan "
            f"({missing[:5]}): materialize training_snapshots again before churn_model"
        )
    snapshots = training_snapshots.collect()
    days = (
        touchpoint_days.select(ACTIVITY)
        .join(snapshots.lazy().select("customer_id").unique(), on="customer_id", how="semi")
        .collect()
    )
    with training_client(config.dask_workers) as client:
        if client is not None:
            context.log.info(f"training on Dask: {client.scheduler_info()['address']}")
        model, figures = train_and_register(
            snapshots,
            features,
            days,
            customers,
            config=TrainConfig.of(config),
            gate=GateConfig.of(config),
            seed=settings.seed,
            search_trials=config.search_trials,
            horizon_days=feature_plan.horizon_days,
            as_of=feature_plan.as_of,
            tracking=tracking,
            touchpoints={d.name: d.touchpoint for d in registry},
            params={"horizon_days": feature_plan.horizon_days},
            tags={
                "dagster.run_id": context.run.run_id,
                "dagster.asset": context.asset_key.to_user_string(),
            },
            log=context.log,
            client=client,
        )
    return dg.Output(
        model,
        metadata={
            "mlflow_run_id": model.run_id,
            "mlflow_run": run_url(tracking, model.run_id),
            "model_version": model.version,
            "promoted": model.promoted,
            "champion_version": str(model.champion_version),
            "gate": "; ".join(model.gate_reasons) or "passed",
            **{k: figure(v) for k, v in model.metrics.items()},
            **{f"baseline_{b}_roc_auc": figure(m["roc_auc"]) for b, m in model.baselines.items()},
            "form": model.form,
            "trees": model.trees,
            "calibration": model.calibration,
            "backtest": preview(
                pl.DataFrame(model.backtest).with_columns(pl.col(pl.Float64).round(3)), rows=12
            ),
            "seed": model.seed,
            "training_rows": snapshots.height,
            "data_fingerprint": dg.MetadataValue.json(model.fingerprint),
            **{f"plot_{name.removesuffix('.png')}": _image(png) for name, png in figures.items()},
        },
    )


@dg.asset_check(
    asset=churn_model,
    blocking=True,
    description=("Scoring may only use a model that passed the promotion gate on the backtest."),
)
def champion_passes_gate(
    mlflow_tracking: MlflowTracking, churn_model: ChurnModel
) -> dg.AssetCheckResult:
    alias = champion_version(mlflow_tracking.tracking())
    failures = list(churn_model.champion_failures)
    # the alias moves only when the run publishes its outputs (`champion`)
    if alias not in (churn_model.champion_version, churn_model.previous_champion):
        failures.append(
            f"the `champion` alias points at v{alias}, but the gate left "
            f"v{churn_model.champion_version} as champion"
        )
    return dg.AssetCheckResult(
        passed=not failures,
        description="; ".join(failures) or f"champion v{alias} passes the gate",
        metadata={
            "champion_version": str(alias),
            "challenger_version": churn_model.version,
            "challenger_promoted": churn_model.promoted,
            "challenger_rejected_because": "; ".join(churn_model.gate_reasons) or "-",
        },
    )


@dg.asset(
    group_name="model",
    kinds={"mlflow"},
    owners=OWNERS,
    deps=["published_outputs"],
    description=(
        "The `champion` alias moved to the model the gate passed in this run, or in the run its "
        "TRAINED_IN tag names. In daily_scoring, as `make run` ends, it is the last step, after "
        "the published outputs, so a killed run promotes nothing; weekly_retraining alone "
        "promotes right after training."
    ),
)
def champion(
    context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, churn_model: ChurnModel
) -> dg.MaterializeResult:
    tracking = mlflow_tracking.tracking()
    promotes = churn_model.promoted_in(training_runs(context.run))
    if promotes:
        promote(tracking, churn_model.version)
        context.log.info(f"model v{churn_model.version} is champion")
    version = champion_version(tracking)
    return dg.MaterializeResult(
        metadata={
            "champion_version": str(version),
            "promoted_in_this_run": promotes,
        }
    )
