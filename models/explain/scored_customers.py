"""The scored customer list retention teams act on (asset `scored_customers`): probability, tier,
value at risk, each customer's top touchpoints with a sentence from their own values, and an action
from the playbook.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

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
# `as_of` in a CSV: to the second, as the setting is written (not 2024-03-31T23:59:59.000000)
CSV_DATETIME = "%Y-%m-%dT%H:%M:%S"


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
        .pipe(by_value_at_risk)
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


def by_value_at_risk(scored: pl.DataFrame) -> pl.DataFrame:
    """The list's order: value at risk first, then probability (customers of unknown value)."""
    return scored.sort(
        ["value_at_risk", "churn_probability"],
        descending=True,
        nulls_last=True,
        maintain_order=True,
    )


def for_csv(scored: pl.DataFrame) -> pl.DataFrame:
    """The scored list rounded for reading (CSV_DECIMALS): 0.785, not 0.7847582420701676."""
    return scored.with_columns(pl.col(c).round(d) for c, d in CSV_DECIMALS.items())


# The spreadsheet's sheets: who to call (ACTION_TIERS, in the list's order), everyone, and how to
# read them.
CALL_FIRST_SHEET = "Call first"
ALL_SHEET = "All customers"
# a sheet holds at most this many customers, the list's first (value at risk first): more than a
# team calls in weeks; xlsxwriter writes about 160,000 cells a second (two sheets of 50,000
# customers took 9.8 s, a tenth of a daily run at a million customers), and a sheet ends at
# 1,048,576 rows; the CSV and Parquet files hold everyone
SHEET_ROWS = 10_000
NOTES_SHEET = "Notes"
HEADERS = {
    "customer_id": "Customer",
    "churn_probability": "Churn probability",
    "risk_tier": "Risk tier",
    "plan": "Plan",
    "monthly_value": "Monthly value ({currency}/month)",
    "value_at_risk": "Value at risk ({currency}/month)",
    "suggested_action": "Suggested action",
    "action_owner": "Action owner",
    "as_of": "Scored as of",
    "model_version": "Model version",
}
MONEY_COLUMNS = ("monthly_value", "value_at_risk")
# Column widths in characters; reasons and actions wrap within theirs.
WIDTHS = {"reason": 60, "suggested_action": 45, "touchpoint": 18, "customer_id": 14, "as_of": 17}
WRAPPED = ("reason_", "suggested_action")
NOTES_WIDTH = 90
LINE_HEIGHT = 15  # points: Excel's default row height, one line of its default font


def _width(column: str) -> int:
    return WIDTHS.get(column.rstrip("0123456789").rstrip("_"), 12)


def header(column: str, currency: str) -> str:
    """What a person reads at the top of a column: "Reason 1", "Value at risk (EUR/month)"."""
    if column in HEADERS:
        return HEADERS[column].format(currency=currency)
    name, _, k = column.rpartition("_")
    if name in ("touchpoint", "reason") and k.isdigit():
        return f"{name.capitalize()} {k}"
    return column.replace("_", " ").capitalize()


def money_format(currency: str) -> str:
    """Thousands separated, to the cent, the currency after the amount: 1,234.50 "EUR"."""
    return '#,##0.00 "{}"'.format(currency.replace('"', ""))


def notes(scored: pl.DataFrame, as_of: datetime, currency: str) -> list[tuple[str, str]]:
    """How to read the list, in plain words: the Notes sheet."""
    versions = (
        scored["model_version"].drop_nulls().unique().sort().to_list()
        if "model_version" in scored.columns
        else []
    )
    tiers = (
        "; ".join(f"{name}: {threshold:.0%} or more" for name, threshold in RISK_TIERS)
        + f"; low: below {RISK_TIERS[-1][1]:.0%}"
    )
    return [
        ("Scored as of", f"{as_of:%Y-%m-%d %H:%M}"),
        ("Model version", ", ".join(versions) or "not recorded"),
        ("Currency", currency),
        ("Customers", f"{scored.height:,}"),
        (
            "Churn probability",
            "How likely the customer is to leave in the horizon after the as-of date. It is "
            "calibrated: of the customers at 80%, about 8 in 10 leave.",
        ),
        (
            "Risk tier",
            f'By churn probability: {tiers}. The "{CALL_FIRST_SHEET}" sheet holds the '
            f'{" and ".join(ACTION_TIERS)} tiers; "{ALL_SHEET}" holds everyone'
            + (
                f" up to the first {SHEET_ROWS:,} by value at risk (each sheet stops there; the "
                "CSV and Parquet files of the list hold every customer)."
                if scored.height > SHEET_ROWS
                else "."
            ),
        ),
        (
            "Value at risk",
            f"Churn probability times the customer's monthly value, in {currency} per month: "
            "what the business expects to lose each month if nothing is done. Where the "
            "customers table has no monthly value, the customer's spend per month is used; "
            "blank where neither is known. The list is sorted by it, so the first calls save "
            "the most.",
        ),
        (
            "Reason 1-3",
            "The touchpoints raising this customer's risk most, each with a sentence from the "
            "customer's own figures. A touchpoint is a reason only when it raises the odds of "
            "leaving by at least a fifth, so many low-risk customers have none.",
        ),
        (
            "Suggested action",
            "From the retention playbook, for the top reason, with the team that owns it; "
            f"only for the {' and '.join(ACTION_TIERS)} tiers.",
        ),
    ]


