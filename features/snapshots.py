"""Per-customer features at a cutoff, point in time (assets `training_snapshots` and
`scoring_features`): every feature of the registry, computed from rows strictly before the cutoff
(a midnight UTC), for the customers in the cutoff's population.

Training snapshots stack the monthly training cutoffs and the holdout, each labelled from its own
horizon; the scoring features are the same features at the scoring cutoff for every customer not
gone by then. Both come from the same sources (`feature_sources`) through the same `cut`, so a
feature means the same in training and scoring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import polars as pl

from features.catalogue import Catalogue
from features.feature import PER_CUSTOMER, SOURCE_TIME, FeatureDef
from features.feature_plan import FeaturePlan
from features.labels import churn_labels, population
from features.purchases import PurchaseModels, fit_purchase_models, purchase_table
from features.touchpoint_days import require_midnight, tag_support, tag_surveys
from features.windows import CUTOFF, window_table

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)
# XGBoost reads float32 anyway, and a million customers' stacked snapshots take half the memory
FEATURE_DTYPE = pl.Float32
_ROW = "_population_row"
SWITCH_WITHIN = timedelta(days=7)


def support_with_switches(support: pl.LazyFrame) -> pl.LazyFrame:
    """Flag a ticket that repeats the customer's previous ticket's category on another channel
    within a week: the customer is chasing the same issue because the first channel did not solve
    it. A ticket is judged only on the tickets opened before it, so the flag is the same at every
    cutoff the ticket is before, and is computed once over all tickets."""
    previous = {
        c: pl.col(c).shift().over("customer_id", order_by="opened_at")
        for c in ("category", "channel", "opened_at")
    }
    return support.with_columns(
        channel_switch=(
            (pl.col("category") == previous["category"])
            & (pl.col("channel") != previous["channel"])
            & (pl.col("opened_at") - previous["opened_at"] <= SWITCH_WITHIN)
        ).fill_null(False)
    )


def feature_sources(
    customers: pl.DataFrame,
    days: pl.DataFrame,
    support: pl.DataFrame,
    surveys: pl.DataFrame,
    catalogue: Catalogue,
    themes: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """Source tables keyed as the registry names them: tickets tagged with their touchpoint and
    whether they switched channel, answers tagged and in time order (survey features take the last
    answers of each group), both with the theme of what the customer wrote: `themes` holds
    (source, id, theme) per text (`features.voice.themes.text_themes`, asset `text_themes`); without
    it no text has a theme. Flags, order and themes only look at the row itself and earlier rows,
    so they hold at any cutoff."""
    tickets = support_with_switches(tag_support(support, catalogue).lazy()).collect()
    answers = tag_surveys(surveys, catalogue).sort("ts", maintain_order=True)
    tickets = _with_themes(tickets, "support", "ticket_id", themes)
    answers = _with_themes(answers, "surveys", "response_id", themes)
    return {"customers": customers, "days": days, "support": tickets, "surveys": answers}


def _with_themes(
    frame: pl.DataFrame, source: str, id_column: str, themes: pl.DataFrame | None
) -> pl.DataFrame:
    if themes is None:
        return frame.with_columns(theme=pl.lit(None, dtype=pl.String))
    mine = themes.filter(pl.col("source") == source).select(pl.col("id").alias(id_column), "theme")
    return frame.join(mine, on=id_column, how="left", maintain_order="left")


def cutoff_tables(
    sources: Mapping[str, pl.DataFrame | pl.LazyFrame],
    cutoffs: list[datetime],
    horizon_days: int,
    registry: list[FeatureDef],
    purchase_models: PurchaseModels | None = None,
) -> dict[str, pl.LazyFrame]:
    """The tables built per cutoff from the customer-days, for all `cutoffs` at once, that the
    registry reads: the 7/30/90-day windows (`features.windows`) and the purchase history
    (`features.purchases`), its BG/NBD figures by `purchase_models` (the feature plan's, fitted on
    every customer; None: fitted here on these customer-days, for a table built on its own)."""
    read = {d.source for d in registry}
    days = sources["days"]
    tables = {"windows": window_table(days.lazy(), cutoffs)}
    if "purchases" in read:
        eager = _eager(days)
        models = fit_purchase_models(eager, cutoffs) if purchase_models is None else purchase_models
        history = purchase_table(eager, cutoffs, horizon_days, models)
        tables["purchases"] = history.lazy()
    return tables


def _eager(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def cut(
    sources: Mapping[str, pl.DataFrame | pl.LazyFrame],
    cutoff: datetime,
    tables: Mapping[str, pl.LazyFrame],
) -> dict[str, pl.LazyFrame]:
    """Every source as known strictly before the cutoff: tickets, answers and customers cut to the
    rows before it, and this cutoff's rows of the tables built per cutoff (`cutoff_tables`, for
    this cutoff among others).

    This, `features.windows.window_table` and `features.purchases.purchase_history` are the only
    places features' rows are filtered by time, so no feature can see the cutoff or later.
    """
    require_midnight(cutoff)
    before = {
        name: frame.lazy().filter(pl.col(SOURCE_TIME[name]) < cutoff)
        for name, frame in sources.items()
        if name in SOURCE_TIME
    }
    for name, table in tables.items():
        before[name] = table.filter(pl.col(CUTOFF) == cutoff).drop(CUTOFF)
    return before


def aggregate(frame: Frame, defs: list[FeatureDef], cutoff: datetime) -> Frame:
    """One source's features per customer; the same code serves eager frames and lazy plans."""
    columns = [d.expr(cutoff).cast(FEATURE_DTYPE).alias(d.name) for d in defs]
    if defs[0].source in PER_CUSTOMER:
        return frame.select("customer_id", *columns)
    return frame.group_by("customer_id").agg(columns)


