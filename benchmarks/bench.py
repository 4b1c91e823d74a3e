"""`make bench`: how fast each stage runs on a simulated world of a given size.

    python benchmarks/bench.py --events 10000000      # or: make bench EVENTS=10000000

Generates (or reuses) a demo world in benchmarks/.data/, validates it into Parquet, then times the
feature build for every training cutoff against the scan floor: the time Polars takes merely to
read the same validated Parquet files. Stage times are medians of --repeats runs in one process, so
the ratio compares like with like on a noisy shared machine. Writes benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl

from features.catalogue import load_catalogue
from features.contract import CONTRACTS, EVENT_TABLES
from features.ingest import ingest_table
from features.simulator import WorldConfig, simulate, write_world
from features.snapshots import plan_cutoffs, training_snapshots
from features.sources import feature_sources, latest_timestamp
from features.touches import touch_events

HERE = Path(__file__).resolve().parent
EVENTS_PER_CUSTOMER = 285  # what the demo world generates over its year


def median_seconds(step: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def world(data_root: Path, customers: int) -> Path:
    """The landing folder of a demo world with this many customers, generated once and reused."""
    marker = data_root / "landing" / "world.json"
    if not marker.exists():
        config = WorldConfig(customers=customers, dirty_rows=False)
        counts = write_world(simulate(config), data_root, config)
        marker.write_text(json.dumps(counts))
    return data_root / "landing"


def validate(landing: Path, validated: Path) -> dict[str, int]:
    """Validate every table into Parquet files, as the ingest assets do."""
    validated.mkdir(parents=True, exist_ok=True)
    customers = ingest_table(landing, CONTRACTS["customers"]).accepted
    customers.write_parquet(validated / "customers.parquet")
    rows = {"customers": customers.height}
    for table in EVENT_TABLES:
        accepted = ingest_table(landing, CONTRACTS[table], customers["customer_id"]).accepted
        accepted.write_parquet(validated / f"{table}.parquet")
        rows[table] = accepted.height
    return rows


def build_all_cutoffs(validated: Path, train_cutoffs: int, horizon_days: int) -> pl.DataFrame:
    """From validated files to the stacked training table: what the feature stage of the pipeline does."""
    tables = {name: pl.read_parquet(validated / f"{name}.parquet") for name in ("customers", *EVENT_TABLES)}
    catalogue = load_catalogue()
    touches = touch_events(tables["clickstream"], tables["support"], tables["surveys"], catalogue)
    sources, registry = feature_sources(tables["customers"], touches, tables["support"], tables["surveys"], catalogue)
    cutoffs, holdout = plan_cutoffs(touches["ts"].min(), latest_timestamp(tables["customers"], touches), horizon_days, train_cutoffs)
    return training_snapshots(sources, cutoffs, holdout, horizon_days, registry)


def scan_floor(validated: Path) -> int:
    """Merely reading the files the feature stage reads: every column, every row."""
    return sum(pl.scan_parquet(validated / f"{name}.parquet").collect().height for name in ("customers", *EVENT_TABLES))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="about how many clickstream events to simulate")
    parser.add_argument("--customers", type=int, default=None, help="customers (default: events / 285)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timed stage; the median is reported")
    parser.add_argument("--data", type=Path, default=HERE / ".data", help="where generated worlds are kept")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)
    customers = args.customers or max(200, args.events // EVENTS_PER_CUSTOMER)
    root = args.data / f"world_{customers}"

    started = time.perf_counter()
    landing = world(root, customers)
    print(f"world with {customers:,} customers ready in {time.perf_counter() - started:.1f}s ({landing})", flush=True)
    ingest_s, rows = median_seconds(lambda: validate(landing, root / "validated"), 1)
    events = rows["clickstream"] + rows["support"] + rows["surveys"]
    print(f"validated {events:,} events in {ingest_s:.1f}s", flush=True)
    scan_s, _ = median_seconds(lambda: scan_floor(root / "validated"), args.repeats)
    feature_s, snapshots = median_seconds(lambda: build_all_cutoffs(root / "validated", train_cutoffs=6, horizon_days=90), args.repeats)
    cutoffs = snapshots["cutoff"].n_unique()
    result = {
        "events": events,
        "customers": rows["customers"],
        "cutoffs": cutoffs,
        "feature_rows": snapshots.height,
        "features": snapshots.width - 4,
        "ingest_s": round(ingest_s, 3),
        "scan_floor_s": round(scan_s, 3),
        "feature_build_s": round(feature_s, 3),
        "feature_vs_scan_ratio": round(feature_s / scan_s, 2),
        "feature_events_per_s": round(events / feature_s),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 2),
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}, polars {pl.__version__}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(k) for k in result)
    print("\n".join(f"{k:<{width}}  {v:,}" if isinstance(v, int | float) else f"{k:<{width}}  {v}" for k, v in result.items()))
    print(f"written to {args.out}")
    return result


if __name__ == "__main__":
    main()
