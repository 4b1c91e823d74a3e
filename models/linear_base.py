"""A logistic regression the boosted trees start from (XGBoost's `base_margin`).

Trees cannot extrapolate: a customer older, or longer quiet, than anyone at the training cutoffs
gets the risk of the oldest one seen. A business's customers age past every training cutoff (a
cohort's tenure grows, its churn rate with it), so a tree model's probabilities fall behind when
it scores. A linear model on the features' signed logarithms carries such trends on; the trees
then only correct it where the relationship bends. Both parts are explained exactly: the linear
part's contribution of a feature is its coefficient times its standardized value (zero on average
over the training rows, as TreeSHAP's are), and the trees' is TreeSHAP.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

# rows the regression is fitted on at most: its coefficients are stable long before, and
# millions of training rows would cost minutes and gigabytes for nothing
FIT_ROWS = 200_000
MIN_SCALE = 1e-2  # on the signed-log scale
MAX_Z = 8.0  # standardized inputs beyond this many standard deviations count as this many


def _standardize(inputs: np.ndarray, means: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """(input - mean) / scale, clipped to MAX_Z; 0 for an input left out (scale 0)."""
    z = np.divide(inputs - means, scales, out=np.zeros_like(inputs), where=scales > 0)
    return np.clip(z, -MAX_Z, MAX_Z)


def signed_log(x: np.ndarray) -> np.ndarray:
    """Counts, durations and values are heavy-tailed; a linear model needs them on a log scale."""
    return np.sign(x) * np.log1p(np.abs(x))


@dataclass(frozen=True)
class LinearBase:
    features: list[str]
    medians: list[float]  # what a missing value is imputed with, per feature
    indicators: list[int]  # the features (by position) that get a was-missing indicator
    means: list[float]  # of the transformed inputs (features, then indicators), over training
    scales: list[float]
    coef: list[float]
    intercept: float

    def standardized(self, X: pd.DataFrame) -> np.ndarray:
        raw = X[self.features].to_numpy(dtype=np.float64)
        missing = np.isnan(raw)
        filled = np.where(missing, np.asarray(self.medians), raw)
        inputs = np.hstack([signed_log(filled), missing[:, self.indicators].astype(np.float64)])
        return _standardize(inputs, np.asarray(self.means), np.asarray(self.scales))

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        return self.standardized(X) @ np.asarray(self.coef) + self.intercept

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Per row and feature, its part of the margin beyond the intercept (its indicator's part
        included): the rows' sums plus the intercept are the margins."""
        terms = self.standardized(X) * np.asarray(self.coef)
        n_features = len(self.features)
        contributions = terms[:, :n_features].copy()
        contributions[:, self.indicators] += terms[:, n_features:]
        return contributions

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearBase:
        return cls(**data)


def fit_linear_base(X: pd.DataFrame, y: np.ndarray, seed: int) -> LinearBase:
    """Logistic regression (L2, C = 1) on the standardized signed logs of the features, missing
    values imputed with the median and flagged."""
    if len(X) > FIT_ROWS:
        rows = np.random.default_rng(seed).choice(len(X), FIT_ROWS, replace=False)
        X, y = X.iloc[rows], np.asarray(y)[rows]
    raw = X.to_numpy(dtype=np.float64)
    missing = np.isnan(raw)
    with warnings.catch_warnings():  # a feature missing on every row has no median: impute 0
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nan_to_num(np.nanmedian(raw, axis=0))
    indicators = [int(j) for j in np.flatnonzero(missing.any(axis=0))]
    inputs = np.hstack(
        [signed_log(np.where(missing, medians, raw)), missing[:, indicators].astype(np.float64)]
    )
    means, scales = inputs.mean(axis=0), inputs.std(axis=0)
    # an input (nearly) constant in training says nothing, and dividing by its sliver of spread
    # would blow up any row where it differs: it is left out (standardized to 0)
    scales = np.where(scales > MIN_SCALE, scales, 0.0)
    model = LogisticRegression(C=1.0, max_iter=5000, random_state=seed)
    model.fit(_standardize(inputs, means, scales), np.asarray(y))
    return LinearBase(
        features=list(X.columns),
        medians=medians.tolist(),
        indicators=indicators,
        means=means.tolist(),
        scales=scales.tolist(),
        coef=np.asarray(model.coef_)[0].tolist(),
        intercept=float(np.asarray(model.intercept_)[0]),
    )
