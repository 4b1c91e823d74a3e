"""One long table of every touch a customer had, each tagged with its touchpoint and phase.

Volume and recency features are the same for a page view, a support ticket or a survey answer, so
they are computed once over this table; source-specific quality features read their own tables.
"""

from __future__ import annotations

import polars as pl

from features.catalogue import OTHER, PHASES, Catalogue
from features.contract import UTC_DATETIME

SOURCES = pl.Enum(["clickstream", "support", "surveys"])


def touch_schema(catalogue: Catalogue) -> pl.Schema:
    """Touchpoint and phase are enums of the catalogue: every feature filters on them, and comparing
    small integers is much cheaper than comparing strings over millions of rows."""
    return pl.Schema(
        {
            "customer_id": pl.String(),
            "ts": UTC_DATETIME,
            "source": SOURCES,
            "event_type": pl.Categorical(),
            "touchpoint": pl.Enum([*catalogue.names, OTHER]),
            "phase": pl.Enum([*PHASES, "unassigned"]),
            "page": pl.String(),
            "session_id": pl.String(),
            "value": pl.Float64(),
        }
    )


def tag_support(support: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    return support.with_columns(touchpoint=catalogue.support_touchpoint())


def tag_surveys(surveys: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    return surveys.with_columns(asked_about=pl.col("touchpoint"), touchpoint=catalogue.survey_touchpoint())


def touch_events(clickstream: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """Clickstream events, support tickets (at opening) and survey answers as touches."""
    phases = {t.name: t.phase for t in catalogue.touchpoints}
    # the catalogue's rules run once per distinct (event type, page), not once per event
    routes = clickstream.select("event_type", "page").unique().with_columns(touchpoint=catalogue.clickstream_touchpoint())
    clicks = clickstream.join(routes, on=["event_type", "page"], how="left", nulls_equal=True).select(
        "customer_id", "ts", pl.lit("clickstream").alias("source"), "event_type", "touchpoint", "page", "session_id", "value",
    )
    tickets = tag_support(support, catalogue).select(
        "customer_id", pl.col("opened_at").alias("ts"), pl.lit("support").alias("source"),
        pl.lit("support_ticket").alias("event_type"), "touchpoint",
    )
    answers = tag_surveys(surveys, catalogue).select(
        "customer_id", "ts", pl.lit("surveys").alias("source"), pl.format("survey_{}", "survey_type").alias("event_type"),
        "touchpoint", pl.col("score").alias("value"),
    )
    touches = pl.concat([clicks, tickets, answers], how="diagonal_relaxed").with_columns(
        phase=pl.col("touchpoint").replace_strict(phases, default="unassigned", return_dtype=pl.String)
    )
    # sorted by customer and time: per-customer aggregations then read contiguous rows (about 2x faster)
    return touches.select([pl.col(c).cast(t) for c, t in touch_schema(catalogue).items()]).sort("customer_id", "ts")
