"""Read a landing folder's files for one table and validate them against the contract."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from features.contract import TableContract
from features.validate import REASON, SOURCE_FILE, SOURCE_ROW, as_text, validate

READERS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "ndjson", ".ndjson": "ndjson", ".json": "ndjson"}


class LandingError(ValueError):
    """The landing folder cannot be read as the contract asks; the message says what to fix."""


@dataclass(frozen=True)
class Ingested:
    accepted: pl.DataFrame
    quarantined: pl.DataFrame
    files: tuple[str, ...]

    @property
    def rows_in(self) -> int:
        return self.accepted.height + self.quarantined.height

    def reason_counts(self) -> dict[str, int]:
        """Quarantine reasons with the variable part (the offending value) cut off."""
        if self.quarantined.is_empty():
            return {}
        kinds = self.quarantined.select(pl.col(REASON).str.split("; ").explode().str.replace(r":? '.*$", "").alias("r"))
        return dict(kinds.group_by("r").len().sort("len", descending=True).iter_rows())


def landing_files(landing: Path, table: str) -> list[Path]:
    folder = landing / table
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in READERS)


def read_file(path: Path, contract: TableContract) -> pl.DataFrame:
    """One landing file as text columns, with its name and row numbers kept for the quarantine."""
    kind = READERS[path.suffix.lower()]
    try:
        if kind == "csv":
            raw = pl.read_csv(path, infer_schema=False)
        elif kind == "ndjson":
            raw = pl.read_ndjson(path, infer_schema_length=None)
        else:
            raw = pl.read_parquet(path)
    except Exception as err:  # polars raises several error types for a malformed file
        raise LandingError(f"cannot read {path} as {kind}: {err}. Fix or remove the file and re-run.") from err
    return as_text(raw, contract).with_columns(
        pl.lit(path.name).alias(SOURCE_FILE), pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(SOURCE_ROW)
    )


def ingest_table(landing: Path, contract: TableContract, known_customers: pl.Series | None = None) -> Ingested:
    """All files of one table, validated; an absent optional table is an empty one."""
    files = landing_files(landing, contract.name)
    if not files:
        if contract.required_table:
            raise LandingError(
                f"no {contract.name} files in {landing / contract.name}: put Parquet, CSV or JSON Lines "
                "files there (see data/README.md for the columns)"
            )
        empty = contract.empty()
        return Ingested(empty, pl.DataFrame(schema={**{c: pl.String for c in empty.columns}, SOURCE_FILE: pl.String, SOURCE_ROW: pl.Int64, REASON: pl.String}), ())
    text = pl.concat([read_file(f, contract) for f in files], how="vertical")
    accepted, quarantined = validate(text, contract, known_customers)
    return Ingested(accepted, quarantined, tuple(str(f) for f in files))
