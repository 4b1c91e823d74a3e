"""Every touch routed to its touchpoint and folded into one row per customer and day with activity
(asset `touchpoint_days`): what the windowed features read.

Touches are clicks, support tickets (at opening) and survey answers, each tagged with its
touchpoint by the catalogue. Volume and recency are the same for a page view, a ticket or an
answer, so they are counted once over these touches; source-specific quality features read their
own tables.

A feature window at a cutoff is then a sum (or a maximum) over a customer's day rows instead of
over raw events, so the raw events are read and routed once however many cutoffs are built, and
the windows read a quarter as many rows (about four touches per active customer-day on the demo
world), all cutoffs' at once (`features.windows`). It is exact because cutoffs fall on midnight
UTC (`require_midnight`): a day's row lies wholly before a cutoff or wholly at or after it.

Days are also the unit of the journey-shape features that used sessions before: a checkout started
on a day that saw no purchase is an abandoned checkout, and a day whose last event was an exit
intent is a visit that ended in one. Unlike sessions, days never straddle a cutoff.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import NamedTuple, cast

import polars as pl

from features.catalogue import OTHER, Catalogue, touchpoints_for_event
from features.ingest.contract import UTC_DATETIME

DAY = "day"
PURCHASES = "purchases"
PURCHASE_VALUE = "purchase_value"  # what the day's purchases were worth (the clicks' `value`)
# checkouts started that day beyond that day's purchases
ABANDONED_CHECKOUTS = "abandoned_checkouts"
# checkouts started that day: kept so that two folds of one day add up (`merge_days`)
CHECKOUT_STARTS = "checkout_starts"
# the day's latest touch, packed: (microseconds << 9) | (touchpoint code << 1) | was an exit intent
LAST_TOUCH = "last_touch"
# what the labels, the plan's dates and the baselines read of the customer-days: a few narrow
# columns of a table whose touch counts are most of its width
ACTIVITY = ("customer_id", DAY, PURCHASES, LAST_TOUCH)
_TOUCHPOINT_BITS = 8
# what stored customer-days were folded by: a change to the fold (`day_columns`) raises it, and
# stored days folded by another version are folded again
FOLD_VERSION = 1
_TOUCHES = "touches__"
# the event type of a ticket and of a survey answer as touches
TICKET, ANSWER = "support_ticket", "survey_answer"


class FrictionEvent(NamedTuple):
    """A click that is friction wherever it happens: its feature word, the words for one and for any
    other count of it, and a condition the click must also meet (None: every such click)."""

    word: str
    one: str
    many: str
    condition: pl.Expr | None = None


FRICTION_EVENTS = {
    "payment_error": FrictionEvent("payment_errors", "payment error", "payment errors"),
    "exit_intent": FrictionEvent(
        "exit_intents", "exit with intent to leave", "exits with intent to leave"
    ),
    "remove_from_cart": FrictionEvent(
        "cart_removals", "item removed from the cart", "items removed from the cart"
    ),
    "unsubscribe": FrictionEvent("unsubscribes", "unsubscribe", "unsubscribes"),
    "plan_downgrade": FrictionEvent("downgrades", "plan downgrade", "plan downgrades"),
    "return_request": FrictionEvent("returns", "return request", "return requests"),
    "delivery_late": FrictionEvent("late_deliveries", "late delivery", "late deliveries"),
    "order_cancelled": FrictionEvent("cancelled_orders", "cancelled order", "cancelled orders"),
    "order_unavailable": FrictionEvent(
        "unavailable_orders",
        "order that could not be fulfilled",
        "orders that could not be fulfilled",
    ),
    "search": FrictionEvent(
        "failed_searches",
        "search that found nothing",
        "searches that found nothing",
        pl.col("value") == 0,
    ),
}


class Friction(NamedTuple):
    """A friction event one touchpoint claims: a click of `event_type` at `touchpoint`, meeting
    `condition` (if any), counts in the day column `column`."""

    touchpoint: str
    event_type: str
    column: str
    condition: pl.Expr | None


def touches_column(touchpoint: str) -> str:
    return f"{_TOUCHES}{touchpoint}"


def is_touches_column(column: str) -> bool:
    return column.startswith(_TOUCHES)


def friction_column(touchpoint: str, word: str) -> str:
    return f"{word}__{touchpoint}"


def friction_pairs(catalogue: Catalogue) -> list[Friction]:
    """Every friction event a touchpoint of the catalogue can claim, with its day column."""
    return [
        Friction(touchpoint, event_type, friction_column(touchpoint, event.word), event.condition)
        for event_type, event in FRICTION_EVENTS.items()
        for touchpoint in touchpoints_for_event(catalogue, event_type)
    ]


def require_midnight(cutoff: datetime) -> datetime:
    """Day rows give exact windows only for cutoffs at midnight UTC; say so instead of blurring a
    day."""
    if cutoff.utcoffset() != timedelta(0) or cutoff.time() != time(0):
        raise ValueError(
            f"cutoff {cutoff.isoformat()} is not midnight UTC; features are built from whole days, "
            f"use a date such as {cutoff:%Y-%m-%d}T00:00:00+00:00"
        )
    return cutoff


def touch_schema(catalogue: Catalogue, friction: list[str], click_types: list[str]) -> pl.Schema:
    """Event type, touchpoint and friction are enums: every day column compares them, and comparing
    small integers is much cheaper than comparing strings over millions of rows (or casting them to
    a categorical)."""
    return pl.Schema(
        {
            "customer_id": pl.String(),
            "ts": UTC_DATETIME,
            "event_type": pl.Enum(list(dict.fromkeys([*click_types, TICKET, ANSWER]))),
            "touchpoint": pl.Enum([*catalogue.names, OTHER]),
            "friction": pl.Enum(friction),
            "value": pl.Float64(),
        }
    )


def tag_support(support: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    return support.with_columns(touchpoint=catalogue.support_touchpoint())


def tag_surveys(surveys: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    return surveys.with_columns(
        asked_about=pl.col("touchpoint"), touchpoint=catalogue.survey_touchpoint()
    )


def clickstream_routes(
    clickstream: pl.DataFrame | pl.LazyFrame, catalogue: Catalogue, friction: list[Friction]
) -> pl.DataFrame:
    """The touchpoint, and the friction it counts as, of every distinct (event type, page): the
    catalogue's rules run once per pair, not once per event, and millions of clicks then only look
    their route up."""
    pairs = clickstream.lazy().select("event_type", "page").unique().collect(engine="streaming")
    routes = pairs.with_columns(touchpoint=catalogue.clickstream_touchpoint())
    counts_as = pl.lit(None, dtype=pl.String)
    for f in friction:
        claimed = (pl.col("touchpoint") == f.touchpoint) & (pl.col("event_type") == f.event_type)
        counts_as = pl.when(claimed).then(pl.lit(f.column)).otherwise(counts_as)
    return routes.with_columns(friction=counts_as)


def unmatched_event_types(clickstream: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """(event_type, len) of the clicks no catalogue rule claims, most frequent first: they count as
    touchpoint `other` until the catalogue maps them."""
    routes = clickstream_routes(clickstream, catalogue, [])
    unmatched = routes.filter(pl.col("touchpoint") == OTHER).select("event_type", "page")
    clicks = clickstream.join(unmatched, on=["event_type", "page"], how="semi", nulls_equal=True)
    return clicks.group_by("event_type").len().sort("len", descending=True)


def _route_lookup(
    routes: pl.DataFrame, schema: pl.Schema, catalogue: Catalogue
) -> tuple[pl.Expr, pl.DataFrame]:
    """Each click's slot in a table of routes, from its event type and page codes: looking a route
    up by position is several times cheaper than joining millions of clicks to the routes on two
    strings. Only pages some page rule can claim get a code; any other page routes as no page,
    so the table stays small however many distinct pages (product ids, query strings) there are."""
    pages = routes.select(pl.col("page").drop_nulls().unique(maintain_order=True))
    page_codes = pl.Enum(pages.filter(catalogue.page_claimed())["page"].to_list())
    width = len(page_codes.categories) + 1  # the last code is "no page"
    event = pl.col("event_type").cast(schema["event_type"]).to_physical().cast(pl.UInt32)
    page = pl.col("page").cast(page_codes, strict=False).to_physical().cast(pl.UInt32)
    position = (event * width + page.fill_null(width - 1)).alias("position")
    # touch_schema makes event_type an Enum; a Schema's values are typed as any DataType
    event_types = len(cast(pl.Enum, schema["event_type"]).categories)
    slots = pl.DataFrame(
        {"position": pl.int_range(event_types * width, dtype=pl.UInt32, eager=True)}
    )
    placed = routes.select(
        position,
        pl.col("touchpoint").cast(schema["touchpoint"]),
        pl.col("friction").cast(schema["friction"]),
    ).unique("position")
    return position, slots.join(placed, on="position", how="left", maintain_order="left")


def touch_events(
    clickstream: pl.DataFrame | pl.LazyFrame,
    support: pl.DataFrame | pl.LazyFrame,
    surveys: pl.DataFrame | pl.LazyFrame,
    catalogue: Catalogue,
    friction: list[Friction],
) -> pl.LazyFrame:
    """Clickstream events, support tickets (at opening) and survey answers as touches, lazily; a
    click that is one of the `friction` events gets that event's day column as its `friction`."""
    routes = clickstream_routes(clickstream, catalogue, friction)
    click_types = routes["event_type"].unique(maintain_order=True).to_list()
    schema = touch_schema(catalogue, [f.column for f in friction], click_types)
    friction_kind = pl.col("friction")
    for f in friction:
        if f.condition is not None:
            missed = (pl.col("friction") == f.column) & ~f.condition.fill_null(False)
            friction_kind = pl.when(missed).then(None).otherwise(friction_kind)
    position, lookup = _route_lookup(routes, schema, catalogue)
    clicks = (
        clickstream.lazy()
        .with_columns(
            touchpoint=pl.lit(lookup["touchpoint"]).gather(position),
            friction=pl.lit(lookup["friction"]).gather(position),
        )
        .with_columns(friction=friction_kind)
    )
    tickets = support.lazy().select(
        "customer_id",
        pl.col("opened_at").alias("ts"),
        pl.lit(TICKET).alias("event_type"),
        catalogue.support_touchpoint().alias("touchpoint"),
    )
    answers = surveys.lazy().select(
        "customer_id",
        "ts",
        pl.lit(ANSWER).alias("event_type"),
        catalogue.survey_touchpoint().alias("touchpoint"),
    )
    typed = [
        frame.with_columns(
            [
                pl.lit(None, dtype=t).alias(c)
                for c, t in schema.items()
                if c not in frame.collect_schema()
            ]
        ).select([pl.col(c).cast(t) for c, t in schema.items()])
        for frame in (clicks, tickets, answers)
    ]
    return pl.concat(typed)


