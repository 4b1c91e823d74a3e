"""Turn raw landing rows into typed rows or quarantined rows with reasons.

Each file is checked in the types it arrived in (a Parquet timestamp stays a timestamp; CSV text is
parsed), so large typed files never take a round trip through text. Only rejected rows are turned
into text, for the quarantine file, which has one string schema whatever the source format.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from features.ingest.contract import (
    EVENT_TABLES,
    SURVEY_SCALES,
    UTC_DATETIME,
    Column,
    TableContract,
)
from features.ingest.scrub import scrub

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
REASON = "_reason"
# how a quarantine reason for an event of a customer not in the customers table ends
UNKNOWN_CUSTOMER = "is not in the customers table"
_TIMESTAMP_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_TRUE = ("true", "1", "yes", "t", "y")
_FALSE = ("false", "0", "no", "f", "n")


def quarantine_schema(contract: TableContract) -> pl.Schema:
    return pl.Schema(
        {
            **{c.name: pl.String() for c in contract.columns},
            SOURCE_FILE: pl.String(),
            SOURCE_ROW: pl.Int64(),
            REASON: pl.String(),
        }
    )


def no_accepted(contract: TableContract) -> pl.DataFrame:
    """No accepted rows, in the shape `check_file` gives them (with the source columns)."""
    return pl.DataFrame(
        schema={**contract.schema, SOURCE_FILE: pl.String(), SOURCE_ROW: pl.Int64()}
    )


def no_quarantine(contract: TableContract) -> pl.DataFrame:
    return pl.DataFrame(schema=quarantine_schema(contract))


def contract_columns(raw: pl.DataFrame, contract: TableContract) -> pl.DataFrame:
    """The contract's columns in their arrived types (missing ones as nulls, blank text as null);
    PII columns are not selected, and free text is scrubbed of contact details
    (`features.ingest.scrub`), so they go no further than this, not even into the quarantine."""
    columns = []
    for column in contract.columns:
        if column.name not in raw.columns:
            columns.append(pl.lit(None, dtype=pl.String).alias(column.name))
        elif raw.schema[column.name] == pl.String or column.kind == "text":
            text = pl.col(column.name).cast(pl.String).str.strip_chars()
            if column.kind == "text":
                text = scrub(text)
            columns.append(pl.when(text == "").then(None).otherwise(text).alias(column.name))
        else:
            columns.append(pl.col(column.name))
    return raw.select(columns)


def parse_timestamp(col: pl.Expr) -> pl.Expr:
    """ISO 8601 text to UTC; an offset is honoured, a naive timestamp is taken as UTC."""
    return col.map_batches(_parse_timestamps, return_dtype=UTC_DATETIME, is_elementwise=True)


def _parse_timestamps(text: pl.Series) -> pl.Series:
    """Each format, in order, read where no earlier one could: a column holds one format or two,
    so this costs one or two parses, where trying every format on every value cost five (most of
    validating a file's rows)."""
    parsed = (
        text.str.replace(r"Z$", "+00:00")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="us")
        .dt.convert_time_zone("UTC")
    )
    for fmt in _TIMESTAMP_FORMATS:
        unread = (parsed.is_null() & text.is_not_null()).arg_true()
        if unread.is_empty():
            break
        naive = text.gather(unread).str.to_datetime(fmt, strict=False, time_unit="us")
        parsed = parsed.scatter(unread, naive.dt.replace_time_zone("UTC"))
    return parsed


def _parse(column: Column, dtype: pl.DataType) -> pl.Expr:
    """The column in its contract type; null where the value cannot be read as that type."""
    col = pl.col(column.name)
    text = dtype == pl.String or dtype == pl.Null
    if column.kind == "timestamp":
        if isinstance(dtype, pl.Datetime):
            typed = col.cast(pl.Datetime("us", dtype.time_zone))
            return (
                typed.dt.convert_time_zone("UTC")
                if dtype.time_zone
                else typed.dt.replace_time_zone("UTC")
            )
        if dtype == pl.Date:
            return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return parse_timestamp(col.cast(pl.String))
    if column.kind in ("float", "int"):
        number = col.cast(pl.Float64, strict=False)
        return number.cast(pl.Int64, strict=False) if column.kind == "int" else number
    if column.kind == "bool":
        if dtype == pl.Boolean:
            return col
        lower = col.cast(pl.String).str.to_lowercase()
        return (
            pl.when(lower.is_in(_TRUE))
            .then(True)
            .when(lower.is_in(_FALSE))
            .then(False)
            .otherwise(None)
        )
    if column.kind == "id":
        if dtype.is_float():
            # a numeric id stored as float (42.0, as pandas writes integers with gaps) is the
            # id "42"
            whole = col == col.floor()
            return (
                pl.when(whole)
                .then(col.cast(pl.Int64, strict=False).cast(pl.String))
                .otherwise(col.cast(pl.String))
            )
        return col if text else col.cast(pl.String)
    return col if text else col.cast(pl.String)


