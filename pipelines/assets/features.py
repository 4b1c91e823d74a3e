"""Touchpoint events, training snapshots and the scoring population's features."""

import time
from datetime import timedelta

import dagster as dg
import polars as pl

from features.catalogue import OTHER
from features.labels import population
from features.build import build_features
from features.registry import data_dictionary
from features.snapshots import plan_cutoffs, training_snapshots as stack_snapshots
from features.sources import feature_sources, latest_timestamp
from features.touches import touch_events
from pipelines.metadata import preview
from pipelines.resources import ChurnSettings, DataRoot

OWNERS = ["team:data-science"]


@dg.asset(group_name="features", kinds={"polars"}, owners=OWNERS, code_version="1")
def touchpoint_events(
    context: dg.AssetExecutionContext, settings: ChurnSettings, clickstream: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """Every touch (click, ticket, survey answer) tagged with its touchpoint and journey phase."""
    if clickstream.is_empty() and support.is_empty() and surveys.is_empty():
        raise ValueError("no events: put at least one of clickstream, support or surveys files in the landing folder")
    started = time.perf_counter()
    touches = touch_events(clickstream, support, surveys, settings.catalogue())
    context.log.info(f"tagged {touches.height:,} touches from {clickstream.height:,} clicks, {support.height:,} tickets and {surveys.height:,} answers in {time.perf_counter() - started:.1f}s")
    counts = touches.group_by("touchpoint", "phase").len().sort("len", descending=True)
    unknown = touches.filter(pl.col("touchpoint") == OTHER).group_by("event_type").len().sort("len", descending=True)
    if not unknown.is_empty():
        context.log.warning(f"{unknown['len'].sum():,} events matched no catalogue touchpoint and count as '{OTHER}': {dict(unknown.iter_rows())}")
    return dg.Output(
        touches,
        metadata={
            "dagster/row_count": touches.height,
            "customers": touches["customer_id"].n_unique(),
            "first_event": str(touches["ts"].min()),
            "latest_event": str(touches["ts"].max()),
            "touches_by_touchpoint": preview(counts, rows=30),
            "preview": preview(touches),
            "unmatched_events": int(unknown["len"].sum()) if not unknown.is_empty() else 0,
        },
    )


def _feature_inputs(settings: ChurnSettings, customers: pl.DataFrame, touches: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame):
    """The feature sources, the registry and `as_of`, the same for training and scoring."""
    sources, registry = feature_sources(customers, touches, support, surveys, settings.catalogue())
    return sources, registry, settings.as_of_or(latest_timestamp(customers, touches))


@dg.asset(group_name="features", kinds={"polars"}, owners=OWNERS, code_version="1")
def training_snapshots(
    context: dg.AssetExecutionContext, settings: ChurnSettings, customers: pl.DataFrame, touchpoint_events: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """Features and labels at monthly cutoffs; the latest fully observed one is the holdout."""
    sources, registry, as_of = _feature_inputs(settings, customers, touchpoint_events, support, surveys)
    cutoffs, holdout = plan_cutoffs(touchpoint_events["ts"].min(), as_of, settings.horizon_days, settings.train_cutoffs)
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
    context: dg.AssetExecutionContext, settings: ChurnSettings, customers: pl.DataFrame, touchpoint_events: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame
) -> dg.Output[pl.DataFrame]:
    """Features as of `as_of` (inclusive) for every customer not churned by then."""
    sources, registry, as_of = _feature_inputs(settings, customers, touchpoint_events, support, surveys)
    cutoff = as_of + timedelta(microseconds=1)  # features use rows strictly before the cutoff
    members = population(customers, touchpoint_events, cutoff, settings.horizon_days)
    features = build_features(sources, members, cutoff, registry).with_columns(as_of=pl.lit(as_of, dtype=pl.Datetime("us", "UTC")))
    context.log.info(f"{features.height:,} customers to score as of {as_of:%Y-%m-%d %H:%M}")
    return dg.Output(
        features,
        metadata={"dagster/row_count": features.height, "as_of": as_of.isoformat(), "features": len(registry), "preview": preview(features.select("customer_id", *[d.name for d in registry[:8]]))},
    )


@dg.asset(group_name="features", kinds={"markdown"}, owners=OWNERS, code_version="1")
def feature_dictionary(
    settings: ChurnSettings, data_root: DataRoot, customers: pl.DataFrame, touchpoint_events: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame
) -> dg.MaterializeResult:
    """Every feature this catalogue and data produce, with its touchpoint, phase and description."""
    _, registry = feature_sources(customers, touchpoint_events, support, surveys, settings.catalogue())
    path = data_root.folder("outputs") / "feature_dictionary.md"
    text = data_dictionary(registry)
    path.write_text(text)
    return dg.MaterializeResult(metadata={"features": len(registry), "path": dg.MetadataValue.path(str(path)), "dictionary": dg.MetadataValue.md(text)})
