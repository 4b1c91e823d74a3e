"""One training run (asset `churn_model`): a challenger trained by time, judged on the holdout
against four baselines, tracked in MLflow and registered as `challenger`, then promoted to
`champion` only if the gate passes it against the current champion on the same holdout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Protocol

import numpy as np
import polars as pl

from models.calibration import CalibratedModel, model_input
from models.tracking import (
    IncompatibleModel,
    Tracking,
    champion_version,
    load_version,
    log_child_runs,
    log_model_run,
    promote,
)
from models.training.baselines import baseline_probabilities
from models.training.evaluate import classification_metrics
from models.training.plots import holdout_plots
from models.training.promotion import GateConfig, acceptable, decide
from models.training.train import (
    SearchTrial,
    TrainConfig,
    data_fingerprint,
    search_hyperparameters,
    time_split,
    train_model,
)


class Log(Protocol):
    """Where progress goes: Dagster's `context.log`, or any `logging.Logger`."""

    def info(self, msg: str) -> object: ...

    def warning(self, msg: str) -> object: ...


@dataclass(frozen=True)
class ChurnModel:
    """What a training run produced and decided, as the asset store keeps it (JSON)."""

    run_id: str
    version: str  # the challenger's registered version
    features: list[str]
    metrics: dict[str, float]  # the challenger's, on the holdout: holdout_roc_auc, holdout_ece, ...
    baselines: dict[str, dict[str, float]]  # each baseline's metrics on the same holdout
    promoted: bool
    gate_reasons: list[str]  # why the challenger was not promoted; empty when it was
    champion_version: str | None  # the champion after this run (None: no model passed the gate)
    champion_metrics: dict[str, float] | None  # that champion's metrics on this holdout
    champion_failures: list[str]  # what makes that champion unfit to score (empty: fit)
    fingerprint: dict[str, str | int]
    seed: int
    best_iteration: int
    calibration: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChurnModel:
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ValueError(
                f"the stored churn_model lacks {missing}: an older release stored it; train again "
                "(the weekly_retraining job, or `make run`) before scoring"
            )
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class Challenger:
    model: CalibratedModel
    config: TrainConfig
    summary: dict[str, Any]
    trials: list[SearchTrial]


def fit_challenger(
    snapshots: pl.DataFrame,
    features: list[str],
    config: TrainConfig,
    seed: int,
    search_trials: int,
    log: Log,
) -> Challenger:
    """The model to judge: trained with `config`, or with the best of `search_trials` draws on the
    validation cutoff."""
    trials: list[SearchTrial] = []
    if search_trials > 0:
        log.info(f"searching {search_trials} hyperparameter draws on the validation cutoff")
        config, trials = search_hyperparameters(snapshots, features, config, search_trials, seed)
    model, summary = train_model(snapshots, features, config, seed)
    log.info(
        f"trained ({summary['best_iteration']} trees, {summary['calibration']} calibration); "
        "fitting baselines"
    )
    return Challenger(model, config, summary, trials)


def champion_on_holdout(
    tracking: Tracking, version: str | None, holdout: pl.DataFrame, y: np.ndarray
) -> dict[str, float] | None:
    """The current champion's metrics on this holdout; None if there is none. A champion that
    needs features this table lacks (the feature registry changed), or that this release cannot
    load (an older release's format), cannot be compared, so the challenger is judged alone, on
    the gate's absolute bounds."""
    if version is None:
        return None
    try:
        champion = load_version(tracking, version)
    except IncompatibleModel:
        return None
    if set(champion.feature_names) - set(holdout.columns):
        return None
    probability = champion.predict_proba(model_input(holdout, champion.feature_names))[:, 1]
    return classification_metrics(y, probability)


def train_and_register(
    snapshots: pl.DataFrame,
    features: list[str],
    days: pl.DataFrame,
    customers: pl.DataFrame,
    *,
    config: TrainConfig,
    gate: GateConfig,
    seed: int,
    search_trials: int,
    tracking: Tracking,
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    log: Log,
) -> tuple[ChurnModel, dict[str, bytes]]:
    """Train, judge, log and register a challenger, and let the gate decide on promotion.

    `params` and `tags` go to the MLflow run beside the model's own (the horizon; the Dagster run
    and asset). Returns the result and the holdout plots (PNG bytes by file name)."""
    challenger = fit_challenger(snapshots, features, config, seed, search_trials, log)
    split = time_split(snapshots)
    y = split.holdout["churned"].to_numpy()
    probability = challenger.model.predict_proba(model_input(split.holdout, features))[:, 1]
    scores = {
        "model": probability,
        **baseline_probabilities(split, features, days, customers, seed),
    }
    evaluated = {name: classification_metrics(y, p) for name, p in scores.items()}
    metrics = {f"holdout_{k}": v for k, v in evaluated["model"].items()}
    baselines = {name: m for name, m in evaluated.items() if name != "model"}
    fingerprint = data_fingerprint(snapshots, features)
    figures = holdout_plots(y, scores)
    baseline_metrics = {
        f"baseline_{b}_holdout_{k}": v for b, m in baselines.items() for k, v in m.items()
    }
    logged = {
        **challenger.config.params(),
        "seed": seed,
        **challenger.summary,
        **fingerprint,
        **params,
        "features": len(features),
    }
    run_id, version = log_model_run(
        tracking,
        challenger.model,
        model_input(split.holdout.head(5), features),
        params=logged,
        metrics={**metrics, **baseline_metrics},
        tags=dict(tags),
        figures=figures,
        documents={"data_fingerprint.json": fingerprint, "features.json": {"features": features}},
    )
    baseline_runs = {
        f"baseline_{b}": ({"baseline": b}, {f"holdout_{k}": v for k, v in m.items()})
        for b, m in baselines.items()
    }
    log_child_runs(tracking, run_id, baseline_runs, "baseline")
    trial_runs = {
        f"search_trial_{i}": (
            {**t.config.params(), "seed": seed, "best_iteration": t.best_iteration},
            {"validation_logloss": t.validation_logloss},
        )
        for i, t in enumerate(challenger.trials)
    }
    log_child_runs(tracking, run_id, trial_runs, "search_trial")

    previous = champion_version(tracking)
    champion_metrics = champion_on_holdout(tracking, previous, split.holdout, y)
    if previous is not None and champion_metrics is None:
        log.warning(
            f"champion v{previous} cannot be compared on this holdout (it needs features this "
            "table lacks, or this release cannot load it): the challenger is judged on the gate's "
            "bounds alone"
        )
    decision = decide(evaluated["model"], champion_metrics, gate)
    if decision.promote:
        promote(tracking, version)
    current = evaluated["model"] if decision.promote else champion_metrics
    outcome = (
        "promoted to champion"
        if decision.promote
        else f"not promoted ({'; '.join(decision.reasons)}); champion stays v{previous}"
    )
    log.info(
        f"model v{version}: holdout ROC AUC {metrics['holdout_roc_auc']:.3f}, "
        f"ECE {metrics['holdout_ece']:.3f}; {outcome}"
    )
    result = ChurnModel(
        run_id=run_id,
        version=version,
        features=features,
        metrics=metrics,
        baselines=baselines,
        promoted=decision.promote,
        gate_reasons=decision.reasons,
        champion_version=version if decision.promote else previous,
        champion_metrics=current,
        champion_failures=acceptable(current, gate) if current else ["no champion"],
        fingerprint=fingerprint,
        seed=seed,
        best_iteration=int(challenger.summary["best_iteration"]),
        calibration=str(challenger.summary["calibration"]),
    )
    return result, figures
