"""Read a landing folder's files for one table and validate them against the contract: rows in =
accepted + quarantined, for every file and for the table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import polars as pl
import pyarrow.parquet as pq

from features.ingest.contract import CUSTOMER_REFERENCES, TableContract
from features.ingest.dialect import UnreadableFile, data_lines, read_csv
from features.ingest.pseudonyms import pseudonymize
from features.ingest.validate import (
    REASON,
    check_across_rows,
    check_file,
    no_accepted,
    no_quarantine,
)

ARRIVAL_GRACE = timedelta(days=1)
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
class QuarantinedFile:
    """A landing file no row of which could be read as a table (unparseable, empty, a required
    column missing): set aside whole with its reason, its rows counted from the file itself."""

    file: str
    rows: int
    reason: str


@dataclass(frozen=True)
class Ingested:
    accepted: pl.DataFrame
    quarantined: pl.DataFrame
    files: tuple[str, ...]
    files_quarantined: tuple[QuarantinedFile, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def accepted_rows(self) -> int:
        return self.accepted.height

    @property
    def rows_in(self) -> int:
        return self.accepted.height + self.rows_quarantined

    @property
    def rows_quarantined(self) -> int:
        """Rows quarantined one by one and rows of the files quarantined whole."""
        return self.quarantined.height + sum(f.rows for f in self.files_quarantined)

    def reason_counts(self) -> dict[str, int]:
        return reason_counts(self.quarantined)


class IngestSummary(Protocol):
    """What a log line and a run's metadata say of an ingestion, whether its accepted rows are in
    memory (`Ingested`) or in bucket files (`features.ingest.buckets.IngestedBuckets`)."""

    @property
    def accepted_rows(self) -> int: ...

    @property
    def rows_in(self) -> int: ...

    @property
    def rows_quarantined(self) -> int: ...

    @property
    def files(self) -> tuple[str, ...]: ...

    @property
    def warnings(self) -> tuple[str, ...]: ...

    @property
    def files_quarantined(self) -> tuple[QuarantinedFile, ...]: ...

    def reason_counts(self) -> dict[str, int]: ...


def summary_line(what: str, result: IngestSummary, seconds: float) -> str:
    """What one ingestion did, for the run log: counts, and the quarantine reasons when there are
    any."""
    reasons = result.reason_counts()
    shown_reasons = f" {reasons}" if reasons else ""
    whole = result.files_quarantined
    shown_files = (
        f"; {len(whole)} file(s) quarantined whole: "
        + "; ".join(f"{f.file} ({f.rows:,} rows): {f.reason}" for f in whole)
        if whole
        else ""
    )
    return (
        f"{what}: {result.rows_in:,} rows in -> {result.accepted_rows:,} accepted, "
        f"{result.rows_quarantined:,} quarantined{shown_reasons} in {seconds:.1f}s{shown_files}"
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


def _rows_in_unreadable(path: Path, kind: str) -> int:
    """What an unreadable file holds, as far as the file itself tells: its lines for text, its
    footer's row count for Parquet (0 when even that is unreadable)."""
    if kind != "parquet":
        return data_lines(path.read_bytes())
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # a corrupt footer is as unreadable as the rest
        return 0


def read_file(path: Path, contract: TableContract) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """One landing file as it arrived, with warnings on how it had to be read (its encoding).

    Raises `UnreadableFile` when no row of it can be taken as a table of the contract: it cannot
    be parsed, is empty, or lacks a required column."""
    kind = READERS[path.suffix.lower()]
    warnings: tuple[str, ...] = ()
    try:
        if kind == "csv":
            read = read_csv(path, {c.name for c in contract.columns})
            frame, warnings = read.frame, read.warnings
        elif path.stat().st_size == 0:
            raise UnreadableFile("the file is empty", 0)
        elif kind == "ndjson":
            frame = pl.read_ndjson(path, infer_schema_length=None)
        else:
            frame = pl.read_parquet(path)
    except UnreadableFile:
        raise
    except Exception as err:  # polars and pyarrow raise several error types for a malformed file
        raise UnreadableFile(
            f"cannot be read as {kind}: {err}", _rows_in_unreadable(path, kind)
        ) from err
    if missing := contract.missing_required(frame.columns):
        raise UnreadableFile(
            f"lacks required columns {missing} (it has {frame.columns[:12]})", frame.height
        )
    return frame, warnings


