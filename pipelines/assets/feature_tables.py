"""Touchpoint days, the feature plan, the training snapshots, the scoring population's features and
the data dictionary."""

import time
from typing import cast

import dagster as dg
import polars as pl

from features.catalogue import OTHER
from features.dictionary import data_dictionary
from features.feature_plan import FeaturePlan, plan_features
from features.quality import informative_cutoffs, label_rates
from features.snapshots import build_scoring_features, build_training_snapshots, feature_sources
from features.touchpoint_days import (
    DAY,
    fold_touchpoint_days,
    latest_touch,
    touches_column,
    unmatched_event_types,
)
from pipelines.config import QualityBounds
from pipelines.metadata import figure, preview
from pipelines.resources import ChurnSettings, DataRoot

OWNERS = ["team:data-science"]


@dg.asset(group_name="features", kinds={"polars"}, owners=OWNERS, code_version="2")
def touchpoint_days(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    clickstream: pl.DataFrame,
    support: pl.DataFrame,
    surveys: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """Every touch (click, ticket, survey answer) routed to its touchpoint and folded into one row
    per customer and day: touches per touchpoint, friction counts, purchases and the day's last
    touch."""
    if clickstream.is_empty() and support.is_empty() and surveys.is_empty():
        raise ValueError(
            "no events: put at least one of clickstream, support or surveys files in the landing "
            "folder"
        )
    catalogue = settings.catalogue()
    started = time.perf_counter()
    days = fold_touchpoint_days(clickstream, support, surveys, catalogue)
    context.log.info(
        f"folded {clickstream.height:,} clicks, {support.height:,} tickets and "
        f"{surveys.height:,} answers into {days.height:,} customer-days in "
        f"{time.perf_counter() - started:.1f}s"
    )
    names = [*catalogue.names, OTHER]
    counts = pl.DataFrame(
        {
            "touchpoint": names,
            "phase": [catalogue.phase_of(n) for n in names],
            "touches": [days[touches_column(n)].sum() for n in names],
        }
    )
    unknown = unmatched_event_types(clickstream, catalogue)
    if not unknown.is_empty():
        context.log.warning(
            f"{unknown['len'].sum():,} events matched no catalogue touchpoint and count as "
            f"'{OTHER}': {dict(unknown.iter_rows())}"
        )
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


@dg.asset(group_name="features", kinds={"json"}, owners=OWNERS, code_version="1")
def feature_plan(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    customers: pl.DataFrame,
    touchpoint_days: pl.DataFrame,
    support: pl.DataFrame,
    surveys: pl.DataFrame,
) -> dg.Output[FeaturePlan]:
    """`as_of`, the labelled and scoring cutoffs, and which features this catalogue and
    data support: decided once, read by the assets that build features or explain scores."""
    catalogue = settings.catalogue()
    plan = plan_features(
        customers,
        touchpoint_days,
        support,
        surveys,
        catalogue,
        settings.horizon_days,
        settings.train_cutoffs,
        settings.as_of_timestamp(),
    )
    registry = plan.registry(catalogue)
    scoring = f"scoring as of {plan.as_of:%Y-%m-%d %H:%M}"
    labelled = ", ".join(f"{c:%Y-%m-%d}" for c in plan.labelled)
    if plan.labelled:
        context.log.info(f"{len(registry)} features at cutoffs {labelled}; {scoring}")
    else:
        context.log.warning(
            f"{len(registry)} features, {scoring}; no training: {plan.training_problem}"
        )
    return dg.Output(
        plan,
        metadata={
            "as_of": plan.as_of.isoformat(),
            "labelled_cutoffs": labelled or f"none: {plan.training_problem}",
            "scoring_cutoff": f"{plan.scoring_cutoff:%Y-%m-%d}",
            "features": len(registry),
            "plan": dg.MetadataValue.json(plan.to_json()),
        },
    )


@dg.asset(group_name="features", kinds={"polars"}, owners=OWNERS, code_version="1")
def training_snapshots(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    quality: QualityBounds,
    feature_plan: FeaturePlan,
    customers: pl.DataFrame,
    touchpoint_days: pl.DataFrame,
    support: pl.DataFrame,
    surveys: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """Features and labels at every monthly cutoff whose horizon is complete by `as_of`."""
    catalogue = settings.catalogue()
    registry, cutoffs = feature_plan.registry(catalogue), feature_plan.labelled_cutoffs()
    sources = feature_sources(
        customers, touchpoint_days, support, surveys, catalogue, feature_plan.features.voice
    )
    context.log.info(f"building {len(registry)} features at {len(cutoffs)} labelled cutoffs")
    started = time.perf_counter()
    built = build_training_snapshots(sources, cutoffs, feature_plan.horizon_days, registry)
    snapshots, left_out = informative_cutoffs(built, quality.min_label_class)
    for note in left_out:
        context.log.warning(f"left out {note}")
    context.log.info(
        f"snapshots built in {time.perf_counter() - started:.1f}s: {snapshots.height:,} rows"
    )
    first_features = [d.name for d in registry[:8]]
    # the mean of a Float64 column: a float, or None when there are no rows
    churn_rate = cast(float | None, snapshots["churned"].cast(pl.Float64).mean())
    return dg.Output(
        snapshots,
        metadata={
            "dagster/row_count": snapshots.height,
            "features": len(registry),
            "cutoffs": ", ".join(f"{c:%Y-%m-%d}" for c in cutoffs),
            "left_out": dg.MetadataValue.json(left_out),
            "by_cutoff": preview(label_rates(snapshots)),
            "churn_rate": figure(float(churn_rate or 0.0)),
            "preview": preview(
                snapshots.select("customer_id", "cutoff", "churned", *first_features)
            ),
        },
    )


@dg.asset(group_name="features", kinds={"polars"}, owners=OWNERS, code_version="1")
def scoring_features(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    feature_plan: FeaturePlan,
    customers: pl.DataFrame,
    touchpoint_days: pl.DataFrame,
    support: pl.DataFrame,
    surveys: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """Features as of the end of `as_of`'s day for every customer not churned by then."""
    catalogue = settings.catalogue()
    registry = feature_plan.registry(catalogue)
    sources = feature_sources(
        customers, touchpoint_days, support, surveys, catalogue, feature_plan.features.voice
    )
    features = build_scoring_features(sources, feature_plan, registry)
    context.log.info(
        f"{features.height:,} customers to score as of {feature_plan.as_of:%Y-%m-%d %H:%M}"
    )
    return dg.Output(
        features,
        metadata={
            "dagster/row_count": features.height,
            "as_of": feature_plan.as_of.isoformat(),
            "features": len(registry),
            "preview": preview(features.select("customer_id", *[d.name for d in registry[:8]])),
        },
    )


@dg.asset(group_name="features", kinds={"markdown"}, owners=OWNERS, code_version="1")
def feature_dictionary(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    data_root: DataRoot,
    feature_plan: FeaturePlan,
) -> dg.MaterializeResult:
    """Every feature this catalogue and data produce, with its touchpoint, phase and description."""
    registry = feature_plan.registry(settings.catalogue())
    path = data_root.staged_outputs(context.run.run_id) / "feature_dictionary.md"
    text = data_dictionary(registry)
    path.write_text(text)
    return dg.MaterializeResult(
        metadata={
            "features": len(registry),
            "path": dg.MetadataValue.path(str(path)),
            "dictionary": dg.MetadataValue.md(text),
        }
    )
