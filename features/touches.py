"""One long table of every touch a customer had, each tagged with its touchpoint and phase.

Volume and recency features are the same for a page view, a support ticket or a survey answer, so
they are computed once over this table; source-specific quality features read their own tables.
"""

from __future__ import annotations

import polars as pl

from features.catalogue import Catalogue
from features.contract import UTC_DATETIME

TOUCH_SCHEMA = pl.Schema(
    {
        "customer_id": pl.String(),
        "ts": UTC_DATETIME,
        "source": pl.String(),
        "event_type": pl.String(),
        "touchpoint": pl.String(),
        "phase": pl.String(),
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
    clicks = clickstream.select(
        "customer_id", "ts", pl.lit("clickstream").alias("source"), "event_type",
        catalogue.clickstream_touchpoint().alias("touchpoint"), "page", "session_id", "value",
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
    return touches.select([pl.col(c).cast(t) for c, t in TOUCH_SCHEMA.items()]).sort("customer_id", "ts")