def _write_sheet(
    workbook: xlsxwriter.Workbook,
    name: str,
    frame: pl.DataFrame,
    currency: str,
    formats: dict[str, Any],
) -> None:
    sheet = workbook.add_worksheet(name)
    for c, column in enumerate(frame.columns):
        sheet.write(0, c, header(column, currency), formats["header"])
        if column == "churn_probability":
            cell, width = formats["percent"], 12
        elif column in MONEY_COLUMNS:
            cell, width = formats["money"], 16
        elif column == "as_of":
            cell, width = formats["date"], WIDTHS["as_of"]
        elif column.startswith(WRAPPED):
            cell, width = formats["wrap"], _width(column)
        else:
            cell, width = None, _width(column)
        sheet.set_column(c, c, max(width, len(header(column, currency)) * 0.9), cell)
        values = frame[column].to_list()
        for r, value in enumerate(values, start=1):
            if value is not None:
                sheet.write(r, c, value, cell)
    sheet.set_row(0, 30)  # two lines: "Value at risk" over "(EUR/month)"
    # Neither Excel nor LibreOffice reliably grows a row for wrapped text it loads: each row gets
    # the lines its longest wrapped cell needs, at a width's worth of characters per line.
    wrapped = [c for c in frame.columns if c.startswith(WRAPPED)]
    if wrapped and frame.height:
        lines = frame.select(
            pl.max_horizontal(
                (pl.col(c).str.len_chars().fill_null(0) / _width(c)).ceil() for c in wrapped
            ).clip(lower_bound=1)
        ).to_series()
        for r, n in enumerate(lines.to_list(), start=1):
            if n > 1:
                sheet.set_row(r, LINE_HEIGHT * n)
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, max(frame.height, 1), max(frame.width - 1, 0))
    # printed: landscape, one page wide, the headers on every page
    sheet.set_landscape()
    sheet.fit_to_pages(1, 0)
    sheet.repeat_rows(0)