def touchpoint_codes(catalogue: Catalogue) -> dict[str, int]:
    """The code each touchpoint has in LAST_TOUCH (its position in the touchpoint enum)."""
    names = [*catalogue.names, OTHER]
    if len(names) > 2**_TOUCHPOINT_BITS:
        raise ValueError(
            f"the catalogue has {len(names) - 1} touchpoints; at most "
            f"{2**_TOUCHPOINT_BITS - 1} fit the packed last touch"
        )
    return {name: code for code, name in enumerate(names)}


def last_touchpoint_code(packed: pl.Expr) -> pl.Expr:
    return (packed // 2) % 2**_TOUCHPOINT_BITS


def last_was_exit(packed: pl.Expr) -> pl.Expr:
    return packed % 2


def last_touch_at(packed: pl.Expr) -> pl.Expr:
    return (packed // 2 ** (_TOUCHPOINT_BITS + 1)).cast(pl.Datetime("us", "UTC"))


def day_columns(catalogue: Catalogue) -> list[pl.Expr]:
    """Per customer and day: touches per touchpoint, friction counts, purchases, checkouts started
    and the latest touch. Plain sums and one maximum: the streaming engine's fast path, and two
    folds of parts of a day's events merge into the fold of all of them (`merge_days`)."""
    event = pl.col("event_type")
    columns = [
        (pl.col("touchpoint") == name).sum().alias(touches_column(name))
        for name in touchpoint_codes(catalogue)
    ]
    columns += [
        (pl.col("friction") == f.column).sum().alias(f.column) for f in friction_pairs(catalogue)
    ]
    packed = (
        pl.col("ts").dt.epoch("us") * 2 ** (_TOUCHPOINT_BITS + 1)
        + pl.col("touchpoint").to_physical().cast(pl.Int64) * 2
        + (event == "exit_intent").cast(pl.Int64)
    )
    value = pl.when(event == "purchase").then(pl.col("value")).otherwise(0.0).fill_null(0.0)
    return [
        *columns,
        (event == "purchase").sum().alias(PURCHASES),
        value.sum().alias(PURCHASE_VALUE),
        (event == "checkout_start").sum().alias(CHECKOUT_STARTS),
        packed.max().alias(LAST_TOUCH),
    ]


def _with_abandoned(days: pl.DataFrame) -> pl.DataFrame:
    abandoned = pl.col(CHECKOUT_STARTS).cast(pl.Int64) - pl.col(PURCHASES).cast(pl.Int64)
    return days.with_columns(
        abandoned.clip(lower_bound=0).cast(pl.UInt32).alias(ABANDONED_CHECKOUTS)
    )


def fold_touchpoint_days(
    clickstream: pl.DataFrame | pl.LazyFrame,
    support: pl.DataFrame | pl.LazyFrame,
    surveys: pl.DataFrame | pl.LazyFrame,
    catalogue: Catalogue,
) -> pl.DataFrame:
    """One row per customer and day with any touch, in one streaming pass over the events (the
    inputs may be lazy scans of Parquet files)."""
    touches = touch_events(clickstream, support, surveys, catalogue, friction_pairs(catalogue))
    days = (
        touches.group_by("customer_id", pl.col("ts").dt.truncate("1d").alias(DAY))
        .agg(day_columns(catalogue))
        .collect(engine="streaming")
    )
    return _with_abandoned(days)


def merge_days(days: pl.DataFrame) -> pl.DataFrame:
    """Day rows of folds of different events (a day's clicks that arrived in two files) as one row
    per customer and day, as one fold of all those events gives: counts add up, the last touch is
    the latest, and the abandoned checkouts follow from the day's checkouts and purchases."""
    keys = ["customer_id", DAY]
    summed = [c for c in days.columns if c not in (*keys, LAST_TOUCH, ABANDONED_CHECKOUTS)]
    merged = days.group_by(keys).agg(pl.col(summed).sum(), pl.col(LAST_TOUCH).max())
    return _with_abandoned(merged.select(days.drop(ABANDONED_CHECKOUTS).columns))


def by_month(days: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Day rows by the month of their day (YYYY-MM): the pieces a customer bucket's days are kept
    in, so a day's new events rewrite one month, not the year."""
    month = (pl.col(DAY).dt.year() * 100 + pl.col(DAY).dt.month()).alias("_month")
    parts = days.with_columns(month).partition_by("_month", as_dict=True)
    return {f"{m // 100:04d}-{m % 100:02d}": part.drop("_month") for (m,), part in parts.items()}


def latest_touch(days: pl.DataFrame | pl.LazyFrame) -> datetime | None:
    """The moment of the latest touch in the day rows; None without any."""
    return days.lazy().select(last_touch_at(pl.col(LAST_TOUCH).max())).collect().item()
