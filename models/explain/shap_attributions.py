"""Scores and exact TreeSHAP attributions per customer (asset `shap_attributions`), from the
champion.

Values are exact TreeSHAP contributions in log-odds from XGBoost itself (`pred_contribs`); shap's
TreeExplainer calls the same routine for XGBoost, so going direct saves a dependency hop, not
accuracy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import xgboost as xgb

from models.calibration import CalibratedModel, model_input

# rows per batch when scoring and explaining: big enough that per-call overhead is negligible
# (measured flat from 20k rows up), small enough that the pandas copy and XGBoost's contribution
# buffer (rows x (features + 1) floats) stay a few hundred MB however many customers there are
SCORE_BATCH_ROWS = 50_000


def shap_values(
    model: xgb.XGBClassifier, X: pd.DataFrame, base_margin: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(per-feature contributions n x f, base value n) in log-odds, using the trees `predict`
    uses; with a `base_margin`, the base value holds it."""
    best = getattr(model, "best_iteration", None)
    iteration_range = (0, best + 1) if best is not None else (0, 0)
    contribs = model.get_booster().predict(
        xgb.DMatrix(X, base_margin=base_margin), pred_contribs=True, iteration_range=iteration_range
    )
    return contribs[:, :-1], contribs[:, -1]


def explain(model: CalibratedModel, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(per-feature contributions n x f, base value n) of the whole model in log-odds: TreeSHAP
    of the trees plus, for the linear+xgboost form, each feature's exact part of the linear base
    (`models.linear_base`); a row's contributions and base value sum to its margin."""
    base_margin = model.base_margin(X)
    trees, base = shap_values(model.classifier, X, base_margin)
    if model.linear is None:
        return trees, base
    linear = model.linear.contributions(X)
    return trees + linear.astype(trees.dtype), base - linear.sum(axis=1).astype(base.dtype)


def score_and_explain(
    model: CalibratedModel,
    frame: pl.DataFrame,
    features: list[str],
    batch_rows: int = SCORE_BATCH_ROWS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibrated churn probability n, exact SHAP values n x f, base value n), batch by batch.

    Only one batch is ever converted to pandas and handed to XGBoost, so the memory on top of the
    results stays flat as customers grow; the values are the same as in one call.
    """
    n = frame.height
    probability = np.empty(n, dtype=np.float64)
    values = np.empty((n, len(features)), dtype=np.float32)
    base = np.empty(n, dtype=np.float32)
    for start in range(0, n, batch_rows):
        X = model_input(frame.slice(start, batch_rows), features)
        end = start + len(X)
        probability[start:end] = model.predict_proba(X)[:, 1]
        values[start:end], base[start:end] = explain(model, X)
    return probability, values, base
