"""Touchpoint days, the feature plan, the training snapshots, the scoring population's features and
the data dictionary. The per-customer tables are built one customer bucket at a time
(`bucketed_assets`, `pipelines.partitions`); the plan reads every bucket."""

import time
from dataclasses import replace

import dagster as dg
import polars as pl

from features.catalogue import OTHER, Catalogue
from features.dictionary import data_dictionary
from features.feature_plan import FeaturePlan, plan_features
from features.ingest.buckets import customer_bucket
from features.ingest.contract import EVENT_TABLES
from features.labels import label_table
from features.quality import informative_cutoffs, label_rates
from features.snapshots import build_scoring_features, build_training_snapshots, feature_sources
from features.touchpoint_days import (
    ACTIVITY,
    DAY,
    PURCHASES,
    fold_touchpoint_days,
    latest_touch,
    touches_column,
    unmatched_event_types,
)
from features.training_sample import sample_buckets
from pipelines.config import QualityBounds
from pipelines.metadata import figure, preview
from pipelines.resources import ChurnSettings, DataRoot

OWNERS = ["team:data-science"]


def _touchpoint_days(
    partitions: dg.PartitionsDefinition, policy: dg.BackfillPolicy
) -> dg.AssetsDefinition:
    @dg.asset(
        name="touchpoint_days",
        partitions_def=partitions,
        backfill_policy=policy,
        deps=["clickstream", "support", "surveys"],
        group_name="features",
        kinds={"polars"},
        owners=OWNERS,
        code_version="3",
    )
    def touchpoint_days(
        context: dg.AssetExecutionContext, settings: ChurnSettings, data_root: DataRoot
    ) -> dg.MaterializeResult:
        """Every touch (click, ticket, survey answer) routed to its touchpoint and folded into one
        row per customer and day: touches per touchpoint, friction counts, purchases and the day's
        last touch. One bucket of customers at a time."""
        catalogue = settings.catalogue()
        names = [*catalogue.names, OTHER]
        touches = dict.fromkeys(names, 0)
        rows, events, customers, unknown = 0, 0, 0, []
        latest, first = None, None
        started = time.perf_counter()
        for bucket in context.partition_keys:
            clickstream, support, surveys = (
                pl.read_parquet(data_root.asset_file(t, bucket)) for t in EVENT_TABLES
            )
            tables = (clickstream, support, surveys)
            days = fold_touchpoint_days(clickstream, support, surveys, catalogue)
            data_root.write_bucket("touchpoint_days", bucket, days)
            for n in names:
                touches[n] += int(days[touches_column(n)].sum())
            rows, events = rows + days.height, events + sum(t.height for t in tables)
            customers += days["customer_id"].n_unique()
            latest = max(filter(None, [latest, latest_touch(days)]), default=None)
            first = min(filter(None, [first, days[DAY].min()]), default=None)
            unknown.append(unmatched_event_types(clickstream, catalogue))
            context.log.info(
                f"bucket {bucket}: {events:,} events folded into {rows:,} customer-days so far "
                f"in {time.perf_counter() - started:.1f}s"
            )
        if events == 0:
            raise ValueError(
                "no events: put at least one of clickstream, support or surveys files in the "
                "landing folder"
            )
        counts = pl.DataFrame(
            {
                "touchpoint": names,
                "phase": [catalogue.phase_of(n) for n in names],
                "touches": [touches[n] for n in names],
            }
        )
        unmatched = pl.concat(unknown).group_by("event_type").agg(pl.col("len").sum())
        if not unmatched.is_empty():
            context.log.warning(
                f"{unmatched['len'].sum():,} events matched no catalogue touchpoint and count as "
                f"'{OTHER}': {dict(unmatched.sort('len', descending=True).iter_rows())}"
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "customers": customers,
                "first_day": str(first),
                "latest_event": str(latest),
                "touches_by_touchpoint": preview(counts.sort("touches", descending=True), rows=30),
                "unmatched_events": int(unmatched["len"].sum()),
            },
        )

    return touchpoint_days


@dg.asset(group_name="features", kinds={"json"}, owners=OWNERS, code_version="3")
def feature_plan(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    quality: QualityBounds,
    customers: pl.DataFrame,
    touchpoint_days: pl.LazyFrame,
    support: pl.LazyFrame,
    surveys: pl.LazyFrame,
) -> dg.Output[FeaturePlan]:
    """`as_of`, the labelled and scoring cutoffs, and which features this catalogue and
    data support: decided once, over every bucket, and read by the assets that build features or
    explain scores. A labelled cutoff without QualityBounds.min_label_class churners and stayers
    is left out: it has nothing to learn or judge from (a young shop's first months).

    Every bucket is scanned, never loaded: the plan reads sums, dates, texts and purchase days."""
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
    purchase_days = touchpoint_days.select(ACTIVITY).filter(pl.col(PURCHASES) > 0).collect()
    labels = label_table(customers, purchase_days, plan.labelled_cutoffs(), plan.horizon_days)
    kept, left_out = informative_cutoffs(labels, quality.min_label_class)
    informative = set(kept["cutoff"])
    sample = sample_buckets(kept, settings.max_training_rows, settings.seed)
    plan = replace(
        plan,
        labelled=tuple(c for c in plan.labelled if c in informative),
        training_sample=sample,
    )
    training_rows = kept.filter(plan.trains_on()).height
    if sample is not None:
        context.log.info(
            f"training on a seeded sample of whole customers: {training_rows:,} of "
            f"{kept.height:,} labelled rows (max_training_rows {settings.max_training_rows:,})"
        )
    for note in left_out:
        context.log.warning(f"left out {note}")
    registry = plan.registry(catalogue)
    scoring = f"scoring as of {plan.as_of:%Y-%m-%d %H:%M}"
    labelled = ", ".join(f"{c:%Y-%m-%d}" for c in plan.labelled)
    if plan.labelled:
        context.log.info(f"{len(registry)} features at cutoffs {labelled}; {scoring}")
    else:
        context.log.warning(
            f"{len(registry)} features, {scoring}; no training: "
            f"{plan.training_problem or 'no cutoff has churners and stayers enough'}"
        )
    return dg.Output(
        plan,
        metadata={
            "as_of": plan.as_of.isoformat(),
            "labelled_cutoffs": labelled or f"none: {plan.training_problem}",
            "left_out": dg.MetadataValue.json(left_out),
            "label_rates": preview(label_rates(labels)),
            "training_rows": training_rows,
            "labelled_rows": kept.height,
            "scoring_cutoff": f"{plan.scoring_cutoff:%Y-%m-%d}",
            "features": len(registry),
            "plan": dg.MetadataValue.json(plan.to_json()),
        },
    )


