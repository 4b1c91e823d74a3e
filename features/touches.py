"""Every touch a customer had, tagged with its touchpoint: clicks, support tickets, survey answers.

Volume and recency are the same for a page view, a support ticket or a survey answer, so they are
counted once over these touches (folded into days by `features.days`); source-specific quality
features read their own tables.
"""

from __future__ import annotations

import polars as pl

from features.catalogue import OTHER, Catalogue
from features.contract import UTC_DATETIME

Friction = tuple[str, str, str, "pl.Expr | None"]  # touchpoint, event type, name, extra condition on the event


TICKET, ANSWER = "support_ticket", "survey_answer"  # the event type of a ticket and of a survey answer as touches


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
        }
    )


def tag_support(support: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    return support.with_columns(touchpoint=catalogue.support_touchpoint())


def tag_surveys(surveys: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    return surveys.with_columns(asked_about=pl.col("touchpoint"), touchpoint=catalogue.survey_touchpoint())


def clickstream_routes(clickstream: pl.DataFrame | pl.LazyFrame, catalogue: Catalogue, friction: list[Friction]) -> pl.DataFrame:
    """The touchpoint, and the friction it counts as, of every distinct (event type, page): the
    catalogue's rules run once per pair, not once per event, and millions of clicks then only look
    their route up."""
    pairs = clickstream.lazy().select("event_type", "page").unique().collect(engine="streaming")
    routes = pairs.with_columns(touchpoint=catalogue.clickstream_touchpoint())
    counts_as = pl.lit(None, dtype=pl.String)
    for touchpoint, event_type, column, _ in friction:
        counts_as = pl.when((pl.col("touchpoint") == touchpoint) & (pl.col("event_type") == event_type)).then(pl.lit(column)).otherwise(counts_as)
    return routes.with_columns(friction=counts_as)


def unmatched_event_types(clickstream: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """(event_type, len) of the clicks no catalogue rule claims, most frequent first: they count as
    touchpoint `other` until the catalogue maps them."""
    unmatched = clickstream_routes(clickstream, catalogue, []).filter(pl.col("touchpoint") == OTHER).select("event_type", "page")
    clicks = clickstream.join(unmatched, on=["event_type", "page"], how="semi", nulls_equal=True)
    return clicks.group_by("event_type").len().sort("len", descending=True)


def _route_lookup(routes: pl.DataFrame, schema: pl.Schema, catalogue: Catalogue) -> tuple[pl.Expr, pl.DataFrame]:
    """Each click's slot in a table of routes, from its event type and page codes: looking a route
    up by position is several times cheaper than joining millions of clicks to the routes on two
    strings. Only pages some page rule can claim get a code; any other page routes as no page,
    so the table stays small however many distinct pages (product ids, query strings) there are."""
    pages = routes.select(pl.col("page").drop_nulls().unique(maintain_order=True)).filter(catalogue.page_claimed())
    page_codes = pl.Enum(pages["page"].to_list())
    width = len(page_codes.categories) + 1  # the last code is "no page"
    event = pl.col("event_type").cast(schema["event_type"]).to_physical().cast(pl.UInt32)
    position = (event * width + pl.col("page").cast(page_codes, strict=False).to_physical().cast(pl.UInt32).fill_null(width - 1)).alias("position")
    slots = pl.DataFrame({"position": pl.int_range(len(schema["event_type"].categories) * width, dtype=pl.UInt32, eager=True)})
    placed = routes.select(position, pl.col("touchpoint").cast(schema["touchpoint"]), pl.col("friction").cast(schema["friction"])).unique("position")
    return position, slots.join(placed, on="position", how="left", maintain_order="left")


def touch_events(
    clickstream: pl.DataFrame | pl.LazyFrame, support: pl.DataFrame | pl.LazyFrame, surveys: pl.DataFrame | pl.LazyFrame,
    catalogue: Catalogue, friction: list[Friction],
) -> pl.LazyFrame:
    """Clickstream events, support tickets (at opening) and survey answers as touches, lazily.

    `friction` lists (touchpoint, event type, name, extra condition on the event): a click of that
    type at that touchpoint, meeting the condition, gets `friction` = name."""
    routes = clickstream_routes(clickstream, catalogue, friction)
    schema = touch_schema(catalogue, [column for _, _, column, _ in friction], routes["event_type"].unique(maintain_order=True).to_list())
    friction_kind = pl.col("friction")
    for _, _, column, extra in friction:
        if extra is not None:
            friction_kind = pl.when((pl.col("friction") == column) & ~extra.fill_null(False)).then(None).otherwise(friction_kind)
    position, lookup = _route_lookup(routes, schema, catalogue)
    clicks = clickstream.lazy().with_columns(
        touchpoint=pl.lit(lookup["touchpoint"]).gather(position), friction=pl.lit(lookup["friction"]).gather(position)
    ).with_columns(friction=friction_kind)
    tickets = support.lazy().select(
        "customer_id", pl.col("opened_at").alias("ts"), pl.lit(TICKET).alias("event_type"), catalogue.support_touchpoint().alias("touchpoint"),
    )
    answers = surveys.lazy().select(
        "customer_id", "ts", pl.lit(ANSWER).alias("event_type"), catalogue.survey_touchpoint().alias("touchpoint"),
    )
    typed = [
        frame.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in schema.items() if c not in frame.collect_schema()])
        .select([pl.col(c).cast(t) for c, t in schema.items()])
        for frame in (clicks, tickets, answers)
    ]
    return pl.concat(typed)
