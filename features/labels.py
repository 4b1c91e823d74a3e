"""Who is in a cutoff's population, and who churned within the horizon after it.

A label only ever looks at the horizon after the cutoff; a feature only at the days before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from features.touchpoint_days import DAY, PURCHASES


def uses_cancellations(customers: pl.DataFrame) -> bool:
    """Contractual churn when the customers table carries any cancellation time."""
    return customers["churned_at"].is_not_null().any()


def _buyers(days: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Customers with a purchase on a day in [start, end)."""
    return (
        days.filter((pl.col(PURCHASES) > 0) & (pl.col(DAY) >= start) & (pl.col(DAY) < end))
        .select("customer_id")
        .unique()
    )


def population(
    customers: pl.DataFrame, days: pl.DataFrame, cutoff: datetime, horizon_days: int
) -> pl.DataFrame:
    """Customers signed up before the cutoff and not already gone by it.

    With cancellation times, gone means cancelled by the cutoff. Without them (a purchase-only
    business) nobody is ever known to be gone: every customer who has bought before the cutoff is
    in, however long ago, since a shop's lapsed customers are its win-back list, and so are
    customers still inside the horizon after signing up who have not bought yet. (A customer who
    signed up long ago and never bought was never a customer in this sense.)
    """
    signed = customers.filter(pl.col("signup_at") < cutoff)
    if uses_cancellations(customers):
        return signed.filter(
            pl.col("churned_at").is_null() | (pl.col("churned_at") > cutoff)
        ).select("customer_id")
    since = cutoff - timedelta(days=horizon_days)
    recent = signed.filter(pl.col("signup_at") >= since)
    bought = days.filter((pl.col(PURCHASES) > 0) & (pl.col(DAY) < cutoff)).select("customer_id")
    return (
        pl.concat([bought, recent.select("customer_id")])
        .unique()
        .join(signed.select("customer_id"), on="customer_id", how="semi")
        .sort("customer_id")
    )


def churn_labels(
    customers: pl.DataFrame,
    days: pl.DataFrame,
    members: pl.DataFrame,
    cutoff: datetime,
    horizon_days: int,
) -> pl.DataFrame:
    """1 if the customer churned within the horizon after the cutoff, else 0.

    Contractual: cancelled in (cutoff, cutoff + horizon]. Otherwise: no purchase on the days
    [cutoff, cutoff + horizon), the days right after the ones features see.
    """
    end = cutoff + timedelta(days=horizon_days)
    if uses_cancellations(customers):
        churned = customers.filter(
            (pl.col("churned_at") > cutoff) & (pl.col("churned_at") <= end)
        ).select("customer_id")
    else:
        churned = members.join(_buyers(days, cutoff, end), on="customer_id", how="anti")
    return members.with_columns(
        churned=pl.col("customer_id").is_in(churned["customer_id"].implode()).cast(pl.Int8)
    )


def label_table(
    customers: pl.DataFrame, days: pl.DataFrame, cutoffs: Sequence[datetime], horizon_days: int
) -> pl.DataFrame:
    """(customer_id, churned, cutoff) for each cutoff's population: the labels alone, without the
    features, so the plan can tell which cutoffs have churners and stayers to learn from before any
    snapshot is built (the snapshots label the same way, `features.snapshots.snapshot_query`)."""
    schema = {"customer_id": pl.String, "churned": pl.Int8, "cutoff": pl.Datetime("us", "UTC")}
    return pl.concat(
        [
            pl.DataFrame(schema=schema),
            *(
                churn_labels(
                    customers, days, population(customers, days, c, horizon_days), c, horizon_days
                )
                .with_columns(cutoff=pl.lit(c, dtype=pl.Datetime("us", "UTC")))
                .select(list(schema))
                for c in cutoffs
            ),
        ]
    )
