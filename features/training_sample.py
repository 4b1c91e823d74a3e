"""A seeded sample of customers to train on when the labelled cutoffs hold more rows than
training can afford. The feature plan draws it from the labels alone (`sample_buckets`), so the
training snapshots are only ever built for the sample's customers.

The sample is made of whole hash buckets of customers (`features.ingest.buckets.customer_bucket`,
the CRC-32 of the id), not of rows:
- **whole customers:** a customer's rows at different cutoffs are not independent draws; keeping
  some of them would let the model see one customer both in the cutoffs it fits on and in the one
  it stops early on, and would thin long histories more than short ones;
- **the same customers at every cutoff:** a bucket depends on the id alone, so the time split's fit,
  validation and judged cutoffs all hold the same people, and the sample of one cutoff says nothing
  the others do not;
- **reproducible:** CRC-32 is a fixed standard, and the buckets are ordered by the CRC-32 of the
  seed and the bucket number, so one seed and the same snapshots pick the same customers in every
  process, run and library version (no random generator whose stream could change).
"""

from __future__ import annotations

import zlib
from typing import TypeVar

import polars as pl

from features.ingest.buckets import customer_bucket

# buckets to draw from: fine enough that the sample comes within a thousandth of the rows of its
# budget, coarse enough that counting them costs one small group-by
SAMPLE_BUCKETS = 1024

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def bucket_order(seed: int, buckets: int = SAMPLE_BUCKETS) -> list[int]:
    """Every bucket number, in the order the sample of `seed` takes them."""
    return sorted(range(buckets), key=lambda b: (zlib.crc32(f"{seed}:{b}".encode()), b))


def sample_buckets(
    rows: Frame, budget_rows: int, seed: int, buckets: int = SAMPLE_BUCKETS
) -> tuple[int, ...] | None:
    """The buckets of a seeded sample of whole customers holding about `budget_rows` of `rows`
    (one per customer and cutoff: the labels or the snapshots); None when every row fits.

    Buckets are taken in `bucket_order(seed)` while the rows taken come nearer the budget (one at
    least). A lazy frame is scanned once, to count rows per customer."""
    if budget_rows < 1:
        raise ValueError(f"the training row budget must be at least 1, got {budget_rows}")
    # rows per customer first: a customer's bucket is then hashed once, not once per cutoff
    per_customer = rows.lazy().group_by("customer_id").agg(pl.len().alias("rows"))
    bucket = customer_bucket(pl.col("customer_id"), buckets).alias("bucket")
    counts = dict(per_customer.group_by(bucket).agg(pl.col("rows").sum()).collect().iter_rows())
    if sum(counts.values()) <= budget_rows:
        return None
    taken: list[int] = []
    total = 0
    for b in bucket_order(seed, buckets):
        more = counts.get(b, 0)
        if taken and abs(total + more - budget_rows) > abs(total - budget_rows):
            break
        taken.append(b)
        total += more
    return tuple(sorted(taken))


def in_sample(
    customer_id: pl.Expr, taken: tuple[int, ...] | None, buckets: int = SAMPLE_BUCKETS
) -> pl.Expr:
    """True for the customers of the sample's buckets (every customer when `taken` is None)."""
    if taken is None:
        return pl.lit(True)
    return customer_bucket(customer_id, buckets).is_in(list(taken))


def customer_sample(
    snapshots: Frame, budget_rows: int, seed: int, buckets: int = SAMPLE_BUCKETS
) -> Frame:
    """The rows of a seeded sample of whole customer buckets, about `budget_rows` of them (the
    snapshots whole when they hold no more than that): every row of a customer in a taken bucket,
    at every cutoff. A lazy frame comes back lazy."""
    taken = sample_buckets(snapshots, budget_rows, seed, buckets)
    if taken is None:
        return snapshots
    return snapshots.filter(in_sample(pl.col("customer_id"), taken, buckets))
