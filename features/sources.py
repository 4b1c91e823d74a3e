"""The tables features are computed from, and the registry that fits them."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.catalogue import Catalogue
from features.days import LAST_TOUCH, last_touch_at, touches_column
from features.derived import support_with_switches
from features.registry import FeatureDef, build_registry
from features.touches import tag_support, tag_surveys


def feature_registry(
    customers: pl.DataFrame | pl.LazyFrame, days: pl.DataFrame | pl.LazyFrame, support: pl.DataFrame | pl.LazyFrame, surveys: pl.DataFrame | pl.LazyFrame, catalogue: Catalogue
) -> list[FeatureDef]:
    """The registry for this catalogue and data: touch features for the touchpoints touched at all,
    support features for the touchpoints with tickets, survey features for the (touchpoint, survey
    type) pairs answered, one indicator per plan. Reads a few small columns and sums, so it can be
    taken over all data when features are built part by part."""
    counted = [touches_column(name) for name in catalogue.names]
    touches = days.lazy().select(pl.col(counted).sum()).collect()
    support_touchpoints = support.lazy().select(catalogue.support_touchpoint().alias("touchpoint")).unique().collect()
    survey_pairs = surveys.lazy().select(catalogue.survey_touchpoint().alias("touchpoint"), "survey_type").unique().collect()
    plans = customers.lazy().select(pl.col("plan").drop_nulls().unique()).collect()
    return build_registry(
        catalogue,
        touched=[name for name, column in zip(catalogue.names, counted) if touches[column].item() > 0],
        support_touchpoints=sorted(support_touchpoints["touchpoint"].to_list()),
        survey_pairs=sorted(survey_pairs.iter_rows()),
        plans=sorted(plans["plan"].to_list()),
    )


def feature_tables(customers: pl.DataFrame, days: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame, catalogue: Catalogue) -> dict[str, pl.DataFrame]:
    """Source tables keyed as the registry names them: tickets tagged with their touchpoint and
    whether they switched channel, answers tagged and in time order (survey features take the last
    answers of each group). Both flags and order only look at earlier rows, so they hold at any cutoff."""
    support = support_with_switches(tag_support(support, catalogue).lazy()).collect()
    tagged = {"support": support, "surveys": tag_surveys(surveys, catalogue).sort("ts", maintain_order=True)}
    return {"customers": customers, "days": days, **tagged}


def feature_sources(customers: pl.DataFrame, days: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame, catalogue: Catalogue) -> tuple[dict[str, pl.DataFrame], list[FeatureDef]]:
    """Source tables keyed as the registry names them, and the registry for this catalogue and data."""
    return feature_tables(customers, days, support, surveys, catalogue), feature_registry(customers, days, support, surveys, catalogue)


def latest_touch(days: pl.DataFrame) -> datetime | None:
    return days.select(last_touch_at(pl.col(LAST_TOUCH).max())).item()


def latest_timestamp(customers: pl.DataFrame, days: pl.DataFrame) -> datetime:
    """The latest moment the inputs know about: the default `as_of`."""
    candidates = [latest_touch(days), customers["signup_at"].max(), customers["churned_at"].max()]
    return max(c for c in candidates if c is not None)
