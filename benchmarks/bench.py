"""`make bench`: how fast each stage runs on a simulated world of a given size.

    python benchmarks/bench.py --events 10000000      # or: make bench EVENTS=10000000 [CUSTOMERS=35000]

Generates (or reuses) a demo world in benchmarks/.data/ (in a child process, so the world's own
memory does not count against the pipeline's peak), validates it into Parquet, then times, with the
project's own functions: the feature build for every training cutoff against the scan floor (the
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
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import shap
import xgboost as xgb

from features.build import build_features
from features.catalogue import load_catalogue
from features.contract import CONTRACTS, EVENT_TABLES
from features.ingest import ingest_table
from features.labels import population
from features.simulator import WorldConfig, simulate, write_world
from features.days import DAY, touch_days
from features.snapshots import plan_cutoffs, scoring_cutoff, training_snapshots
from features.sources import feature_sources, latest_timestamp
from models.evaluate import classification_metrics
from models.explain import shap_values
from models.train import TrainConfig, model_input, train_model

HERE = Path(__file__).resolve().parent
EVENTS_PER_CUSTOMER = 285  # what the demo world generates over its year
HORIZON_DAYS, TRAIN_CUTOFFS = 90, 6  # the pipeline's defaults (ChurnSettings); a year of history fits 5 of them plus the holdout
NOT_FEATURES = {"customer_id", "churned", "cutoff", "split", "as_of"}
TREE_EXPLAINER_ROWS = 20_000  # shap's TreeExplainer is timed on at most this many of the same rows


def median_seconds(step: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def peak_rss_gb() -> float:
    """High-water mark of this process's resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _generate(data_root: Path, customers: int) -> None:
    config = WorldConfig(customers=customers, dirty_rows=False)
    counts = write_world(simulate(config), data_root, config)
    (data_root / "landing" / "world.json").write_text(json.dumps(counts))


def world(data_root: Path, customers: int) -> Path:
    """The landing folder of a demo world with this many customers, generated once and reused.

    Generated in a child process: the simulator holds the whole world in memory, which is not a
    cost of the pipeline and would otherwise set this process's peak RSS.
    """
    if not (data_root / "landing" / "world.json").exists():
        child = multiprocessing.get_context("spawn").Process(target=_generate, args=(data_root, customers))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"generating the world failed (exit code {child.exitcode})")
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


def load_sources(validated: Path) -> tuple[dict[str, pl.DataFrame], list, dict[str, pl.DataFrame]]:
    """(feature sources, registry, validated tables): what the ingest and touchpoint_days assets hand on."""
    tables = {name: pl.read_parquet(validated / f"{name}.parquet") for name in ("customers", *EVENT_TABLES)}
    catalogue = load_catalogue()
    days = touch_days(tables["clickstream"], tables["support"], tables["surveys"], catalogue)
    sources, registry = feature_sources(tables["customers"], days, tables["support"], tables["surveys"], catalogue)
    return sources, registry, tables


def build_all_cutoffs(validated: Path, train_cutoffs: int, horizon_days: int) -> pl.DataFrame:
    """From validated files to the stacked training table: what the feature stage of the pipeline does."""
    sources, registry, _ = load_sources(validated)
    days = sources["days"]
    cutoffs, holdout = plan_cutoffs(days[DAY].min(), latest_timestamp(sources["customers"], days), horizon_days, train_cutoffs)
    return training_snapshots(sources, cutoffs, holdout, horizon_days, registry)


def build_scoring(validated: Path, horizon_days: int) -> pl.DataFrame:
    """Features as of the latest timestamp for every customer not churned by then (the scoring_features asset)."""
    sources, registry, _ = load_sources(validated)
    cutoff = scoring_cutoff(latest_timestamp(sources["customers"], sources["days"]))
    members = population(sources["customers"], sources["days"], cutoff, horizon_days)
    return build_features(sources, members, cutoff, registry)


def scan_floor(validated: Path) -> int:
    """Merely reading the files the feature stage reads: every column, every row."""
    return sum(pl.scan_parquet(validated / f"{name}.parquet").collect().height for name in ("customers", *EVENT_TABLES))


