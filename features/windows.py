"""What the day-based features read, per customer and cutoff, for many cutoffs at once: every day
column summed over the 7, 30 and 90 days before the cutoff, active days, days that ended in an exit
intent, and from all history the last day at each touchpoint and the last touch.

Monthly cutoffs are closer together than the 90-day window, so each day lies in several cutoffs'
windows; summing each cutoff's days separately read every day up to a dozen times. Instead the
windows' edges (each cutoff, and 7, 30 and 90 days before it) cut time into intervals, the days are
summed once per customer and interval, and each window is the sum of the few intervals it spans.
The intervals are exact because windows and days both start at midnight UTC.

This is where features filter day rows by time (`features.snapshots.cut` does it for the other
sources): a cutoff's row reads only days strictly before it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeVar

import polars as pl

from features.touchpoint_days import (
    DAY,
    LAST_TOUCH,
    is_touches_column,
    last_was_exit,
    require_midnight,
)

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
WINDOWS_DAYS = (7, 30, 90)
CUTOFF = "cutoff"
ACTIVE_DAYS = "active_days"  # day rows: days with any touch
EXIT_DAYS = "days_ending_in_exit"  # days whose last touch was an exit intent
_INTERVAL = "_interval"
_UTC_US = pl.Datetime("us", "UTC")
_NOT_SUMMED = {"customer_id", DAY, LAST_TOUCH}


def window_column(column: str, days: int) -> str:
    """A day column (or ACTIVE_DAYS, EXIT_DAYS) summed over the `days` days before the cutoff."""
    return f"{column}__{days}d"


def last_day_column(column: str) -> str:
    """The latest day before the cutoff on which a day column was positive (null if never)."""
    return f"{column}__last_day"


def window_table(days: Frame, cutoffs: list[datetime]) -> Frame:
    """One row per customer with any day before the cutoff, and cutoff (column CUTOFF): every summed
    day column (all but LAST_TOUCH) over each of WINDOWS_DAYS, ACTIVE_DAYS and EXIT_DAYS likewise,
    the last day with a touch at each touchpoint, and LAST_TOUCH over all history.

    Windows with no day rows are 0. Lazy in, lazy out; cutoffs must be midnights UTC."""
    if not cutoffs:
        raise ValueError("window_table needs at least one cutoff")
    for cutoff in cutoffs:
        require_midnight(cutoff)
    summed = [c for c in days.lazy().collect_schema().names() if c not in _NOT_SUMMED]
    last_day_of = [c for c in summed if is_touches_column(c)]
    edges = sorted({cutoff - timedelta(days=d) for cutoff in cutoffs for d in (0, *WINDOWS_DAYS)})
    # interval i holds the days in [edges[i-1], edges[i])
    after_edge = {edge: i + 1 for i, edge in enumerate(edges)}
    interval = (
        pl.lit(pl.Series(edges, dtype=_UTC_US))
        .search_sorted(pl.col(DAY), side="right")
        .alias(_INTERVAL)
    )
    latest = [
        *[
            pl.when(pl.col(c) > 0).then(pl.col(DAY)).max().alias(last_day_column(c))
            for c in last_day_of
        ],
        pl.col(LAST_TOUCH).max(),
    ]
    recent = (
        days.lazy()
        .filter(pl.col(DAY).is_between(edges[0], max(cutoffs), closed="left"))
        .group_by("customer_id", interval)
        .agg(
            pl.col(summed).sum(),
            pl.len().alias(ACTIVE_DAYS),
            last_was_exit(pl.col(LAST_TOUCH)).sum().alias(EXIT_DAYS),
            *latest,
        )
    )
    # days before every window (interval 0) only ever count for the last days and the last touch
    older = (
        days.lazy()
        .filter(pl.col(DAY) < edges[0])
        .group_by("customer_id")
        .agg(latest)
        .with_columns(pl.lit(0, dtype=pl.UInt32).alias(_INTERVAL))
    )
    intervals = pl.concat([recent, older], how="diagonal_relaxed")
    counts = [*summed, ACTIVE_DAYS, EXIT_DAYS]

    def at(cutoff: datetime) -> pl.LazyFrame:
        history = (
            intervals.filter(pl.col(_INTERVAL) < after_edge[cutoff])
            .group_by("customer_id")
            .agg(pl.col([last_day_column(c) for c in last_day_of]).max(), pl.col(LAST_TOUCH).max())
        )
        for d in WINDOWS_DAYS:
            spanned = pl.col(_INTERVAL).is_between(
                after_edge[cutoff - timedelta(days=d)], after_edge[cutoff], closed="left"
            )
            sums = (
                intervals.filter(spanned)
                .group_by("customer_id")
                .agg(pl.col(counts).sum().name.suffix(f"__{d}d"))
            )
            history = history.join(sums, on="customer_id", how="left")
        return history.with_columns(
            pl.col([window_column(c, d) for c in counts for d in WINDOWS_DAYS]).fill_null(0),
            pl.lit(cutoff, dtype=_UTC_US).alias(CUTOFF),
        )

    table = pl.concat([at(cutoff) for cutoff in sorted(set(cutoffs))])
    if isinstance(days, pl.LazyFrame):
        return table
    return table.collect(engine="streaming")
