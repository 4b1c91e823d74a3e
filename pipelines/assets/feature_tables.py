"""Touchpoint days, the feature plan, the training snapshots, the scoring population's features and
the data dictionary. The per-customer tables are built one customer bucket at a time
(`bucketed_assets`, `pipelines.partitions`); the plan reads every bucket."""

import json
import time
from dataclasses import replace
from pathlib import Path

import dagster as dg
import polars as pl

from features.catalogue import OTHER, Catalogue
from features.dictionary import data_dictionary
from features.feature_plan import FeaturePlan, plan_features, with_purchase_models
from features.ingest.buckets import by_bucket
from features.ingest.contract import CONTRACTS, EVENT_TABLES
from features.labels import label_table
from features.quality import informative_cutoffs, label_rates
from features.snapshots import build_scoring_features, build_training_snapshots, feature_sources
from features.touchpoint_days import (
    ACTIVITY,
    DAY,
    FOLD_VERSION,
    LAST_TOUCH,
    PURCHASE_VALUE,
    PURCHASES,
    by_month,
    fold_touchpoint_days,
    last_touch_at,
    merge_days,
    touches_column,
    unmatched_event_types,
)
from features.training_sample import sample_buckets
from pipelines.config import QualityBounds
from pipelines.metadata import figure, preview
from pipelines.partitions import stored_table
from pipelines.resources import MANIFEST, ChurnSettings, DataRoot

OWNERS = ["team:data-science"]


def _piece_tokens(data_root: DataRoot, bucket: str) -> dict[str, tuple[str, Path]]:
    """Each stored event piece of the bucket, by a token that changes when the piece is written
    again (a rebuilt bucket): its name, size and modification time."""
    tokens = {}
    for table in EVENT_TABLES:
        for path in data_root.bucket_files(table, bucket):
            stat = path.stat()
            tokens[f"{table}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}"] = (table, path)
    return tokens


def _fold_bucket(
    data_root: DataRoot, bucket: str, catalogue: Catalogue
) -> tuple[str, pl.DataFrame, pl.DataFrame]:
    """Fold the bucket's event pieces not folded yet into its customer-days, kept as one piece per
    month (assets/touchpoint_days/<bucket>/<YYYY-MM>.<n>.parquet) and a manifest of the pieces and
    the event pieces folded into them. Every piece is folded again when one folded before is gone
    (a file removed, a bucket rebuilt), or the catalogue or the fold (`FOLD_VERSION`) changed. New
    month files are written first and the manifest last, so a killed run leaves the old days
    whole.

    Returns (what it did, the clicks folded now, their day rows)."""
    folder = data_root.bucket_folder("touchpoint_days", bucket)
    data_root.asset_file("touchpoint_days", bucket).unlink(missing_ok=True)  # one file a bucket
    manifest = folder / MANIFEST
    stored = json.loads(manifest.read_text()) if manifest.is_file() else {}
    tokens = _piece_tokens(data_root, bucket)
    folded = stored.get("folded", [])
    again = (
        stored.get("catalogue") != catalogue.fingerprint
        or stored.get("fold") != FOLD_VERSION
        or not set(folded) <= set(tokens)
    )
    new = [t for t in tokens if again or t not in folded]
    tables = {
        table: [path for t in new for name, path in [tokens[t]] if name == table]
        for table in EVENT_TABLES
    }
    events = {
        table: pl.read_parquet(paths) if paths else CONTRACTS[table].empty()
        for table, paths in tables.items()
    }
    days = fold_touchpoint_days(
        events["clickstream"], events["support"], events["surveys"], catalogue
    )
    pieces = {} if again else dict(stored.get("months", {}))
    version = stored.get("version", 0) + 1
    for month, rows in by_month(days).items():
        if month in pieces:
            rows = merge_days(pl.concat([pl.read_parquet(folder / pieces[month]), rows]))
        pieces[month] = f"{month}.{version}.parquet"
        folder.mkdir(parents=True, exist_ok=True)
        rows.write_parquet(folder / pieces[month])
    if not pieces:  # no events at all: one empty piece, so the bucket reads as an empty table
        pieces["none"] = f"none.{version}.parquet"
        folder.mkdir(parents=True, exist_ok=True)
        days.write_parquet(folder / pieces["none"])
    elif len(pieces) > 1:
        pieces.pop("none", None)
    document = {
        "catalogue": catalogue.fingerprint,
        "fold": FOLD_VERSION,
        "version": version,
        "folded": list(tokens),
        "months": pieces,
        "pieces": [pieces[m] for m in sorted(pieces)],
    }
    staging = folder / f".{MANIFEST}.writing"
    staging.write_text(json.dumps(document, indent=1))
    staging.replace(manifest)
    for path in folder.glob("*.parquet"):
        if path.name not in document["pieces"]:
            path.unlink()
    what = (
        ("folded again" if stored else "folded")
        if again
        else f"{len(new)} pieces added"
        if new
        else "unchanged"
    )
    return what, events["clickstream"], days


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
        code_version="4",
    )
    def touchpoint_days(
        context: dg.AssetExecutionContext, settings: ChurnSettings, data_root: DataRoot
    ) -> dg.MaterializeResult:
        """Every touch (click, ticket, survey answer) routed to its touchpoint and folded into one
        row per customer and day: touches per touchpoint, friction counts, purchases and the day's
        last touch. One bucket of customers at a time, and within a bucket only the events of
        files not folded before (a day's run folds that day's files)."""
        catalogue = settings.catalogue()
        names = [*catalogue.names, OTHER]
        folded, events, done, unknown = 0, 0, {}, []
        started = time.perf_counter()
        for bucket in context.partition_keys:
            what, clicks, days = _fold_bucket(data_root, bucket, catalogue)
            done.setdefault(what, []).append(bucket)
            folded, events = folded + days.height, events + clicks.height
            unknown.append(unmatched_event_types(clicks, catalogue))
            context.log.info(
                f"bucket {bucket} ({what}): {events:,} clicks folded into {folded:,} "
                f"customer-days so far in {time.perf_counter() - started:.1f}s"
            )
        context.log.info("; ".join(f"buckets {', '.join(b)}: {w}" for w, b in done.items()))
        days = stored_table(data_root, "touchpoint_days", settings.buckets)
        summary = days.select(
            pl.len().alias("rows"),
            # counted by 64-bit hashes, a fifth of the time of the strings: two of a million ids
            # colliding is a chance of one in thirty million
            pl.col("customer_id").hash().n_unique().alias("customers"),
            pl.col(DAY).min().alias("first"),
            last_touch_at(pl.col(LAST_TOUCH).max()).alias("latest"),
            *(pl.col(touches_column(n)).sum().alias(n) for n in names),
        ).collect()
        if summary["rows"].item() == 0:
            raise ValueError(
                "no events: put at least one of clickstream, support or surveys files in the "
                "landing folder"
            )
        counts = pl.DataFrame(
            {
                "touchpoint": names,
                "phase": [catalogue.phase_of(n) for n in names],
                "touches": [int(summary[n].item()) for n in names],
            }
        )
        unmatched = pl.concat(unknown).group_by("event_type").agg(pl.col("len").sum())
        if not unmatched.is_empty():
            context.log.warning(
                f"{unmatched['len'].sum():,} of the clicks folded in this run matched no "
                f"catalogue touchpoint and count as '{OTHER}': "
                f"{dict(unmatched.sort('len', descending=True).iter_rows())}"
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": summary["rows"].item(),
                "customers": summary["customers"].item(),
                "first_day": str(summary["first"].item()),
                "latest_event": str(summary["latest"].item()),
                "touches_by_touchpoint": preview(counts.sort("touches", descending=True), rows=30),
                "events_folded": events,
                "unmatched_events": int(unmatched["len"].sum()),
            },
        )

    return touchpoint_days


