"""`make bench`: how fast each stage runs on a simulated world of a given size.

    python -m benchmarks.bench --events 10000000  # or: make bench EVENTS=10000000 [CUSTOMERS=35000]

Generates (or reuses) a demo world in benchmarks/.data/ (chunk by chunk in child processes, so the
world's own memory does not count against the pipeline's peak and a million customers fit),
validates it file by file into Parquet bucketed by customer, then times, with the project's own
functions: the feature build for every training cutoff against the scan floor (the
time Polars takes merely to read the same validated Parquet files), the scoring features, training,
scoring (calibrated probabilities) and exact TreeSHAP, both XGBoost's own `pred_contribs` and shap's
TreeExplainer on the same rows. Feature-build and scan times are medians of --repeats runs in one
process, so the ratio compares like with like on a noisy shared machine. Peak memory is the RSS
high-water mark of this process. Writes benchmarks/results/latest.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import shutil
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
import polars as pl
import shap
import xgboost as xgb

from demo.landing import write_world
from demo.simulator import WorldConfig, chunks, simulate
from features.catalogue import Catalogue, load_catalogue
from features.feature import FeatureDef
from features.feature_plan import (
    FeaturePlan,
    choose_cutoffs,
    feature_set,
    latest_timestamp,
    scoring_cutoff,
)
from features.ingest.buckets import bucket_folder, customer_bucket, ingest_bucketed
from features.ingest.contract import CONTRACTS, EVENT_TABLES
from features.ingest.read import ingest_table
from features.snapshots import build_scoring_features, build_training_snapshots, feature_sources
from features.touchpoint_days import DAY, LAST_TOUCH, fold_touchpoint_days
from features.windows import window_table
from models.calibration import model_input
from models.explain.shap_attributions import SCORE_BATCH_ROWS, score_and_explain
from models.training.evaluate import classification_metrics
from models.training.train import TrainConfig, fit_booster, time_split

HERE = Path(__file__).resolve().parent
DEFAULT_EVENTS = 10_000_000
# sizes a world from --events alone, as before (the default world makes ~331 a customer)
EVENTS_PER_CUSTOMER = 285
# Events per customer (clickstream + support + surveys) at each simulator `sessions_per_week`,
# measured on 20,000-customer worlds, seed 7; --events with --customers picks the knob from these
ACTIVITY_EVENTS = (
    (0.1, 89.8),
    (0.13, 98.2),
    (0.15, 104.2),
    (0.2, 119.3),
    (0.3, 148.0),
    (0.5, 202.1),
    (1.0, 330.8),
)
# about this many events per generating child: bounds its memory (~3.9 GB)
CHUNK_EVENTS = 10_000_000
BUCKET_EVENTS = 6_000_000  # about this many events per validated bucket, by default
# the pipeline's horizon (ChurnSettings), and the cutoffs: a year of history labels 8 at most
HORIZON_DAYS, TRAIN_CUTOFFS = 90, 6
SEED = 42  # ChurnSettings' default seed
TREE_EXPLAINER_ROWS = 20_000  # shap's TreeExplainer is timed on at most this many of the same rows

T = TypeVar("T")


def median_seconds(step: Callable[[], T], repeats: int) -> tuple[float, T]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    # the median of no runs raises, so what is returned is always the last run's result
    return statistics.median(times), cast(T, result)


def peak_rss_gb() -> float:
    """High-water mark of this process's resident memory in GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def world_size(events: int | None, customers: int | None) -> tuple[int, float]:
    """(customers, simulator sessions_per_week) for the world asked for: customers from --events at
    the default activity when only events are given; with both, the activity that gives that many
    events per customer (a million customers and 100 million events need about a seventh of the
    default)."""
    if customers is None:
        return max(
            200, (events or DEFAULT_EVENTS) // EVENTS_PER_CUSTOMER
        ), WorldConfig.sessions_per_week
    if events is None:
        return customers, WorldConfig.sessions_per_week
    knob, per_customer = zip(*ACTIVITY_EVENTS, strict=True)
    wanted = events / customers
    if not per_customer[0] <= wanted <= per_customer[-1]:
        raise ValueError(
            f"{wanted:.0f} events per customer is outside what the simulator makes "
            f"({per_customer[0]:.0f} to {per_customer[-1]:.0f}, see ACTIVITY_EVENTS): "
            "change --events or --customers"
        )
    return customers, round(float(np.interp(wanted, per_customer, knob)), 3)


