"""SHAP attributions, rolled up from features to touchpoints and journey phases.

Values are exact TreeSHAP contributions in log-odds from XGBoost itself (`pred_contribs`); shap's
TreeExplainer calls the same routine for XGBoost, so going direct saves a dependency hop, not accuracy.
Within a touchpoint, feature contributions add up, so a touchpoint's SHAP is the sum of its features'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import polars as pl
import xgboost as xgb

from features.catalogue import PHASE_LABELS, Catalogue
from features.registry import FeatureDef
from models.calibration import CalibratedModel
from models.playbook import Playbook
from models.train import model_input

TOP_REASONS = 3
# A touchpoint is a reason only when it raises the customer's churn log-odds by at least this much:
# ln(1.2), odds up by a fifth. Any positive SHAP is not enough: on the demo world most of it is noise
# (median 0.006, 90th percentile 0.08 of the positive touchpoint values), and touchpoints the
# simulator keeps out of the hazard reach 0.12 at the 99th percentile and 0.17 at the 99.9th, while
# the planted drivers' median positive contribution is 1.1.
MIN_REASON_LOG_ODDS = float(np.log(1.2))


def shap_values(model: xgb.XGBClassifier, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(per-feature contributions n x f, base value n) in log-odds, using the trees `predict` uses."""
    best = getattr(model, "best_iteration", None)
    iteration_range = (0, best + 1) if best is not None else (0, 0)
    contribs = model.get_booster().predict(xgb.DMatrix(X), pred_contribs=True, iteration_range=iteration_range)
    return contribs[:, :-1], contribs[:, -1]


# rows per batch when scoring and explaining: big enough that per-call overhead is negligible
# (measured flat from 20k rows up), small enough that the pandas copy and XGBoost's contribution
# buffer (rows x (features + 1) floats) stay a few hundred MB however many customers there are
SCORE_BATCH_ROWS = 50_000


def score_and_explain(model: CalibratedModel, frame: pl.DataFrame, features: list[str], batch_rows: int = SCORE_BATCH_ROWS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibrated churn probability n, exact TreeSHAP values n x f, base value n), batch by batch.

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
        values[start:end], base[start:end] = shap_values(model.classifier, X)
    return probability, values, base


@dataclass(frozen=True)
class Attribution:
    customer_ids: list[str]
    features: list[str]
    feature_shap: np.ndarray  # n x features
    touchpoints: list[str]
    touchpoint_shap: np.ndarray  # n x touchpoints
    feature_touchpoint: np.ndarray  # index of each feature's touchpoint


def attribute(customer_ids: list[str], features: list[str], feature_shap: np.ndarray, registry: dict[str, FeatureDef]) -> Attribution:
    touchpoints = list(dict.fromkeys(registry[f].touchpoint for f in features))
    owner = np.array([touchpoints.index(registry[f].touchpoint) for f in features])
    membership = np.zeros((len(features), len(touchpoints)))
    membership[np.arange(len(features)), owner] = 1.0
    return Attribution(customer_ids, features, feature_shap, touchpoints, feature_shap @ membership, owner)


@dataclass(frozen=True)
class FlagRule:
    """When a touchpoint counts as driving abandonment."""

    share_threshold: float = 0.10  # its part of all risk-raising contribution
    bootstrap_samples: int = 200  # resamples of the at-risk customers for the confidence interval
    confidence: float = 0.95
    seed: int = 0


def bootstrap_interval(shap: np.ndarray, rule: FlagRule) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of each column's mean, resampling rows (customers) with replacement."""
    rng = np.random.default_rng(rule.seed)
    n = shap.shape[0]
    means = np.empty((rule.bootstrap_samples, shap.shape[1]))
    for b in range(rule.bootstrap_samples):
        means[b] = shap[rng.integers(0, n, n)].mean(axis=0)
    tail = (1 - rule.confidence) / 2 * 100
    return np.percentile(means, tail, axis=0), np.percentile(means, 100 - tail, axis=0)