def write_workbook(
    scored: pl.DataFrame, path: Path, as_of: datetime, currency: str = "EUR"
) -> None:
    """The list as a spreadsheet for the people who call: the ACTION_TIERS first, everyone, and
    notes on how to read it; human headers, percentages and money in `currency`. Each sheet holds
    the list's first SHEET_ROWS customers at most (the CSV and Parquet hold all). Dated `as_of`
    rather than the clock: the same list gives the same bytes, so a rerun on unchanged data leaves
    the outputs (and their manifest) unchanged."""
    workbook = xlsxwriter.Workbook(path, {"nan_inf_to_errors": True, "remove_timezone": True})
    workbook.set_properties({"created": as_of.replace(tzinfo=None)})
    formats = {
        "header": workbook.add_format(
            {"bold": True, "text_wrap": True, "valign": "top", "bottom": 1, "bg_color": "#DDEBF7"}
        ),
        "percent": workbook.add_format({"num_format": "0%"}),
        "money": workbook.add_format({"num_format": money_format(currency)}),
        "date": workbook.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
        "wrap": workbook.add_format({"text_wrap": True, "valign": "top"}),
        "label": workbook.add_format({"bold": True, "valign": "top"}),
    }
    calls = scored.filter(pl.col("risk_tier").is_in(ACTION_TIERS))
    _write_sheet(workbook, CALL_FIRST_SHEET, calls.head(SHEET_ROWS), currency, formats)
    _write_sheet(workbook, ALL_SHEET, scored.head(SHEET_ROWS), currency, formats)
    sheet = workbook.add_worksheet(NOTES_SHEET)
    sheet.set_column(0, 0, 20)
    sheet.set_column(1, 1, NOTES_WIDTH)
    sheet.fit_to_pages(1, 0)
    for r, (key, text) in enumerate(notes(scored, as_of, currency)):
        sheet.set_row(r, LINE_HEIGHT * (-(-len(text) // NOTES_WIDTH)))
        sheet.write(r, 0, key, formats["label"])
        sheet.write(r, 1, text, formats["wrap"])
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


def export_list(
    scored: pl.DataFrame, folder: Path, name: str, as_of: datetime, currency: str = "EUR"
) -> list[Path]:
    """`scored` as `<name>.parquet` (full precision), `.csv` (rounded, `for_csv`) and `.xlsx` in
    `folder`: how the pipeline publishes the whole list, and how a team exports a part of it."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"{name}.{ext}" for ext in ("parquet", "csv", "xlsx")]
    scored.write_parquet(files[0])
    for_csv(scored).write_csv(files[1], datetime_format=CSV_DATETIME)
    write_workbook(scored, files[2], as_of, currency)
    return files


def sentences(feature: FeatureDef, rows: np.ndarray, column: dict[str, int]) -> list[str]:
    """`feature.explain` for each row of `rows` (customers x features), the row's value and its
    `reason_context` values filled in; each distinct set of values is worded once, since counts
    and days repeat across customers and a sentence is slow to format."""
    names = [feature.name, *feature.reason_context]
    inputs = pl.DataFrame(
        {f"v{i}": rows[:, column[name]] for i, name in enumerate(names)}
    ).fill_nan(None)
    distinct = inputs.unique(maintain_order=True)
    worded = [
        feature.explain(value, dict(zip(feature.reason_context, context, strict=True)))
        for value, *context in distinct.iter_rows()
    ]
    keyed = distinct.with_columns(sentence=pl.Series(worded, dtype=pl.String))
    return inputs.join(
        keyed, on=inputs.columns, how="left", nulls_equal=True, maintain_order="left"
    )["sentence"].to_list()


def reasons(
    attribution: Attribution,
    top: np.ndarray,
    values: np.ndarray,
    registry: dict[str, FeatureDef],
    playbook: Playbook,
) -> pl.DataFrame:
    """For each customer, the top touchpoints and a sentence from the feature that raised risk most
    there, filled with the customer's own value; worded feature by feature (`sentences`)."""
    n, k = top.shape
    best_feature = np.full((n, len(attribution.touchpoints)), -1)
    for t in range(len(attribution.touchpoints)):
        cols = np.flatnonzero(attribution.feature_touchpoint == t)
        best_feature[:, t] = cols[np.argmax(attribution.feature_shap[:, cols], axis=1)]
    column = {name: j for j, name in enumerate(attribution.features)}
    named = np.array([*attribution.touchpoints, None], dtype=object)
    columns: dict[str, pl.Series] = {"customer_id": pl.Series(attribution.customer_ids)}
    for j in range(k):
        touchpoint = top[:, j]
        chosen = np.where(touchpoint >= 0, best_feature[np.arange(n), touchpoint], -1)
        texts = np.full(n, None, dtype=object)
        for f in np.unique(chosen[chosen >= 0]):
            rows = np.flatnonzero(chosen == f)
            feature = registry[attribution.features[f]]
            texts[rows] = sentences(feature, values[rows], column)
        columns[f"touchpoint_{j + 1}"] = pl.Series(named[touchpoint].tolist(), dtype=pl.String)
        columns[f"reason_{j + 1}"] = pl.Series(texts.tolist(), dtype=pl.String)
    plays = {t: playbook.for_touchpoint(t) for t in columns["touchpoint_1"].drop_nulls().unique()}
    first = pl.col("touchpoint_1")
    return pl.DataFrame(columns).with_columns(
        suggested_action=first.replace_strict(
            {t: p.action for t, p in plays.items()}, default=None, return_dtype=pl.String
        ),
        action_owner=first.replace_strict(
            {t: p.owner for t, p in plays.items()}, default=None, return_dtype=pl.String
        ),
    )
