"""Every touch folded into one row per customer and day with activity: what windowed features read.

A feature window at a cutoff is then a sum (or a maximum) over a customer's day rows instead of over
raw events, so the raw events are read and routed once however many cutoffs are built, and the
windows read a quarter as many rows (about four touches per active customer-day on the demo world),
all cutoffs' at once (`features.windows`). It is exact because cutoffs fall on midnight UTC
(`require_midnight`): a day's row lies wholly before a cutoff or wholly at or after it.

Days are also the unit of the journey-shape features that used sessions before: a checkout started
on a day that saw no purchase is an abandoned checkout, and a day whose last event was an exit
intent is a visit that ended in one. Unlike sessions, days never straddle a cutoff.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import polars as pl

from features.catalogue import OTHER, Catalogue, touchpoints_for_event
from features.touches import Friction, touch_events

DAY = "day"
PURCHASES = "purchases"
ABANDONED_CHECKOUTS = "abandoned_checkouts"  # checkouts started that day beyond that day's purchases
LAST_TOUCH = "last_touch"  # the day's latest touch, packed: (microseconds << 9) | (touchpoint code << 1) | was an exit intent
_TOUCHPOINT_BITS = 8
_TOUCHES = "touches__"
FRICTION_EVENTS = {
    # event type -> (feature word, words for one, words for a count of any other number, extra condition on the event)
    "payment_error": ("payment_errors", "payment error", "payment errors", None),
    "exit_intent": ("exit_intents", "exit with intent to leave", "exits with intent to leave", None),
    "remove_from_cart": ("cart_removals", "item removed from the cart", "items removed from the cart", None),
    "unsubscribe": ("unsubscribes", "unsubscribe", "unsubscribes", None),
    "plan_downgrade": ("downgrades", "plan downgrade", "plan downgrades", None),
    "return_request": ("returns", "return request", "return requests", None),
    "search": ("failed_searches", "search that found nothing", "searches that found nothing", pl.col("value") == 0),
}


def touches_column(touchpoint: str) -> str:
    return f"{_TOUCHES}{touchpoint}"


def is_touches_column(column: str) -> bool:
    return column.startswith(_TOUCHES)


def friction_column(touchpoint: str, word: str) -> str:
    return f"{word}__{touchpoint}"


def friction_pairs(catalogue: Catalogue) -> list[Friction]:
    """(touchpoint, event type, day column, extra condition) for every friction event a touchpoint can claim."""
    return [
        (touchpoint, event_type, friction_column(touchpoint, word), extra)
        for event_type, (word, _, _, extra) in FRICTION_EVENTS.items()
        for touchpoint in touchpoints_for_event(catalogue, event_type)
    ]


def require_midnight(cutoff: datetime) -> datetime:
    """Day rows give exact windows only for cutoffs at midnight UTC; say so instead of blurring a day."""
    if cutoff.utcoffset() != timedelta(0) or cutoff.time() != time(0):
        raise ValueError(f"cutoff {cutoff.isoformat()} is not midnight UTC; features are built from whole days, use a date such as {cutoff:%Y-%m-%d}T00:00:00+00:00")
    return cutoff


def touchpoint_codes(catalogue: Catalogue) -> dict[str, int]:
    """The code each touchpoint has in LAST_TOUCH (its position in the touchpoint enum)."""
    names = [*catalogue.names, OTHER]
    if len(names) > 2**_TOUCHPOINT_BITS:
        raise ValueError(f"the catalogue has {len(names) - 1} touchpoints; at most {2**_TOUCHPOINT_BITS - 1} fit the packed last touch")
    return {name: code for code, name in enumerate(names)}


def last_touchpoint_code(packed: pl.Expr) -> pl.Expr:
    return (packed // 2) % 2**_TOUCHPOINT_BITS


def last_was_exit(packed: pl.Expr) -> pl.Expr:
    return packed % 2


def last_touch_at(packed: pl.Expr) -> pl.Expr:
    return (packed // 2 ** (_TOUCHPOINT_BITS + 1)).cast(pl.Datetime("us", "UTC"))


def day_columns(catalogue: Catalogue) -> list[pl.Expr]:
    """Per customer and day: touches per touchpoint, friction counts, purchases, abandoned checkouts
    and the latest touch. Plain sums and one maximum: the streaming engine's fast path."""
    event = pl.col("event_type")
    columns = [(pl.col("touchpoint") == name).sum().alias(touches_column(name)) for name in touchpoint_codes(catalogue)]
    columns += [(pl.col("friction") == column).sum().alias(column) for _, _, column, _ in friction_pairs(catalogue)]
    packed = (
        pl.col("ts").dt.epoch("us") * 2 ** (_TOUCHPOINT_BITS + 1)
        + pl.col("touchpoint").to_physical().cast(pl.Int64) * 2
        + (event == "exit_intent").cast(pl.Int64)
    )
    purchases = (event == "purchase").sum()
    return columns + [
        purchases.alias(PURCHASES),
        ((event == "checkout_start").sum().cast(pl.Int64) - purchases.cast(pl.Int64)).clip(lower_bound=0).cast(pl.UInt32).alias(ABANDONED_CHECKOUTS),
        packed.max().alias(LAST_TOUCH),
    ]


def touch_days(clickstream: pl.DataFrame | pl.LazyFrame, support: pl.DataFrame | pl.LazyFrame, surveys: pl.DataFrame | pl.LazyFrame, catalogue: Catalogue) -> pl.DataFrame:
    """One row per customer and day with any touch, in one streaming pass over the events (the
    inputs may be lazy scans of Parquet files)."""
    touches = touch_events(clickstream, support, surveys, catalogue, friction_pairs(catalogue))
    return (
        touches.group_by("customer_id", pl.col("ts").dt.truncate("1d").alias(DAY))
        .agg(day_columns(catalogue))
        .collect(engine="streaming")
    )
