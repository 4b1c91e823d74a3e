"""Simple rivals the model must beat at every backtest cutoff before anyone should trust it.

- base rate: every customer gets the training churn rate (ranks nobody: ROC AUC 0.5);
- recency: days since the customer's last touch of any kind ("gone quiet, going away");
- frequency: the days the customer bought on before the cutoff (buyers come back);
- logistic regression on the model's own features (the boosted form's linear base, alone);
- BG/NBD expected purchases: the classic purchase-based (non-contractual) model, from purchase
  counts and timing alone (lifetimes' modified BG/NBD, which, unlike plain BG/NBD, lets a one-time
  buyer drop out), scored by the purchase days it expects in the horizon. Customers with no
  purchase before the cutoff are treated as born at signup with no repeat purchase.

Score-only rules (recency, frequency, BG/NBD) are mapped to probabilities by isotonic regression
on the validation cutoff, so their Brier and ECE are comparable. Everything is fitted on cutoffs
before the judged one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import cast

import numpy as np
import polars as pl
from lifetimes import ModifiedBetaGeoFitter
from scipy.special import expit

from features.touchpoint_days import DAY, LAST_TOUCH, PURCHASES, last_touch_at
from models.calibration import fit_calibration, model_input
from models.linear_base import LinearBase
from models.training.train import TimeSplit

DAY_US = 86_400e6


def _per_cutoff(
    frame: pl.DataFrame, summarise: Callable[[datetime, pl.DataFrame], pl.DataFrame]
) -> pl.DataFrame:
    """Apply `summarise(cutoff, members)` to each cutoff's customers; rows keep `frame`'s order."""
    parts = [
        summarise(c, members)
        for (c,), members in frame.select("customer_id", "cutoff")
        .partition_by("cutoff", as_dict=True)
        .items()
    ]
    return frame.select("customer_id", "cutoff").join(
        pl.concat(parts), on=["customer_id", "cutoff"], how="left", maintain_order="left"
    )


def recency_days(frame: pl.DataFrame, days: pl.DataFrame, customers: pl.DataFrame) -> np.ndarray:
    """Days from the last touch (any kind) before each row's cutoff to the cutoff; since signup if
    none."""

    def summarise(cutoff: datetime, members: pl.DataFrame) -> pl.DataFrame:
        last = (
            days.filter(pl.col(DAY) < cutoff)
            .group_by("customer_id")
            .agg(last=last_touch_at(pl.col(LAST_TOUCH).max()))
        )
        return (
            members.join(last, on="customer_id", how="left")
            .join(customers.select("customer_id", "signup_at"), on="customer_id", how="left")
            .select(
                "customer_id",
                "cutoff",
                days=(pl.col("cutoff") - pl.coalesce("last", "signup_at")).dt.total_microseconds()
                / DAY_US,
            )
        )

    return _per_cutoff(frame, summarise)["days"].fill_null(0.0).to_numpy()


def purchase_summary(
    frame: pl.DataFrame, days: pl.DataFrame, customers: pl.DataFrame
) -> pl.DataFrame:
    """BG/NBD inputs per row, in days, counting purchase days as lifetimes does: repeat purchase
    days, first to last purchase day, and age since the first purchase day.

    Customers who never bought are 'born' at signup with no repeat purchase.
    """
    purchase_days = days.filter(pl.col(PURCHASES) > 0).select("customer_id", DAY)

    def summarise(cutoff: datetime, members: pl.DataFrame) -> pl.DataFrame:
        bought = (
            purchase_days.filter(pl.col(DAY) < cutoff)
            .group_by("customer_id")
            .agg(n=pl.len(), first=pl.col(DAY).min(), last=pl.col(DAY).max())
        )
        rows = members.join(bought, on="customer_id", how="left").join(
            customers.select("customer_id", "signup_at"), on="customer_id", how="left"
        )
        birth = pl.coalesce("first", "signup_at")
        return rows.select(
            "customer_id",
            "cutoff",
            frequency=(pl.col("n").fill_null(1) - 1).cast(pl.Float64),
            recency=((pl.col("last") - pl.col("first")).dt.total_microseconds() / DAY_US).fill_null(
                0.0
            ),
            T=((pl.col("cutoff") - birth).dt.total_microseconds() / DAY_US).clip(lower_bound=1e-3),
        )

    return _per_cutoff(frame, summarise)


def logistic_regression(model: LinearBase) -> Callable[[pl.DataFrame], np.ndarray]:
    """Logistic regression on the model's features: the linear base the boosted form starts
    from (`models.linear_base`, fitted on the fit cutoffs), alone; returns a scorer."""
    return lambda frame: expit(model.margin(model_input(frame, model.features)))


def bgnbd_expected(
    split: TimeSplit, days: pl.DataFrame, customers: pl.DataFrame, horizon_days: int
) -> Callable[[pl.DataFrame], np.ndarray]:
    """Modified BG/NBD fitted on the validation cutoff's purchase histories (no labels); scores
    minus the purchase days it expects in the horizon."""
    fit = purchase_summary(split.validation, days, customers)
    model = ModifiedBetaGeoFitter(penalizer_coef=0.001).fit(
        fit["frequency"].to_numpy(), fit["recency"].to_numpy(), fit["T"].to_numpy()
    )

    def score(frame: pl.DataFrame) -> np.ndarray:
        s = purchase_summary(frame, days, customers)
        expected = model.conditional_expected_number_of_purchases_up_to_time(
            horizon_days, s["frequency"].to_numpy(), s["recency"].to_numpy(), s["T"].to_numpy()
        )
        return -np.nan_to_num(np.asarray(expected, dtype=float), nan=0.0, posinf=horizon_days)

    return score


def _calibrated(
    score: Callable[[pl.DataFrame], np.ndarray], validation: pl.DataFrame
) -> Callable[[pl.DataFrame], np.ndarray]:
    """A score turned into probabilities by isotonic regression on the validation cutoff."""
    calibration = fit_calibration(score(validation), validation["churned"].to_numpy(), "isotonic")
    return lambda frame: calibration.apply(score(frame))


def baseline_probabilities(
    split: TimeSplit,
    days: pl.DataFrame,
    customers: pl.DataFrame,
    horizon_days: int,
    linear: LinearBase,
) -> dict[str, np.ndarray]:
    """Each baseline's churn probability for every judged row, fitted only on earlier cutoffs
    (`linear`: the linear base fitted on the fit cutoffs)."""
    # the mean of the 0/1 label over the fit cutoffs' rows: a float
    base_rate = float(cast(float, split.fit["churned"].mean()))

    def frequency(frame: pl.DataFrame) -> np.ndarray:
        return -(purchase_summary(frame, days, customers)["frequency"].to_numpy() + 1.0)

    def judged(score: Callable[[pl.DataFrame], np.ndarray]) -> np.ndarray:
        return _calibrated(score, split.validation)(split.holdout)

    return {
        "base_rate": np.full(split.holdout.height, base_rate),
        "recency_rule": judged(lambda f: recency_days(f, days, customers)),
        "frequency": judged(frequency),
        "logistic_regression": logistic_regression(linear)(split.holdout),
        "bgnbd": judged(bgnbd_expected(split, days, customers, horizon_days)),
    }
