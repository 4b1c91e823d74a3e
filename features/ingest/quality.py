"""Rules behind the input tables' asset checks (`input_schema`, `quarantine_share`), as plain
functions: each returns what is wrong (empty when all is well), in words that say what to fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from features.ingest.contract import TableContract


def schema_problems(files: Sequence[Path], contract: TableContract) -> list[str]:
    """A validated table (one bucket's files, or a table's one file) must hold exactly the
    contract's columns and types, every required value, and unique ids.

    Read without loading the table: the types from each file's schema, the missing values from
    its column statistics (the rows only where a file has none), and the ids alone. Ids are
    counted by their 64-bit hashes first, a tenth of the time of counting the strings, and by
    the strings only when the hashes repeat (a repeated id, or a collision)."""
    problems = []
    for path in files:
        schema = pl.read_parquet_schema(path)
        if schema != contract.schema:
            return [
                f"{contract.name} columns {dict(schema)} differ from the contract "
                f"{dict(contract.schema)} ({path.name})"
            ]
    required = [c.name for c in contract.columns if c.required]
    missing = dict.fromkeys(required, 0)
    for path in files:
        for name, nulls in _null_counts(path, required).items():
            missing[name] += nulls
    problems += [f"{n} rows lack required {name}" for name, n in missing.items() if n]
    ids = pl.read_parquet(list(files), columns=[contract.id_column]).to_series()
    if ids.hash().n_unique() < ids.len() and (repeated := ids.len() - ids.n_unique()):
        problems.append(f"{repeated} repeated {contract.id_column} values")
    return problems


def _null_counts(path: Path, columns: list[str]) -> dict[str, int]:
    """Missing values per column of a Parquet file, from its row groups' statistics; read from the
    rows for a column whose statistics do not hold a null count."""
    metadata = pq.read_metadata(path)
    counts = dict.fromkeys(columns, 0)
    unknown = set()
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for j in range(row_group.num_columns):
            column = row_group.column(j)
            name, stats = column.path_in_schema, column.statistics
            if name not in counts:
                continue
            if stats is None or not stats.has_null_count:
                unknown.add(name)
            else:
                counts[name] += stats.null_count
    if unknown:
        read = pl.scan_parquet(path).select(pl.col(sorted(unknown)).null_count()).collect()
        counts.update({name: int(read[name].item()) for name in unknown})
    return counts


def quarantine_share(accepted: int, quarantined: int) -> float:
    total = accepted + quarantined
    return quarantined / total if total else 0.0


EVENT_TIME = {"clickstream": "ts", "support": "opened_at", "surveys": "ts"}


def before_signup(
    events: pl.DataFrame | pl.LazyFrame, customers: pl.DataFrame, table: str
) -> pl.DataFrame:
    """Events dated before their customer's signup.

    They are kept, by choice, and only warned about: a clickstream often stitches the visits
    before an account existed to the customer who then signed up, so such a touch is real, and
    every feature is cut at its cutoff whatever the signup says. A large share means the signup
    dates are wrong (a migration date, a first order instead of the account).

    Each customer's first event is compared first, and only the customers whose first event is
    early have their events read: `events` may be a scan of millions of rows."""
    when = EVENT_TIME[table]
    signups = customers.lazy().select("customer_id", "signup_at")
    events = events.lazy()
    early = (
        events.group_by("customer_id")
        .agg(pl.col(when).min())
        .join(signups, on="customer_id")
        .filter(pl.col(when) < pl.col("signup_at"))
        .select("customer_id")
    )
    return (
        events.join(early, on="customer_id", how="semi")
        .join(signups, on="customer_id")
        .filter(pl.col(when) < pl.col("signup_at"))
        .collect()
    )