def tree_explainer_seconds(model: xgb.XGBClassifier, X) -> float:
    """shap's TreeExplainer on the same booster and rows, in log-odds, using the trees `predict` uses."""
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
    stages = [
        ("validate", result["ingest_s"], events, "events"),
        ("scan floor", result["scan_floor_s"], events, "events"),
        (f"features, {result['cutoffs']} cutoffs", result["feature_build_s"], events, "events"),
        ("scoring features", result["scoring_features_s"], events, "events"),
        ("train", result["train_s"], result["train_rows"], "rows"),
        ("score", result["score_s"], rows, "rows"),
        ("SHAP xgboost", result["shap_s"], rows, "rows"),
        ("SHAP shap.TreeExplainer", result["shap_tree_explainer_s"], result["shap_tree_explainer_rows"], "rows"),
    ]
    lines = [f"{'stage':<28}{'wall s':>10}{'per second':>16}  {'of':<8}", "-" * 64]
    lines += [f"{name:<28}{s:>10.2f}{n / max(s, 1e-9):>16,.0f}  {unit:<8}" for name, s, n, unit in stages]
    lines += [
        "-" * 64,
        f"{result['events']:,} events, {result['customers']:,} customers, {result['features']} features; "
        f"feature build / scan floor = {result['feature_vs_scan_ratio']}x; peak RSS {result['peak_rss_gb']} GB; "
        f"holdout AUC {result['holdout_auc']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="about how many clickstream events to simulate")
    parser.add_argument("--customers", type=int, default=None, help="customers (default: events / 285)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of the feature build and scan floor; the median is reported")
    parser.add_argument("--data", type=Path, default=HERE / ".data", help="where generated worlds are kept")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)
    customers = args.customers or max(200, args.events // EVENTS_PER_CUSTOMER)
    root = args.data / f"world_{customers}"
    validated = root / "validated"

    started = time.perf_counter()
    landing = world(root, customers)
    print(f"world with {customers:,} customers ready in {time.perf_counter() - started:.1f}s ({landing})", flush=True)
    ingest_s, rows = median_seconds(lambda: validate(landing, validated), 1)
    events = rows["clickstream"] + rows["support"] + rows["surveys"]
    print(f"validated {events:,} events in {ingest_s:.1f}s", flush=True)
    scan_s, _ = median_seconds(lambda: scan_floor(validated), args.repeats)
    feature_s, snapshots = median_seconds(lambda: build_all_cutoffs(validated, TRAIN_CUTOFFS, HORIZON_DAYS), args.repeats)
    print(f"features for all cutoffs in {feature_s:.1f}s (scan floor {scan_s:.2f}s)", flush=True)
    scoring_s, scoring = median_seconds(lambda: build_scoring(validated, HORIZON_DAYS), 1)

    features = [c for c in snapshots.columns if c not in NOT_FEATURES]
    train_s, (model, summary) = median_seconds(lambda: train_model(snapshots, features, TrainConfig()), 1)
    holdout = snapshots.filter(pl.col("split") == "holdout")
    holdout_auc = classification_metrics(holdout["churned"].to_numpy(), model.predict_proba(model_input(holdout, features))[:, 1])["roc_auc"]
    print(f"trained in {train_s:.1f}s ({summary['best_iteration'] + 1} trees), holdout AUC {holdout_auc:.4f}", flush=True)

    X = model_input(scoring, features)
    score_s, _ = median_seconds(lambda: model.predict_proba(X)[:, 1], 1)
    shap_s, (values, _) = median_seconds(lambda: shap_values(model.classifier, X), 1)
    sample = X.iloc[:TREE_EXPLAINER_ROWS]
    tree_explainer_s = tree_explainer_seconds(model.classifier, sample)

    result = {
        "events": events,
        "customers": rows["customers"],
        "cutoffs": snapshots["cutoff"].n_unique(),
        "feature_rows": snapshots.height,
        "features": len(features),
        "ingest_s": round(ingest_s, 3),
        "scan_floor_s": round(scan_s, 3),
        "feature_build_s": round(feature_s, 3),
        "feature_vs_scan_ratio": round(feature_s / scan_s, 2),
        "feature_events_per_s": round(events / feature_s),
        "scoring_features_s": round(scoring_s, 3),
        "train_rows": summary["fit_rows"] + summary["validation_rows"],
        "train_s": round(train_s, 3),
        "trees": summary["best_iteration"] + 1,
        "max_depth": TrainConfig().max_depth,
        "holdout_auc": round(holdout_auc, 4),
        "scoring_rows": len(X),
        "score_s": round(score_s, 3),
        "score_rows_per_s": round(len(X) / max(score_s, 1e-9)),
        "shap_s": round(shap_s, 3),
        "shap_rows_per_s": round(len(X) / max(shap_s, 1e-9)),
        "shap_tree_explainer_rows": len(sample),
        "shap_tree_explainer_s": round(tree_explainer_s, 3),
        "shap_tree_explainer_rows_per_s": round(len(sample) / max(tree_explainer_s, 1e-9)),
        "shap_values_finite": bool(np.isfinite(values).all()),
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, polars {pl.__version__}, xgboost {xgb.__version__}, shap {shap.__version__}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"written to {args.out}")
    return result


if __name__ == "__main__":
    main()
