"""Bring your own data: a small declarative mapping from a business's own tables to the input
contract's, written as landing files the pipeline then ingests like any other.

A `TableMap` says how the rows of one source table become rows of one contract table: which
source column (or expression) gives each contract column, how text timestamps parse, how the
source's event names map to contract event types, and which source rows it takes (`where`: a
composite event such as "delivered later than estimated" is a comparison of two columns). Rows it
cannot place (a timestamp that does not parse, an event name without a mapping) are quarantined
with the reason, so rows in = mapped + quarantined for every map; the contract's own rules are
checked later, at ingestion, as for any landing file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from features.ingest.contract import CONTRACTS, UTC_DATETIME

REASON = "_reason"
MAP = "_map"

Source = str | pl.Expr  # a source column's name, or an expression over the source row


@dataclass(frozen=True)
class TableMap:
    """How one source table's rows become one contract table's rows."""

    name: str  # names the landing file and the quarantine of this map
    table: str  # the contract table the rows go to
    columns: Mapping[str, Source]  # contract column -> where its value comes from
    timestamps: Mapping[str, str] = field(default_factory=dict)  # contract column -> strftime
    event_types: Mapping[str, str] | None = None  # source event name -> contract event type
    where: pl.Expr | None = None  # which source rows the map takes; None: all of them

    def __post_init__(self) -> None:
        contract = CONTRACTS[self.table]
        unknown = sorted(set(self.columns) - set(contract.schema.names()))
        if unknown:
            raise ValueError(
                f"map {self.name!r}: {unknown} are not columns of the {self.table} contract "
                f"({', '.join(contract.schema.names())})"
            )
        required = [c.name for c in contract.columns if c.required and c.name not in self.columns]
        if required:
            raise ValueError(f"map {self.name!r}: the {self.table} contract needs {required}")


@dataclass(frozen=True)
class Mapped:
    """One map's result: contract rows, and the source rows it could not place, with why."""

    table_map: TableMap
    accepted: pl.DataFrame
    quarantined: pl.DataFrame

    @property
    def rows_in(self) -> int:
        return self.accepted.height + self.quarantined.height


def _value(source: Source) -> pl.Expr:
    return pl.col(source) if isinstance(source, str) else source


def apply_map(source: pl.DataFrame, table_map: TableMap) -> Mapped:
    """The contract rows of `table_map` over `source`, and the rows it could not place."""
    rows = source if table_map.where is None else source.filter(table_map.where)
    raw = rows.select(
        *[_value(s).alias(c) for c, s in table_map.columns.items()],
        pl.struct(pl.all()).alias("_source"),
    )
    typed, problems = [], []
    for column, fmt in table_map.timestamps.items():
        text = pl.col(column).cast(pl.String)
        parsed = text.str.to_datetime(fmt, strict=False, time_unit="us").dt.replace_time_zone("UTC")
        typed.append(parsed.alias(column))
        problems.append(
            pl.when(text.is_not_null() & parsed.is_null()).then(
                pl.format(f"{column} '{{}}' does not parse as {fmt}", text)
            )
        )
    if table_map.event_types is not None:
        names = pl.col("event_type").cast(pl.String)
        mapped = names.replace_strict(dict(table_map.event_types), default=None)
        typed.append(mapped.alias("event_type"))
        problems.append(
            pl.when(names.is_not_null() & mapped.is_null()).then(
                pl.format("event '{}' has no mapping to a contract event type", names)
            )
        )
    reason = pl.concat_str(problems, separator="; ", ignore_nulls=True) if problems else None
    checked = raw.with_columns(
        pl.lit(None, pl.String).alias(REASON) if reason is None else reason.alias(REASON)
    ).with_columns(typed)
    bad = checked.filter(pl.col(REASON).is_not_null() & (pl.col(REASON) != ""))
    good = checked.filter(pl.col(REASON).is_null() | (pl.col(REASON) == ""))
    return Mapped(table_map, _in_contract(good, table_map.table), _quarantine(bad, table_map))


def _in_contract(frame: pl.DataFrame, table: str) -> pl.DataFrame:
    """The contract's columns in its order; timestamps as UTC, other values as the map gave them
    (ingestion parses and checks them as it does any landing file)."""
    schema = CONTRACTS[table].schema
    columns = []
    for name, dtype in schema.items():
        if name not in frame.columns:
            columns.append(pl.lit(None, dtype).alias(name))
        elif dtype == UTC_DATETIME and frame.schema[name] != UTC_DATETIME:
            columns.append(pl.col(name).cast(pl.String).alias(name))
        else:
            columns.append(pl.col(name))
    return frame.select(columns)


def _quarantine(frame: pl.DataFrame, table_map: TableMap) -> pl.DataFrame:
    """The source rows a map could not place, as text, with the reason and the map's name."""
    source = frame.select(pl.col("_source").struct.unnest()) if frame.height else pl.DataFrame()
    as_text = source.select(pl.all().cast(pl.String)) if source.width else source
    return as_text.with_columns(
        pl.Series(REASON, frame[REASON], dtype=pl.String),
        pl.lit(table_map.name).alias(MAP),
    )


def write_landing(results: list[Mapped], data_root: Path) -> dict[str, dict[str, int]]:
    """Each map's rows as a Parquet landing file (`landing/<table>/<map name>.parquet`), and what
    it could not place in `quarantine/mapping/<map name>.parquet`. A map's earlier files are
    replaced, so mapping again never piles up rows. Returns rows in, mapped and quarantined per
    map."""
    counts = {}
    for result in results:
        table_map = result.table_map
        folder = data_root / "landing" / table_map.table
        folder.mkdir(parents=True, exist_ok=True)
        result.accepted.write_parquet(folder / f"{table_map.name}.parquet")
        quarantine = data_root / "quarantine" / "mapping"
        quarantine.mkdir(parents=True, exist_ok=True)
        result.quarantined.write_parquet(quarantine / f"{table_map.name}.parquet")
        data_root.mkdir(parents=True, exist_ok=True)
        counts[table_map.name] = {
            "rows_in": result.rows_in,
            "mapped": result.accepted.height,
            "quarantined": result.quarantined.height,
        }
    return counts


def write_settings(data_root: Path, settings: Mapping[str, object]) -> None:
    """The run settings a dataset needs (its horizon, say) in the data root's settings file,
    `touchpoint_churn.toml`, which the pipeline reads; `make` variables still win over it."""
    lines = [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in settings.items()]
    (data_root / "touchpoint_churn.toml").write_text("\n".join(lines) + "\n")
