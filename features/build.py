"""Point-in-time feature build: per customer, from rows strictly before the cutoff."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.registry import SOURCE_TIME, FeatureDef


def feature_plan(sources: dict[str, pl.LazyFrame], population: pl.LazyFrame, cutoff: datetime, registry: list[FeatureDef]) -> pl.LazyFrame:
    """One lazy plan: each source is cut at the cutoff (exclusive), aggregated per customer once,
    and joined onto the population; customers with no rows get each feature's fill value."""
    plan = population.select("customer_id")
    for source, frame in sources.items():
        defs = [d for d in registry if d.source == source]
        if not defs:
            continue
        before = frame.filter(pl.col(SOURCE_TIME[source]) < cutoff)
        if source == "customers":
            part = before.select("customer_id", *[d.expr(cutoff).alias(d.name) for d in defs])
        else:
            part = before.group_by("customer_id").agg([d.expr(cutoff).cast(pl.Float64).alias(d.name) for d in defs])
        plan = plan.join(part, on="customer_id", how="left", maintain_order="left")
    return plan.with_columns(
        [pl.col(d.name).cast(pl.Float64).fill_null(d.fill) if d.fill is not None else pl.col(d.name).cast(pl.Float64) for d in registry]
    ).select("customer_id", *[d.name for d in registry])


def build_features(sources: dict[str, pl.DataFrame], population: pl.DataFrame, cutoff: datetime, registry: list[FeatureDef]) -> pl.DataFrame:
    lazy = {name: frame.lazy() for name, frame in sources.items()}
    return feature_plan(lazy, population.lazy(), cutoff, registry).collect()