def chunk_customers(sessions_per_week: float) -> int:
    """Customers per generating child, so each simulates about CHUNK_EVENTS events."""
    knob, per_customer = zip(*ACTIVITY_EVENTS, strict=True)
    return max(1, int(CHUNK_EVENTS / np.interp(sessions_per_week, knob, per_customer)))


def _generate_chunk(config: WorldConfig, data_root: Path, report: Connection) -> None:
    """One chunk simulated and written, in a child process of its own: sends its row counts,
    seconds and the child's peak RSS."""
    started = time.perf_counter()
    counts = write_world(simulate(config), data_root, config)
    report.send(
        {
            **counts,
            "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_gb": round(peak_rss_gb(), 2),
        }
    )


def _generated(
    parts: list[WorldConfig], data_root: Path, workers: int
) -> Iterator[tuple[int, dict[str, float]]]:
    """(chunk number, its figures) as each chunk finishes, `workers` fresh spawned children at a
    time.

    A fresh process per chunk, so each chunk's peak RSS is its own; plain processes rather than a
    pool, which would start a replacement worker (several seconds of imports) after every chunk,
    the last ones included."""
    context = multiprocessing.get_context("spawn")
    waiting, running = list(enumerate(parts)), {}
    while waiting or running:
        while waiting and len(running) < workers:
            number, part = waiting.pop(0)
            receive, send = context.Pipe(duplex=False)
            child = context.Process(target=_generate_chunk, args=(part, data_root, send))
            child.start()
            send.close()
            running[child.sentinel] = (number, child, receive)
        for sentinel in wait(list(running)):
            number, child, receive = running.pop(sentinel)
            child.join()
            if child.exitcode != 0:
                raise RuntimeError(
                    f"generating chunk {number} of the world failed (exit code {child.exitcode}; "
                    "-9 is usually out of memory: try --workers 1)"
                )
            with receive:
                yield number, receive.recv()


def world(data_root: Path, config: WorldConfig, chunk_size: int, workers: int) -> Path:
    """The landing folder of a demo world, generated once and reused (landing/world.json marks it
    complete).

    Generated in chunks of at most `chunk_size` customers (`demo.simulator.chunks`), each in a
    fresh spawned child process, `workers` at a time: the simulator holds its chunk in memory, which
    is not a cost of the pipeline and would otherwise set this process's peak RSS, and a whole world
    of a million customers would not fit in memory at all.
    """
    landing = data_root / "landing"
    if (landing / "world.json").exists():
        return landing
    for leftover in (landing, data_root / "truth"):  # of an interrupted earlier run
        shutil.rmtree(leftover, ignore_errors=True)
    parts = chunks(config, chunk_size)
    totals: dict[str, float] = dict.fromkeys(("customers", *EVENT_TABLES), 0)
    per_chunk: dict[int, dict[str, float]] = {}
    started = time.perf_counter()
    for number, stats in _generated(parts, data_root, workers):
        per_chunk[number] = stats
        totals = {table: rows + stats[table] for table, rows in totals.items()}
        events = sum(stats[table] for table in EVENT_TABLES)
        print(
            f"chunk {number + 1} of {len(parts)} ({len(per_chunk)} done): "
            f"{stats['customers']:,} customers, {events:,} events in {stats['seconds']:.1f}s, "
            f"child peak RSS {stats['peak_rss_gb']:.2f} GB; "
            f"{time.perf_counter() - started:.0f}s so far",
            flush=True,
        )
    seconds = round(time.perf_counter() - started, 1)
    summary = {
        **totals,
        "sessions_per_week": config.sessions_per_week,
        "seconds": seconds,
        "chunks": [per_chunk[k] for k in sorted(per_chunk)],
    }
    (landing / "world.json").write_text(json.dumps(summary, indent=2))
    return landing


def validate(landing: Path, validated: Path, buckets: int) -> dict[str, int]:
    """Validate every table as the ingest assets do, the events file by file into
    `validated/<table>/bucket=NN/` (`features.ingest.buckets.ingest_bucketed`), so memory is bounded
    by the largest file and bucket, not the table."""
    validated.mkdir(parents=True, exist_ok=True)
    customers = ingest_table(landing, CONTRACTS["customers"])
    customers.accepted.write_parquet(validated / "customers.parquet")
    _print_counts(
        "customers",
        customers.rows_in,
        customers.accepted.height,
        customers.quarantined.height,
        customers.reason_counts(),
    )
    rows = {"customers": customers.accepted.height}
    for table in EVENT_TABLES:
        result = ingest_bucketed(
            landing, CONTRACTS[table], customers.accepted["customer_id"], validated / table, buckets
        )
        _print_counts(
            table,
            result.rows_in,
            result.accepted,
            result.quarantined.height,
            result.reason_counts(),
        )
        rows[table] = result.accepted
    return rows


