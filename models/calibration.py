"""The model that scores, and the map from its log-odds to probabilities that mean what they say.

Which map (none, Platt: a logistic curve on the margin, isotonic: a monotone step curve) is chosen
by the backtest, as the one whose expected calibration error holds best across the backtest's
cutoffs (`models.training.backtest`): a map fitted to one cutoff's churn level is stale when the
level moves. The map is a few numbers, stored as JSON beside the booster, so the booster stays
explainable by TreeSHAP.
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

from models.linear_base import LinearBase

# "none" is the booster's own probability: with a linear base it often holds across cutoffs better
# than a map fitted to one cutoff's churn level
METHODS = ("none", "platt", "isotonic")


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
        if self.method == "none":
            return 1.0 / (1.0 + np.exp(-margin))
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
    if method == "none":
        return Calibration("none")
    if y.min() == y.max():
        raise ValueError(
            f"calibration needs churners and stayers, the cutoff has only {int(y[0])}s: "
            "use more customers"
        )
    if method == "platt":
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y)
        return Calibration("platt", slope=float(lr.coef_[0, 0]), intercept=float(lr.intercept_[0]))
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(margin, y)
        return Calibration(
            "isotonic", knots_x=iso.X_thresholds_.tolist(), knots_y=iso.y_thresholds_.tolist()
        )
    raise ValueError(f"unknown calibration method {method!r}; expected one of {METHODS}")


@dataclass
class CalibratedModel:
    """The booster (explained by TreeSHAP, in log-odds), the linear base it starts from if any
    (`models.linear_base`, explained exactly), and the calibration (what scoring reports)."""

    classifier: xgb.XGBClassifier
    calibration: Calibration
    linear: LinearBase | None = None

    @property
    def feature_names(self) -> list[str]:
        # never None: the booster is fit on model_input's named pandas columns, and booster.ubj
        # keeps the names
        return list(cast(Sequence[str], self.classifier.get_booster().feature_names))

    def base_margin(self, X: pd.DataFrame) -> np.ndarray | None:
        return None if self.linear is None else self.linear.margin(X)

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        return self.classifier.predict(X, output_margin=True, base_margin=self.base_margin(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, in scikit-learn's (n, 2) layout."""
        p = self.calibration.apply(self.margin(X))
        return np.column_stack([1.0 - p, p])


def model_input(frame: pl.DataFrame, features: list[str]) -> pd.DataFrame:
    """The feature matrix in the model's column order (XGBoost and MLflow want pandas here)."""
    return frame.select(features).to_pandas()
