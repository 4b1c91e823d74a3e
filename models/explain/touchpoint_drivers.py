"""Which touchpoints drive abandonment (asset `touchpoint_drivers`): contributions by touchpoint
and journey phase over the customers the model rates riskier than baseline, with bootstrap
intervals, and the rule that flags a touchpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from features.catalogue import PHASE_LABELS, Catalogue
from features.feature import JOURNEY
from models.explain.attribution import Attribution

ACTIVE_DAYS = f"{JOURNEY}_active_days_30d"  # the feature that tells a lapsed buyer
BOOTSTRAP_BATCH = 25  # resamples whose row counts are held at once (25 x customers integers)


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
    # a resample's mean is its rows' counts times the table over n: one matrix product per batch
    # of resamples, rather than a copy of the resampled rows each (8 s at 275,000 customers)
    means = np.empty((rule.bootstrap_samples, shap.shape[1]))
    for start in range(0, rule.bootstrap_samples, BOOTSTRAP_BATCH):
        batch = range(start, min(start + BOOTSTRAP_BATCH, rule.bootstrap_samples))
        counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in batch])
        means[batch.start : batch.stop] = counts @ shap / n
    tail = (1 - rule.confidence) / 2 * 100
    return np.percentile(means, tail, axis=0), np.percentile(means, 100 - tail, axis=0)


def still_engaged(
    customer_ids: list[str], features: pl.DataFrame | pl.LazyFrame, cancellations: bool
) -> np.ndarray | None:
    """Which scored customers are still there to keep: every one a contractual business has not
    seen cancel; in a purchase-only business, those with a touch in the last 30 days. A lapsed
    buyer's risk is its silence, spread over every touchpoint it no longer visits, and would name
    the touchpoints most customers visit most often (on a drawn purchase-only world the newsletter
    came first, a third of the total, ahead of the checkout errors that drove customers away).
    None: everyone (contractual, or no activity feature to tell). Reads two columns of the
    features, which may be a lazy scan of them."""
    if cancellations or ACTIVE_DAYS not in features.lazy().collect_schema():
        return None
    active = features.lazy().select("customer_id", engaged=pl.col(ACTIVE_DAYS) > 0).collect()
    rows = pl.DataFrame({"customer_id": customer_ids}).join(
        active, on="customer_id", how="left", maintain_order="left"
    )
    return rows["engaged"].fill_null(False).to_numpy()


def driver_table(
    touchpoints: Sequence[str],
    touchpoint_shap: np.ndarray,
    top_touchpoints: np.ndarray,
    catalogue: Catalogue,
    rule: FlagRule,
    engaged: np.ndarray | None = None,
) -> pl.DataFrame:
    """Per touchpoint: how much of the at-risk customers' excess churn risk it accounts for.
    `touchpoint_shap` (customers x `touchpoints`) is `Attribution.touchpoint_shap`, or the
    buckets' ones stacked, with `top_touchpoints` and `engaged` in the same row order.

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
    context, not touchpoints to fix). With `engaged` (`still_engaged`), only those customers count
    as at risk.
    """
    at_risk = touchpoint_shap.sum(axis=1) > 0
    if engaged is not None and (at_risk & engaged).any():
        at_risk &= engaged
    shap = touchpoint_shap[at_risk] if at_risk.any() else touchpoint_shap
    contribution = shap.mean(axis=0)
    low, high = bootstrap_interval(shap, rule)
    positive = np.clip(contribution, 0, None)
    share = positive / positive.sum() if positive.sum() > 0 else np.zeros_like(positive)
    top_at_risk = top_touchpoints[at_risk]
    indices = range(len(touchpoints))
    table = pl.DataFrame(
        {
            "touchpoint": list(touchpoints),
            "label": [catalogue.label_of(t) for t in touchpoints],
            "phase": [catalogue.phase_of(t) if t in catalogue.names else t for t in touchpoints],
            "churn_contribution": contribution,
            "ci_low": low,
            "ci_high": high,
            "share_of_total": share,
            "direction": np.where(contribution > 0, "raises risk", "lowers risk"),
            "customers_affected": [int((top_at_risk == i).any(axis=1).sum()) for i in indices],
            "customers_top_driver": [int((top_at_risk[:, 0] == i).sum()) for i in indices],
            "customers_at_risk": [int(at_risk.sum())] * len(touchpoints),
        }
    ).with_columns(
        phase_label=pl.col("phase").replace_strict(PHASE_LABELS, default=pl.col("phase"))
    )
    return table.with_columns(
        flagged=(pl.col("direction") == "raises risk")
        & (pl.col("ci_low") > 0)
        & (pl.col("share_of_total") >= rule.share_threshold)
        & pl.col("touchpoint").is_in(catalogue.names)
    ).sort("churn_contribution", descending=True)


def feature_sums(attribution: Attribution) -> pl.DataFrame:
    """Per feature, the sums `feature_summary` averages: of |SHAP| over the customers, and of SHAP
    over the at-risk ones, with both counts. Sums of buckets add up to the whole table's, so the
    summary never needs every customer's SHAP values at once."""
    at_risk = attribution.touchpoint_shap.sum(axis=1) > 0
    shap = attribution.feature_shap
    return pl.DataFrame(
        {
            "feature": attribution.features,
            "touchpoint": [attribution.touchpoints[i] for i in attribution.feature_touchpoint],
            "abs_shap": np.abs(shap).sum(axis=0, dtype=np.float64),
            "shap_at_risk": shap[at_risk].sum(axis=0, dtype=np.float64),
            "customers": shap.shape[0],
            "at_risk": int(at_risk.sum()),
        },
        schema_overrides={"customers": pl.Int64, "at_risk": pl.Int64},
    )


def feature_summary(sums: pl.DataFrame, top_n: int = 15) -> pl.DataFrame:
    """The features that move risk most: mean |SHAP| over all scored customers, and the mean SHAP
    over the at-risk ones (which way they push where it matters); from `feature_sums` of the
    whole table, or of its buckets stacked."""
    total = sums.group_by("feature", "touchpoint", maintain_order=True).sum()
    return (
        total.select(
            "feature",
            "touchpoint",
            mean_abs_shap=pl.col("abs_shap") / pl.col("customers"),
            mean_shap_at_risk=pl.when(pl.col("at_risk") > 0)
            .then(pl.col("shap_at_risk") / pl.col("at_risk"))
            .otherwise(0.0),
        )
        .sort("mean_abs_shap", descending=True, maintain_order=True)
        .head(top_n)
    )


def phase_table(drivers: pl.DataFrame) -> pl.DataFrame:
    """Touchpoint contributions summed to their journey phase (before / during / after purchase)."""
    return (
        drivers.group_by("phase", "phase_label")
        .agg(pl.col("churn_contribution").sum(), pl.col("share_of_total").sum())
        .sort("churn_contribution", descending=True)
    )
