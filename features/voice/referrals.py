"""The referral rate, the touchpoint KPI our sources call the ultimate one: how many new customers
came through a recommendation, how they stay, and what the customers who recommend rated highly.

All of it reads the optional customers columns `acquisition_channel` (a customer is referred when
it is `referral`) and `referred_by` (the recommender's id); a business without them gets empty
tables, and the report says the columns would show it.
"""

from __future__ import annotations

import polars as pl

from features.catalogue import Catalogue
from features.ingest.contract import SURVEY_SCALES

REFERRAL = "referral"
TREND_MONTHS = 6  # the trend compares the latest months with the months before them


def has_referrals(customers: pl.DataFrame) -> bool:
    return (
        "acquisition_channel" in customers.columns
        and customers["acquisition_channel"].drop_nulls().len() > 0
    )


def _referred() -> pl.Expr:
    return pl.col("acquisition_channel").str.to_lowercase().str.strip_chars() == REFERRAL


def referral_rate(customers: pl.DataFrame) -> float | None:
    """The share of customers with a known channel who came by referral."""
    if not has_referrals(customers):
        return None
    known = customers.filter(pl.col("acquisition_channel").is_not_null())
    return float(known.select(_referred().mean()).item())


def referrals_by_month(customers: pl.DataFrame) -> pl.DataFrame:
    """Per month of signup: customers with a known channel, those referred, and the rate."""
    schema = {"signup_month": pl.String, "customers": pl.UInt32, "referred": pl.UInt32}
    if not has_referrals(customers):
        return pl.DataFrame(schema={**schema, "referral_rate": pl.Float64})
    return (
        customers.filter(pl.col("acquisition_channel").is_not_null())
        .group_by(signup_month=pl.col("signup_at").dt.strftime("%Y-%m"))
        .agg(customers=pl.len(), referred=_referred().sum().cast(pl.UInt32))
        .with_columns(referral_rate=pl.col("referred") / pl.col("customers"))
        .sort("signup_month")
    )


def referral_trend(by_month: pl.DataFrame) -> float | None:
    """The referral rate of the latest TREND_MONTHS months of signups minus that of the
    TREND_MONTHS before (None without two such spans): positive when recommendations grow."""
    if by_month.height < 2 * TREND_MONTHS:
        return None
    recent, before = by_month.tail(TREND_MONTHS), by_month.tail(2 * TREND_MONTHS).head(TREND_MONTHS)
    return _rate(recent) - _rate(before)


def _rate(months: pl.DataFrame) -> float:
    return float(months.select(pl.col("referred").sum() / pl.col("customers").sum()).item())


def referred_churn(customers: pl.DataFrame, snapshots: pl.DataFrame) -> pl.DataFrame:
    """Churn within the horizon after the newest labelled cutoff, referred customers against the
    others: labels the model never scored, so the comparison is the world's, not the model's."""
    schema = {"acquired": pl.String, "customers": pl.UInt32, "churn_rate": pl.Float64}
    if not has_referrals(customers) or snapshots.is_empty():
        return pl.DataFrame(schema=schema)
    newest = snapshots.filter(pl.col("cutoff") == pl.col("cutoff").max())
    channel = customers.select("customer_id", referred=_referred().fill_null(False))
    return (
        newest.join(channel, on="customer_id", how="left")
        .group_by(
            acquired=pl.when(pl.col("referred")).then(pl.lit("referred")).otherwise(pl.lit("other"))
        )
        .agg(customers=pl.len(), churn_rate=pl.col("churned").cast(pl.Float64).mean())
        .sort("acquired", descending=True)
        .cast(schema)  # type: ignore[arg-type]
    )


def recommender_ratings(
    customers: pl.DataFrame, surveys: pl.DataFrame, catalogue: Catalogue
) -> pl.DataFrame:
    """Per touchpoint, the mean answer (as a share of its scale's top, so NPS and CSAT compare) of
    the customers who referred someone against everyone else's, strongest lead first: what the
    recommenders found worth recommending."""
    schema = {
        "touchpoint": pl.String,
        "recommenders_answers": pl.UInt32,
        "recommenders_score": pl.Float64,
        "others_score": pl.Float64,
        "lead": pl.Float64,
    }
    if "referred_by" not in customers.columns or surveys.is_empty():
        return pl.DataFrame(schema=schema)
    recommenders = customers["referred_by"].drop_nulls().unique()
    if recommenders.is_empty():
        return pl.DataFrame(schema=schema)
    low = pl.col("survey_type").replace_strict(
        {t: s[0] for t, s in SURVEY_SCALES.items()}, return_dtype=pl.Float64
    )
    high = pl.col("survey_type").replace_strict(
        {t: s[1] for t, s in SURVEY_SCALES.items()}, return_dtype=pl.Float64
    )
    rated = surveys.select(
        catalogue.survey_touchpoint().alias("touchpoint"),
        recommender=pl.col("customer_id").is_in(recommenders.implode()),
        scaled=(pl.col("score") - low) / (high - low),
    )
    mine, others = pl.col("recommender"), ~pl.col("recommender")
    return (
        rated.group_by("touchpoint")
        .agg(
            recommenders_answers=mine.sum().cast(pl.UInt32),
            recommenders_score=pl.col("scaled").filter(mine).mean(),
            others_score=pl.col("scaled").filter(others).mean(),
        )
        .filter(pl.col("recommenders_answers") > 0)
        .with_columns(lead=pl.col("recommenders_score") - pl.col("others_score"))
        .sort("lead", descending=True, nulls_last=True)
        .cast(schema)  # type: ignore[arg-type]
    )
