"""Train the churn classifier by time: fit on the earlier cutoffs, stop early and calibrate on the
latest training cutoff (validation), and never look at the holdout cutoff.

Class imbalance (about 10% churn) is left to the log-loss objective by default: reweighting the
churners (`scale_pos_weight` > 1) inflates every probability, and although calibration would pull
them back, the unweighted fit already ranks as well and keeps the raw margins meaningful for SHAP.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import xgboost as xgb
from pydantic import Field
from scipy.stats import loguniform, randint, uniform
from sklearn.metrics import log_loss
from sklearn.model_selection import ParameterSampler

from models.calibration import CalibratedModel, choose_calibration, model_input
from models.training.config_part import ConfigPart


class TrainConfig(ConfigPart):
    """XGBoost hyperparameters; the defaults are what the demo world was tuned with. A pydantic
    model so the Dagster config of the model asset can inherit these fields rather than repeat
    them."""

    n_estimators: int = Field(
        default=1000, description="Most trees; early stopping on the validation cutoff picks fewer."
    )
    max_depth: int = Field(default=3, description="Tree depth.")
    learning_rate: float = Field(default=0.1, description="Boosting step size.")
    subsample: float = Field(default=0.8, description="Share of rows per tree.")
    colsample_bytree: float = Field(default=0.8, description="Share of features per tree.")
    min_child_weight: float = Field(
        default=20.0, description="Least hessian per leaf; larger is smoother."
    )
    reg_lambda: float = Field(default=1.0, description="L2 penalty on leaf weights.")
    scale_pos_weight: float = Field(
        default=1.0,
        description="Weight of churners; calibration corrects the probabilities if > 1.",
    )
    early_stopping_rounds: int = Field(
        default=50, description="Rounds without a better validation log-loss before stopping."
    )

    def params(self) -> dict[str, Any]:
        return self.model_dump()


# the bounded space of the optional search: each draw stays a small, regularised model
SEARCH_SPACE = {
    "max_depth": randint(2, 7),
    "learning_rate": loguniform(0.01, 0.15),
    "min_child_weight": loguniform(1.0, 100.0),
    "subsample": uniform(0.6, 0.4),
    "colsample_bytree": uniform(0.5, 0.5),
    "reg_lambda": loguniform(0.1, 10.0),
}


@dataclass(frozen=True)
class TimeSplit:
    fit: pl.DataFrame
    validation: pl.DataFrame
    holdout: pl.DataFrame


@dataclass(frozen=True)
class SearchTrial:
    """One draw of the hyperparameter search and how it did on the validation cutoff."""

    config: TrainConfig
    validation_logloss: float
    best_iteration: int


def time_split(snapshots: pl.DataFrame | pl.LazyFrame) -> TimeSplit:
    """Fit on training cutoffs but the last, validate on the last training cutoff, hold out the
    holdout.

    Each part is filtered straight from the snapshots (a lazy scan of them is read part by part), so
    the parts never sit in memory next to a second copy of the training rows."""
    snapshots = snapshots.lazy()
    training = pl.col("split") == "train"
    found = snapshots.select(pl.col("cutoff").filter(training).unique()).collect()
    cutoffs = sorted(found["cutoff"].to_list())
    if len(cutoffs) < 2:
        raise ValueError(
            "training needs at least two training cutoffs: one to fit, a later one to stop early "
            "and calibrate on; raise train_cutoffs or add history"
        )
    holdout = snapshots.filter(pl.col("split") == "holdout").collect()
    if holdout.is_empty():
        raise ValueError(
            "the snapshots have no holdout rows (split == 'holdout'): nothing to judge the model on"
        )
    fit = snapshots.filter(training & (pl.col("cutoff") < cutoffs[-1])).collect()
    validation = snapshots.filter(training & (pl.col("cutoff") == cutoffs[-1])).collect()
    return TimeSplit(fit, validation, holdout)


def fit_booster(
    split: TimeSplit, features: list[str], config: TrainConfig, seed: int
) -> xgb.XGBClassifier:
    """XGBoost on the fit cutoffs, early-stopped on the validation cutoff's log-loss."""
    model = xgb.XGBClassifier(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        learning_rate=config.learning_rate,
        subsample=config.subsample,
        colsample_bytree=config.colsample_bytree,
        min_child_weight=config.min_child_weight,
        reg_lambda=config.reg_lambda,
        scale_pos_weight=config.scale_pos_weight,
        early_stopping_rounds=config.early_stopping_rounds,
        random_state=seed,
        eval_metric="logloss",
        tree_method="hist",
        n_jobs=0,
    )
    validation = (
        model_input(split.validation, features),
        split.validation["churned"].to_numpy(),
    )
    model.fit(
        model_input(split.fit, features),
        split.fit["churned"].to_numpy(),
        eval_set=[validation],
        verbose=False,
    )
    return model