def _problems(
    contract: TableContract, parsed: dict[str, pl.Expr], not_after: datetime | None
) -> list[pl.Expr]:
    """One expression per rule, each giving a reason string where the rule fails, else null."""
    problems = []
    if not_after is not None and contract.name in EVENT_TABLES:
        # a time after the file arrived is a broken clock or a placeholder (2099-01-01); taken
        # as the latest event, it would move as_of and every cutoff with it
        latest = pl.lit(not_after, dtype=UTC_DATETIME)
        for column in contract.columns:
            if column.kind == "timestamp":
                problems.append(
                    pl.when(parsed[column.name] > latest).then(
                        pl.format(
                            f"{column.name} '{{}}' is later than when its file arrived",
                            pl.col(column.name).cast(pl.String),
                        )
                    )
                )
    for column in contract.columns:
        raw, typed = pl.col(column.name), parsed[column.name]
        if column.required:
            problems.append(pl.when(raw.is_null()).then(pl.lit(f"missing required {column.name}")))
        problems.append(
            pl.when(raw.is_not_null() & typed.is_null()).then(
                pl.format(
                    f"{column.name} is not a valid {column.kind}: '{{}}'", raw.cast(pl.String)
                )
            )
        )
        if column.allowed:
            problems.append(
                pl.when(typed.is_not_null() & ~typed.is_in(column.allowed)).then(
                    pl.format(
                        f"{column.name} '{{}}' is not one of {', '.join(column.allowed)}", typed
                    )
                )
            )
    if contract.name == "surveys":
        score = parsed["score"]
        for survey_type, (low, high) in SURVEY_SCALES.items():
            problems.append(
                pl.when(
                    (parsed["survey_type"] == survey_type) & ((score < low) | (score > high))
                ).then(
                    pl.format(
                        f"{survey_type} score '{{}}' is outside {low}-{high}",
                        pl.col("score").cast(pl.String),
                    )
                )
            )
    if contract.name == "support":
        for done in ("first_response_at", "resolved_at"):
            problems.append(
                pl.when(parsed[done] < parsed["opened_at"]).then(
                    pl.lit(f"{done} is before opened_at")
                )
            )
    if contract.name == "customers":
        problems.append(
            pl.when(parsed["churned_at"] < parsed["signup_at"]).then(
                pl.lit("churned_at is before signup_at")
            )
        )
        problems.append(
            pl.when(parsed["monthly_value"] < 0).then(pl.lit("monthly_value is negative"))
        )
    return problems


def _as_quarantine(frame: pl.DataFrame, contract: TableContract) -> pl.DataFrame:
    return frame.select([pl.col(c).cast(t) for c, t in quarantine_schema(contract).items()])


def check_file(
    raw: pl.DataFrame, contract: TableContract, source: str, not_after: datetime | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Row-level checks of one file: (typed rows that passed, with source columns; quarantined
    rows). An event table's times later than `not_after` (the file's arrival, give or take a
    day) are quarantined."""
    raw = contract_columns(raw, contract).with_columns(
        pl.lit(source).alias(SOURCE_FILE),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(SOURCE_ROW),
    )
    # each column parsed once, into a column of its own: the rules read it several times
    typed = {c.name: f"__typed_{c.name}" for c in contract.columns}
    raw = raw.with_columns(
        _parse(c, raw.schema[c.name]).alias(typed[c.name]) for c in contract.columns
    )
    parsed = {name: pl.col(column) for name, column in typed.items()}
    reason = pl.concat_str(
        _problems(contract, parsed, not_after), separator="; ", ignore_nulls=True
    )
    checked = raw.with_columns(pl.when(reason == "").then(None).otherwise(reason).alias(REASON))
    good = checked.filter(pl.col(REASON).is_null()).select(
        *[parsed[c.name].cast(c.dtype).alias(c.name) for c in contract.columns],
        SOURCE_FILE,
        SOURCE_ROW,
    )
    return good, _as_quarantine(checked.filter(pl.col(REASON).is_not_null()), contract)


def check_across_rows(
    good: pl.DataFrame,
    contract: TableContract,
    known_customers: pl.Series | None,
    earlier_ids: pl.LazyFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Checks that need more than one row: a repeated id keeps its first occurrence (by file, then
    row) and quarantines the rest; an event whose customer is not in the customers table is
    quarantined (its features would have nobody to belong to). `earlier_ids` (one column, the
    id) are ids accepted from earlier files, so a new file is checked against them without
    reading those files again. Returns (accepted with the source columns kept, so the check can
    run again over several files' results; quarantined)."""
    ids = pl.col(contract.id_column)
    first = ids.is_first_distinct()  # rows arrive in file, then row, order
    if earlier_ids is not None:
        # the earlier ids among these rows: a join that hashes the few new ids, not the many old
        seen = earlier_ids.join(good.lazy().select(ids), on=contract.id_column, how="semi")
        first = first & ~ids.is_in(seen.collect().to_series().implode())
    reason = pl.when(~first).then(
        pl.format(f"duplicate {contract.id_column} '{{}}' (first kept)", ids)
    )
    if known_customers is not None and contract.name != "customers":
        unknown = ~pl.col("customer_id").is_in(known_customers.implode())
        reason = reason.when(unknown).then(
            pl.format(f"customer_id '{{}}' {UNKNOWN_CUSTOMER}", pl.col("customer_id"))
        )
    checked = good.with_columns(reason.otherwise(None).alias(REASON))
    accepted = checked.filter(pl.col(REASON).is_null()).select(
        *contract.schema.names(), SOURCE_FILE, SOURCE_ROW
    )
    return accepted, _as_quarantine(checked.filter(pl.col(REASON).is_not_null()), contract)
