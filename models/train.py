"""Train the churn classifier on earlier cutoffs; the holdout cutoff is never seen in training."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import polars as pl
import xgboost as xgb


@dataclass(frozen=True)
class TrainConfig:
    n_estimators: int = 1000
    max_depth: int = 3
    learning_rate: float = 0.03
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 20.0
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 50
    seed: int = 42

    def params(self) -> dict:
        return asdict(self)


def model_input(frame: pl.DataFrame, features: list[str]) -> pd.DataFrame:
    """The feature matrix in the model's column order (XGBoost and MLflow want pandas here)."""
    return frame.select(features).to_pandas()


def train_model(snapshots: pl.DataFrame, features: list[str], config: TrainConfig) -> tuple[xgb.XGBClassifier, dict]:
    """Fit on the training cutoffs but the last; stop early on the last (a later period).

    Returns the model and a summary of what it was fit on, for the MLflow run.
    """
    train = snapshots.filter(pl.col("split") == "train")
    cutoffs = sorted(train["cutoff"].unique().to_list())
    if len(cutoffs) < 2:
        raise ValueError("training needs at least two training cutoffs: one to fit, a later one to stop early on")
    fit, early = train.filter(pl.col("cutoff") < cutoffs[-1]), train.filter(pl.col("cutoff") == cutoffs[-1])
    model = xgb.XGBClassifier(
        n_estimators=config.n_estimators,
        max_depth=config.max_depth,
        learning_rate=config.learning_rate,
        subsample=config.subsample,
        colsample_bytree=config.colsample_bytree,
        min_child_weight=config.min_child_weight,
        reg_lambda=config.reg_lambda,
        early_stopping_rounds=config.early_stopping_rounds,
        random_state=config.seed,
        eval_metric="logloss",
        tree_method="hist",
        n_jobs=0,
    )
    model.fit(
        model_input(fit, features), fit["churned"].to_numpy(),
        eval_set=[(model_input(early, features), early["churned"].to_numpy())], verbose=False,
    )
    summary = {
        "fit_rows": fit.height,
        "early_stopping_rows": early.height,
        "fit_cutoffs": ",".join(f"{c:%Y-%m-%d}" for c in cutoffs[:-1]),
        "early_stopping_cutoff": f"{cutoffs[-1]:%Y-%m-%d}",
        "best_iteration": int(model.best_iteration),
        "train_churn_rate": float(np.mean(fit["churned"].to_numpy())),
    }
    return model, summary
