"""What training on a hash sample of customer buckets costs in ROC AUC, against training on every
customer; and, with --dask, what training on 1- and 2-worker LocalClusters gives against it
(one worker should give the in-process booster byte for byte: the boosters' hashes are compared).

    .venv/bin/python -m benchmarks.bench --events 10000000 --customers 100000 \
        --max-training-rows 100000000
    .venv/bin/python -m benchmarks.sample_cost [--fractions 0.5 0.25] [--seeds 1 2 3] [--dask]
        [--workers 1 2]

Reads the training snapshots of the bench's pipeline run (`--snapshots`; every customer's, with a
budget above their rows), splits them by time (fit on all cutoffs but the last two, stop early on
the next, judge the newest: `time_split`),
trains with the default `TrainConfig` on every customer, then on `customer_sample`s of the fit and
validation cutoffs holding each fraction of their rows, one per seed. Every model is judged on the
whole newest cutoff, so the AUCs compare. Prints a table and writes JSON (`--out`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import polars as pl

from features.training_sample import customer_sample
from models.calibration import CalibratedModel, model_input
from models.training.cluster import ClusterConfig, dask_client
from models.training.evaluate import classification_metrics
from models.training.train import TimeSplit, TrainConfig, fit_booster, time_split

HERE = Path(__file__).resolve().parent
SNAPSHOTS = (
    HERE / ".data" / "world_100000_spw0.136" / "pipeline" / "assets" / "training_snapshots" / "*"
)
SEED = 42  # the model's seed, as the bench's; the sample seeds are --seeds
NOT_FEATURES = ("customer_id", "cutoff", "churned")


def holdout_auc(model: CalibratedModel, holdout: pl.DataFrame, features: list[str]) -> float:
    y = holdout["churned"].to_numpy()
    return classification_metrics(y, model.predict_proba(model_input(holdout, features))[:, 1])[
        "roc_auc"
    ]


def trained(split: TimeSplit, features: list[str], **fit) -> dict[str, Any]:
    """Train on the split (in-process, or on `client=`), judge on its holdout."""
    started = time.perf_counter()
    model = fit_booster(split, features, TrainConfig(), SEED, **fit)
    seconds = time.perf_counter() - started
    return {
        "rows": split.fit.height + split.validation.height,
        "trees": int(model.classifier.best_iteration) + 1,
        "seconds": round(seconds, 1),
        "roc_auc": round(holdout_auc(model, split.holdout, features), 4),
        # equal hashes: byte-identical boosters (one worker against in-process)
        "booster_sha256": hashlib.sha256(
            model.classifier.get_booster().save_raw("ubj")
        ).hexdigest(),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--snapshots", default=str(SNAPSHOTS), help="stacked snapshots (glob)")
    parser.add_argument("--fractions", type=float, nargs="*", default=[0.5, 0.25])
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument(
        "--dask", action="store_true", help="also train on LocalClusters of --workers workers"
    )
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sample_cost.json")
    args = parser.parse_args(argv)

    snapshots = pl.scan_parquet(args.snapshots)
    features = [c for c in snapshots.collect_schema() if c not in NOT_FEATURES]
    cutoffs = sorted(snapshots.select(pl.col("cutoff").unique()).collect()["cutoff"].to_list())
    training, judged = cutoffs[:-1], cutoffs[-1]
    full = time_split(snapshots, training, judged)
    training_rows = full.fit.height + full.validation.height
    print(
        f"{len(features)} features; fit on {len(training) - 1} cutoffs, stop early on "
        f"{training[-1]:%Y-%m-%d}, judge {judged:%Y-%m-%d} ({full.holdout.height:,} customers); "
        f"{training_rows:,} training rows",
        flush=True,
    )
    runs = [{"run": "all customers", "fraction": 1.0, "seed": None, **trained(full, features)}]
    print(runs[-1], flush=True)
    base = runs[0]["roc_auc"]
    training_frame = snapshots.filter(pl.col("cutoff").is_in(training))
    for fraction in args.fractions:
        for seed in args.seeds:
            sample = customer_sample(training_frame, round(fraction * training_rows), seed)
            part = time_split(sample, training, None)
            split = TimeSplit(part.fit, part.validation, full.holdout)
            runs.append(
                {"run": "sample", "fraction": fraction, "seed": seed, **trained(split, features)}
            )
            print(runs[-1], flush=True)
    if args.dask:
        for workers in args.workers:
            # the machine's cores shared among the workers (ClusterConfig.threads)
            with dask_client(ClusterConfig(n_workers=workers)) as client:
                runs.append(
                    {
                        "run": f"dask, {workers} worker{'s' * (workers > 1)}",
                        "fraction": 1.0,
                        "seed": None,
                        **trained(full, features, client=client),
                    }
                )
            print(runs[-1], flush=True)

    lines = [
        f"{'run':<16}{'rows':>10}{'share':>7}{'seed':>6}{'trees':>7}{'train s':>9}"
        f"{'ROC AUC':>9}{'cost':>8}",
        "-" * 72,
    ]
    for r in runs:
        lines.append(
            f"{r['run']:<16}{r['rows']:>10,}{r['rows'] / training_rows:>7.2f}"
            f"{'' if r['seed'] is None else r['seed']:>6}{r['trees']:>7}{r['seconds']:>9.1f}"
            f"{r['roc_auc']:>9.4f}{base - r['roc_auc']:>+8.4f}"
        )
    summary = {}
    for fraction in args.fractions:
        costs = [
            base - r["roc_auc"] for r in runs if r["run"] == "sample" and r["fraction"] == fraction
        ]
        summary[str(fraction)] = {
            "mean_cost": round(statistics.mean(costs), 4),
            "worst_cost": round(max(costs), 4),
        }
        lines.append(
            f"sample of {fraction:.0%}: AUC cost mean {statistics.mean(costs):+.4f}, "
            f"worst {max(costs):+.4f} over {len(costs)} seeds"
        )
    identical = [r["run"] for r in runs[1:] if r["booster_sha256"] == runs[0]["booster_sha256"]]
    lines.append(
        f"byte-identical to the in-process booster on all customers: {identical or 'none'}"
    )
    print("\n".join(lines))
    result = {
        "snapshots": args.snapshots,
        "training_rows": training_rows,
        "holdout_rows": full.holdout.height,
        "features": len(features),
        "runs": runs,
        "summary": summary,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.out}")
    return result


if __name__ == "__main__":
    main()
