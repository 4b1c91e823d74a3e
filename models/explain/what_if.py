"""What removing a touchpoint's friction is worth, by the model's estimate: its friction features
set to the values of the customers it serves best, every customer whose friction that changes
scored again by the model that scored the list (the others keep their score).

A model estimate, not a causal effect: the model learned which customers leave, not what happens
when a touchpoint improves, and customers with little friction may differ in other ways.

A feature's "no-friction" value is the 10th or the 90th percentile of its values among the scored
customers: the end at which its SHAP values are lower (the side where the feature lowers risk), so
"fewer payment errors" and "a higher satisfaction score" both read as less friction without a list
of feature directions to keep. Only the families that describe friction change: a touchpoint's
volume and recency describe how much a customer uses it, not how well it served them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from features.feature import FeatureDef
from models.calibration import CalibratedModel, model_input

FRICTION_FAMILIES = ("friction", "support_quality", "survey_voice", "voice_themes")
BEST_SERVED = 0.1
WHAT_IF_SCHEMA = {
    "touchpoint": pl.String,
    "features_changed": pl.Int64,
    "churn_rate_now": pl.Float64,
    "churn_rate_without_friction": pl.Float64,
    "value_at_risk_now": pl.Float64,
    "value_at_risk_without_friction": pl.Float64,
}


def no_friction_values(
    features: pl.DataFrame, shap_values: pl.DataFrame, names: Sequence[str]
) -> dict[str, tuple[float, bool]]:
    """Each feature's value at its low-risk end (see the module docstring), and whether risk
    rises with the feature; a feature with one known value, or one SHAP value, is left out."""
    values = {}
    for name in names:
        pairs = pl.DataFrame({"x": features[name], "s": shap_values[name]}).drop_nulls().drop_nans()
        if pairs["x"].n_unique() < 2 or pairs["s"].n_unique() < 2:
            continue  # one value, or one the model never splits on: nothing to change
        rises = np.corrcoef(pairs["x"].to_numpy(), pairs["s"].to_numpy())[0, 1] > 0
        value = pairs["x"].quantile(BEST_SERVED if rises else 1 - BEST_SERVED)
        if value is not None:
            values[name] = (float(value), bool(rises))
    return values


def _without_friction(name: str, value: float, rises: bool) -> pl.Expr:
    """A customer already served better than the target keeps their value; one without the
    feature (no ticket, no answer) has no friction there to remove."""
    column, target = pl.col(name), pl.lit(value)
    better = pl.min_horizontal(column, target) if rises else pl.max_horizontal(column, target)
    return pl.when(column.is_null() | column.is_nan()).then(column).otherwise(better).alias(name)


def friction_features(
    registry: Sequence[FeatureDef], touchpoint: str, names: Sequence[str]
) -> list[str]:
    """The model's features (`names`) that describe friction at `touchpoint`."""
    return [
        d.name
        for d in registry
        if d.touchpoint == touchpoint and d.family in FRICTION_FAMILIES and d.name in names
    ]


def what_if_table(
    model: CalibratedModel,
    features: Sequence[pl.LazyFrame],
    shap_values: Sequence[pl.LazyFrame],
    registry: Sequence[FeatureDef],
    touchpoints: Sequence[str],
    monthly_value: pl.DataFrame,
) -> pl.DataFrame:
    """Per touchpoint: the features changed, and the mean churn probability and monthly value at
    risk now and with its friction removed, over the same customers.

    `features` and `shap_values` are scans of the scoring table and `shap_attributions` (with its
    `churn_probability`), one pair per customer bucket, joined by customer_id; `monthly_value` maps
    customer_id to the monthly value used for value at risk. The no-friction values take one
    pass over every bucket's friction columns; the re-scoring takes a second, a bucket at a
    time, so memory holds one bucket's features."""
    names = list(model.feature_names)
    friction = {t: friction_features(registry, t, names) for t in touchpoints}
    friction_columns = sorted({name for group in friction.values() for name in group})
    pairs = list(zip(features, shap_values, strict=True))
    columns = [_scored(f, s, friction_columns, friction_columns) for f, s in pairs]
    x, shap = (pl.concat([part[side] for part in columns]) for side in (0, 1))
    targets = {t: no_friction_values(x, shap, group) for t, group in friction.items()}
    targets = {t: chosen for t, chosen in targets.items() if chosen}
    if not targets:
        return pl.DataFrame(schema=WHAT_IF_SCHEMA)
    scored, now, value_now = 0, 0.0, 0.0
    without = dict.fromkeys(targets, 0.0)
    value_without = dict.fromkeys(targets, 0.0)
    for part, part_shap in pairs:
        rows, probability = _scored(part, part_shap, names, [])
        value = (
            rows.select("customer_id")
            .join(monthly_value, on="customer_id", how="left", maintain_order="left")[
                "monthly_value"
            ]
            .fill_null(0.0)
            .to_numpy()
        )
        p_now = probability["churn_probability"].to_numpy()  # the list's own, not scored again
        scored += rows.height
        now += float(p_now.sum())
        value_now += float((p_now * value).sum())
        for touchpoint, chosen in targets.items():
            p = _rescored(model, rows, p_now, chosen, names)
            without[touchpoint] += float(p.sum())
            value_without[touchpoint] += float((p * value).sum())
    rows_out = [
        {
            "touchpoint": touchpoint,
            "features_changed": len(chosen),
            "churn_rate_now": now / scored,
            "churn_rate_without_friction": without[touchpoint] / scored,
            "value_at_risk_now": value_now,
            "value_at_risk_without_friction": value_without[touchpoint],
        }
        for touchpoint, chosen in targets.items()
    ]
    return pl.DataFrame(rows_out, schema=WHAT_IF_SCHEMA)


def _rescored(
    model: CalibratedModel,
    rows: pl.DataFrame,
    probability: np.ndarray,
    targets: dict[str, tuple[float, bool]],
    names: list[str],
) -> np.ndarray:
    """`rows`' churn probability with the `targets`' friction removed. Only the customers whose
    friction changes are scored again; the others keep `probability`, their score now (the same
    model on the same row gives the same number)."""
    relieved = rows.with_columns(_without_friction(n, *t) for n, t in targets.items())
    moved = (
        rows.select(
            pl.any_horizontal(pl.col(n).ne_missing(relieved[n]).fill_null(False) for n in targets)
        )
        .to_series()
        .to_numpy()
    )
    rescored = probability.copy()
    if moved.any():
        rescored[moved] = model.predict_proba(model_input(relieved.filter(moved), names))[:, 1]
    return rescored


def _scored(
    features: pl.LazyFrame,
    shap_values: pl.LazyFrame,
    feature_columns: Sequence[str],
    shap_columns: Sequence[str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One bucket's scored customers by customer_id, row-aligned: their `feature_columns` of the
    features, and their probability and `shap_columns` of the SHAP values, each with the id."""
    shap = shap_values.select("customer_id", "churn_probability", *shap_columns).collect()
    rows = (
        features.select("customer_id", *feature_columns)
        .collect()
        .join(shap.select("customer_id"), on="customer_id", how="semi")
        .sort("customer_id")
    )
    return rows, shap.sort("customer_id")
