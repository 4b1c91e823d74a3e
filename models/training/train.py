"""Train the churn classifier by time: fit on earlier cutoffs, stop early on a later one, and never
look at the cutoff it is judged on (the backtest's folds, `models.training.backtest`); then refit
on every labelled cutoff with what the backtest chose.

Class imbalance (about 10% churn) is left to the log-loss objective by default: reweighting the
churners (`scale_pos_weight` > 1) inflates every probability, and although calibration would pull
them back, the unweighted fit already ranks as well and keeps the raw margins meaningful for SHAP.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import xgboost as xgb
from pydantic import Field
from scipy.stats import loguniform, randint, uniform
from sklearn.metrics import log_loss
from sklearn.model_selection import ParameterSampler

from models.calibration import CalibratedModel, Calibration, model_input
from models.linear_base import LinearBase, fit_linear_base
from models.training.config_part import ConfigPart

if TYPE_CHECKING:
    from distributed import Client


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


# the model's forms: XGBoost alone, or XGBoost boosting from a linear base (`models.linear_base`),
# which carries trends past the training cutoffs that trees cannot; the backtest chooses
FORMS = ("xgboost", "linear+xgboost")


@dataclass(frozen=True)
class TimeSplit:
    """Rows to fit on, the later cutoff to stop early and calibrate on, and the cutoff to judge."""

    fit: pl.DataFrame
    validation: pl.DataFrame
    holdout: pl.DataFrame


@dataclass(frozen=True)
class SearchTrial:
    """One draw of the hyperparameter search and how it did on the validation cutoff."""

    config: TrainConfig
    validation_logloss: float
    best_iteration: int


def time_split(
    snapshots: pl.DataFrame | pl.LazyFrame, training: Sequence[datetime], judged: datetime | None
) -> TimeSplit:
    """Fit on the `training` cutoffs but the last, validate on the last, judge on `judged` (none:
    an empty holdout).

    Each part is filtered straight from the snapshots (a lazy scan of them is read part by part), so
    the parts never sit in memory next to a second copy of the training rows."""
    if len(training) < 2:
        raise ValueError(
            "training needs at least two cutoffs: one to fit, a later one to stop early and "
            "calibrate on; add history or lower horizon_days"
        )
    training = sorted(training)
    if judged is not None and judged <= training[-1]:
        raise ValueError(f"the judged cutoff {judged:%Y-%m-%d} is not after the training cutoffs")
    lazy = snapshots.lazy()
    cutoff = pl.col("cutoff")
    fit = lazy.filter(cutoff.is_in(training[:-1])).collect()
    validation = lazy.filter(cutoff == training[-1]).collect()
    holdout = lazy.filter(cutoff == judged).collect() if judged else lazy.head(0).collect()
    return TimeSplit(fit, validation, holdout)


class _Classifier(xgb.XGBClassifier):
    """XGBClassifier whose evaluation set is a plain DMatrix. XGBoost's scikit-learn interface
    makes it a QuantileDMatrix, whose predictions are not cached between rounds
    (dmlc/xgboost#10793, open): early stopping then re-predicted every tree each round, three
    quarters of the training time on 50,000 validation rows. The trees are the same."""

    def _create_dmatrix(self, ref: xgb.DMatrix | None, **kwargs: Any) -> xgb.DMatrix:
        if ref is None:  # the training rows
            return super()._create_dmatrix(ref, **kwargs)
        return xgb.DMatrix(**kwargs, nthread=self.n_jobs)


def _classifier(config: TrainConfig, seed: int, trees: int, early_stopping: bool):
    return _Classifier(
        n_estimators=trees,
        max_depth=config.max_depth,
        learning_rate=config.learning_rate,
        subsample=config.subsample,
        colsample_bytree=config.colsample_bytree,
        min_child_weight=config.min_child_weight,
        reg_lambda=config.reg_lambda,
        scale_pos_weight=config.scale_pos_weight,
        early_stopping_rounds=config.early_stopping_rounds if early_stopping else None,
        random_state=seed,
        eval_metric="logloss",
        tree_method="hist",
        n_jobs=0,
    )


def linear_base_for(
    frame: pl.DataFrame,
    features: list[str],
    form: str,
    seed: int,
    fitted: LinearBase | None = None,
) -> LinearBase | None:
    """The linear base of the `linear+xgboost` form, fitted on `frame` (or `fitted`, when it
    already was); None for `xgboost`."""
    if form not in FORMS:
        raise ValueError(f"unknown model form {form!r}; expected one of {FORMS}")
    if form == "xgboost":
        return None
    return fit_linear(frame, features, seed) if fitted is None else fitted


def fit_linear(frame: pl.DataFrame, features: list[str], seed: int) -> LinearBase:
    """A linear base (`models.linear_base`) fitted on `frame`'s features and labels."""
    return fit_linear_base(model_input(frame, features), frame["churned"].to_numpy(), seed)


def fit_booster(
    split: TimeSplit,
    features: list[str],
    config: TrainConfig,
    seed: int,
    form: str = "xgboost",
    client: Client | None = None,
    linear_base: LinearBase | None = None,
) -> CalibratedModel:
    """The model (uncalibrated) on the fit cutoffs, early-stopped on the validation cutoff's
    log-loss; the linear base, if the form has one, fitted on the fit cutoffs too, or
    `linear_base` when it was (the backtest's logistic baseline is the same fit).

    In this process by default; on the Dask cluster of `client` when one is given
    (`models.training.dask_fit`), with the same settings and the same kind of result."""
    linear = linear_base_for(split.fit, features, form, seed, linear_base)

    def base(frame: pl.DataFrame) -> np.ndarray | None:
        return None if linear is None else linear.margin(model_input(frame, features))

    model = _classifier(config, seed, config.n_estimators, early_stopping=True)
    if client is not None:
        from models.training.dask_fit import fit_on_dask  # dask is imported only when used

        fitted = fit_on_dask(
            client,
            model,
            split.fit,
            features,
            base(split.fit),
            split.validation,
            base(split.validation),
        )
        return CalibratedModel(fitted, Calibration("none"), linear)
    model.fit(
        model_input(split.fit, features),
        split.fit["churned"].to_numpy(),
        base_margin=base(split.fit),
        eval_set=[(model_input(split.validation, features), split.validation["churned"])],
        base_margin_eval_set=None if linear is None else [base(split.validation)],
        verbose=False,
    )
    return CalibratedModel(model, Calibration("none"), linear)


def fit_on_all(
    snapshots: pl.DataFrame | pl.LazyFrame,
    features: list[str],
    config: TrainConfig,
    seed: int,
    form: str,
    trees: int,
    calibration: Calibration,
    client: Client | None = None,
) -> CalibratedModel:
    """The model that scores: refit on every labelled cutoff with the backtest's choices (form,
    trees, calibration), so the newest cutoffs count too and no cutoff is held back. On the Dask
    cluster of `client` when one is given, as `fit_booster`."""
    frame = snapshots.lazy().collect()
    linear = linear_base_for(frame, features, form, seed)
    model = _classifier(config, seed, trees, early_stopping=False)
    if client is not None:
        from models.training.dask_fit import fit_on_dask

        margin = None if linear is None else linear.margin(model_input(frame, features))
        fitted = fit_on_dask(client, model, frame, features, margin)
        return CalibratedModel(fitted, calibration, linear)
    X = model_input(frame, features)
    model.fit(
        X, frame["churned"].to_numpy(), base_margin=None if linear is None else linear.margin(X)
    )
    return CalibratedModel(model, calibration, linear)


def search_hyperparameters(
    split: TimeSplit,
    features: list[str],
    base: TrainConfig,
    trials: int,
    seed: int,
    client: Client | None = None,
) -> tuple[TrainConfig, list[SearchTrial]]:
    """A bounded random search (seeded by `seed`): `trials` draws from SEARCH_SPACE, each judged by
    its early-stopped log-loss on the validation cutoff. The judged cutoff is never consulted.
    Each draw trains on `client`'s cluster when one is given (`fit_booster`).

    Returns the best config and every trial."""
    if trials < 1:
        raise ValueError(f"search_trials must be at least 1, got {trials}")
    X_val, y_val = model_input(split.validation, features), split.validation["churned"].to_numpy()
    records = []
    for draw in ParameterSampler(SEARCH_SPACE, n_iter=trials, random_state=seed):
        drawn = {k: (int(v) if k == "max_depth" else float(v)) for k, v in draw.items()}
        config = base.model_copy(update=drawn)
        model = fit_booster(split, features, config, seed, client=client)
        loss = float(log_loss(y_val, model.predict_proba(X_val)[:, 1]))
        records.append(SearchTrial(config, loss, int(model.classifier.best_iteration)))
    best = min(records, key=lambda r: r.validation_logloss)
    return best.config, records


def data_fingerprint(snapshots: pl.DataFrame, features: list[str]) -> dict[str, str | int]:
    """What the model was trained on, so a rerun can be checked to see the same data: rows, the
    cutoffs, and hashes of the feature schema and of the labels."""
    schema = ";".join(f"{name}:{snapshots.schema[name]}" for name in features)
    labels = snapshots.sort("cutoff", "customer_id").select("cutoff", "customer_id", "churned")
    cutoffs = sorted(snapshots["cutoff"].unique().to_list())
    return {
        "rows": snapshots.height,
        "cutoffs": ",".join(f"{c:%Y-%m-%d}" for c in cutoffs),
        "latest_cutoff": f"{cutoffs[-1]:%Y-%m-%d}",
        "feature_count": len(features),
        "feature_schema_sha256": hashlib.sha256(schema.encode()).hexdigest(),
        "labels_sha256": hashlib.sha256(labels.write_csv().encode()).hexdigest(),
    }
