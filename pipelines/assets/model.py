"""The churn model: trained and calibrated on earlier cutoffs, judged on the holdout against baselines,
tracked in MLflow, registered as `challenger`, and promoted to `champion` only through the gate."""

import base64

import dagster as dg
import polars as pl
from pydantic import Field

from features.registry import SOURCE_TIME
from models.baselines import baseline_probabilities
from models.evaluate import classification_metrics
from models.plots import holdout_plots
from models.promotion import GateConfig, acceptable, decide
from models.tracking import IncompatibleModel, champion_version, load_version, log_child_runs, log_model_run, promote, run_url
from models.train import TrainConfig, data_fingerprint, model_input, search_hyperparameters, time_split, train_model
from pipelines.resources import ChurnSettings, MlflowTracking

NOT_FEATURES = {"customer_id", "churned", "cutoff", "split", "as_of"}
_TRAIN, _GATE = TrainConfig(), GateConfig()


class ModelConfig(dg.Config):
    """Hyperparameters, the optional search, and the promotion gate (the seed comes from ChurnSettings)."""

    max_depth: int = Field(default=_TRAIN.max_depth, description="Tree depth.")
    learning_rate: float = Field(default=_TRAIN.learning_rate, description="Boosting step size.")
    n_estimators: int = Field(default=_TRAIN.n_estimators, description="Most trees; early stopping on the validation cutoff picks fewer.")
    subsample: float = Field(default=_TRAIN.subsample, description="Share of rows per tree.")
    colsample_bytree: float = Field(default=_TRAIN.colsample_bytree, description="Share of features per tree.")
    min_child_weight: float = Field(default=_TRAIN.min_child_weight, description="Least hessian per leaf; larger is smoother.")
    reg_lambda: float = Field(default=_TRAIN.reg_lambda, description="L2 penalty on leaf weights.")
    scale_pos_weight: float = Field(default=_TRAIN.scale_pos_weight, description="Weight of churners; calibration corrects the probabilities if > 1.")
    search_trials: int = Field(default=0, description="If > 0, a bounded random search of this many trials on the validation cutoff, logged as nested runs.")
    auc_tolerance: float = Field(default=_GATE.auc_tolerance, description="How much lower than the champion's holdout ROC AUC a challenger may be and still be promoted.")
    max_ece: float = Field(default=_GATE.max_ece, description="Largest expected calibration error on the holdout a champion may have.")
    min_roc_auc: float = Field(default=_GATE.min_roc_auc, description="Least holdout ROC AUC any champion must have.")

    def train_config(self, seed: int) -> TrainConfig:
        tuned = ("max_depth", "learning_rate", "n_estimators", "subsample", "colsample_bytree", "min_child_weight", "reg_lambda", "scale_pos_weight")
        return TrainConfig(**{k: getattr(self, k) for k in tuned}, seed=seed)

    def gate(self) -> GateConfig:
        return GateConfig(self.auc_tolerance, self.max_ece, self.min_roc_auc)


def feature_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in NOT_FEATURES and c not in SOURCE_TIME]


def _image(png: bytes) -> dg.MetadataValue:
    return dg.MetadataValue.md(f"![plot](data:image/png;base64,{base64.b64encode(png).decode()})")


