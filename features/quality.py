"""Rules behind the feature tables' asset checks (event freshness, label rates, missing features),
as plain functions on frames: each returns what is wrong (empty when all is well), in words that say
what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import polars as pl

_ROWS = "__rows__"  # the row count beside the null counts (no feature is named so)


def event_age_hours(latest: datetime | None, now: datetime) -> float | None:
    """Hours from the latest event to now; None without events."""
    return None if latest is None else (now - latest).total_seconds() / 3600


def label_rates(snapshots: pl.DataFrame) -> pl.DataFrame:
    """Population, churners and churn rate per cutoff of the training snapshots."""
    churned = pl.col("churned").cast(pl.Int64)
    return (
        snapshots.group_by("cutoff")
        .agg(
            customers=pl.len(),
            churners=churned.sum(),
            churn_rate=churned.cast(pl.Float64).mean(),
        )
        .sort("cutoff")
        .with_columns(pl.col("cutoff").dt.strftime("%Y-%m-%d"))
    )


def informative_cutoffs(snapshots: pl.DataFrame, min_each: int) -> tuple[pl.DataFrame, list[str]]:
    """The snapshots of the cutoffs with at least `min_each` churners and stayers, and a note for
    each cutoff left out: a cutoff where (almost) everyone churns, or nobody does, has nothing to
    learn from (a young shop's first months, a cohort of one-time buyers), and a model judged on
    it would be judged on noise."""
    rates = label_rates(snapshots)
    kept = rates.filter(
        (pl.col("churners") >= min_each) & (pl.col("customers") - pl.col("churners") >= min_each)
    )["cutoff"].to_list()
    notes = degenerate_labels(rates, min_each)
    # the kept days' cutoffs, matched on the few distinct values rather than every row's text
    cutoffs = snapshots["cutoff"].unique()
    chosen = cutoffs.filter(cutoffs.dt.strftime("%Y-%m-%d").is_in(kept))
    return snapshots.filter(pl.col("cutoff").is_in(chosen.implode())), notes


def degenerate_labels(rates: pl.DataFrame, min_each: int) -> list[str]:
    """Cutoffs with fewer than `min_each` churners or stayers: nothing to learn or judge from, so
    the label or the population is broken, whatever the business."""
    few = rates.filter(
        (pl.col("churners") < min_each) | (pl.col("customers") - pl.col("churners") < min_each)
    )
    return [
        f"cutoff {c}: {n:,} churners among {total:,} customers (at least {min_each} of each "
        "are needed to learn and judge)"
        for c, total, n in few.select("cutoff", "customers", "churners").iter_rows()
    ]


def label_rate_problems(rates: pl.DataFrame, low: float, high: float) -> list[str]:
    """Cutoffs whose churn rate is unusual: rarely a broken label, since a cohort of one-time
    buyers churns at 70-80% and a contract business at a few percent, but worth a look."""
    outside = rates.filter(~pl.col("churn_rate").is_between(low, high))
    return [
        f"cutoff {c}: churn rate {r:.1%} outside {low:.1%}-{high:.1%}"
        for c, r in outside.select("cutoff", "churn_rate").iter_rows()
    ]


def null_shares(frame: pl.DataFrame | pl.LazyFrame, features: Sequence[str]) -> dict[str, float]:
    """Each feature's share of missing rows (0 in an empty frame). A lazy scan is counted in
    streaming batches, so the checks never load a bucketed table whole."""
    counts = (
        frame.lazy()
        .select(pl.len().alias(_ROWS), *[pl.col(f).is_null().sum().alias(f) for f in features])
        .collect(engine="streaming")
        .row(0, named=True)
    )
    rows = counts.pop(_ROWS)
    return {f: float(v) / rows if rows else 0.0 for f, v in counts.items()}


def null_problems(
    shares: Mapping[str, float],
    max_share: float,
    reference: Mapping[str, float] | None = None,
    max_increase: float = 1.0,
) -> dict[str, tuple[str, bool]]:
    """Features whose missing share is too high, or (against a reference population) rose too much,
    and whether that should stop the run.

    Only features missing by design can be missing at all (days since the last ticket, for a
    customer with none; the others have a fill value), so a source that broke upstream shows as
    features missing for everyone, which stops the run; missing for nearly everyone (gaps between
    purchases, in a shop of one-time buyers) only warns. A feature
    missing more often than in training (no activity in 90 days, for a cohort that aged past its
    first months) is more often a population that moved than a broken source: that only warns,
    since no bound on it fits every business.
    """
    problems = {}
    for feature, share in shares.items():
        if share >= 1.0:
            problems[feature] = ("missing for every row: its source is empty or broke", True)
        elif share > max_share:
            problems[feature] = (f"missing for {share:.1%} of rows (bound {max_share:.0%})", False)
        elif (
            reference is not None
            and feature in reference
            and share - reference[feature] > max_increase
        ):
            problems[feature] = (
                f"missing for {share:.1%} of rows, {reference[feature]:.1%} in training "
                f"(rise bound {max_increase:.0%})",
                False,
            )
    return problems