def _print_counts(
    table: str, rows_in: int, accepted: int, quarantined: int, reasons: dict[str, int]
) -> None:
    print(
        f"  {table}: {rows_in:,} rows in = {accepted:,} accepted + {quarantined:,} quarantined "
        f"{reasons or ''}",
        flush=True,
    )


def bucket_count(validated: Path) -> int:
    """How many customer buckets the validated events have (`ingest_bucketed` writes every one)."""
    return len(list((validated / "clickstream").glob("bucket=*")))


def scan_bucket(validated: Path, table: str, bucket: int | None = None) -> pl.LazyFrame:
    """One bucket's validated rows of a table (every bucket's when `bucket` is None), lazily."""
    folders = (
        [bucket_folder(validated / table, bucket)]
        if bucket is not None
        else sorted((validated / table).glob("bucket=*"))
    )
    files = sorted(f for folder in folders for f in folder.glob("*.parquet"))
    return pl.scan_parquet(files) if files else CONTRACTS[table].empty().lazy()


def _event_scans(validated: Path, bucket: int) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """One bucket's clickstream, support and surveys (EVENT_TABLES' order, which is
    `fold_touchpoint_days`'), as three scans rather than a list of any length."""
    clickstream, support, surveys = (
        scan_bucket(validated, table, bucket) for table in EVENT_TABLES
    )
    return clickstream, support, surveys


@dataclass(frozen=True)
class Shared:
    """What every bucket shares: the customers, and the feature plan and its registry, taken over
    all data (the feature_plan asset)."""

    buckets: int
    catalogue: Catalogue
    customers: pl.DataFrame
    plan: FeaturePlan
    registry: list[FeatureDef]


def fold_days(validated: Path, work: Path, catalogue: Catalogue) -> int:
    """Bucket by bucket, every touch folded into customer-days (the touchpoint_days asset), kept on
    disk."""
    (work / "days").mkdir(parents=True, exist_ok=True)
    rows = 0
    for bucket in range(bucket_count(validated)):
        days = fold_touchpoint_days(*_event_scans(validated, bucket), catalogue)
        # a scratch copy: fast to write beats small
        days.write_parquet(work / "days" / f"{bucket:02d}.parquet", compression="lz4")
        rows += days.height
    return rows


def share(
    validated: Path, work: Path, catalogue: Catalogue, train_cutoffs: int, horizon_days: int
) -> Shared:
    """The feature plan over all buckets: the cutoffs from every bucket's days, the features from
    every ticket and answer (what `plan_features` does on whole tables)."""
    customers = pl.read_parquet(validated / "customers.parquet")
    days = pl.scan_parquet(work / "days" / "*.parquet")
    first_day = days.select(pl.col(DAY).min()).collect().item()
    as_of = latest_timestamp(customers, days.select(pl.col(LAST_TOUCH).max()).collect())
    supported = feature_set(
        customers,
        days,
        scan_bucket(validated, "support"),
        scan_bucket(validated, "surveys"),
        catalogue,
    )
    plan = FeaturePlan(
        as_of=as_of,
        horizon_days=horizon_days,
        scoring_cutoff=scoring_cutoff(as_of),
        features=supported,
        catalogue=catalogue.fingerprint,
        labelled=choose_cutoffs(first_day, as_of, horizon_days, train_cutoffs),
    )
    return Shared(bucket_count(validated), catalogue, customers, plan, plan.registry(catalogue))


def bucket_sources(
    validated: Path, work: Path, bucket: int, shared: Shared
) -> dict[str, pl.DataFrame]:
    """One bucket's feature sources: its customers, customer-days, tickets and answers."""
    customers = shared.customers.filter(
        customer_bucket(pl.col("customer_id"), shared.buckets) == bucket
    )
    tables = {
        table: scan_bucket(validated, table, bucket).collect() for table in ("support", "surveys")
    }
    days = pl.read_parquet(work / "days" / f"{bucket:02d}.parquet")
    return feature_sources(customers, days, tables["support"], tables["surveys"], shared.catalogue)


