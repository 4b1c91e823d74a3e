"""Calibration: map the booster's log-odds to probabilities that mean what they say.

The booster is trained on all cutoffs but the last; the mapping is fitted on that last cutoff
(the validation cutoff), which the booster only used to stop early. Platt (a logistic curve on the
margin) and isotonic (a monotone step curve) are compared by cross-validation within the validation
cutoff, and the one with the lower Brier score is refitted on all of it. The mapping is a few
numbers, so it is stored as JSON beside the booster and the booster stays explainable by TreeSHAP.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import cast

import numpy as np
import pandas as pd
import polars as pl
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold

METHODS = ("platt", "isotonic")


@dataclass(frozen=True)
class Calibration:
    """A monotone map from margin (log-odds) to probability."""

    method: str
    slope: float = 1.0  # platt: p = sigmoid(slope * margin + intercept)
    intercept: float = 0.0
    # isotonic: piecewise linear through these points
    knots_x: list[float] = field(default_factory=list)
    knots_y: list[float] = field(default_factory=list)

    def apply(self, margin: np.ndarray) -> np.ndarray:
        margin = np.asarray(margin, dtype=float)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.slope * margin + self.intercept)))
        if self.method == "isotonic":
            return np.interp(margin, self.knots_x, self.knots_y)
        raise ValueError(f"unknown calibration method {self.method!r}; expected one of {METHODS}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        return cls(**json.loads(text))


def fit_calibration(margin: np.ndarray, y: np.ndarray, method: str) -> Calibration:
    margin, y = np.asarray(margin, dtype=float), np.asarray(y, dtype=int)
    if method == "platt":
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y)
        return Calibration("platt", slope=float(lr.coef_[0, 0]), intercept=float(lr.intercept_[0]))
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(margin, y)
        return Calibration(
            "isotonic", knots_x=iso.X_thresholds_.tolist(), knots_y=iso.y_thresholds_.tolist()
        )
    raise ValueError(f"unknown calibration method {method!r}; expected one of {METHODS}")


def choose_calibration(
    margin: np.ndarray, y: np.ndarray, seed: int, folds: int = 5
) -> tuple[Calibration, dict[str, float]]:
    """The method with the lower cross-validated Brier score on the validation cutoff, refitted on
    all of it.

    Returns the calibration and each method's cross-validated Brier score (for the run log).
    """
    margin, y = np.asarray(margin, dtype=float), np.asarray(y, dtype=int)
    if y.sum() < folds or (1 - y).sum() < folds:
        raise ValueError(
            f"the validation cutoff has {int(y.sum())} churners among {y.size}: "
            "too few to calibrate; use more customers"
        )
    scores = {}
    for method in METHODS:
        out_of_fold = np.empty_like(margin)
        for fit_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(
            margin, y
        ):
            out_of_fold[test_idx] = fit_calibration(margin[fit_idx], y[fit_idx], method).apply(
                margin[test_idx]
            )
        scores[method] = float(brier_score_loss(y, out_of_fold))
    best = min(METHODS, key=scores.__getitem__)
    return fit_calibration(margin, y, best), scores


@dataclass
class CalibratedModel:
    """The booster (explained by TreeSHAP, in log-odds) and the calibration (what scoring
    reports)."""

    classifier: xgb.XGBClassifier
    calibration: Calibration

    @property
    def feature_names(self) -> list[str]:
        # never None: the booster is fit on model_input's named pandas columns, and booster.ubj
        # keeps the names
        return list(cast(Sequence[str], self.classifier.get_booster().feature_names))

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        return self.classifier.predict(X, output_margin=True)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, in scikit-learn's (n, 2) layout."""
        p = self.calibration.apply(self.margin(X))
        return np.column_stack([1.0 - p, p])


def model_input(frame: pl.DataFrame, features: list[str]) -> pd.DataFrame:
    """The feature matrix in the model's column order (XGBoost and MLflow want pandas here)."""
    return frame.select(features).to_pandas()
