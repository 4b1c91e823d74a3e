"""Touchpoint days, training snapshots and the scoring population's features."""

import time

import dagster as dg
import polars as pl

from features.build import build_features
from features.catalogue import OTHER
from features.days import DAY, touch_days, touches_column
from features.labels import population
from features.registry import data_dictionary
from features.snapshots import plan_cutoffs, scoring_cutoff, training_snapshots as stack_snapshots
from features.sources import feature_registry, feature_sources, latest_timestamp, latest_touch
from features.touches import unmatched_event_types
from pipelines.metadata import preview
from pipelines.resources import ChurnSettings, DataRoot

OWNERS = ["team:data-science"]


@dg.asset(group_name="features", kinds={"polars"}, owners=OWNERS, code_version="2")
def touchpoint_days(
    context: dg.AssetExecutionContext, settings: ChurnSettings, clickstream: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """Every touch (click, ticket, survey answer) routed to its touchpoint and folded into one row per
    customer and day: touches per touchpoint, friction counts, purchases and the day's last touch."""
    if clickstream.is_empty() and support.is_empty() and surveys.is_empty():
        raise ValueError("no events: put at least one of clickstream, support or surveys files in the landing folder")
    catalogue = settings.catalogue()
    started = time.perf_counter()
    days = touch_days(clickstream, support, surveys, catalogue)
    context.log.info(
        f"folded {clickstream.height:,} clicks, {support.height:,} tickets and {surveys.height:,} answers into "
        f"{days.height:,} customer-days in {time.perf_counter() - started:.1f}s"
    )
    names = [*catalogue.names, OTHER]
    counts = pl.DataFrame({"touchpoint": names, "phase": [catalogue.phase_of(n) for n in names], "touches": [days[touches_column(n)].sum() for n in names]})
    unknown = unmatched_event_types(clickstream, catalogue)
    if not unknown.is_empty():
        context.log.warning(f"{unknown['len'].sum():,} events matched no catalogue touchpoint and count as '{OTHER}': {dict(unknown.iter_rows())}")
    return dg.Output(
        days,
        metadata={
            "dagster/row_count": days.height,
            "customers": days["customer_id"].n_unique(),
            "first_day": str(days[DAY].min()),
            "latest_event": str(latest_touch(days)),
            "touches_by_touchpoint": preview(counts.sort("touches", descending=True), rows=30),
            "preview": preview(days),
            "unmatched_events": int(unknown["len"].sum()) if not unknown.is_empty() else 0,
        },
    )


def _feature_inputs(settings: ChurnSettings, customers: pl.DataFrame, days: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame):
    """The feature sources, the registry and `as_of`, the same for training and scoring."""
    sources, registry = feature_sources(customers, days, support, surveys, settings.catalogue())
    return sources, registry, settings.as_of_or(latest_timestamp(customers, days))


@dg.asset(group_name="features", kinds={"polars"}, owners=OWNERS, code_version="1")
def training_snapshots(
    context: dg.AssetExecutionContext, settings: ChurnSettings, customers: pl.DataFrame, touchpoint_days: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """Features and labels at monthly cutoffs; the latest fully observed one is the holdout."""
    sources, registry, as_of = _feature_inputs(settings, customers, touchpoint_days, support, surveys)
    cutoffs, holdout = plan_cutoffs(touchpoint_days[DAY].min(), as_of, settings.horizon_days, settings.train_cutoffs)
    context.log.info(f"building {len(registry)} features at {len(cutoffs)} training cutoffs and the holdout {holdout:%Y-%m-%d}")
    started = time.perf_counter()
    snapshots = stack_snapshots(sources, cutoffs, holdout, settings.horizon_days, registry)
    by_cutoff = snapshots.group_by("cutoff", "split").agg(customers=pl.len(), churn_rate=pl.col("churned").mean()).sort("cutoff")
    context.log.info(f"snapshots built in {time.perf_counter() - started:.1f}s: {snapshots.height:,} rows")
    return dg.Output(
        snapshots,
        metadata={
            "dagster/row_count": snapshots.height,
            "features": len(registry),
            "holdout_cutoff": f"{holdout:%Y-%m-%d}",
            "by_cutoff": preview(by_cutoff.with_columns(pl.col("cutoff").dt.strftime("%Y-%m-%d"))),
            "churn_rate": dg.MetadataValue.float(float(snapshots["churned"].cast(pl.Float64).mean())),
            "preview": preview(snapshots.select("customer_id", "cutoff", "split", "churned", *[d.name for d in registry[:8]])),
        },
    )


@dg.asset(group_name="features", kinds={"polars"}, owners=OWNERS, code_version="1")
def scoring_features(
    context: dg.AssetExecutionContext, settings: ChurnSettings, customers: pl.DataFrame, touchpoint_days: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """Features as of the end of `as_of`'s day for every customer not churned by then."""
    sources, registry, as_of = _feature_inputs(settings, customers, touchpoint_days, support, surveys)
    cutoff = scoring_cutoff(as_of)
    members = population(customers, touchpoint_days, cutoff, settings.horizon_days)
    features = build_features(sources, members, cutoff, registry).with_columns(as_of=pl.lit(as_of, dtype=pl.Datetime("us", "UTC")))
    context.log.info(f"{features.height:,} customers to score as of {as_of:%Y-%m-%d %H:%M}")
    return dg.Output(
        features,
        metadata={"dagster/row_count": features.height, "as_of": as_of.isoformat(), "features": len(registry), "preview": preview(features.select("customer_id", *[d.name for d in registry[:8]]))},
    )


@dg.asset(group_name="features", kinds={"markdown"}, owners=OWNERS, code_version="1")
def feature_dictionary(
    settings: ChurnSettings, data_root: DataRoot, customers: pl.DataFrame, touchpoint_days: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame
) -> dg.MaterializeResult:
    """Every feature this catalogue and data produce, with its touchpoint, phase and description."""
    registry = feature_registry(customers, touchpoint_days, support, surveys, settings.catalogue())
    path = data_root.folder("outputs") / "feature_dictionary.md"
    text = data_dictionary(registry)
    path.write_text(text)
    return dg.MaterializeResult(metadata={"features": len(registry), "path": dg.MetadataValue.path(str(path)), "dictionary": dg.MetadataValue.md(text)})
