"""Journeys as a data scientist explores them: how much each touchpoint is touched, what churned
and retained customers did in their last days, where their last visit ended, how they scored
each touchpoint and how long support kept them waiting (notebooks/01_touchpoint_journeys).

Everything reads the pipeline's own assets (`touchpoint_days`, `training_snapshots`, `surveys`,
`support`), so what a notebook shows is what the features see. A customer's outcome is their label
at the newest labelled cutoff, and only what happened before that cutoff is looked at: the same
point-in-time rule as the features.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from features.catalogue import OTHER, Catalogue
from features.touchpoint_days import (
    DAY,
    LAST_TOUCH,
    last_touchpoint_code,
    last_was_exit,
    touches_column,
    touchpoint_codes,
)

OUTCOME = "outcome"  # "churned" or "retained"
# how long support took to first answer, in bands a support lead reads (upper bounds, hours)
RESPONSE_BANDS = ((1.0, "under 1 h"), (4.0, "1-4 h"), (24.0, "4-24 h"), (72.0, "1-3 days"))
SLOWEST_BAND = "over 3 days"
NO_TICKET = "no ticket"


def outcomes(training_snapshots: pl.DataFrame) -> pl.DataFrame:
    """(customer_id, cutoff, outcome) at the newest labelled cutoff: who churned in the horizon
    after it and who stayed."""
    newest = training_snapshots["cutoff"].max()
    return training_snapshots.filter(pl.col("cutoff") == newest).select(
        "customer_id",
        "cutoff",
        pl.when(pl.col("churned") == 1)
        .then(pl.lit("churned"))
        .otherwise(pl.lit("retained"))
        .alias(OUTCOME),
    )


def _touchpoints(days: pl.DataFrame, catalogue: Catalogue) -> list[str]:
    return [t for t in [*catalogue.names, OTHER] if touches_column(t) in days.columns]


def _touches_long(days: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """One row per customer, day and touchpoint with touches."""
    names = _touchpoints(days, catalogue)
    return (
        days.select("customer_id", DAY, *(pl.col(touches_column(t)).alias(t) for t in names))
        .unpivot(index=["customer_id", DAY], variable_name="touchpoint", value_name="touches")
        .filter(pl.col("touches") > 0)
    )


def _with_phase(frame: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    return frame.with_columns(
        phase=pl.col("touchpoint").map_elements(
            lambda t: catalogue.label_of(catalogue.phase_of(t)), return_dtype=pl.String
        ),
        label=pl.col("touchpoint").map_elements(catalogue.label_of, return_dtype=pl.String),
    )


def touch_volumes(days: pl.DataFrame, catalogue: Catalogue) -> pl.DataFrame:
    """Per touchpoint: its journey phase, all its touches, and how many customers touched it."""
    volumes = (
        _touches_long(days, catalogue)
        .group_by("touchpoint")
        .agg(pl.col("touches").sum(), pl.col("customer_id").n_unique().alias("customers"))
        .sort("touches", descending=True)
    )
    return _with_phase(volumes, catalogue)


def _before_cutoff(days: pl.DataFrame, outcome: pl.DataFrame, window_days: int) -> pl.DataFrame:
    return days.join(outcome, on="customer_id").filter(
        (pl.col(DAY) < pl.col("cutoff"))
        & (pl.col(DAY) >= pl.col("cutoff") - timedelta(days=window_days))
    )


def journey_timelines(
    days: pl.DataFrame, outcome: pl.DataFrame, catalogue: Catalogue, window_days: int = 90
) -> pl.DataFrame:
    """Touches per customer of each outcome, by touchpoint and day before the cutoff (1 is the
    cutoff's eve), over the last `window_days`: how the journeys of leavers and stayers differ."""
    group_sizes = outcome.group_by(OUTCOME).len("customers_in_group")
    touches = _touches_long(_before_cutoff(days, outcome, window_days), catalogue)
    return (
        touches.join(outcome, on="customer_id")
        .with_columns(days_before=(pl.col("cutoff") - pl.col(DAY)).dt.total_days().cast(pl.Int32))
        .group_by(OUTCOME, "days_before", "touchpoint")
        .agg(pl.col("touches").sum())
        .join(group_sizes, on=OUTCOME)
        .with_columns(touches_per_customer=pl.col("touches") / pl.col("customers_in_group"))
        .sort(OUTCOME, "touchpoint", "days_before")
    )


def last_touchpoints(
    days: pl.DataFrame, outcome: pl.DataFrame, catalogue: Catalogue, window_days: int = 90
) -> pl.DataFrame:
    """Where each outcome's last touch before the cutoff was (within `window_days`): the share of
    its customers per touchpoint, and how many of those last visits ended in an exit intent."""
    name_of = {code: name for name, code in touchpoint_codes(catalogue).items()}
    last = (
        _before_cutoff(days, outcome, window_days)
        .group_by("customer_id", OUTCOME)
        .agg(pl.col(LAST_TOUCH).max())
        .with_columns(
            touchpoint=last_touchpoint_code(pl.col(LAST_TOUCH)).replace_strict(
                name_of, return_dtype=pl.String
            ),
            exit_intent=last_was_exit(pl.col(LAST_TOUCH)).cast(pl.Boolean),
        )
    )
    group_sizes = outcome.group_by(OUTCOME).len("customers_in_group")
    return _with_phase(
        last.group_by(OUTCOME, "touchpoint")
        .agg(pl.len().alias("customers"), pl.col("exit_intent").sum().alias("exit_intents"))
        .join(group_sizes, on=OUTCOME)
        .with_columns(share=pl.col("customers") / pl.col("customers_in_group"))
        .sort(OUTCOME, "share", descending=[False, True]),
        catalogue,
    )


def survey_scores(
    surveys: pl.DataFrame, catalogue: Catalogue, outcome: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Per touchpoint (the catalogue's routing, as the features use it) and survey type: answers
    and their mean and median score; with `outcome`, only answers before the cutoff, split by
    churned and retained."""
    answers = surveys.with_columns(touchpoint=catalogue.survey_touchpoint())
    by = ["touchpoint", "survey_type"]
    if outcome is not None:
        answers = answers.join(outcome, on="customer_id").filter(pl.col("ts") < pl.col("cutoff"))
        by = [*by, OUTCOME]
    return (
        answers.group_by(by)
        .agg(
            pl.len().alias("answers"),
            pl.col("score").mean().alias("mean_score"),
            pl.col("score").median().alias("median_score"),
        )
        .sort(by)
    )


def response_band(hours: pl.Expr) -> pl.Expr:
    """The band a first response time falls in (RESPONSE_BANDS; never answered: SLOWEST_BAND)."""
    band = pl.when(hours.is_null()).then(pl.lit(SLOWEST_BAND))
    for bound, label in RESPONSE_BANDS:
        band = band.when(hours < bound).then(pl.lit(label))
    return band.otherwise(pl.lit(SLOWEST_BAND))


def response_times_vs_churn(
    support: pl.DataFrame, outcome: pl.DataFrame, window_days: int = 90
) -> pl.DataFrame:
    """Churn rate by how long support took to first answer the customer's slowest ticket opened
    in the last `window_days` before the cutoff; customers without such a ticket are a band of
    their own, the reference."""
    tickets = support.join(outcome, on="customer_id").filter(
        (pl.col("opened_at") < pl.col("cutoff"))
        & (pl.col("opened_at") >= pl.col("cutoff") - timedelta(days=window_days))
    )
    waits = tickets.group_by("customer_id").agg(
        # a ticket not answered by the cutoff waited at least until then
        (pl.min_horizontal("first_response_at", "cutoff") - pl.col("opened_at"))
        .dt.total_seconds()
        .truediv(3600)
        .max()
        .alias("slowest_response_hours")
    )
    order = [label for _, label in RESPONSE_BANDS] + [SLOWEST_BAND, NO_TICKET]
    return (
        outcome.join(waits, on="customer_id", how="left")
        .with_columns(
            band=pl.when(pl.col("slowest_response_hours").is_null())
            .then(pl.lit(NO_TICKET))
            .otherwise(response_band(pl.col("slowest_response_hours")))
        )
        .group_by("band")
        .agg(
            pl.len().alias("customers"),
            (pl.col(OUTCOME) == "churned").mean().alias("churn_rate"),
        )
        .with_columns(order=pl.col("band").replace_strict(order, list(range(len(order)))))
        .sort("order")
        .drop("order")
    )