def driver_table(attribution: Attribution, top_touchpoints: np.ndarray, catalogue: Catalogue, rule: FlagRule) -> pl.DataFrame:
    """Per touchpoint: how much of the at-risk customers' excess churn risk it accounts for.

    Over a population like the training one, every feature's mean SHAP is close to zero, so the mean
    says nothing. Instead we look at the customers the model rates riskier than its baseline (SHAP
    sum above zero) and ask how much of their excess log-odds each touchpoint supplies: its mean
    SHAP over them is `churn_contribution` (with a bootstrap interval over customers), and its part
    of the summed positive contributions is `share_of_total`. `customers_affected` counts the
    at-risk customers who have it among their top reasons (`top_touchpoints`: only contributions of
    at least MIN_REASON_LOG_ODDS), `customers_top_driver` those for whom it is the first. A
    touchpoint with a negative contribution lowers risk there (protective) and is never flagged;
    one is flagged when it raises risk, its interval excludes zero, it takes at least the rule's
    share of the total, and it belongs to the catalogue (the customer profile and journey shape are
    context, not touchpoints to fix).
    """
    at_risk = attribution.touchpoint_shap.sum(axis=1) > 0
    shap = attribution.touchpoint_shap[at_risk] if at_risk.any() else attribution.touchpoint_shap
    contribution = shap.mean(axis=0)
    low, high = bootstrap_interval(shap, rule)
    positive = np.clip(contribution, 0, None)
    share = positive / positive.sum() if positive.sum() > 0 else np.zeros_like(positive)
    top_at_risk = top_touchpoints[at_risk]
    touchpoints = range(len(attribution.touchpoints))
    table = pl.DataFrame(
        {
            "touchpoint": attribution.touchpoints,
            "label": [catalogue.label_of(t) for t in attribution.touchpoints],
            "phase": [catalogue.phase_of(t) if t in catalogue.names else t for t in attribution.touchpoints],
            "churn_contribution": contribution,
            "ci_low": low,
            "ci_high": high,
            "share_of_total": share,
            "direction": np.where(contribution > 0, "raises risk", "lowers risk"),
            "customers_affected": [int((top_at_risk == i).any(axis=1).sum()) for i in touchpoints],
            "customers_top_driver": [int((top_at_risk[:, 0] == i).sum()) for i in touchpoints],
            "customers_at_risk": [int(at_risk.sum())] * len(attribution.touchpoints),
        }
    ).with_columns(phase_label=pl.col("phase").replace_strict(PHASE_LABELS, default=pl.col("phase")))
    return table.with_columns(
        flagged=(pl.col("direction") == "raises risk")
        & (pl.col("ci_low") > 0)
        & (pl.col("share_of_total") >= rule.share_threshold)
        & pl.col("touchpoint").is_in(catalogue.names)
    ).sort("churn_contribution", descending=True)


def feature_summary(attribution: Attribution, top_n: int = 15) -> pl.DataFrame:
    """The features that move risk most: mean |SHAP| over all scored customers, and the mean SHAP
    over the at-risk ones (which way they push where it matters)."""
    at_risk = attribution.touchpoint_shap.sum(axis=1) > 0
    return (
        pl.DataFrame(
            {
                "feature": attribution.features,
                "touchpoint": [attribution.touchpoints[i] for i in attribution.feature_touchpoint],
                "mean_abs_shap": np.abs(attribution.feature_shap).mean(axis=0),
                "mean_shap_at_risk": attribution.feature_shap[at_risk].mean(axis=0) if at_risk.any() else np.zeros(len(attribution.features)),
            }
        )
        .sort("mean_abs_shap", descending=True)
        .head(top_n)
    )


def phase_table(drivers: pl.DataFrame) -> pl.DataFrame:
    """Touchpoint contributions summed to their journey phase (before / during / after purchase)."""
    return drivers.group_by("phase", "phase_label").agg(pl.col("churn_contribution").sum(), pl.col("share_of_total").sum()).sort("churn_contribution", descending=True)


def top_touchpoints(attribution: Attribution, touchpoints: list[str], k: int = TOP_REASONS) -> np.ndarray:
    """Indices of each customer's k most risk-raising touchpoints among `touchpoints` (the catalogue:
    the customer profile and journey shape explain risk but are nothing an agent can act on);
    -1 where fewer raise the log-odds by MIN_REASON_LOG_ODDS (a sliver of noise is no reason to call)."""
    eligible = np.isin(attribution.touchpoints, touchpoints)
    shap = np.where(eligible, attribution.touchpoint_shap, -np.inf)
    order = np.argsort(-shap, axis=1)[:, :k]
    return np.where(np.take_along_axis(shap, order, axis=1) >= MIN_REASON_LOG_ODDS, order, -1)


def reasons(attribution: Attribution, top: np.ndarray, values: np.ndarray, registry: dict[str, FeatureDef], playbook: Playbook) -> pl.DataFrame:
    """For each customer, the top touchpoints and a sentence from the feature that raised risk most
    there, filled with the customer's own value."""
    n, k = top.shape
    best_feature = np.full((n, len(attribution.touchpoints)), -1)
    for t in range(len(attribution.touchpoints)):
        cols = np.flatnonzero(attribution.feature_touchpoint == t)
        best_feature[:, t] = cols[np.argmax(attribution.feature_shap[:, cols], axis=1)]
    columns: dict[str, list] = {"customer_id": attribution.customer_ids}
    for j in range(k):
        tps, texts = [], []
        for i in range(n):
            t = top[i, j]
            if t < 0:
                tps.append(None)
                texts.append(None)
                continue
            f = best_feature[i, t]
            value = values[i, f]
            tps.append(attribution.touchpoints[t])
            texts.append(registry[attribution.features[f]].explain(None if np.isnan(value) else float(value)))
        columns[f"touchpoint_{j + 1}"] = tps
        columns[f"reason_{j + 1}"] = texts
    frame = pl.DataFrame(columns, schema_overrides={f"touchpoint_{j + 1}": pl.String for j in range(k)} | {f"reason_{j + 1}": pl.String for j in range(k)})
    plays = [playbook.for_touchpoint(t) if t is not None else None for t in columns["touchpoint_1"]]
    return frame.with_columns(
        suggested_action=pl.Series([p.action if p else None for p in plays], dtype=pl.String),
        action_owner=pl.Series([p.owner if p else None for p in plays], dtype=pl.String),
    )
