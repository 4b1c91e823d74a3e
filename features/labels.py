"""Who is in a cutoff's population, and who churned within the horizon after it.

A label only ever looks at the window (cutoff, cutoff + horizon]; a feature only before the cutoff.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl


def uses_cancellations(customers: pl.DataFrame) -> bool:
    """Contractual churn when the customers table carries any cancellation time."""
    return customers["churned_at"].is_not_null().any()


def population(customers: pl.DataFrame, touches: pl.DataFrame, cutoff: datetime, horizon_days: int) -> pl.DataFrame:
    """Customers signed up before the cutoff and not already gone by it.

    Without cancellation times, "gone" means no purchase in the horizon-length window before the
    cutoff (new customers still inside their first window count as active).
    """
    signed = customers.filter(pl.col("signup_at") < cutoff)
    if uses_cancellations(customers):
        return signed.filter(pl.col("churned_at").is_null() | (pl.col("churned_at") > cutoff)).select("customer_id")
    since = cutoff - timedelta(days=horizon_days)
    buyers = touches.filter((pl.col("event_type") == "purchase") & (pl.col("ts") >= since) & (pl.col("ts") < cutoff))
    recent = signed.filter(pl.col("signup_at") >= since)
    return pl.concat([buyers.select("customer_id"), recent.select("customer_id")]).unique().join(
        signed.select("customer_id"), on="customer_id", how="semi"
    ).sort("customer_id")


def churn_labels(customers: pl.DataFrame, touches: pl.DataFrame, members: pl.DataFrame, cutoff: datetime, horizon_days: int) -> pl.DataFrame:
    """1 if the customer churned in (cutoff, cutoff + horizon], else 0."""
    end = cutoff + timedelta(days=horizon_days)
    if uses_cancellations(customers):
        churned = customers.filter((pl.col("churned_at") > cutoff) & (pl.col("churned_at") <= end)).select("customer_id")
    else:
        bought = touches.filter((pl.col("event_type") == "purchase") & (pl.col("ts") > cutoff) & (pl.col("ts") <= end))
        churned = members.join(bought.select("customer_id").unique(), on="customer_id", how="anti")
    return members.with_columns(churned=pl.col("customer_id").is_in(churned["customer_id"].implode()).cast(pl.Int8))