def training_tables(sources: dict[str, pl.DataFrame], shared: Shared) -> pl.DataFrame:
    """One bucket's stacked training snapshots (the training_snapshots asset)."""
    cutoffs = shared.plan.labelled_cutoffs()
    return build_training_snapshots(sources, cutoffs, shared.plan.horizon_days, shared.registry)


def build_all_cutoffs(
    validated: Path, work: Path, train_cutoffs: int, horizon_days: int
) -> tuple[Shared, int]:
    """From validated files to every bucket's stacked training table on disk: the feature stage.
    It starts from an empty `work` folder, so a re-run never reads an earlier run's days or
    snapshots."""
    shutil.rmtree(work, ignore_errors=True)
    catalogue = load_catalogue()
    day_rows = fold_days(validated, work, catalogue)
    shared = share(validated, work, catalogue, train_cutoffs, horizon_days)
    (work / "snapshots").mkdir()
    for bucket in range(shared.buckets):
        sources = bucket_sources(validated, work, bucket, shared)
        training_tables(sources, shared).write_parquet(work / "snapshots" / f"{bucket:02d}.parquet")
    return shared, day_rows


def bucket_breakdown(validated: Path, work: Path, shared: Shared, repeats: int) -> dict:
    """Where the feature stage's time goes: each of its steps run alone on bucket 0 (median of
    `repeats`; the snapshots' features and labels are `training_tables` less the window table),
    beside the scan floor of the same bucket, so each step reads as a multiple of it."""

    def tables() -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
        return _event_scans(validated, 0)

    scratch = work / "breakdown"
    scratch.mkdir(exist_ok=True)
    cutoffs = list(shared.plan.labelled_cutoffs())
    seconds: dict[str, float] = {}
    seconds["scan floor"], events = median_seconds(
        lambda: sum(frame.collect().height for frame in tables()), repeats
    )
    seconds["fold into customer-days"], days = median_seconds(
        lambda: fold_touchpoint_days(*tables(), shared.catalogue), repeats
    )
    seconds["write customer-days (lz4)"], _ = median_seconds(
        lambda: days.write_parquet(scratch / "days.parquet", compression="lz4"), repeats
    )
    seconds["tickets, answers, days as sources"], sources = median_seconds(
        lambda: bucket_sources(validated, work, 0, shared), repeats
    )
    seconds[f"window table, {len(cutoffs)} cutoffs"], _ = median_seconds(
        lambda: window_table(sources["days"], cutoffs), repeats
    )
    snapshots_s, snapshots = median_seconds(lambda: training_tables(sources, shared), repeats)
    seconds[f"features and labels, {len(cutoffs)} cutoffs"] = (
        snapshots_s - seconds[f"window table, {len(cutoffs)} cutoffs"]
    )
    seconds["write snapshots"], _ = median_seconds(
        lambda: snapshots.write_parquet(scratch / "snapshots.parquet"), repeats
    )
    shutil.rmtree(scratch)
    floor = seconds["scan floor"]
    return {
        "bucket_events": events,
        "seconds": {step: round(s, 3) for step, s in seconds.items()},
        "x_scan_floor": {step: round(s / floor, 1) for step, s in seconds.items()},
    }


def build_scoring(validated: Path, work: Path, shared: Shared) -> pl.DataFrame:
    """Features at the end of the latest day for every customer not churned by then (the
    scoring_features asset)."""
    parts = [
        build_scoring_features(
            bucket_sources(validated, work, bucket, shared), shared.plan, shared.registry
        )
        for bucket in range(shared.buckets)
    ]
    return pl.concat(parts).drop("as_of")


def scan_floor(validated: Path) -> int:
    """Merely reading the files the feature stage reads: every column, every row, bucket by
    bucket."""
    rows = pl.scan_parquet(validated / "customers.parquet").collect().height
    for bucket in range(bucket_count(validated)):
        rows += sum(
            scan_bucket(validated, table, bucket).collect().height for table in EVENT_TABLES
        )
    return rows


def probabilities(model, frame: pl.DataFrame, features: list[str]) -> np.ndarray:
    """Calibrated churn probabilities in the pipeline's batches (no explanations)."""
    return np.concatenate(
        [
            model.predict_proba(model_input(frame.slice(i, SCORE_BATCH_ROWS), features))[:, 1]
            for i in range(0, frame.height, SCORE_BATCH_ROWS)
        ]
    )


