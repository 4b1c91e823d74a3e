"""CDNOW: 69,659 purchases by the 23,570 customers whose first purchase was in Q1 1997, to
1998-06-30 (Fader and Hardie's research dataset, as shipped by the `lifetimes` project).

The file is whitespace-delimited, `customer_id date number_of_cds dollar_value`, dates as
YYYYMMDD and ids with leading zeros (kept as text). Each row is a `purchase` click event worth its
dollars; a customer signs up at their first purchase. There is no cancellation: churn is no
purchase in the horizon (non-contractual).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from features.ingest.mapping import Mapped, TableMap, apply_map, write_landing, write_settings

FILE = Path("cdnow") / "CDNOW_master.txt"
HORIZON_DAYS = 180
UNTIL = datetime.fromisoformat("1998-01-01T00:00:00+00:00")

PURCHASES = TableMap(
    name="cdnow_purchases",
    table="clickstream",
    columns={
        "event_id": pl.format("CD{}", pl.col("row")),
        "customer_id": "customer_id",
        "ts": "date",
        "event_type": pl.lit("purchase"),
        "value": pl.col("dollar_value").cast(pl.Float64, strict=False),
    },
    timestamps={"ts": "%Y%m%d"},
)
CUSTOMERS = TableMap(
    name="cdnow_customers",
    table="customers",
    columns={"customer_id": "customer_id", "signup_at": "first_purchase"},
    timestamps={"signup_at": "%Y%m%d"},
)


def read(datasets: Path) -> pl.DataFrame:
    """The purchase log as text columns, one row per line after the header, numbered from 1."""
    path = datasets / FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not there: point --datasets at the shared datasets")
    lines = pl.read_csv(path, has_header=False, new_columns=["line"], separator="\x1f")
    fields = lines.slice(1).select(pl.col("line").str.extract_all(r"\S+").alias("f"))
    names = ["customer_id", "date", "number_of_cds", "dollar_value"]
    return fields.select(
        pl.int_range(1, pl.len() + 1).alias("row"),
        *[pl.col("f").list.get(i, null_on_oob=True).alias(n) for i, n in enumerate(names)],
    )


def map_history(log: pl.DataFrame, until: datetime) -> list[Mapped]:
    """The customers and purchases known before `until`."""
    before = log.filter(pl.col("date") < f"{until:%Y%m%d}")
    customers = before.group_by("customer_id").agg(first_purchase=pl.col("date").min())
    return [apply_map(customers.sort("customer_id"), CUSTOMERS), apply_map(before, PURCHASES)]


def truth(log: pl.DataFrame, until: datetime, horizon_days: int) -> pl.DataFrame:
    """Per customer known before `until`: did they buy again in [until, until + horizon)?"""
    end = until + timedelta(days=horizon_days)
    known = log.filter(pl.col("date") < f"{until:%Y%m%d}").select("customer_id").unique()
    later = log.filter(
        pl.col("date").is_between(pl.lit(f"{until:%Y%m%d}"), pl.lit(f"{end:%Y%m%d}"), closed="left")
    )
    buyers = later.select("customer_id").unique().with_columns(bought=pl.lit(True))
    return (
        known.join(buyers, on="customer_id", how="left")
        .select("customer_id", churns_in_horizon=pl.col("bought").is_null().cast(pl.Int8))
        .sort("customer_id")
    )


def write(datasets: Path, data_root: Path, until: datetime = UNTIL) -> dict[str, dict[str, int]]:
    """The history before `until` as landing files, the run settings the dataset needs, and what
    each customer did in the horizon after `until` (truth/customers.parquet, for evaluation)."""
    log = read(datasets)
    counts = write_landing(map_history(log, until), data_root)
    write_settings(data_root, {"horizon_days": HORIZON_DAYS})
    truth_dir = data_root / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    truth(log, until, HORIZON_DAYS).write_parquet(truth_dir / "customers.parquet")
    return counts
