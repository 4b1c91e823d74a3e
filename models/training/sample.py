"""A seeded sample of customers to train on when the stacked snapshots hold more rows than
training can afford.

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


def customer_sample(
    snapshots: Frame, budget_rows: int, seed: int, buckets: int = SAMPLE_BUCKETS
) -> Frame:
    """The rows of a seeded sample of whole customer buckets, about `budget_rows` of them (the
    snapshots whole when they hold no more than that).

    Buckets are taken in `bucket_order(seed)` while the rows taken come nearer the budget (one at
    least); every
    row of a customer in a taken bucket is kept, at every cutoff. A lazy frame is scanned once to
    count rows per bucket and comes back lazy."""
    if budget_rows < 1:
        raise ValueError(f"the training row budget must be at least 1, got {budget_rows}")
    bucket = customer_bucket(pl.col("customer_id"), buckets)
    counts = dict(
        snapshots.lazy().group_by(bucket.alias("bucket")).agg(pl.len()).collect().iter_rows()
    )
    if sum(counts.values()) <= budget_rows:
        return snapshots
    taken, rows = [], 0
    for b in bucket_order(seed, buckets):
        more = counts.get(b, 0)
        if taken and abs(rows + more - budget_rows) > abs(rows - budget_rows):
            break
        taken.append(b)
        rows += more
    return snapshots.filter(bucket.is_in(taken))
