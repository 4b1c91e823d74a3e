"""SHAP attributions rolled up from features to touchpoints: within a touchpoint, feature
contributions add up, so a touchpoint's SHAP is the sum of its features'. What the driver table,
the reasons and the report all start from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.catalogue import Catalogue
from features.feature import CUSTOMER_VALUE, FeatureDef

TOP_REASONS = 3
# A touchpoint is a reason only when it raises the customer's churn log-odds by at least this much:
# ln(1.2), odds up by a fifth. Any positive SHAP is not enough: on the demo world most of it is
# noise (median 0.006, 90th percentile 0.08 of the positive touchpoint values), and touchpoints
# the simulator keeps out of the hazard reach 0.12 at the 99th percentile and 0.17 at the 99.9th,
# while the planted drivers' median positive contribution is 1.1.
MIN_REASON_LOG_ODDS = float(np.log(1.2))


@dataclass(frozen=True)
class Attribution:
    customer_ids: list[str]
    features: list[str]
    feature_shap: np.ndarray  # n x features
    touchpoints: list[str]
    touchpoint_shap: np.ndarray  # n x touchpoints
    feature_touchpoint: np.ndarray  # index of each feature's touchpoint


def attribute(
    customer_ids: list[str],
    features: list[str],
    feature_shap: np.ndarray,
    registry: dict[str, FeatureDef],
) -> Attribution:
    touchpoints = list(dict.fromkeys(registry[f].touchpoint for f in features))
    owner = np.array([touchpoints.index(registry[f].touchpoint) for f in features], dtype=int)
    # summed touchpoint by touchpoint in float64: a row's sums do not depend on the rows beside
    # it (a bucket gives its customers the figures the whole table does), and a float32 matrix
    # times a float64 one would first copy the whole matrix to float64
    rolled = np.empty((feature_shap.shape[0], len(touchpoints)))
    for t in range(len(touchpoints)):
        rolled[:, t] = feature_shap[:, owner == t].sum(axis=1, dtype=np.float64)
    return Attribution(customer_ids, features, feature_shap, touchpoints, rolled, owner)


def attribution_of(shap: pl.DataFrame, registry: list[FeatureDef]) -> Attribution:
    """The attribution of a `shap_attributions` table: its feature columns rolled up by the
    registry's touchpoints."""
    by_name = {d.name: d for d in registry}
    features = [c for c in shap.columns if c in by_name]
    return attribute(
        shap["customer_id"].to_list(), features, shap.select(features).to_numpy(), by_name
    )


def reason_touchpoints(catalogue: Catalogue) -> list[str]:
    """What a reason may name: the catalogue's touchpoints, which an agent can act on, and the
    customer's purchase history ("no purchase for 140 days; used to buy every 30 days": a lapsed
    buyer, for a win-back). The profile and the journey's shape explain risk but are nothing to
    act on."""
    return [*catalogue.names, CUSTOMER_VALUE]


def top_touchpoints(
    attribution: Attribution, touchpoints: list[str], k: int = TOP_REASONS
) -> np.ndarray:
    """Indices of each customer's k most risk-raising touchpoints among `touchpoints` (the
    catalogue: the customer profile and journey shape explain risk but are nothing an agent can act
    on); -1 where fewer raise the log-odds by MIN_REASON_LOG_ODDS (a sliver of noise is no reason to
    call)."""
    eligible = np.isin(attribution.touchpoints, touchpoints)
    shap = np.where(eligible, attribution.touchpoint_shap, -np.inf)
    order = np.argsort(-shap, axis=1)[:, :k]
    return np.where(np.take_along_axis(shap, order, axis=1) >= MIN_REASON_LOG_ODDS, order, -1)
