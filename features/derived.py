"""Tables derived from rows before a cutoff, for features that need more than one row to see.

They are built inside each cutoff's plan from already-cut rows, so a session that straddles the
cutoff is judged on what had happened by then (a checkout with its purchase after the cutoff is,
at the cutoff, a checkout without a purchase).
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

SWITCH_WITHIN = timedelta(days=7)


def sessions(touches: pl.LazyFrame) -> pl.LazyFrame:
    """One row per session: when it started, whether it reached checkout or a purchase, how it ended."""
    in_order = pl.col("ts")
    return (
        touches.filter(pl.col("session_id").is_not_null())
        .group_by("customer_id", "session_id")
        .agg(
            ts=in_order.min(),
            has_checkout=(pl.col("event_type") == "checkout_start").any(),
            has_purchase=(pl.col("event_type") == "purchase").any(),
            last_event=pl.col("event_type").sort_by(in_order).last(),
            last_touchpoint=pl.col("touchpoint").sort_by(in_order).last(),
        )
    )


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