def assemble(population: Frame, parts: list[Frame], registry: list[FeatureDef]) -> Frame:
    """Join every source's features onto the population, in its order; customers with no rows in a
    source get each feature's fill value. (Sorting back to the population's order once is several
    times cheaper than joins that keep the order, in Polars 2.1.)"""
    table = population.select("customer_id").with_row_index(_ROW)
    for part in parts:
        table = table.join(part, on="customer_id", how="left")
    filled = [
        pl.col(d.name).fill_null(d.fill) if d.fill is not None else pl.col(d.name) for d in registry
    ]
    return table.sort(_ROW).with_columns(filled).select("customer_id", *[d.name for d in registry])


def by_source(registry: list[FeatureDef]) -> dict[str, list[FeatureDef]]:
    grouped: dict[str, list[FeatureDef]] = {}
    for d in registry:
        grouped.setdefault(d.source, []).append(d)
    return grouped


def parts(before: Mapping[str, Frame], cutoff: datetime, registry: list[FeatureDef]) -> list[Frame]:
    """Each source's features per customer, from the already-cut sources."""
    return [aggregate(before[source], defs, cutoff) for source, defs in by_source(registry).items()]


def feature_query(
    sources: Mapping[str, pl.DataFrame | pl.LazyFrame],
    population: pl.LazyFrame,
    cutoff: datetime,
    registry: list[FeatureDef],
    tables: Mapping[str, pl.LazyFrame],
) -> pl.LazyFrame:
    """One lazy query for a cutoff: cut, aggregate each source once, join onto the population."""
    before = cut(sources, cutoff, tables)
    return assemble(population, parts(before, cutoff, registry), registry)


def build_features(
    sources: Mapping[str, pl.DataFrame],
    population: pl.DataFrame,
    cutoff: datetime,
    registry: list[FeatureDef],
    horizon_days: int,
    purchase_models: PurchaseModels | None = None,
) -> pl.DataFrame:
    """The features at one cutoff for `population` (the horizon only sets what the BG/NBD model's
    expected purchases count; `purchase_models` as `cutoff_tables` takes them)."""
    tables = cutoff_tables(sources, [cutoff], horizon_days, registry, purchase_models)
    query = feature_query(sources, population.lazy(), cutoff, registry, tables)
    return query.collect(engine="streaming")


def snapshot_query(
    sources: Mapping[str, pl.DataFrame],
    cutoff: datetime,
    horizon_days: int,
    registry: list[FeatureDef],
    tables: Mapping[str, pl.LazyFrame],
) -> pl.LazyFrame:
    """Features as of the cutoff and labels from its own horizon, for its population (`tables`:
    those built per cutoff, for this cutoff among others)."""
    customers, days = sources["customers"], sources["days"]
    members = population(customers, days, cutoff, horizon_days)
    labels = churn_labels(customers, days, members, cutoff, horizon_days)
    features = feature_query(sources, members.lazy(), cutoff, registry, tables)
    return features.join(labels.lazy(), on="customer_id", maintain_order="left").with_columns(
        cutoff=pl.lit(cutoff, dtype=pl.Datetime("us", "UTC"))
    )


def build_training_snapshots(
    sources: Mapping[str, pl.DataFrame],
    cutoffs: Sequence[datetime],
    horizon_days: int,
    registry: list[FeatureDef],
    purchase_models: PurchaseModels | None = None,
) -> pl.DataFrame:
    """Every labelled cutoff's snapshot stacked. The customer-days' windows and purchase histories
    are built for every cutoff in one pass (`cutoff_tables`, with `purchase_models`), and the
    cutoffs' queries run as one, so both cores stay busy."""
    tables = cutoff_tables(sources, list(cutoffs), horizon_days, registry, purchase_models)
    return pl.concat(
        snapshot_query(sources, c, horizon_days, registry, tables) for c in cutoffs
    ).collect(engine="streaming")


def build_scoring_features(
    sources: Mapping[str, pl.DataFrame], plan: FeaturePlan, registry: list[FeatureDef]
) -> pl.DataFrame:
    """The features as of the end of `as_of`'s day for every customer not churned by then, with
    `as_of` beside them."""
    cutoff = plan.scoring_cutoff
    members = population(sources["customers"], sources["days"], cutoff, plan.horizon_days)
    features = build_features(
        sources, members, cutoff, registry, plan.horizon_days, plan.purchase_models()
    )
    return features.with_columns(as_of=pl.lit(plan.as_of, dtype=pl.Datetime("us", "UTC")))
