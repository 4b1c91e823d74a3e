"""The scored customer list retention teams act on (asset `scored_customers`): probability, tier,
value at risk, each customer's top touchpoints with a sentence from their own values, and an action
from the playbook.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import xlsxwriter

from features.families import DAYS_SINCE_FIRST_PURCHASE, TOTAL_ORDER_VALUE
from features.feature import FeatureDef
from models.explain.attribution import Attribution
from models.explain.playbook import Playbook

# probability at or above which a tier starts; else low
RISK_TIERS = (
    ("high", 0.5),
    ("medium", 0.2),
)
# Tiers whose customers get a suggested action. Below them a call costs more than the little risk it
# could remove, and the playbook's actions assume a live problem ("Escalate the open ticket").
ACTION_TIERS = ("high", "medium")
ACTION_COLUMNS = ("suggested_action", "action_owner")
# Decimals kept in the CSV: a probability to a tenth of a percentage point, money to the cent. The
# parquet and xlsx keep full precision (Excel shows its own rounding).
CSV_DECIMALS = {"churn_probability": 3, "monthly_value": 2, "value_at_risk": 2}


def risk_tier(probability: pl.Expr) -> pl.Expr:
    expr = pl.when(probability >= RISK_TIERS[0][1]).then(pl.lit(RISK_TIERS[0][0]))
    for name, threshold in RISK_TIERS[1:]:
        expr = expr.when(probability >= threshold).then(pl.lit(name))
    return expr.otherwise(pl.lit("low"))


def monthly_spend(scoring_features: pl.DataFrame) -> pl.DataFrame | None:
    """What each customer spent per 30 days since their first purchase (at least 30 days, so a
    new buyer's first order is not a month's worth many times over); None without purchases."""
    if TOTAL_ORDER_VALUE not in scoring_features.columns:
        return None
    months = pl.col(DAYS_SINCE_FIRST_PURCHASE).clip(lower_bound=30.0) / 30.0
    return scoring_features.select(
        "customer_id", monthly_spend=(pl.col(TOTAL_ORDER_VALUE) / months).cast(pl.Float64)
    )


def scored_list(
    customer_ids: list[str],
    probability,
    customers: pl.DataFrame,
    reasons: pl.DataFrame,
    spend: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Probability, tier, value at risk (probability x monthly value, where known) and the reasons.

    The monthly value is the customers table's; where it has none, the customer's spend per month
    (`monthly_spend`), which is what a purchase-only business has. Sorted by value at risk, so
    the first calls a team makes save the most revenue; customers with no known value follow, by
    probability. Only customers in ACTION_TIERS keep a suggested action.
    """
    scores = pl.DataFrame(
        {"customer_id": customer_ids, "churn_probability": probability}
    ).with_columns(pl.col("churn_probability").cast(pl.Float64))
    valued = customers.select("customer_id", "plan", "monthly_value")
    if spend is not None:
        valued = valued.join(spend, on="customer_id", how="left").select(
            "customer_id",
            "plan",
            pl.coalesce("monthly_value", "monthly_spend").alias("monthly_value"),
        )
    return (
        scores.join(valued, on="customer_id", how="left")
        .with_columns(
            risk_tier=risk_tier(pl.col("churn_probability")),
            value_at_risk=pl.col("churn_probability") * pl.col("monthly_value"),
        )
        .join(reasons, on="customer_id", how="left")
        .with_columns(
            pl.when(pl.col("risk_tier").is_in(ACTION_TIERS)).then(pl.col(c)).alias(c)
            for c in ACTION_COLUMNS
        )
        .sort(["value_at_risk", "churn_probability"], descending=True, nulls_last=True)
        .select(
            "customer_id",
            "churn_probability",
            "risk_tier",
            "plan",
            "monthly_value",
            "value_at_risk",
            pl.exclude(
                "customer_id",
                "churn_probability",
                "risk_tier",
                "plan",
                "monthly_value",
                "value_at_risk",
            ),
        )
    )