def train_model(
    snapshots: pl.DataFrame | pl.LazyFrame, features: list[str], config: TrainConfig, seed: int
) -> tuple[CalibratedModel, dict[str, Any]]:
    """Fit the booster, then calibrate it on the validation cutoff.

    Returns the calibrated model and a summary of what it was fit on, for the MLflow run. Pass a
    lazy scan of the snapshots to keep only the split parts in memory (a million customers' worth).
    """
    split = time_split(snapshots)
    booster = fit_booster(split, features, config, seed)
    margin = booster.predict(model_input(split.validation, features), output_margin=True)
    calibration, brier_by_method = choose_calibration(
        margin, split.validation["churned"].to_numpy(), seed
    )
    cutoffs = sorted(split.fit["cutoff"].unique().to_list())
    summary = {
        "fit_rows": split.fit.height,
        "validation_rows": split.validation.height,
        "fit_cutoffs": ",".join(f"{c:%Y-%m-%d}" for c in cutoffs),
        "validation_cutoff": f"{split.validation['cutoff'][0]:%Y-%m-%d}",
        "best_iteration": int(booster.best_iteration),
        "train_churn_rate": float(np.mean(split.fit["churned"].to_numpy())),
        "calibration": calibration.method,
        **{f"calibration_cv_brier_{m}": b for m, b in brier_by_method.items()},
    }
    return CalibratedModel(booster, calibration), summary


def search_hyperparameters(
    snapshots: pl.DataFrame, features: list[str], base: TrainConfig, trials: int, seed: int
) -> tuple[TrainConfig, list[SearchTrial]]:
    """A bounded random search (seeded by `seed`): `trials` draws from SEARCH_SPACE, each judged by
    its early-stopped log-loss on the validation cutoff. The holdout is never consulted.

    Returns the best config and every trial."""
    if trials < 1:
        raise ValueError(f"search_trials must be at least 1, got {trials}")
    split = time_split(snapshots)
    X_val, y_val = model_input(split.validation, features), split.validation["churned"].to_numpy()
    records = []
    for draw in ParameterSampler(SEARCH_SPACE, n_iter=trials, random_state=seed):
        drawn = {k: (int(v) if k == "max_depth" else float(v)) for k, v in draw.items()}
        config = base.model_copy(update=drawn)
        booster = fit_booster(split, features, config, seed)
        loss = float(log_loss(y_val, booster.predict_proba(X_val)[:, 1]))
        records.append(SearchTrial(config, loss, int(booster.best_iteration)))
    best = min(records, key=lambda r: r.validation_logloss)
    return best.config, records


def data_fingerprint(snapshots: pl.DataFrame, features: list[str]) -> dict[str, str | int]:
    """What the model was trained and judged on, so a rerun can be checked to see the same data:
    rows per split, the cutoffs, and hashes of the feature schema and of the labels."""
    schema = ";".join(f"{name}:{snapshots.schema[name]}" for name in features)
    labels = snapshots.sort("cutoff", "customer_id").select("cutoff", "customer_id", "churned")
    split = time_split(snapshots)
    cutoffs = sorted(snapshots["cutoff"].unique().to_list())
    return {
        "rows_fit": split.fit.height,
        "rows_validation": split.validation.height,
        "rows_holdout": split.holdout.height,
        "cutoffs": ",".join(f"{c:%Y-%m-%d}" for c in cutoffs),
        "holdout_cutoff": f"{split.holdout['cutoff'][0]:%Y-%m-%d}",
        "feature_count": len(features),
        "feature_schema_sha256": hashlib.sha256(schema.encode()).hexdigest(),
        "labels_sha256": hashlib.sha256(labels.write_csv().encode()).hexdigest(),
    }
