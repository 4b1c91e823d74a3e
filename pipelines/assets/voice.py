"""What customers say at each touchpoint: the themes of their comments and ticket text."""

import dagster as dg
import polars as pl

from features.feature_plan import FeaturePlan
from features.voice.themes import assign_themes, documents, theme_table
from models.explain.scored_customers import CSV_DATETIME
from pipelines.metadata import preview
from pipelines.resources import ChurnSettings, DataRoot

OWNERS = ["team:retention"]


@dg.asset(group_name="voice", kinds={"polars", "scikitlearn"}, owners=OWNERS)
def voice_themes(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    data_root: DataRoot,
    feature_plan: FeaturePlan,
    surveys: pl.LazyFrame,
    support: pl.LazyFrame,
) -> dg.Output[pl.DataFrame]:
    """The feature plan's themes per touchpoint and band (disappointment, OK, delight, tickets)
    with how many texts up to `as_of` fell in each, and scrubbed examples."""
    texts = documents(surveys, support, settings.catalogue())
    texts = texts.filter(pl.col("ts") <= feature_plan.as_of)
    themes = feature_plan.features.voice
    table = theme_table(texts.with_columns(assign_themes(texts, themes)), themes)
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
