"""Turn raw landing rows into typed rows or quarantined rows with reasons."""

from __future__ import annotations

import polars as pl

from features.contract import PII_COLUMNS, SURVEY_SCALES, Column, TableContract

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
REASON = "_reason"
_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_TRUE = ("true", "1", "yes", "t", "y")
_FALSE = ("false", "0", "no", "f", "n")


def as_text(raw: pl.DataFrame, contract: TableContract) -> pl.DataFrame:
    """Every contract column as text (missing ones as nulls), PII columns gone.

    Reading everything as text first gives one validation path for CSV, JSON Lines and Parquet, and
    keeps the raw value of a rejected cell for the quarantine file.
    """
    raw = raw.drop([c for c in raw.columns if c.lower() in PII_COLUMNS])
    columns = []
    for column in contract.columns:
        if column.name not in raw.columns:
            columns.append(pl.lit(None, dtype=pl.String).alias(column.name))
        elif raw.schema[column.name] == pl.Datetime or raw.schema[column.name] == pl.Date:
            columns.append(_datetime_as_iso(pl.col(column.name), raw.schema[column.name]).alias(column.name))
        else:
            columns.append(pl.col(column.name).cast(pl.String).str.strip_chars().alias(column.name))
    return raw.select(columns).with_columns(
        [pl.when(pl.col(c.name) == "").then(None).otherwise(pl.col(c.name)).alias(c.name) for c in contract.columns]
    )


def _datetime_as_iso(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return col.cast(pl.Datetime("us")).dt.to_string("%Y-%m-%dT%H:%M:%S%.f")


def parse_timestamp(col: pl.Expr) -> pl.Expr:
    """ISO 8601 text to UTC; an offset is honoured, a naive timestamp is taken as UTC."""
    with_offset = (
        col.str.replace(r"Z$", "+00:00")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="us")
        .dt.convert_time_zone("UTC")
    )
    naive = [col.str.to_datetime(f, strict=False, time_unit="us").dt.replace_time_zone("UTC") for f in _TIMESTAMP_FORMATS]
    return pl.coalesce([with_offset, *naive])


def _parse(column: Column) -> pl.Expr:
    text = pl.col(column.name)
    if column.kind == "timestamp":
        return parse_timestamp(text)
    if column.kind == "float":
        return text.cast(pl.Float64, strict=False)
    if column.kind == "int":
        return text.cast(pl.Float64, strict=False).cast(pl.Int64, strict=False)
    if column.kind == "bool":
        lower = text.str.to_lowercase()
        return pl.when(lower.is_in(_TRUE)).then(True).when(lower.is_in(_FALSE)).then(False).otherwise(None)
    if column.kind == "id":
        # a Parquet/JSON integer id read as float text ("42.0") is the id "42"
        return text.str.replace(r"^(-?\d+)\.0+$", "${1}")
    return text


def _problems(contract: TableContract, parsed: dict[str, pl.Expr]) -> list[pl.Expr]:
    """One expression per rule, each giving a reason string where the rule fails, else null."""
    problems = []
    for column in contract.columns:
        raw, typed = pl.col(column.name), parsed[column.name]
        if column.required:
            problems.append(pl.when(raw.is_null()).then(pl.lit(f"missing required {column.name}")))
        problems.append(
            pl.when(raw.is_not_null() & typed.is_null()).then(
                pl.format(f"{column.name} is not a valid {column.kind}: '{{}}'", raw)
            )
        )
        if column.allowed:
            problems.append(
                pl.when(raw.is_not_null() & ~raw.is_in(column.allowed)).then(
                    pl.format(f"{column.name} '{{}}' is not one of {', '.join(column.allowed)}", raw)
                )
            )
    if contract.name == "surveys":
        for survey_type, (low, high) in SURVEY_SCALES.items():
            score = parsed["score"]
            problems.append(
                pl.when((pl.col("survey_type") == survey_type) & ((score < low) | (score > high))).then(
                    pl.format(f"{survey_type} score {{}} is outside {low}-{high}", pl.col("score"))
                )
            )
    if contract.name == "customers":
        problems.append(
            pl.when(parsed["churned_at"] < parsed["signup_at"]).then(pl.lit("churned_at is before signup_at"))
        )
        problems.append(pl.when(parsed["monthly_value"] < 0).then(pl.lit("monthly_value is negative")))
    return problems


def validate(text: pl.DataFrame, contract: TableContract, known_customers: pl.Series | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split text rows (from `as_text`, plus source columns) into (accepted, quarantined).

    Rows are checked against the contract, then against each other: a repeated id keeps its first
    occurrence and quarantines the rest; an event whose customer is not in the customers table is
    quarantined too (its features would have nobody to belong to).
    """
    parsed = {c.name: _parse(c) for c in contract.columns}
    checked = text.with_columns(
        pl.concat_str(_problems(contract, parsed), separator="; ", ignore_nulls=True).alias(REASON)
    ).with_columns(pl.when(pl.col(REASON) == "").then(None).otherwise(pl.col(REASON)).alias(REASON))
    # among the rows that passed, the first occurrence of an id (by file, then row) is kept
    rank = pl.int_range(pl.len()).over([contract.id_column, pl.col(REASON).is_null()], order_by=[SOURCE_FILE, SOURCE_ROW])
    checked = checked.with_columns(
        pl.when(pl.col(REASON).is_null() & (rank > 0))
        .then(pl.format(f"duplicate {contract.id_column} '{{}}' (first kept)", pl.col(contract.id_column)))
        .otherwise(pl.col(REASON))
        .alias(REASON)
    )
    if known_customers is not None and "customer_id" in text.columns and contract.name != "customers":
        checked = checked.with_columns(
            pl.when(pl.col(REASON).is_null() & ~pl.col("customer_id").is_in(known_customers.implode()))
            .then(pl.format("customer_id '{}' is not in the customers table", pl.col("customer_id")))
            .otherwise(pl.col(REASON))
            .alias(REASON)
        )
    accepted = (
        checked.filter(pl.col(REASON).is_null())
        .select([parsed[c.name].cast(c.dtype).alias(c.name) for c in contract.columns])
    )
    quarantined = checked.filter(pl.col(REASON).is_not_null())
    return accepted, quarantined
