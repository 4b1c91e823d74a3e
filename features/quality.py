"""Rules behind the feature tables' asset checks (event freshness, label rates, missing features),
as plain functions on frames: each returns what is wrong (empty when all is well), in words that say
what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import polars as pl


def event_age_hours(latest: datetime | None, now: datetime) -> float | None:
    """Hours from the latest event to now; None without events."""
    return None if latest is None else (now - latest).total_seconds() / 3600


def label_rates(snapshots: pl.DataFrame) -> pl.DataFrame:
    """Churn rate and population per cutoff of the training snapshots."""
    return (
        snapshots.group_by("cutoff", "split")
        .agg(customers=pl.len(), churn_rate=pl.col("churned").cast(pl.Float64).mean())
        .sort("cutoff")
        .with_columns(pl.col("cutoff").dt.strftime("%Y-%m-%d"))
    )


def label_rate_problems(rates: pl.DataFrame, low: float, high: float) -> list[str]:
    """A cutoff where almost nobody (or almost everybody) churns means the label is broken, not the
    customers."""
    outside = rates.filter(~pl.col("churn_rate").is_between(low, high))
    return [
        f"cutoff {c} ({s}): churn rate {r:.1%} outside {low:.1%}-{high:.1%}"
        for c, s, r in outside.select("cutoff", "split", "churn_rate").iter_rows()
    ]


def null_shares(frame: pl.DataFrame, features: Sequence[str]) -> dict[str, float]:
    if frame.is_empty():
        return {f: 0.0 for f in features}
    counts = frame.select([pl.col(f).is_null().mean().alias(f) for f in features]).row(
        0, named=True
    )
    return {f: float(v) for f, v in counts.items()}


def null_problems(
    shares: Mapping[str, float],
    max_share: float,
    reference: Mapping[str, float] | None = None,
    max_increase: float = 1.0,
) -> dict[str, str]:
    """Features whose missing share is too high, or (against a reference population) rose too much.

    Many features are missing by design (days since the last ticket, for a customer with none), so
    the absolute bound is loose; the rise against training is the sharp test, since a source that
    broke upstream shows up as a feature suddenly missing for far more customers than the model saw.
    """
    problems = {}
    for feature, share in shares.items():
        if share > max_share:
            problems[feature] = f"missing for {share:.1%} of rows (bound {max_share:.0%})"
        elif (
            reference is not None
            and feature in reference
            and share - reference[feature] > max_increase
        ):
            problems[feature] = (
                f"missing for {share:.1%} of rows, {reference[feature]:.1%} in training "
                f"(rise bound {max_increase:.0%})"
            )
    return problems