def bucket_sources(
    data_root: DataRoot,
    bucket: str,
    buckets: int,
    customers: pl.DataFrame,
    plan: FeaturePlan,
    catalogue: Catalogue,
    keep: pl.Expr | None = None,
) -> dict[str, pl.DataFrame]:
    """One bucket's feature sources: its customers, customer-days, tickets and answers with their
    texts' themes; only those of the customers `keep` is true for, when given (the training
    sample)."""
    keep = pl.lit(True) if keep is None else keep
    mine = customers.filter(customer_bucket(pl.col("customer_id"), buckets) == int(bucket), keep)
    days, support, surveys, themes = (
        pl.scan_parquet(data_root.asset_file(t, bucket)).filter(keep).collect()
        for t in ("touchpoint_days", "support", "surveys", "text_themes")
    )
    return feature_sources(mine, days, support, surveys, catalogue, themes)


def _training_snapshots(
    partitions: dg.PartitionsDefinition, policy: dg.BackfillPolicy
) -> dg.AssetsDefinition:
    @dg.asset(
        name="training_snapshots",
        partitions_def=partitions,
        backfill_policy=policy,
        deps=["touchpoint_days", "support", "surveys", "text_themes"],
        group_name="features",
        kinds={"polars"},
        owners=OWNERS,
        code_version="4",
    )
    def training_snapshots(
        context: dg.AssetExecutionContext,
        settings: ChurnSettings,
        data_root: DataRoot,
        feature_plan: FeaturePlan,
        customers: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Features and labels at every labelled monthly cutoff (the feature plan's), one bucket of
        customers at a time: the training sample's customers (the plan's), every one without."""
        catalogue = settings.catalogue()
        registry, cutoffs = feature_plan.registry(catalogue), feature_plan.labelled_cutoffs()
        context.log.info(f"building {len(registry)} features at {len(cutoffs)} labelled cutoffs")
        started, rows, churners = time.perf_counter(), 0, 0
        for bucket in context.partition_keys:
            sources = bucket_sources(
                data_root,
                bucket,
                settings.buckets,
                customers,
                feature_plan,
                catalogue,
                feature_plan.trains_on(),
            )
            built = build_training_snapshots(sources, cutoffs, feature_plan.horizon_days, registry)
            data_root.write_bucket("training_snapshots", bucket, built)
            rows, churners = rows + built.height, churners + int(built["churned"].sum())
            context.log.info(
                f"bucket {bucket}: {rows:,} snapshot rows so far in "
                f"{time.perf_counter() - started:.1f}s"
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "features": len(registry),
                "cutoffs": ", ".join(f"{c:%Y-%m-%d}" for c in cutoffs),
                "churn_rate": figure(churners / rows if rows else 0.0),
            },
        )

    return training_snapshots


def _scoring_features(
    partitions: dg.PartitionsDefinition, policy: dg.BackfillPolicy
) -> dg.AssetsDefinition:
    @dg.asset(
        name="scoring_features",
        partitions_def=partitions,
        backfill_policy=policy,
        deps=["touchpoint_days", "support", "surveys", "text_themes"],
        group_name="features",
        kinds={"polars"},
        owners=OWNERS,
        code_version="3",
    )
    def scoring_features(
        context: dg.AssetExecutionContext,
        settings: ChurnSettings,
        data_root: DataRoot,
        feature_plan: FeaturePlan,
        customers: pl.DataFrame,
    ) -> dg.MaterializeResult:
        """Features as of the end of `as_of`'s day for every customer not churned by then, one
        bucket of customers at a time."""
        catalogue = settings.catalogue()
        registry = feature_plan.registry(catalogue)
        rows = 0
        for bucket in context.partition_keys:
            sources = bucket_sources(
                data_root, bucket, settings.buckets, customers, feature_plan, catalogue
            )
            features = build_scoring_features(sources, feature_plan, registry)
            data_root.write_bucket("scoring_features", bucket, features)
            rows += features.height
        context.log.info(f"{rows:,} customers to score as of {feature_plan.as_of:%Y-%m-%d %H:%M}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "as_of": feature_plan.as_of.isoformat(),
                "features": len(registry),
            },
        )

    return scoring_features


def bucketed_assets(
    partitions: dg.PartitionsDefinition, policy: dg.BackfillPolicy
) -> list[dg.AssetsDefinition]:
    """The per-customer tables, one partition per customer bucket."""
    return [
        _touchpoint_days(partitions, policy),
        _training_snapshots(partitions, policy),
        _scoring_features(partitions, policy),
    ]


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