def tree_explainer_seconds(model: xgb.XGBClassifier, X) -> float:
    """shap's TreeExplainer on the same booster and rows, in log-odds, using the trees `predict`
    uses."""
    booster = model.get_booster()
    best = getattr(model, "best_iteration", None)
    if best is not None:
        booster = booster[: best + 1]
    started = time.perf_counter()
    shap.TreeExplainer(booster).shap_values(X, check_additivity=False)
    return time.perf_counter() - started


def table(result: dict) -> str:
    """The stage table people read: wall time, throughput and what each stage processed."""
    events, rows = result["events"], result["scoring_rows"]
    peak = result["peak_rss_gb_after"]
    stages = [
        ("validate", result["ingest_s"], events, "events", peak["validate"]),
        ("scan floor", result["scan_floor_s"], events, "events", peak["scan floor"]),
        (
            f"features, {result['cutoffs']} cutoffs",
            result["feature_build_s"],
            events,
            "events",
            peak["features"],
        ),
        ("train", result["train_s"], result["train_rows"], "rows", peak["train"]),
        (
            "scoring features",
            result["scoring_features_s"],
            events,
            "events",
            peak["scoring features"],
        ),
        ("score", result["score_s"], rows, "rows", peak["score"]),
        ("SHAP xgboost (+ score)", result["shap_s"], rows, "rows", peak["SHAP"]),
        (
            "SHAP shap.TreeExplainer",
            result["shap_tree_explainer_s"],
            result["shap_tree_explainer_rows"],
            "rows",
            None,
        ),
    ]
    lines = [
        f"{'stage':<28}{'wall s':>10}{'per second':>16}  {'of':<8}{'peak RSS GiB':>13}",
        "-" * 76,
    ]
    lines += [
        f"{name:<28}{s:>10.2f}{n / max(s, 1e-9):>16,.0f}  {unit:<8}"
        f"{'' if gb is None else f'{gb:.2f}':>13}"
        for name, s, n, unit, gb in stages
    ]
    lines += [
        "-" * 76,
        f"{result['events']:,} events, {result['customers']:,} customers, "
        f"{result['features']} features; "
        f"feature build / scan floor = {result['feature_vs_scan_ratio']}x; "
        f"peak RSS {result['peak_rss_gb']} GiB; "
        f"holdout AUC {result['holdout_auc']}",
    ]
    return "\n".join(lines)


