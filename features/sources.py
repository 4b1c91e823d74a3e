"""The tables features are computed from, and the registry that fits them."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.catalogue import Catalogue
from features.days import LAST_TOUCH, last_touch_at
from features.registry import FeatureDef, build_registry
from features.touches import tag_support, tag_surveys


def feature_sources(customers: pl.DataFrame, days: pl.DataFrame, support: pl.DataFrame, surveys: pl.DataFrame, catalogue: Catalogue) -> tuple[dict[str, pl.DataFrame], list[FeatureDef]]:
    """Source tables keyed as the registry names them, and the registry for this catalogue and data."""
    support, surveys = tag_support(support, catalogue), tag_surveys(surveys, catalogue).sort("ts", maintain_order=True)
    registry = build_registry(
        catalogue,
        support_touchpoints=sorted(support["touchpoint"].unique().to_list()),
        survey_pairs=sorted(surveys.select("touchpoint", "survey_type").unique().iter_rows()),
        plans=sorted(customers["plan"].drop_nulls().unique().to_list()),
    )
    return {"customers": customers, "days": days, "support": support, "surveys": surveys}, registry


def latest_touch(days: pl.DataFrame) -> datetime | None:
    return days.select(last_touch_at(pl.col(LAST_TOUCH).max())).item()


def latest_timestamp(customers: pl.DataFrame, days: pl.DataFrame) -> datetime:
    """The latest moment the inputs know about: the default `as_of`."""
    candidates = [latest_touch(days), customers["signup_at"].max(), customers["churned_at"].max()]
    return max(c for c in candidates if c is not None)