def for_csv(scored: pl.DataFrame) -> pl.DataFrame:
    """The scored list rounded for reading (CSV_DECIMALS): 0.785, not 0.7847582420701676."""
    return scored.with_columns(pl.col(c).round(d) for c, d in CSV_DECIMALS.items())


def write_workbook(scored: pl.DataFrame, path: Path, as_of: datetime) -> None:
    """The list as a spreadsheet, dated `as_of` rather than the clock: the same list gives the same
    bytes, so a rerun on unchanged data leaves the outputs (and their manifest) unchanged."""
    workbook = xlsxwriter.Workbook(path)
    workbook.set_properties({"created": as_of.replace(tzinfo=None)})
    scored.write_excel(workbook, worksheet="at risk", autofit=True, freeze_panes=(1, 1))
    workbook.close()


def select_customers(
    scored: pl.DataFrame,
    tiers: Sequence[str] = ACTION_TIERS,
    touchpoint: str | None = None,
    owner: str | None = None,
) -> pl.DataFrame:
    """The part of the list a retention lead asks for: customers in `tiers`, with `touchpoint`
    among their reasons, whose suggested action falls to `owner` (None: any), in the list's
    order (value at risk first)."""
    chosen = pl.col("risk_tier").is_in(list(tiers))
    if touchpoint is not None:
        reasons = [c for c in scored.columns if c.startswith("touchpoint_")]
        chosen &= pl.any_horizontal(pl.col(c) == touchpoint for c in reasons).fill_null(False)
    if owner is not None:
        chosen &= pl.col("action_owner") == owner
    return scored.filter(chosen)


def export_list(scored: pl.DataFrame, folder: Path, name: str, as_of: datetime) -> list[Path]:
    """`scored` as `<name>.parquet` (full precision), `.csv` (rounded, `for_csv`) and `.xlsx` in
    `folder`: how the pipeline publishes the whole list, and how a team exports a part of it."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"{name}.{ext}" for ext in ("parquet", "csv", "xlsx")]
    scored.write_parquet(files[0])
    for_csv(scored).write_csv(files[1])
    write_workbook(scored, files[2], as_of)
    return files


def _value(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def reasons(
    attribution: Attribution,
    top: np.ndarray,
    values: np.ndarray,
    registry: dict[str, FeatureDef],
    playbook: Playbook,
) -> pl.DataFrame:
    """For each customer, the top touchpoints and a sentence from the feature that raised risk most
    there, filled with the customer's own value."""
    n, k = top.shape
    best_feature = np.full((n, len(attribution.touchpoints)), -1)
    for t in range(len(attribution.touchpoints)):
        cols = np.flatnonzero(attribution.feature_touchpoint == t)
        best_feature[:, t] = cols[np.argmax(attribution.feature_shap[:, cols], axis=1)]
    columns: dict[str, list] = {"customer_id": attribution.customer_ids}
    column = {name: j for j, name in enumerate(attribution.features)}
    for j in range(k):
        tps, texts = [], []
        for i in range(n):
            t = top[i, j]
            if t < 0:
                tps.append(None)
                texts.append(None)
                continue
            f = best_feature[i, t]
            feature = registry[attribution.features[f]]
            tps.append(attribution.touchpoints[t])
            context = {name: _value(values[i, column[name]]) for name in feature.reason_context}
            texts.append(feature.explain(_value(values[i, f]), context))
        columns[f"touchpoint_{j + 1}"] = tps
        columns[f"reason_{j + 1}"] = texts
    frame = pl.DataFrame(
        columns,
        schema_overrides={f"touchpoint_{j + 1}": pl.String for j in range(k)}
        | {f"reason_{j + 1}": pl.String for j in range(k)},
    )
    plays = [playbook.for_touchpoint(t) if t is not None else None for t in columns["touchpoint_1"]]
    return frame.with_columns(
        suggested_action=pl.Series([p.action if p else None for p in plays], dtype=pl.String),
        action_owner=pl.Series([p.owner if p else None for p in plays], dtype=pl.String),
    )