def breakdown_table(breakdown: dict) -> str:
    """The feature stage's steps on one bucket, each as a multiple of that bucket's scan floor."""
    lines = [
        f"feature stage, step by step, on bucket 0 ({breakdown['bucket_events']:,} events)",
        f"{'step':<40}{'wall s':>10}{'x scan floor':>14}",
        "-" * 64,
    ]
    lines += [
        f"{step:<40}{s:>10.3f}{breakdown['x_scan_floor'][step]:>14.1f}"
        for step, s in breakdown["seconds"].items()
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help=f"about how many events to simulate (default {DEFAULT_EVENTS:,})",
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=None,
        help="customers (default: events / 285); with --events, the activity per customer follows",
    )
    parser.add_argument(
        "--buckets",
        type=int,
        default=None,
        help=(
            f"customer buckets of the validated events (default: one per {BUCKET_EVENTS:,} events)"
        ),
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="world chunks generated at once, each in its own process",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs of the feature build and scan floor; the median is reported",
    )
    parser.add_argument(
        "--data", type=Path, default=HERE / ".data", help="where generated worlds are kept"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)
    customers, sessions_per_week = world_size(args.events, args.customers)
    default_activity = sessions_per_week == WorldConfig.sessions_per_week
    root = args.data / (
        f"world_{customers}" if default_activity else f"world_{customers}_spw{sessions_per_week:g}"
    )
    validated = root / "validated"

    started = time.perf_counter()
    config = WorldConfig(
        customers=customers,
        sessions_per_week=sessions_per_week,
        dirty_rows=False,
        truth_replicates=0,
    )
    landing = world(root, config, chunk_customers(sessions_per_week), args.workers)
    landed = json.loads((landing / "world.json").read_text())
    print(
        f"world with {customers:,} customers ready in {time.perf_counter() - started:.1f}s "
        f"({landing})",
        flush=True,
    )
    buckets = args.buckets or max(
        1, -(-sum(landed[table] for table in EVENT_TABLES) // BUCKET_EVENTS)
    )
    ingest_s, rows = median_seconds(lambda: validate(landing, validated, buckets), 1)
    events = rows["clickstream"] + rows["support"] + rows["surveys"]
    print(
        f"validated {events:,} events into {buckets} customer buckets in {ingest_s:.1f}s",
        flush=True,
    )
    peaks = {"validate": peak_rss_gb()}
    scan_s, _ = median_seconds(lambda: scan_floor(validated), args.repeats)
    peaks["scan floor"] = peak_rss_gb()
    work = root / "work"
    feature_s, (shared, day_rows) = median_seconds(
        lambda: build_all_cutoffs(validated, work, TRAIN_CUTOFFS, HORIZON_DAYS), args.repeats
    )
    peaks["features"] = peak_rss_gb()
    print(
        f"features for all cutoffs in {feature_s:.1f}s "
        f"(scan floor {scan_s:.2f}s; {day_rows:,} customer-days)",
        flush=True,
    )
    breakdown = bucket_breakdown(validated, work, shared, args.repeats)

    # the stacked snapshots are scanned, not loaded: training holds only its split parts. One
    # backtest fold is timed: fit on all cutoffs but the last two, stop early on the next, judge
    # the newest (the pipeline runs three folds per model form, then refits once)
    snapshots = pl.scan_parquet(work / "snapshots" / "*.parquet")
    features = [d.name for d in shared.registry]
    labelled = list(shared.plan.labelled_cutoffs())
    split = time_split(snapshots, labelled[:-1], labelled[-1])
    train_s, model = median_seconds(lambda: fit_booster(split, features, TrainConfig(), SEED), 1)
    holdout = split.holdout
    holdout_auc = classification_metrics(
        holdout["churned"].to_numpy(), probabilities(model, holdout, features)
    )["roc_auc"]
    peaks["train"] = peak_rss_gb()
    trees = int(model.classifier.best_iteration) + 1
    print(f"trained in {train_s:.1f}s ({trees} trees), holdout AUC {holdout_auc:.4f}", flush=True)
    summary = {"fit_rows": split.fit.height, "validation_rows": split.validation.height}
    feature_rows, cutoffs = snapshots.select(pl.len(), pl.col("cutoff").n_unique()).collect().row(0)
    del holdout

    scoring_s, scoring = median_seconds(lambda: build_scoring(validated, work, shared), 1)
    peaks["scoring features"] = peak_rss_gb()
    score_s, _ = median_seconds(lambda: probabilities(model, scoring, features), 1)
    peaks["score"] = peak_rss_gb()
    shap_s, (_, values, _) = median_seconds(lambda: score_and_explain(model, scoring, features), 1)
    peaks["SHAP"] = peak_rss_gb()
    sample = model_input(scoring.head(TREE_EXPLAINER_ROWS), features)
    tree_explainer_s = tree_explainer_seconds(model.classifier, sample)

    result = {
        "events": events,
        "customers": rows["customers"],
        "cutoffs": cutoffs,
        "day_rows": day_rows,
        "feature_rows": feature_rows,
        "features": len(features),
        "ingest_s": round(ingest_s, 3),
        "scan_floor_s": round(scan_s, 3),
        "feature_build_s": round(feature_s, 3),
        "feature_vs_scan_ratio": round(feature_s / scan_s, 2),
        "feature_events_per_s": round(events / feature_s),
        "feature_bucket_breakdown": breakdown,
        "scoring_features_s": round(scoring_s, 3),
        "train_rows": summary["fit_rows"] + summary["validation_rows"],
        "train_s": round(train_s, 3),
        "trees": trees,
        "max_depth": TrainConfig().max_depth,
        "holdout_auc": round(holdout_auc, 4),
        "scoring_rows": scoring.height,
        "score_s": round(score_s, 3),
        "score_rows_per_s": round(scoring.height / max(score_s, 1e-9)),
        "shap_s": round(shap_s, 3),
        "shap_rows_per_s": round(scoring.height / max(shap_s, 1e-9)),
        "shap_tree_explainer_rows": len(sample),
        "shap_tree_explainer_s": round(tree_explainer_s, 3),
        "shap_tree_explainer_rows_per_s": round(len(sample) / max(tree_explainer_s, 1e-9)),
        "shap_values_finite": bool(np.isfinite(values).all()),
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "peak_rss_gb_after": {stage: round(gb, 2) for stage, gb in peaks.items()},
        "repeats": args.repeats,
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, polars {pl.__version__}, "
            f"xgboost {xgb.__version__}, shap {shap.__version__}"
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(breakdown_table(breakdown))
    print(f"written to {args.out}")
    return result


if __name__ == "__main__":
    main()
