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

TOP_REASONS = 3
# a touchpoint is worth naming as a reason when it raises the odds of churn by at least 5%
MIN_REASON_LOG_ODDS = 0.05


def shap_values(model: xgb.XGBClassifier, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(per-feature contributions n x f, base value n) in log-odds, using the trees `predict` uses."""
    best = getattr(model, "best_iteration", None)
    iteration_range = (0, best + 1) if best is not None else (0, 0)
    contribs = model.get_booster().predict(xgb.DMatrix(X), pred_contribs=True, iteration_range=iteration_range)
    return contribs[:, :-1], contribs[:, -1]


@dataclass(frozen=True)
class Attribution:
    customer_ids: list[str]
    features: list[str]
    feature_shap: np.ndarray  # n x features
    touchpoints: list[str]
    touchpoint_shap: np.ndarray  # n x touchpoints
    feature_touchpoint: np.ndarray  # index of each feature's touchpoint

    def touchpoint_frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.touchpoint_shap, schema=self.touchpoints).insert_column(0, pl.Series("customer_id", self.customer_ids))


def attribute(customer_ids: list[str], features: list[str], feature_shap: np.ndarray, registry: dict[str, FeatureDef]) -> Attribution:
    touchpoints = list(dict.fromkeys(registry[f].touchpoint for f in features))
    owner = np.array([touchpoints.index(registry[f].touchpoint) for f in features])
    membership = np.zeros((len(features), len(touchpoints)))
    membership[np.arange(len(features)), owner] = 1.0
    return Attribution(customer_ids, features, feature_shap, touchpoints, feature_shap @ membership, owner)


def driver_table(attribution: Attribution, top_touchpoints: np.ndarray, catalogue: Catalogue, share_threshold: float) -> pl.DataFrame:
    """Per touchpoint: how much of the at-risk customers' excess churn risk it accounts for.

    Over a population like the training one, every feature's mean SHAP is close to zero, so the mean
    says nothing. Instead we look at the customers the model rates riskier than its baseline (SHAP
    sum above zero) and ask how much of their excess log-odds each touchpoint supplies: its mean
    SHAP over them is `churn_contribution`, and its part of the summed positive contributions is
    `share_of_total`; `customers_affected` counts the at-risk customers who have it among their top
    reasons. A touchpoint with a negative contribution lowers risk there (protective) and is
    never flagged; one is flagged when it raises risk with at least `share_threshold` of the total
    and belongs to the catalogue (the customer profile is context, not a touchpoint to fix).
    """
    at_risk = attribution.touchpoint_shap.sum(axis=1) > 0
    shap = attribution.touchpoint_shap[at_risk] if at_risk.any() else attribution.touchpoint_shap
    contribution = shap.mean(axis=0)
    positive = np.clip(contribution, 0, None)
    share = positive / positive.sum() if positive.sum() > 0 else np.zeros_like(positive)
    top_at_risk = top_touchpoints[at_risk]
    affected = np.array([(top_at_risk == i).any(axis=1).sum() for i in range(len(attribution.touchpoints))])
    table = pl.DataFrame(
        {
            "touchpoint": attribution.touchpoints,
            "label": [catalogue.label_of(t) for t in attribution.touchpoints],
            "phase": [catalogue.phase_of(t) if t in catalogue.names else t for t in attribution.touchpoints],
            "churn_contribution": contribution,
            "share_of_total": share,
            "direction": np.where(contribution > 0, "raises risk", "lowers risk"),
            "customers_affected": affected,
            "customers_at_risk": np.full(len(attribution.touchpoints), int(at_risk.sum())),
        }
    ).with_columns(phase_label=pl.col("phase").replace_strict(PHASE_LABELS, default=pl.col("phase")))
    return table.with_columns(
        flagged=(pl.col("direction") == "raises risk") & (pl.col("share_of_total") >= share_threshold) & pl.col("touchpoint").is_in(catalogue.names)
    ).sort("churn_contribution", descending=True)


def phase_table(drivers: pl.DataFrame) -> pl.DataFrame:
    """Touchpoint contributions summed to their journey phase (before / during / after purchase)."""
    return drivers.group_by("phase", "phase_label").agg(pl.col("churn_contribution").sum(), pl.col("share_of_total").sum()).sort("churn_contribution", descending=True)


def top_touchpoints(attribution: Attribution, k: int = TOP_REASONS) -> np.ndarray:
    """Indices of each customer's k most risk-raising touchpoints; -1 where fewer raise risk
    noticeably (by at least MIN_REASON_LOG_ODDS)."""
    order = np.argsort(-attribution.touchpoint_shap, axis=1)[:, :k]
    raises = np.take_along_axis(attribution.touchpoint_shap, order, axis=1) >= MIN_REASON_LOG_ODDS
    return np.where(raises, order, -1)


def reasons(attribution: Attribution, top: np.ndarray, values: np.ndarray, registry: dict[str, FeatureDef], catalogue: Catalogue) -> pl.DataFrame:
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
    actions = {t.name: t.action for t in catalogue.touchpoints}
    owners = {t.name: t.owner for t in catalogue.touchpoints}
    return frame.with_columns(
        suggested_action=pl.col("touchpoint_1").replace_strict(actions, default=None, return_dtype=pl.String),
        action_owner=pl.col("touchpoint_1").replace_strict(owners, default=None, return_dtype=pl.String),
    )