def arrived_by(path: Path, now: datetime | None = None) -> datetime:
    """The latest plausible time in a file: when it arrived (its modification time, or now when
    that lies in the future), and a day's grace for clocks and time zones."""
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return min(modified, now or datetime.now(UTC)) + ARRIVAL_GRACE


def ingest_file(
    path: Path,
    contract: TableContract,
    source: str | None = None,
    pseudonym_key: str | None = None,
) -> Ingested:
    """One file validated on its own: row checks and ids repeated within the file; a file that
    cannot be read as a table is quarantined whole, with its rows counted from the file.

    The accepted rows keep `_source_file` and `_source_row`, so `combine` can tell which file came
    first when the same id arrives in several files. `source` names the file in those columns and in
    the quarantine (default: the file name). With `pseudonym_key`, customer ids leave as their
    pseudonyms (`features.ingest.pseudonyms`), in the accepted rows and the quarantine alike."""
    name = source or path.name
    try:
        raw, warnings = read_file(path, contract)
    except UnreadableFile as err:
        whole = QuarantinedFile(name, err.rows, err.reason)
        return Ingested(no_accepted(contract), no_quarantine(contract), (str(path),), (whole,))
    good, bad = check_file(raw, contract, name, arrived_by(path))
    # before the checks that quote an id in their reason (a customer id repeated)
    accepted, repeated = check_across_rows(_pseudonymized(good, pseudonym_key), contract, None)
    return Ingested(
        accepted,
        pl.concat([_pseudonymized(bad, pseudonym_key), repeated]),
        (str(path),),
        warnings=tuple(f"{name}: {w}" for w in warnings),
    )


def _pseudonymized(frame: pl.DataFrame, key: str | None) -> pl.DataFrame:
    for column in CUSTOMER_REFERENCES:
        frame = pseudonymize(frame, key, column)
    return frame


def combine(
    parts: Sequence[Ingested], contract: TableContract, known_customers: pl.Series | None = None
) -> Ingested:
    """Several files' results as one table: an id seen in an earlier part keeps that first copy and
    quarantines the later ones, and events of unknown customers are quarantined. Parts come in
    the order that decides "first" (file name order). Rows in = accepted + quarantined still
    holds."""
    quarantine_parts = [no_quarantine(contract), *(p.quarantined for p in parts)]
    if not parts:
        return Ingested(contract.empty(), quarantine_parts[0], ())
    accepted, rejected = check_across_rows(
        pl.concat([p.accepted for p in parts]), contract, known_customers
    )
    return Ingested(
        accepted.select(contract.schema.names()),
        pl.concat([*quarantine_parts, rejected]),
        tuple(f for p in parts for f in p.files),
        tuple(f for p in parts for f in p.files_quarantined),
        tuple(w for p in parts for w in p.warnings),
    )


def ingest_table(
    landing: Path,
    contract: TableContract,
    known_customers: pl.Series | None = None,
    pseudonym_key: str | None = None,
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
    parts = [ingest_file(path, contract, pseudonym_key=pseudonym_key) for path in files]
    result = combine(parts, contract, known_customers)
    if contract.required_table and result.files_quarantined:
        # without every customer, their events would be quarantined as unknown customers
        unreadable = "; ".join(f"{f.file}: {f.reason}" for f in result.files_quarantined)
        raise LandingError(
            f"{landing / contract.name}: {unreadable}. Fix or remove the file and re-run."
        )
    return result
