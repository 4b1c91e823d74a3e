"""Read a landing folder's files for one table and validate them against the contract."""

from __future__ import annotations

import shutil
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from features.contract import TableContract
from features.validate import REASON, SOURCE_FILE, SOURCE_ROW, check_across_rows, check_file, quarantine_schema

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
        return reason_counts(self.quarantined)


@dataclass(frozen=True)
class IngestedBuckets:
    """An event table validated into bucket folders (`ingest_bucketed`): the accepted rows are on
    disk, only their count is here; quarantined rows are few and kept to report."""

    accepted: int
    quarantined: pl.DataFrame
    files: tuple[str, ...]
    buckets: int

    @property
    def rows_in(self) -> int:
        return self.accepted + self.quarantined.height

    def reason_counts(self) -> dict[str, int]:
        return reason_counts(self.quarantined)


def reason_counts(quarantined: pl.DataFrame) -> dict[str, int]:
    """Quarantine reasons by kind: the quoted value (the offending one, one per reason; from its first
    quote to the last, since a value may hold an apostrophe) is dropped and the rest of the sentence kept, so "customer_id 'C9' is not in the customers table" counts as "customer_id is not
    in the customers table"."""
    if quarantined.is_empty():
        return {}
    kinds = quarantined.select(pl.col(REASON).str.split("; ").explode().str.replace_all(r":? ?'.*'", "").alias("r"))
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
    skipped = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p.suffix.lower() not in READERS and not p.name.startswith("."))
    if not skipped:
        return None
    return (
        f"{folder}: skipped {len(skipped)} file(s) in a format the pipeline does not read: {', '.join(skipped)}. "
        f"Supported: {', '.join(READERS)} (uncompressed); convert them or move them out of the landing folder."
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
        raise LandingError(f"cannot read {path} as {kind}: {err}. Fix or remove the file and re-run.") from err


def ingest_file(path: Path, contract: TableContract, source: str | None = None) -> Ingested:
    """One file validated on its own: row checks and ids repeated within the file.

    The accepted rows keep `_source_file` and `_source_row`, so `combine` can tell which file came
    first when the same id arrives in several files. `source` names the file in those columns and in
    the quarantine (default: the file name)."""
    good, bad = check_file(read_file(path), contract, source or path.name)
    accepted, repeated = check_across_rows(good, contract, None)
    return Ingested(accepted, pl.concat([bad, repeated]), (str(path),))


def combine(parts: Sequence[Ingested], contract: TableContract, known_customers: pl.Series | None = None) -> Ingested:
    """Several files' results as one table: an id seen in an earlier part keeps that first copy and
    quarantines the later ones, and events of unknown customers are quarantined. Parts come in
    the order that decides "first" (file name order). Rows in = accepted + quarantined still holds."""
    quarantine_parts = [pl.DataFrame(schema=quarantine_schema(contract)), *(p.quarantined for p in parts)]
    if not parts:
        return Ingested(contract.empty(), quarantine_parts[0], ())
    accepted, rejected = check_across_rows(pl.concat([p.accepted for p in parts]), contract, known_customers)
    files = tuple(f for p in parts for f in p.files)
    return Ingested(accepted.select(contract.schema.names()), pl.concat([*quarantine_parts, rejected]), files)


def ingest_table(landing: Path, contract: TableContract, known_customers: pl.Series | None = None) -> Ingested:
    """All files of one table, validated; an absent optional table is an empty one."""
    files = landing_files(landing, contract.name)
    if not files and contract.required_table:
        skipped = skipped_files_warning(landing, contract.name)
        raise LandingError(
            f"no {contract.name} files in {landing / contract.name}: put Parquet, CSV or JSON Lines "
            "files there (see data/README.md for the columns)" + (f". {skipped}" if skipped else "")
        )
    return combine([ingest_file(path, contract) for path in files], contract, known_customers)


def customer_bucket(customer_id: pl.Expr, buckets: int) -> pl.Expr:
    """Which of `buckets` buckets (0 to buckets - 1, UInt32) a customer's rows belong to: the CRC-32
    of the id's UTF-8 bytes, modulo the number of buckets; null for a null id.

    Every stage that works on a subset of customers at a time must put a customer in the same bucket
    in every process, run and library version. Polars' own `hash` is not guaranteed stable across
    versions; CRC-32 is a fixed standard (Python's zlib, and most languages and SQL engines), spreads
    sequential ids evenly (1M ids `C000000`.. over 17 buckets: each within 1% of the mean), and
    works for any id, not only numbered ones. It is computed in Python once per distinct id in a
    batch, which costs little next to reading the rows (a customer has tens to hundreds of events).
    """
    if buckets < 1:
        raise ValueError(f"the number of buckets must be at least 1, got {buckets}")
    return customer_id.map_batches(lambda ids: _crc32_buckets(ids, buckets), return_dtype=pl.UInt32, is_elementwise=True)


def _crc32_buckets(ids: pl.Series, buckets: int) -> pl.Series:
    distinct = ids.drop_nulls().unique()
    codes = pl.Series([zlib.crc32(i.encode()) % buckets for i in distinct.to_list()], dtype=pl.UInt32)
    return ids.replace_strict(distinct, codes, default=None, return_dtype=pl.UInt32)


def bucket_folder(table_folder: Path, bucket: int) -> Path:
    """Where one bucket of a bucketed table lives: `<table_folder>/bucket=NN/`, one Parquet file in it
    (`pl.scan_parquet(bucket_folder(...) / "*.parquet")` reads that subset of customers)."""
    return table_folder / f"bucket={bucket:02d}"


def ingest_bucketed(landing: Path, contract: TableContract, known_customers: pl.Series, out: Path, buckets: int) -> IngestedBuckets:
    """Every landing file of an event table validated and written to `out/bucket=NN/part.parquet`,
    rows split by `customer_bucket`: the same accepted and quarantined rows as `ingest_table` (but
    for the limit below), in memory bounded by the largest file and the largest bucket instead of
    the whole table.

    First pass, one file at a time: the row checks and ids repeated within the file
    (`ingest_file`), the accepted rows split into per-bucket pieces in a temporary folder beside
    `out`. Second pass, one bucket at a time: `combine` over that bucket's pieces in file name order,
    so an id already seen in an earlier file and events of customers not in `known_customers` are
    quarantined as `ingest_table` does it; all of a customer's rows are in one bucket. Not caught:
    the same id on rows of two customers that fall in different buckets (each bucket keeps its
    copy). `out` is replaced, so re-running never piles up rows.
    """
    if contract.name == "customers":
        raise ValueError("validate the customers table whole with ingest_table (events are bucketed by customer, customers are not)")
    files = landing_files(landing, contract.name)
    none_quarantined = pl.DataFrame(schema=quarantine_schema(contract))
    none_accepted = pl.DataFrame(schema={**contract.schema, SOURCE_FILE: pl.String(), SOURCE_ROW: pl.Int64()})
    quarantined = [none_quarantined]
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-pieces-") as tmp:
        pieces = Path(tmp)
        for number, path in enumerate(files):
            result = ingest_file(path, contract, path.relative_to(landing / contract.name).as_posix())
            quarantined.append(result.quarantined)
            split = result.accepted.with_columns(customer_bucket(pl.col("customer_id"), buckets).alias("_bucket"))
            for (bucket,), piece in split.partition_by("_bucket", as_dict=True).items():
                folder = bucket_folder(pieces, bucket)
                folder.mkdir(exist_ok=True)
                piece.drop("_bucket").write_parquet(folder / f"{number:06d}.parquet")
        accepted = 0
        for bucket in range(buckets):
            parts = sorted(bucket_folder(pieces, bucket).glob("*.parquet"))
            rows = pl.read_parquet(parts) if parts else none_accepted
            result = combine([Ingested(rows, none_quarantined, tuple(map(str, parts)))], contract, known_customers)
            bucket_folder(out, bucket).mkdir(parents=True)
            result.accepted.write_parquet(bucket_folder(out, bucket) / "part.parquet")
            quarantined.append(result.quarantined)
            accepted += result.accepted.height
    return IngestedBuckets(accepted, pl.concat(quarantined), tuple(map(str, files)), buckets)
