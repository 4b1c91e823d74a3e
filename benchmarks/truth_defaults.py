"""Model defaults chosen on the truth suite, not on the demo world: each variant of the trainer's
settings retrained on every kept world of `make truth` (`--keep`) and scored forward against the
world's future and oracle, with the pipeline's own steps (the backtest chooses form, trees and
calibration; the refit on every labelled cutoff scores). Only training varies: the snapshots and
scoring features are the ones the pipeline stored.

    python -m benchmarks.truth --keep benchmarks/.data/truth
    python -m benchmarks.truth_defaults benchmarks/.data/truth [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models.calibration import model_input
from models.training.backtest import run_backtest, scoring_model
from models.training.evaluate import classification_metrics
from models.training.train import TrainConfig

HORIZON_DAYS = 90
# the settings compared, each against today's defaults
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "learning_rate 0.03": {"learning_rate": 0.03},
    "max_depth 2": {"max_depth": 2},
    "max_depth 4": {"max_depth": 4},
    "min_child_weight 5": {"min_child_weight": 5.0},
    "min_child_weight 50": {"min_child_weight": 50.0},
}


def evaluate(world: Path, config: TrainConfig, seed: int = 42) -> dict[str, float]:
    """One variant on one kept world: forward ROC AUC, ECE and the gap to the oracle."""
    assets, truth = world / "data" / "assets", world / "data" / "truth" / "customers.parquet"
    snapshots = pl.read_parquet(assets / "training_snapshots.parquet")
    scoring = pl.read_parquet(assets / "scoring_features.parquet")
    features = json.loads((assets / "churn_model.json").read_text())["features"]
    quiet = logging.getLogger("truth_defaults")
    backtest = run_backtest(
        snapshots,
        features,
        None,
        None,
        config=config,
        seed=seed,
        horizon_days=HORIZON_DAYS,
        log=quiet,
    )
    model = scoring_model(snapshots, features, config, seed, backtest)
    rows = scoring.join(pl.read_parquet(truth), on="customer_id", how="inner")
    p = model.predict_proba(model_input(rows, features))[:, 1]
    y = rows["churns_in_horizon"].cast(pl.Int8).to_numpy()
    measured = classification_metrics(y, p)
    oracle = classification_metrics(y, rows["true_churn_probability"].to_numpy())["roc_auc"]
    return {
        "forward_auc": round(measured["roc_auc"], 4),
        "gap": round(oracle - measured["roc_auc"], 4),
        "ece": round(measured["ece"], 4),
        "backtest_auc": round(backtest.summary()["roc_auc"], 4),
        "form": backtest.form,  # type: ignore[dict-item]
        "trees": backtest.trees,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="trainer settings compared on the truth suite")
    parser.add_argument("kept", type=Path, help="the folder `make truth --keep` filled")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), help="which to run")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/truth_defaults.json"))
    args = parser.parse_args(argv)
    worlds = sorted(args.kept.glob("world_*/data/assets/churn_model.json"))
    results: dict[str, dict[str, Any]] = {}
    for name in args.variants:
        config = TrainConfig(**VARIANTS[name])
        started, per_world = time.perf_counter(), {}
        for path in worlds:
            world = path.parents[2]
            per_world[world.name] = evaluate(world, config)
        gaps = np.array([r["gap"] for r in per_world.values()])
        eces = np.array([r["ece"] for r in per_world.values()])
        results[name] = {
            "mean_gap": round(float(gaps.mean()), 4),
            "worst_gap": round(float(gaps.max()), 4),
            "mean_ece": round(float(eces.mean()), 4),
            "worst_ece": round(float(eces.max()), 4),
            "seconds": round(time.perf_counter() - started, 1),
            "worlds": per_world,
        }
        print(
            f"{name}: mean gap {gaps.mean():+.4f}, worst {gaps.max():+.4f}; ECE mean "
            f"{eces.mean():.4f}, worst {eces.max():.4f} ({results[name]['seconds']:.0f}s)",
            flush=True,
        )
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
