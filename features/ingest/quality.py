"""Rules behind the input tables' asset checks (`input_schema`, `quarantine_share`), as plain
functions: each returns what is wrong (empty when all is well), in words that say what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl

from features.ingest.contract import TableContract
from features.ingest.read import READERS


def header_columns(path: Path) -> list[str]:
    """The columns a landing file declares, read without loading its rows (JSON Lines: its first
    100)."""
    kind = READERS[path.suffix.lower()]
    if kind == "parquet":
        return list(pl.read_parquet_schema(path))
    if kind == "csv":
        return pl.scan_csv(path, infer_schema=False).collect_schema().names()
    return pl.scan_ndjson(path, infer_schema_length=100).collect_schema().names()


def missing_required(columns: Sequence[str], contract: TableContract) -> list[str]:
    return [c.name for c in contract.columns if c.required and c.name not in columns]


def schema_problems(frame: pl.DataFrame, contract: TableContract) -> list[str]:
    """A validated table must hold exactly the contract's columns and types, every required value,
    and unique ids."""
    problems = []
    if frame.schema != contract.schema:
        problems.append(
            f"{contract.name} columns {dict(frame.schema)} "
            f"differ from the contract {dict(contract.schema)}"
        )
        return problems
    for column in contract.columns:
        nulls = frame[column.name].null_count() if column.required else 0
        if nulls:
            problems.append(f"{nulls} rows lack required {column.name}")
    repeated = frame.height - frame[contract.id_column].n_unique()
    if repeated:
        problems.append(f"{repeated} repeated {contract.id_column} values")
    return problems


def quarantine_share(accepted: int, quarantined: int) -> float:
    total = accepted + quarantined
    return quarantined / total if total else 0.0
