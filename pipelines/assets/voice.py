"""What customers say at each touchpoint: the theme of each comment and ticket text, one customer
bucket at a time (`text_themes`), and the themes with their counts and examples (`voice_themes`)."""

import time

import dagster as dg
import polars as pl

from features.feature_plan import FeaturePlan
from features.voice.themes import documents, text_themes, theme_table, themes_fingerprint
from models.explain.scored_customers import CSV_DATETIME
from pipelines.metadata import preview
from pipelines.partitions import stored_table
from pipelines.resources import ChurnSettings, DataRoot, write_replacing

OWNERS = ["team:retention"]
# the parquet metadata key that records which themes a bucket's texts were assigned with
THEMES_KEY = "touchpoint_churn/themes"


def _earlier(data_root: DataRoot, bucket: str, fingerprint: str) -> pl.DataFrame | None:
    """The bucket's stored assignments, when they were made with the same themes."""
    path = data_root.asset_file("text_themes", bucket)
    if not path.exists() or pl.read_parquet_metadata(path).get(THEMES_KEY) != fingerprint:
        return None
    return pl.read_parquet(path)


def text_themes_asset(
    partitions: dg.PartitionsDefinition, policy: dg.BackfillPolicy
) -> dg.AssetsDefinition:
    @dg.asset(
        name="text_themes",
        partitions_def=partitions,
        backfill_policy=policy,
        deps=["support", "surveys"],
        group_name="voice",
        kinds={"polars", "scikitlearn"},
        owners=OWNERS,
        code_version="1",
    )
    def _text_themes(
        context: dg.AssetExecutionContext,
        settings: ChurnSettings,
        data_root: DataRoot,
        feature_plan: FeaturePlan,
    ) -> dg.MaterializeResult:
        """The feature plan's theme of every comment and ticket text, one bucket of customers at a
        time. A text stored with the same themes keeps its theme, so a day's run assigns only the
        texts that are new (the themes change once a month, with the newest labelled cutoff)."""
        catalogue, themes = settings.catalogue(), feature_plan.features.voice
        fingerprint = themes_fingerprint(themes)
        texts, reused, started = 0, 0, time.perf_counter()
        for bucket in context.partition_keys:
            surveys, support = (
                pl.scan_parquet(data_root.bucket_files(t, bucket)) for t in ("surveys", "support")
            )
            docs = documents(surveys, support, catalogue)
            earlier = _earlier(data_root, bucket, fingerprint)
            assigned = text_themes(docs, themes, earlier)
            write_replacing(
                assigned,
                data_root.asset_file("text_themes", bucket),
                metadata={THEMES_KEY: fingerprint},
            )
            texts += assigned.height
            reused += earlier is not None
        context.log.info(
            f"{texts:,} texts' themes in {time.perf_counter() - started:.1f}s; {reused} of "
            f"{len(context.partition_keys)} buckets kept their stored texts' themes (same themes)"
        )
        return dg.MaterializeResult(
            metadata={"dagster/row_count": texts, "themes": len(themes), "fingerprint": fingerprint}
        )

    return _text_themes


@dg.asset(
    group_name="voice",
    kinds={"polars"},
    owners=OWNERS,
    deps=["text_themes"],
    code_version="2",
)
def voice_themes(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    data_root: DataRoot,
    feature_plan: FeaturePlan,
) -> dg.Output[pl.DataFrame]:
    """The feature plan's themes per touchpoint and band (disappointment, OK, delight, tickets)
    with how many texts up to `as_of` fell in each, and scrubbed examples."""
    texts = (
        stored_table(data_root, "text_themes", settings.buckets)
        .filter(pl.col("ts") <= feature_plan.as_of)
        .select("touchpoint", "band", "text", "theme")
        .collect()
    )
    themes = feature_plan.features.voice
    table = theme_table(texts, themes)
    out = data_root.staged_outputs(context.run.run_id)
    published = table.with_columns(as_of=pl.lit(feature_plan.as_of))
    published.write_parquet(out / "voice_themes.parquet")
    published.with_columns(pl.col("examples").list.join(" | ")).write_csv(
        out / "voice_themes.csv", datetime_format=CSV_DATETIME
    )
    context.log.info(
        f"{table.height} themes at {table['touchpoint'].n_unique()} touchpoints from "
        f"{texts.height:,} comments and ticket texts"
    )
    return dg.Output(
        table,
        metadata={
            "dagster/row_count": table.height,
            "texts": texts.height,
            "themes": preview(table.drop("examples", "terms"), rows=40),
            "path": dg.MetadataValue.path(str(out / "voice_themes.csv")),
        },
    )