@dg.asset(group_name="model", kinds={"xgboost", "mlflow"})
def churn_model(
    context: dg.AssetExecutionContext, config: ModelConfig, settings: ChurnSettings, mlflow_tracking: MlflowTracking,
    training_snapshots: pl.DataFrame, touchpoint_days: pl.DataFrame, customers: pl.DataFrame,
) -> dg.Output[dict]:
    """XGBoost fit on the earlier cutoffs, early-stopped and calibrated on the latest training cutoff,
    judged on the holdout against four baselines, registered as `challenger`, promoted by the gate."""
    features, tracking = feature_columns(training_snapshots), mlflow_tracking.tracking()
    train_config, trials = config.train_config(settings.seed), []
    if config.search_trials > 0:
        context.log.info(f"searching {config.search_trials} hyperparameter draws on the validation cutoff")
        train_config, trials = search_hyperparameters(training_snapshots, features, train_config, config.search_trials)
    model, summary = train_model(training_snapshots, features, train_config)
    split = time_split(training_snapshots)
    y, X = split.holdout["churned"].to_numpy(), model_input(split.holdout, features)
    probability = model.predict_proba(X)[:, 1]
    context.log.info(f"trained ({summary['best_iteration']} trees, {summary['calibration']} calibration); fitting baselines")
    scores = {"model": probability, **baseline_probabilities(split, features, touchpoint_days, customers, settings.seed)}
    evaluated = {name: classification_metrics(y, p) for name, p in scores.items()}
    metrics = {f"holdout_{k}": v for k, v in evaluated["model"].items()}
    baselines = {name: m for name, m in evaluated.items() if name != "model"}
    fingerprint = data_fingerprint(training_snapshots, features)
    figures = holdout_plots(y, scores)
    run_id, version = log_model_run(
        tracking, model, model_input(split.holdout.head(5), features),
        params={**train_config.params(), **summary, **fingerprint, "horizon_days": settings.horizon_days, "features": len(features)},
        metrics={**metrics, **{f"baseline_{b}_holdout_{k}": v for b, m in baselines.items() for k, v in m.items()}},
        tags={"dagster.run_id": context.run.run_id, "dagster.asset": context.asset_key.to_user_string()},
        figures=figures, documents={"data_fingerprint.json": fingerprint, "features.json": {"features": features}},
    )
    log_child_runs(tracking, run_id, {f"baseline_{b}": ({"baseline": b}, {f"holdout_{k}": v for k, v in m.items()}) for b, m in baselines.items()}, "baseline")
    log_child_runs(tracking, run_id, {f"search_trial_{i}": ({**t["config"].params(), "best_iteration": t["best_iteration"]}, {"validation_logloss": t["validation_logloss"]}) for i, t in enumerate(trials)}, "search_trial")

    gate, previous = config.gate(), champion_version(tracking)
    champion_metrics = _champion_on_holdout(tracking, previous, split.holdout, y)
    if previous is not None and champion_metrics is None:
        context.log.warning(
            f"champion v{previous} cannot be compared on this holdout (it needs features this table lacks, or this "
            "release cannot load it): the challenger is judged on the gate's bounds alone"
        )
    decision = decide(evaluated["model"], champion_metrics, gate)
    if decision.promote:
        promote(tracking, version)
    champion = version if decision.promote else previous
    current = evaluated["model"] if decision.promote else champion_metrics
    context.log.info(
        f"model v{version}: holdout ROC AUC {metrics['holdout_roc_auc']:.3f}, ECE {metrics['holdout_ece']:.3f}; "
        + ("promoted to champion" if decision.promote else f"not promoted ({'; '.join(decision.reasons)}); champion stays v{previous}")
    )
    return dg.Output(
        {
            "run_id": run_id, "version": version, "metrics": metrics, "features": features, "baselines": baselines,
            "promoted": decision.promote, "gate_reasons": decision.reasons, "champion_version": champion,
            "champion_metrics": current, "champion_failures": acceptable(current, gate) if current else ["no champion"],
            "fingerprint": fingerprint, "seed": settings.seed,
        },
        metadata={
            "mlflow_run_id": run_id, "mlflow_run": run_url(tracking, run_id), "model_version": version,
            "promoted": decision.promote, "champion_version": str(champion), "gate": "; ".join(decision.reasons) or "passed",
            **{k: dg.MetadataValue.float(v) for k, v in metrics.items()},
            **{f"baseline_{b}_roc_auc": dg.MetadataValue.float(m["roc_auc"]) for b, m in baselines.items()},
            "best_iteration": summary["best_iteration"], "calibration": summary["calibration"], "seed": settings.seed,
            "data_fingerprint": dg.MetadataValue.json(fingerprint),
            **{f"plot_{name.removesuffix('.png')}": _image(png) for name, png in figures.items()},
        },
    )


def _champion_on_holdout(tracking, version: str | None, holdout: pl.DataFrame, y) -> dict[str, float] | None:
    """The current champion's metrics on this holdout; None if there is none. A champion that needs
    features this table lacks (the feature registry changed), or that this release cannot load (an
    older release's format), cannot be compared, so the challenger is judged alone, on the gate's
    absolute bounds."""
    if version is None:
        return None
    try:
        champion = load_version(tracking, version)
    except IncompatibleModel:
        return None
    if set(champion.feature_names) - set(holdout.columns):
        return None
    return classification_metrics(y, champion.predict_proba(model_input(holdout, champion.feature_names))[:, 1])


@dg.asset_check(asset=churn_model, blocking=True, description="Scoring may only use a champion that passed the promotion gate on the latest holdout.")
def champion_passes_gate(mlflow_tracking: MlflowTracking, churn_model: dict) -> dg.AssetCheckResult:
    alias = champion_version(mlflow_tracking.tracking())
    failures = list(churn_model["champion_failures"])
    if alias != churn_model["champion_version"]:
        failures.append(f"the `champion` alias points at v{alias}, but the gate left v{churn_model['champion_version']} as champion")
    return dg.AssetCheckResult(
        passed=not failures,
        description="; ".join(failures) or f"champion v{alias} passes the gate",
        metadata={"champion_version": str(alias), "challenger_version": churn_model["version"], "challenger_promoted": churn_model["promoted"],
                  "challenger_rejected_because": "; ".join(churn_model["gate_reasons"]) or "-"},
    )
