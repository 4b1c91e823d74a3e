"""Event tables validated into buckets by customer, so a stage can hold one subset of customers at a
time: every stage that works bucket by bucket puts a customer in the same bucket, in every process,
run and library version. The bucketed Dagster assets (`pipelines.partitions`) and `make bench` both
split rows with `customer_bucket`.
"""

from __future__ import annotations

import shutil
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from features.ingest.contract import TableContract
from features.ingest.read import (
    Ingested,
    QuarantinedFile,
    combine,
    ingest_file,
    landing_files,
    reason_counts,
)
from features.ingest.validate import no_accepted, no_quarantine


@dataclass(frozen=True)
class IngestedBuckets:
    """An event table validated into bucket folders (`ingest_bucketed`): the accepted rows are on
    disk, only their count is here; quarantined rows are few and kept to report."""

    accepted: int
    quarantined: pl.DataFrame
    files: tuple[str, ...]
    buckets: int
    files_quarantined: tuple[QuarantinedFile, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def accepted_rows(self) -> int:
        return self.accepted

    @property
    def rows_quarantined(self) -> int:
        return self.quarantined.height + sum(f.rows for f in self.files_quarantined)

    @property
    def rows_in(self) -> int:
        return self.accepted + self.rows_quarantined

    def reason_counts(self) -> dict[str, int]:
        return reason_counts(self.quarantined)


def customer_bucket(customer_id: pl.Expr, buckets: int) -> pl.Expr:
    """Which of `buckets` buckets (0 to buckets - 1, UInt32) a customer's rows belong to: the CRC-32
    of the id's UTF-8 bytes, modulo the number of buckets; null for a null id.

    Every stage that works on a subset of customers at a time must put a customer in the same bucket
    in every process, run and library version. Polars' own `hash` is not guaranteed stable across
    versions; CRC-32 is a fixed standard (Python's zlib, and most languages and SQL engines),
    spreads sequential ids evenly (1M ids `C000000`.. over 17 buckets: each within 1% of the mean),
    and works for any id, not only numbered ones. It is computed in Python once per distinct id in
    a batch, which costs little next to reading the rows (a customer has tens to hundreds of
    events).
    """
    if buckets < 1:
        raise ValueError(f"the number of buckets must be at least 1, got {buckets}")
    return customer_id.map_batches(
        lambda ids: _crc32_buckets(ids, buckets), return_dtype=pl.UInt32, is_elementwise=True
    )


def _crc32_buckets(ids: pl.Series, buckets: int) -> pl.Series:
    distinct = ids.drop_nulls().unique()
    codes = pl.Series(
        [zlib.crc32(i.encode()) % buckets for i in distinct.to_list()], dtype=pl.UInt32
    )
    return ids.replace_strict(distinct, codes, default=None, return_dtype=pl.UInt32)


def bucket_folder(table_folder: Path, bucket: int) -> Path:
    """Where one bucket of a bucketed table lives: `<table_folder>/bucket=NN/`, one Parquet file in
    it (`pl.scan_parquet(bucket_folder(...) / "*.parquet")` reads that subset of customers)."""
    return table_folder / f"bucket={bucket:02d}"


def ingest_bucketed(
    landing: Path, contract: TableContract, known_customers: pl.Series, out: Path, buckets: int
) -> IngestedBuckets:
    """Every landing file of an event table validated and written to `out/bucket=NN/part.parquet`,
    rows split by `customer_bucket`: the same accepted and quarantined rows as `ingest_table` (but
    for the limit below), in memory bounded by the largest file and the largest bucket instead of
    the whole table.

    First pass, one file at a time: the row checks and ids repeated within the file
    (`ingest_file`), the accepted rows split into per-bucket pieces in a temporary folder beside
    `out`. Second pass, one bucket at a time: `combine` over that bucket's pieces in file name
    order, so an id already seen in an earlier file and events of customers not in
    `known_customers` are quarantined as `ingest_table` does it; all of a customer's rows are in
    one bucket. Not caught: the same id on rows of two customers that fall in different buckets
    (each bucket keeps its copy). `out` is replaced, so re-running never piles up rows.
    """
    if contract.name == "customers":
        raise ValueError(
            "validate the customers table whole with ingest_table "
            "(events are bucketed by customer, customers are not)"
        )
    files = landing_files(landing, contract.name)
    none_quarantined, none_accepted = no_quarantine(contract), no_accepted(contract)
    quarantined, set_aside = [none_quarantined], []
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}-pieces-") as tmp:
        pieces = Path(tmp)
        for number, path in enumerate(files):
            result = ingest_file(
                path, contract, path.relative_to(landing / contract.name).as_posix()
            )
            quarantined.append(result.quarantined)
            set_aside.extend(result.files_quarantined)
            split = result.accepted.with_columns(
                customer_bucket(pl.col("customer_id"), buckets).alias("_bucket")
            )
            for (bucket,), piece in split.partition_by("_bucket", as_dict=True).items():
                folder = bucket_folder(pieces, bucket)
                folder.mkdir(exist_ok=True)
                piece.drop("_bucket").write_parquet(folder / f"{number:06d}.parquet")
        accepted = 0
        for bucket in range(buckets):
            parts = sorted(bucket_folder(pieces, bucket).glob("*.parquet"))
            rows = pl.read_parquet(parts) if parts else none_accepted
            result = combine(
                [Ingested(rows, none_quarantined, tuple(map(str, parts)))],
                contract,
                known_customers,
            )
            bucket_folder(out, bucket).mkdir(parents=True)
            result.accepted.write_parquet(bucket_folder(out, bucket) / "part.parquet")
            quarantined.append(result.quarantined)
            accepted += result.accepted.height
    return IngestedBuckets(
        accepted, pl.concat(quarantined), tuple(map(str, files)), buckets, tuple(set_aside)
    )
