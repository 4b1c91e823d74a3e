"""Point-in-time feature build: per customer, from rows strictly before the cutoff (a midnight UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeVar

import polars as pl

from features.days import require_midnight
from features.derived import support_with_switches
from features.registry import SOURCE_TIME, FeatureDef

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
# XGBoost reads float32 anyway, and a million customers' stacked snapshots take half the memory
FEATURE_DTYPE = pl.Float32


def cut(sources: dict[str, Frame], cutoff: datetime) -> dict[str, Frame]:
    """Every source restricted to rows strictly before the cutoff, plus the tables derived from them.

    This is the only place rows are filtered by time, so no feature can see the cutoff or later.
    """
    require_midnight(cutoff)
    before = {name: frame.filter(pl.col(SOURCE_TIME[name]) < cutoff) for name, frame in sources.items()}
    if "support" in before:
        before["support"] = support_with_switches(before["support"].lazy())
    return before


def aggregate(frame: Frame, defs: list[FeatureDef], cutoff: datetime) -> Frame:
    """One source's features per customer; the same code serves eager frames and lazy plans."""
    if defs[0].source == "customers":
        return frame.select("customer_id", *[d.expr(cutoff).cast(FEATURE_DTYPE).alias(d.name) for d in defs])
    return frame.group_by("customer_id").agg([d.expr(cutoff).cast(FEATURE_DTYPE).alias(d.name) for d in defs])


def assemble(population: Frame, parts: list[Frame], registry: list[FeatureDef]) -> Frame:
    """Join every source's features onto the population, in its order; customers with no rows in a
    source get each feature's fill value."""
    table = population.select("customer_id")
    for part in parts:
        table = table.join(part, on="customer_id", how="left", maintain_order="left")
    return table.with_columns(
        [pl.col(d.name).fill_null(d.fill) if d.fill is not None else pl.col(d.name) for d in registry]
    ).select("customer_id", *[d.name for d in registry])


def by_source(registry: list[FeatureDef]) -> dict[tuple[str, int | None], list[FeatureDef]]:
    """Features grouped by source and lookback: a 7-day group reads a week of rows, not the year."""
    grouped: dict[tuple[str, int | None], list[FeatureDef]] = {}
    for d in registry:
        grouped.setdefault((d.source, d.lookback_days), []).append(d)
    return grouped


def parts(before: dict[str, Frame], cutoff: datetime, registry: list[FeatureDef]) -> list[Frame]:
    """Each (source, lookback) group's features per customer, from the already-cut sources."""
    def rows(source: str, lookback: int | None) -> Frame:
        frame = before[source]
        return frame if lookback is None else frame.filter(pl.col(SOURCE_TIME[source]) >= cutoff - timedelta(days=lookback))

    return [aggregate(rows(source, lookback), defs, cutoff) for (source, lookback), defs in by_source(registry).items()]


def feature_plan(sources: dict[str, pl.LazyFrame], population: pl.LazyFrame, cutoff: datetime, registry: list[FeatureDef]) -> pl.LazyFrame:
    """One lazy plan for a cutoff: cut, aggregate each source once per lookback, join onto the population."""
    before = {name: frame.lazy() for name, frame in cut(sources, cutoff).items()}
    return assemble(population, parts(before, cutoff, registry), registry)


def build_features(sources: dict[str, pl.DataFrame], population: pl.DataFrame, cutoff: datetime, registry: list[FeatureDef]) -> pl.DataFrame:
    lazy = {name: frame.lazy() for name, frame in sources.items()}
    return feature_plan(lazy, population.lazy(), cutoff, registry).collect(engine="streaming")
