"""Point-in-time feature build: per customer, from rows strictly before the cutoff (a midnight UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

import polars as pl

from features.days import require_midnight
from features.feature import PER_CUSTOMER, SOURCE_TIME, FeatureDef
from features.windows import CUTOFF, window_table

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
# XGBoost reads float32 anyway, and a million customers' stacked snapshots take half the memory
FEATURE_DTYPE = pl.Float32
_ROW = "_population_row"


def cut(sources: dict[str, Frame], cutoff: datetime, windows: Frame | None = None) -> dict[str, Frame]:
    """Every source as known strictly before the cutoff: tickets, answers and customers cut to the
    rows before it, customer-days summed into their windows at it. `windows`, when given, is the
    window table already built for this cutoff among others (`training_snapshots` builds all
    cutoffs' at once); only this cutoff's rows are read.

    This and `features.windows.window_table` are the only places features' rows are filtered by
    time, so no feature can see the cutoff or later.
    """
    require_midnight(cutoff)
    before = {name: frame.filter(pl.col(SOURCE_TIME[name]) < cutoff) for name, frame in sources.items() if name in SOURCE_TIME}
    windows = window_table(sources["days"], [cutoff]) if windows is None else windows
    before["windows"] = windows.filter(pl.col(CUTOFF) == cutoff).drop(CUTOFF)
    return before


def aggregate(frame: Frame, defs: list[FeatureDef], cutoff: datetime) -> Frame:
    """One source's features per customer; the same code serves eager frames and lazy plans."""
    columns = [d.expr(cutoff).cast(FEATURE_DTYPE).alias(d.name) for d in defs]
    return frame.select("customer_id", *columns) if defs[0].source in PER_CUSTOMER else frame.group_by("customer_id").agg(columns)


def assemble(population: Frame, parts: list[Frame], registry: list[FeatureDef]) -> Frame:
    """Join every source's features onto the population, in its order; customers with no rows in a
    source get each feature's fill value. (Sorting back to the population's order once is several
    times cheaper than joins that keep the order, in Polars 2.1.)"""
    table = population.select("customer_id").with_row_index(_ROW)
    for part in parts:
        table = table.join(part, on="customer_id", how="left")
    return table.sort(_ROW).with_columns(
        [pl.col(d.name).fill_null(d.fill) if d.fill is not None else pl.col(d.name) for d in registry]
    ).select("customer_id", *[d.name for d in registry])


def by_source(registry: list[FeatureDef]) -> dict[str, list[FeatureDef]]:
    grouped: dict[str, list[FeatureDef]] = {}
    for d in registry:
        grouped.setdefault(d.source, []).append(d)
    return grouped


def parts(before: dict[str, Frame], cutoff: datetime, registry: list[FeatureDef]) -> list[Frame]:
    """Each source's features per customer, from the already-cut sources."""
    return [aggregate(before[source], defs, cutoff) for source, defs in by_source(registry).items()]


def feature_plan(
    sources: dict[str, pl.LazyFrame], population: pl.LazyFrame, cutoff: datetime, registry: list[FeatureDef], windows: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """One lazy plan for a cutoff: cut, aggregate each source once, join onto the population."""
    before = {name: frame.lazy() for name, frame in cut(sources, cutoff, windows).items()}
    return assemble(population, parts(before, cutoff, registry), registry)


def build_features(sources: dict[str, pl.DataFrame], population: pl.DataFrame, cutoff: datetime, registry: list[FeatureDef]) -> pl.DataFrame:
    lazy = {name: frame.lazy() for name, frame in sources.items()}
    return feature_plan(lazy, population.lazy(), cutoff, registry).collect(engine="streaming")
