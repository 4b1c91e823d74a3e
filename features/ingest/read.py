"""Read a landing folder's files for one table and validate them against the contract: rows in =
accepted + quarantined, for every file and for the table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from features.ingest.contract import TableContract
from features.ingest.validate import REASON, check_across_rows, check_file, quarantine_schema

READERS = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".jsonl": "ndjson",
    ".ndjson": "ndjson",
    ".json": "ndjson",
}


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
        return reason_counts(self.quarantined)


def summary_line(what: str, result: Ingested, seconds: float) -> str:
    """What one ingestion did, for the run log: counts, and the quarantine reasons when there are
    any."""
    reasons = result.reason_counts()
    shown_reasons = f" {reasons}" if reasons else ""
    return (
        f"{what}: {result.rows_in:,} rows in -> {result.accepted.height:,} accepted, "
        f"{result.quarantined.height:,} quarantined{shown_reasons} in {seconds:.1f}s"
    )


def reason_counts(quarantined: pl.DataFrame) -> dict[str, int]:
    """Quarantine reasons by kind: the quoted value (the offending one, one per reason; from its
    first quote to the last, since a value may hold an apostrophe) is dropped and the rest of the
    sentence kept, so "customer_id 'C9' is not in the customers table" counts as "customer_id is
    not in the customers table"."""
    if quarantined.is_empty():
        return {}
    kinds = quarantined.select(
        pl.col(REASON).str.split("; ").explode().str.replace_all(r":? ?'.*'", "").alias("r")
    )
    return dict(kinds.group_by("r").len().sort(["len", "r"], descending=[True, False]).iter_rows())


def landing_files(landing: Path, table: str) -> list[Path]:
    folder = landing / table
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in READERS)


def skipped_files_warning(landing: Path, table: str) -> str | None:
    """Names the files in a table's landing folder that are not read for their format (a compressed
    export, a spreadsheet), since otherwise their rows are missing without a word. Hidden files
    (.DS_Store and the like) are not data and are left out."""
    folder = landing / table
    if not folder.is_dir():
        return None
    skipped = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() not in READERS and not p.name.startswith(".")
    )
    if not skipped:
        return None
    return (
        f"{folder}: skipped {len(skipped)} file(s) in a format the pipeline does not read: "
        f"{', '.join(skipped)}. "
        f"Supported: {', '.join(READERS)} (uncompressed); "
        "convert them or move them out of the landing folder."
    )


def read_file(path: Path) -> pl.DataFrame:
    """One landing file as it arrived; an unreadable file stops the run with its name."""
    kind = READERS[path.suffix.lower()]
    try:
        if kind == "csv":
            return pl.read_csv(path, infer_schema=False)
        if kind == "ndjson":
            return pl.read_ndjson(path, infer_schema_length=None)
        return pl.read_parquet(path)
    except Exception as err:  # polars raises several error types for a malformed file
        raise LandingError(
            f"cannot read {path} as {kind}: {err}. Fix or remove the file and re-run."
        ) from err


def ingest_file(path: Path, contract: TableContract, source: str | None = None) -> Ingested:
    """One file validated on its own: row checks and ids repeated within the file.

    The accepted rows keep `_source_file` and `_source_row`, so `combine` can tell which file came
    first when the same id arrives in several files. `source` names the file in those columns and in
    the quarantine (default: the file name)."""
    good, bad = check_file(read_file(path), contract, source or path.name)
    accepted, repeated = check_across_rows(good, contract, None)
    return Ingested(accepted, pl.concat([bad, repeated]), (str(path),))


def combine(
    parts: Sequence[Ingested], contract: TableContract, known_customers: pl.Series | None = None
) -> Ingested:
    """Several files' results as one table: an id seen in an earlier part keeps that first copy and
    quarantines the later ones, and events of unknown customers are quarantined. Parts come in
    the order that decides "first" (file name order). Rows in = accepted + quarantined still
    holds."""
    quarantine_parts = [
        pl.DataFrame(schema=quarantine_schema(contract)),
        *(p.quarantined for p in parts),
    ]
    if not parts:
        return Ingested(contract.empty(), quarantine_parts[0], ())
    accepted, rejected = check_across_rows(
        pl.concat([p.accepted for p in parts]), contract, known_customers
    )
    files = tuple(f for p in parts for f in p.files)
    return Ingested(
        accepted.select(contract.schema.names()), pl.concat([*quarantine_parts, rejected]), files
    )


def ingest_table(
    landing: Path, contract: TableContract, known_customers: pl.Series | None = None
) -> Ingested:
    """All files of one table, validated; an absent optional table is an empty one."""
    files = landing_files(landing, contract.name)
    if not files and contract.required_table:
        skipped = skipped_files_warning(landing, contract.name)
        skipped_note = f". {skipped}" if skipped else ""
        raise LandingError(
            f"no {contract.name} files in {landing / contract.name}: put Parquet, CSV or "
            f"JSON Lines files there (see data/README.md for the columns){skipped_note}"
        )
    return combine([ingest_file(path, contract) for path in files], contract, known_customers)