@dg.asset(group_name="features", kinds={"json"}, owners=OWNERS, code_version="4")
def feature_plan(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    data_root: DataRoot,
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

    Every bucket is scanned, never loaded: the plan reads sums, dates, texts and purchase days.
    The themes are the last plan's when the texts they were fitted on are unchanged."""
    catalogue = settings.catalogue()
    stored = data_root.value_file("feature_plan")
    earlier = FeaturePlan.from_json(json.loads(stored.read_text())) if stored.is_file() else None
    plan = plan_features(
        customers,
        touchpoint_days,
        support,
        surveys,
        catalogue,
        settings.horizon_days,
        settings.train_cutoffs,
        settings.as_of_timestamp(),
        earlier,
    )
    if earlier is not None and plan.features.voice_corpus == earlier.features.voice_corpus:
        context.log.info("the themes are the last plan's: the texts before the cutoff are the same")
    # the days with a purchase, read once for the labels and the purchase models
    bought = (
        touchpoint_days.select(*ACTIVITY, PURCHASE_VALUE).filter(pl.col(PURCHASES) > 0).collect()
    )
    labels = label_table(customers, bought, plan.labelled_cutoffs(), plan.horizon_days)
    kept, left_out = informative_cutoffs(labels, quality.min_label_class)
    informative = set(kept["cutoff"].unique())
    sample = sample_buckets(kept, settings.max_training_rows, settings.seed)
    plan = with_purchase_models(
        replace(
            plan,
            labelled=tuple(c for c in plan.labelled if c in informative),
            training_sample=sample,
        ),
        bought,
    )
    # counted per customer: the sample's hash is then taken once a customer, not once a row
    per_customer = kept.group_by("customer_id").len()
    training_rows = int(per_customer.filter(plan.trains_on())["len"].sum())
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
    customers: pl.DataFrame,
    plan: FeaturePlan,
    catalogue: Catalogue,
    keep: pl.Expr | None = None,
) -> dict[str, pl.DataFrame]:
    """One bucket's feature sources: its `customers` (`by_bucket`), customer-days, tickets and
    answers with their texts' themes; only those of the customers `keep` is true for, when given
    (the training sample)."""
    keep = pl.lit(True) if keep is None else keep
    mine = customers.filter(keep)
    days, support, surveys, themes = (
        pl.scan_parquet(data_root.bucket_files(t, bucket)).filter(keep).collect()
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
        placed = by_bucket(customers, settings.buckets)
        for bucket in context.partition_keys:
            sources = bucket_sources(
                data_root,
                bucket,
                placed[bucket],
                feature_plan,
                catalogue,
                feature_plan.trains_on(),
            )
            built = build_training_snapshots(
                sources,
                cutoffs,
                feature_plan.horizon_days,
                registry,
                feature_plan.purchase_models(),
            )
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
        rows, placed = 0, by_bucket(customers, settings.buckets)
        for bucket in context.partition_keys:
            sources = bucket_sources(data_root, bucket, placed[bucket], feature_plan, catalogue)
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
