"""Monthly training cutoffs whose horizon is fully observed, and the stacked training table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from features.build import feature_plan
from features.labels import churn_labels, population
from features.registry import FeatureDef
from features.windows import window_table


class NotEnoughHistory(ValueError):
    """The inputs do not span enough time to train and validate by time."""


def scoring_cutoff(as_of: datetime) -> datetime:
    """The midnight that ends `as_of`'s day: scoring sees every touch up to and including `as_of`'s day
    (features are built from whole days)."""
    return datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) + timedelta(days=1)


def month_start_at_or_before(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def previous_month(moment: datetime) -> datetime:
    return datetime(moment.year - (moment.month == 1), 12 if moment.month == 1 else moment.month - 1, 1, tzinfo=UTC)


def plan_cutoffs(first_event: datetime, as_of: datetime, horizon_days: int, train_cutoffs: int, min_history_days: int = 30) -> tuple[list[datetime], datetime]:
    """(training cutoffs, holdout cutoff), all month starts.

    The holdout is the latest month start whose horizon ends by `as_of`. Training cutoffs end their
    horizon by the holdout cutoff, so no training label sees the holdout's label window.
    """
    horizon = timedelta(days=horizon_days)
    holdout = month_start_at_or_before(as_of - horizon)
    cutoffs, cutoff = [], month_start_at_or_before(holdout - horizon)
    while len(cutoffs) < train_cutoffs and cutoff - first_event >= timedelta(days=min_history_days):
        cutoffs.append(cutoff)
        cutoff = previous_month(cutoff)
    if holdout - first_event < timedelta(days=min_history_days) or not cutoffs:
        span = (as_of - first_event).days
        raise NotEnoughHistory(
            f"the inputs span {span} days ({first_event:%Y-%m-%d} to {as_of:%Y-%m-%d}); training by time with a "
            f"{horizon_days}-day horizon needs at least {2 * horizon_days + min_history_days + 31} days. "
            "Add older events or lower horizon_days."
        )
    return sorted(cutoffs), holdout


def snapshot_plan(sources: dict[str, pl.DataFrame], cutoff: datetime, horizon_days: int, registry: list[FeatureDef], windows: pl.LazyFrame | None = None) -> pl.LazyFrame:
    """Features as of the cutoff and labels from its own horizon, for its population (`windows`: the
    window table when built for many cutoffs at once)."""
    customers, days = sources["customers"], sources["days"]
    members = population(customers, days, cutoff, horizon_days)
    labels = churn_labels(customers, days, members, cutoff, horizon_days)
    features = feature_plan({name: frame.lazy() for name, frame in sources.items()}, members.lazy(), cutoff, registry, windows)
    return features.join(labels.lazy(), on="customer_id", maintain_order="left").with_columns(cutoff=pl.lit(cutoff, dtype=pl.Datetime("us", "UTC")))


def training_snapshots(sources: dict[str, pl.DataFrame], cutoffs: list[datetime], holdout: datetime, horizon_days: int, registry: list[FeatureDef]) -> pl.DataFrame:
    """All snapshots stacked, with `split` telling training rows from the holdout. The customer-days'
    windows are summed for every cutoff in one pass (`features.windows`), and the cutoffs' plans run
    as one query, so both cores stay busy."""
    windows = window_table(sources["days"], [*cutoffs, holdout]).lazy()
    splits = [(c, "train") for c in cutoffs] + [(holdout, "holdout")]
    return pl.concat(
        snapshot_plan(sources, c, horizon_days, registry, windows).with_columns(split=pl.lit(split)) for c, split in splits
    ).collect(engine="streaming")
