"""An event table's bucket kept as one piece per landing file, in file order, so that a day's new
files are checked against the ids already accepted and appended: a daily run never combines the
whole history again.

The pieces hold exactly what checking every file at once gives (`features.ingest.read.combine`):
a row whose id an earlier file holds is quarantined as a duplicate (the first copy kept), and so
is an event of a customer the customers table does not know. Appending gives the same pieces only
while what was stored still holds, so a bucket is rebuilt from every file when:

- a stored file was removed: its rows leave, and a later copy of one of its ids becomes the first;
- a new file shares an id with a stored file that sorts after it: the new copy is the first;
- a customer with stored events left the customers table, or a customer whose events were
  quarantined as unknown has arrived in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, unquote

import polars as pl

from features.ingest.contract import TableContract
from features.ingest.landing import split_key
from features.ingest.validate import (
    REASON,
    SOURCE_FILE,
    UNKNOWN_CUSTOMER,
    check_across_rows,
)

# the piece of a bucket without any files: no key is this (keys end in @<digest>)
NO_FILES = "no-files"


def known_customers(buckets: int) -> str:
    """The file beside a bucket's pieces of the customers they were checked against (not a piece:
    not .parquet), named by the bucket count: under another count a bucket holds other customers,
    so its pieces are built again."""
    return f"known_customers.{buckets}.arrow"


def piece_name(key: str) -> str:
    """A piece's file name: its key, with the path separators of a file in a subfolder escaped."""
    return f"{quote(key, safe='@')}.parquet"


def piece_key(path: Path) -> str:
    """The landing key a piece (or a piece of quarantine) is named by (`piece_name`)."""
    return unquote(path.name.removesuffix(".parquet"))


def stored_keys(folder: Path) -> list[str]:
    """The keys of the pieces in a bucket's folder, in file order."""
    return sorted(piece_key(p) for p in folder.glob("*.parquet"))


def appended(stored: Sequence[str], current: Sequence[str]) -> tuple[str, ...] | None:
    """The keys to add to a bucket holding `stored` to hold `current`, in file order; None when a
    stored file is no longer current (its rows must leave: the bucket is rebuilt)."""
    if not set(stored) <= set(current):
        return None
    return tuple(k for k in current if k not in set(stored))


def out_of_order(hits: pl.DataFrame) -> bool:
    """Whether a new file holds an id that a stored file sorting after it holds too: then the new
    copy is the first, the stored one must go to quarantine, and the bucket is rebuilt. `hits`
    has one row per such shared id: the stored piece's key and the new file's (`stored`,
    `new`)."""
    return bool(hits.select((pl.col("stored") > pl.col("new")).any()).item())


def customers_moved(
    known_then: pl.Series, known_now: pl.Series, quarantined: pl.DataFrame
) -> str | None:
    """Why the stored pieces, checked against `known_then`, are wrong against `known_now`; None
    when they still hold. `quarantined` is what the bucket quarantined so far."""
    left = known_then.to_frame("customer_id").join(
        known_now.to_frame("customer_id"), on="customer_id", how="anti"
    )
    if left.height:
        return f"{left.height:,} customers left the customers table"
    unknown = quarantined.filter(pl.col(REASON).str.ends_with(UNKNOWN_CUSTOMER))
    arrived = unknown.join(known_now.to_frame("customer_id"), on="customer_id", how="semi")
    if arrived.height:
        return f"{arrived.height:,} quarantined events' customers have since arrived"
    return None


def check_pieces(
    rows: pl.DataFrame,
    keys: Sequence[str],
    contract: TableContract,
    known_customers: pl.Series,
    earlier_ids: pl.LazyFrame | None = None,
) -> dict[str, tuple[pl.DataFrame, pl.DataFrame]]:
    """Per key: (accepted rows in the contract's columns, quarantined rows) of files `keys`'
    validated `rows` (in key order, with their source columns), checked across files and against
    `earlier_ids`, the ids of the pieces stored before them. Every key gets an entry, empty
    or not."""
    accepted, quarantined = check_across_rows(rows, contract, known_customers, earlier_ids)
    by_file = {split_key(key)[0]: key for key in keys}
    empty = (accepted.clear().select(contract.schema.names()), quarantined.clear())
    out = dict.fromkeys(keys, empty)
    for (source,), part in accepted.partition_by(SOURCE_FILE, as_dict=True).items():
        out[by_file[str(source)]] = (part.select(contract.schema.names()), empty[1])
    for (source,), part in quarantined.partition_by(SOURCE_FILE, as_dict=True).items():
        key = by_file[str(source)]
        out[key] = (out[key][0], part)
    return out
