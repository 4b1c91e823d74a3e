"""The churn model: trained on earlier cutoffs, judged on the holdout, tracked and registered in MLflow."""

import dagster as dg
import polars as pl

from features.registry import SOURCE_TIME
from models.evaluate import classification_metrics
from models.tracking import log_model_run, run_url
from models.train import TrainConfig, model_input, train_model
from pipelines.resources import ChurnSettings, MlflowTracking

NOT_FEATURES = {"customer_id", "churned", "cutoff", "split", "as_of"}


def feature_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in NOT_FEATURES and c not in SOURCE_TIME]


@dg.asset(group_name="model", kinds={"xgboost", "mlflow"})
def churn_model(context: dg.AssetExecutionContext, settings: ChurnSettings, mlflow_tracking: MlflowTracking, training_snapshots: pl.DataFrame) -> dg.Output[dict]:
    """XGBoost on the training cutoffs, early-stopped on the latest of them, evaluated on the holdout
    (a later period it never saw), logged to MLflow, registered and aliased `champion`."""
    features = feature_columns(training_snapshots)
    config = TrainConfig(seed=settings.seed)
    model, summary = train_model(training_snapshots, features, config)
    holdout = training_snapshots.filter(pl.col("split") == "holdout")
    probability = model.predict_proba(model_input(holdout, features))[:, 1]
    metrics = {f"holdout_{k}": v for k, v in classification_metrics(holdout["churned"].to_numpy(), probability).items()}
    tracking = mlflow_tracking.tracking()
    run_id, version = log_model_run(
        tracking, model, model_input(holdout.head(5), features),
        params={**config.params(), **summary, "horizon_days": settings.horizon_days, "features": len(features)},
        metrics=metrics,
        tags={"dagster.run_id": context.run.run_id, "dagster.asset": context.asset_key.to_user_string()},
    )
    context.log.info(f"model v{version}: holdout ROC AUC {metrics['holdout_roc_auc']:.3f}, PR AUC {metrics['holdout_pr_auc']:.3f}")
    return dg.Output(
        {"run_id": run_id, "version": version, "metrics": metrics, "features": features},
        metadata={
            "mlflow_run_id": run_id,
            "mlflow_run": run_url(tracking, run_id),
            "model_version": version,
            **{k: dg.MetadataValue.float(v) for k, v in metrics.items()},
            "best_iteration": summary["best_iteration"],
        },
    )
