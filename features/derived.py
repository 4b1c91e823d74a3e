"""Flags derived from several rows, for features that need more than one row to see.

A ticket is judged only on the tickets opened before it, so the flag is the same at every cutoff the
ticket is before: it is computed once over all tickets (`features.sources.feature_tables`).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

SWITCH_WITHIN = timedelta(days=7)


def support_with_switches(support: pl.LazyFrame) -> pl.LazyFrame:
    """Flag a ticket that repeats the customer's previous ticket's category on another channel within
    a week: the customer is chasing the same issue because the first channel did not solve it."""
    previous = {c: pl.col(c).shift().over("customer_id", order_by="opened_at") for c in ("category", "channel", "opened_at")}
    return support.with_columns(
        channel_switch=(
            (pl.col("category") == previous["category"])
            & (pl.col("channel") != previous["channel"])
            & (pl.col("opened_at") - previous["opened_at"] <= SWITCH_WITHIN)
        ).fill_null(False)
    )
