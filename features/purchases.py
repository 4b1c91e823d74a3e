"""What the customer-value features read, per customer and cutoff: the whole purchase history
known before the cutoff, not only its last 90 days, which is all a purchase-only business has.

From the customer-days with a purchase: purchase days over all history and over the last 180 and
365 days, orders and their value, the first, last and previous purchase day; and two figures of
the BG/NBD model (the classic non-contractual "is this customer still alive" model): the
probability the customer is still alive and the purchases they can be expected to make in the
horizon. The BG/NBD model is fitted on the histories known a month before the cutoff, so it never
sees the rows it describes, and the same rule serves training and scoring. It is fitted once per
cutoff, on a hash sample of all the customers who had bought by then (`fit_purchase_models`, by
the feature plan), so a customer's figures do not depend on which customers share their bucket.

Like `features.windows`, this is a place where features filter day rows by time: a cutoff's row
reads only days strictly before it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
from lifetimes import ModifiedBetaGeoFitter
from lifetimes.utils import ConvergenceError

from features.touchpoint_days import DAY, PURCHASE_VALUE, PURCHASES, require_midnight
from features.windows import CUTOFF

HISTORY_WINDOWS_DAYS = (180, 365)
PURCHASE_DAYS = "purchase_days"  # days with a purchase, over all history (and __180d, __365d)
ORDERS, VALUE = "orders", "order_value"  # purchases and what they were worth, over all history
FIRST, LAST, PREVIOUS = "first_purchase_day", "last_purchase_day", "previous_purchase_day"
P_ALIVE, EXPECTED = "bgnbd_p_alive", "bgnbd_expected_purchases"
# the BG/NBD model is fitted on at most this many histories: its four parameters are stable long
# before, and fitting on a million customers would take minutes for nothing
FIT_ROWS = 20_000
# the histories the fits draw from are built for a hash sample of about this many buyers, not
# every one: building every customer's history at every cutoff took 3.2 s at 800,000 buyers, to
# draw 20,000 of them a cutoff
FIT_BUYERS = 2 * FIT_ROWS
MIN_FIT_ROWS = 50  # fewer histories than this leave the BG/NBD figures empty at that cutoff
_DAY_US = 86_400e6
_HASH_SLOTS = 1_000_000
# a fitted BG/NBD model's four parameters, in `lifetimes`' order
BGNBD_PARAMS = ("r", "alpha", "a", "b")
BgnbdParams = tuple[float, float, float, float]
PurchaseModels = Mapping[datetime, BgnbdParams | None]


def history_column(days: int) -> str:
    return f"{PURCHASE_DAYS}__{days}d"


def previous_month(moment: datetime) -> datetime:
    year, month = (moment.year - 1, 12) if moment.month == 1 else (moment.year, moment.month - 1)
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


def purchase_history(days: pl.DataFrame, cutoffs: list[datetime]) -> pl.DataFrame:
    """One row per customer with a purchase day before the cutoff, and cutoff (column CUTOFF)."""
    bought = (
        days.lazy()
        .filter(pl.col(PURCHASES) > 0)
        .select("customer_id", DAY, PURCHASES, PURCHASE_VALUE)
    )

    def at(cutoff: datetime) -> pl.LazyFrame:
        require_midnight(cutoff)
        before = bought.filter(pl.col(DAY) < cutoff)
        recent = [
            (pl.col(DAY) >= cutoff - timedelta(days=d)).sum().alias(history_column(d))
            for d in HISTORY_WINDOWS_DAYS
        ]
        return (
            before.group_by("customer_id")
            .agg(
                pl.len().alias(PURCHASE_DAYS),
                *recent,
                pl.col(PURCHASES).sum().alias(ORDERS),
                pl.col(PURCHASE_VALUE).sum().alias(VALUE),
                pl.col(DAY).min().alias(FIRST),
                pl.col(DAY).max().alias(LAST),
                pl.col(DAY).sort().slice(-2, 1).first().alias(PREVIOUS),
            )
            .with_columns(pl.lit(cutoff, dtype=pl.Datetime("us", "UTC")).alias(CUTOFF))
        )

    if not cutoffs:
        raise ValueError("purchase_history needs at least one cutoff")
    return pl.concat([at(c) for c in sorted(set(cutoffs))]).collect(engine="streaming")


def _bgnbd_inputs(history: pl.DataFrame) -> pl.DataFrame:
    """BG/NBD's summary per row, in days, counting purchase days as `lifetimes` does: repeat
    purchase days, first to last purchase day, and age since the first purchase day."""
    return history.select(
        "customer_id",
        frequency=(pl.col(PURCHASE_DAYS) - 1).cast(pl.Float64),
        recency=(pl.col(LAST) - pl.col(FIRST)).dt.total_microseconds() / _DAY_US,
        T=((pl.col(CUTOFF) - pl.col(FIRST)).dt.total_microseconds() / _DAY_US).clip(
            lower_bound=1.0
        ),
    )


def fit_bgnbd(history: pl.DataFrame, seed: int = 0) -> BgnbdParams | None:
    """BG/NBD fitted on one cutoff's histories (a sample of FIT_ROWS at most); None with fewer
    than MIN_FIT_ROWS, or when the fit does not converge (the figures are then left empty)."""
    inputs = _bgnbd_inputs(history)
    if inputs.height < MIN_FIT_ROWS:
        return None
    if inputs.height > FIT_ROWS:
        inputs = inputs.sample(FIT_ROWS, seed=seed)
    model = ModifiedBetaGeoFitter(penalizer_coef=0.001)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            model.fit(
                inputs["frequency"].to_numpy(), inputs["recency"].to_numpy(), inputs["T"].to_numpy()
            )
    except (ConvergenceError, ValueError, FloatingPointError, np.linalg.LinAlgError):
        return None  # degenerate histories: the figures are left empty, the other features stay
    r, alpha, a, b = model.params_.loc[list(BGNBD_PARAMS)].to_numpy(dtype=float).tolist()
    return r, alpha, a, b


def fit_purchase_models(
    days: pl.DataFrame, cutoffs: Sequence[datetime]
) -> dict[datetime, BgnbdParams | None]:
    """Each cutoff's BG/NBD model, fitted on the histories known a month before it (of a hash
    sample of the customers who had bought by then, `fit_sample`): once for all customer
    buckets, which then read the same four parameters."""
    cutoffs = sorted(set(cutoffs))
    earlier = {c: previous_month(c) for c in cutoffs}
    return {
        c: fit_bgnbd(purchase_history(fit_sample(days, earlier[c]), [earlier[c]])) for c in cutoffs
    }


def fit_sample(days: pl.DataFrame, before: datetime) -> pl.DataFrame:
    """The purchase days before `before` of about FIT_BUYERS of the customers who had bought by
    then (every one where there are no more), chosen by a hash of the id, so a cutoff's sample
    holds the earlier cutoffs' customers who are still buying. Polars' hash, like the random draw
    of `fit_bgnbd`, may change with the Polars version; so may the fitted parameters, a little."""
    bought = days.filter((pl.col(PURCHASES) > 0) & (pl.col(DAY) < before))
    buyers = bought["customer_id"].n_unique()
    if buyers <= FIT_BUYERS:
        return bought
    share = pl.col("customer_id").hash(seed=0) % _HASH_SLOTS < FIT_BUYERS * _HASH_SLOTS // buyers
    return bought.filter(share)


def _model(params: BgnbdParams) -> ModifiedBetaGeoFitter:
    model = ModifiedBetaGeoFitter(penalizer_coef=0.001)
    model.params_ = pd.Series(dict(zip(BGNBD_PARAMS, params, strict=True)))
    return model


def bgnbd_figures(
    params: BgnbdParams | None, history: pl.DataFrame, horizon_days: int
) -> pl.DataFrame:
    """P(alive) and the purchase days expected in the horizon for each row of `history`, by the
    model with these parameters (None: no model, no figures)."""
    inputs = _bgnbd_inputs(history)
    if params is None:
        empty = pl.lit(None, pl.Float64)
        return inputs.select("customer_id", empty.alias(P_ALIVE), empty.alias(EXPECTED))
    model = _model(params)
    f, r, t = (inputs[c].to_numpy() for c in ("frequency", "recency", "T"))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        alive = np.asarray(model.conditional_probability_alive(f, r, t), dtype=float)
        expected = np.asarray(
            model.conditional_expected_number_of_purchases_up_to_time(horizon_days, f, r, t),
            dtype=float,
        )
    # the model's arithmetic overflows for extreme histories: no figure rather than an infinite
    # one, and never more purchase days than the horizon holds
    alive = np.where(np.isfinite(alive), np.clip(alive, 0.0, 1.0), np.nan)
    expected = np.where(np.isfinite(expected), np.clip(expected, 0.0, horizon_days), np.nan)
    return inputs.select("customer_id").with_columns(
        pl.Series(P_ALIVE, alive).fill_nan(None), pl.Series(EXPECTED, expected).fill_nan(None)
    )


def purchase_table(
    days: pl.DataFrame, cutoffs: list[datetime], horizon_days: int, models: PurchaseModels
) -> pl.DataFrame:
    """The purchase history at each cutoff with its BG/NBD figures, by the cutoff's model in
    `models` (`fit_purchase_models`: fitted on the histories of the month before, which the
    cutoff's own rows are not part of)."""
    cutoffs = sorted(set(cutoffs))
    unfitted = [f"{c:%Y-%m-%d}" for c in cutoffs if c not in models]
    if unfitted:
        raise ValueError(
            f"no BG/NBD model for the cutoffs {unfitted}: the feature plan fits one per cutoff; "
            "materialize feature_plan again"
        )
    histories = purchase_history(days, cutoffs)
    by_cutoff = histories.partition_by(CUTOFF, as_dict=True)
    parts = []
    # every cutoff, even one nobody had bought before: the figures' columns are there all the same
    for cutoff in cutoffs:
        history = by_cutoff.get((cutoff,), histories.clear())
        parts.append(
            history.join(bgnbd_figures(models[cutoff], history, horizon_days), on="customer_id")
        )
    return pl.concat(parts, how="vertical_relaxed")
