"""Event tables validated into buckets by customer, so a stage can hold one subset of customers at a
time: every stage that works bucket by bucket puts a customer in the same bucket, in every process,
run and library version. The bucketed Dagster assets (`pipelines.partitions`) split rows with
`customer_bucket`; the training sample (`features.training_sample`) draws whole buckets with it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import polars as pl

from features.ingest.read import (
    QuarantinedFile,
    reason_counts,
)


@dataclass(frozen=True)
class IngestedBuckets:
    """An event table validated bucket by bucket (the bucketed ingest assets): the accepted rows are
    on disk, only their count is here; quarantined rows are few and kept to report."""

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


def by_bucket(frame: pl.DataFrame, buckets: int) -> dict[str, pl.DataFrame]:
    """`frame`'s rows per customer bucket, keyed by the bucket's partition key (`bucket_keys`),
    every bucket present: the bucket of each id is worked out once, not once per bucket a step
    goes through (hashing a million ids takes a third of a second)."""
    keys = bucket_keys(buckets)
    split = frame.with_columns(customer_bucket(pl.col("customer_id"), buckets).alias("_bucket"))
    parts = split.partition_by("_bucket", as_dict=True)
    return {
        key: parts[(b,)].drop("_bucket") if (b,) in parts else frame.clear()
        for b, key in enumerate(keys)
    }


def bucket_keys(buckets: int) -> list[str]:
    """The partition keys of `buckets` customer buckets: zero-padded numbers, so they sort."""
    width = max(2, len(str(buckets - 1)))
    return [f"{b:0{width}d}" for b in range(buckets)]


def _crc32_buckets(ids: pl.Series, buckets: int) -> pl.Series:
    distinct = ids.drop_nulls().unique()
    codes = pl.Series(
        [zlib.crc32(i.encode()) % buckets for i in distinct.to_list()], dtype=pl.UInt32
    )
    return ids.replace_strict(distinct, codes, default=None, return_dtype=pl.UInt32)
