"""`make truth`: the pipeline, with the defaults a user gets, on a dozen worlds whose rules are
drawn from their seeds (demo.worlds), each scored against its held-back future.

Per world: the forward ROC AUC of the scored list against what each customer really did in the
horizon after `as_of`, the oracle's (the simulator's true churn probabilities, on the same
customers) and the gap, the observable oracle's (the same with each customer's episodes drawn
from what the data shows: demo.observable) and the gap to it; ECE; the planted touchpoints found
and missed and the decoys flagged; the best baseline forward (recency and purchase frequency at
`as_of`, rank only) and in the backtest (the pipeline's five, on its newest labelled cutoffs).
Then the mean and the worst case.
Each world runs in a child process of its own (its own Dagster instance and MLflow store), so
one world's memory or failure stays its own.

    python -m benchmarks.truth [--worlds 12] [--customers 5000 8000] [--out FILE] [--readme]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import shutil
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent / "README.md"
TABLE_START, TABLE_END = "<!-- truth table: make truth writes below -->", "<!-- truth table end -->"
# a fixed end, so the suite's worlds (and the pipeline's monthly cutoffs over them) stay the same
END = datetime(2026, 11, 2, tzinfo=UTC)
FIRST_SEED = 101  # the suite's worlds; tests use others
# paths per customer behind the oracle: with 40, world 105's oracle AUC was 0.791-0.795 over
# streams, with 400 0.800 (demo.simulator._churn_probability carries each week's chance)
REPLICATES = 400


def world_sizes(worlds: int, smallest: int, largest: int) -> list[int]:
    """Customers per world, spread evenly over the range."""
    if worlds == 1:
        return [smallest]
    return [round(smallest + (largest - smallest) * k / (worlds - 1)) for k in range(worlds)]


def score_world(
    seed: int, customers: int, workdir: Path, replicates: int = REPLICATES
) -> dict[str, Any]:
    """Simulate the world, run the whole pipeline on it and score what it wrote."""
    import dagster as dg
    import polars as pl

    from demo.landing import write_world
    from demo.simulator import simulate
    from demo.worlds import drawn_world
    from models.training.baselines import purchase_summary, recency_days
    from models.training.evaluate import classification_metrics
    from pipelines.cli import run_all
    from pipelines.definitions import build_definitions
    from pipelines.partitions import bucketed_table

    started = time.perf_counter()
    # the oracle at as_of only: the suite never reads the one at past cutoffs
    config = drawn_world(
        seed, customers, END, truth_replicates=replicates, oracle_cutoffs=0, dirty_rows=False
    )
    rules = config.mechanics
    data_root = workdir / "data"
    write_world(simulate(config), data_root, config)
    simulated = time.perf_counter() - started
    row: dict[str, Any] = {
        "seed": seed,
        "customers": customers,
        "rules": rules.describe(),
        "drivers": list(rules.drivers),
        "harms": [f"{h.touchpoint} {h.hurt}" for h in rules.harms],
        "contractual": rules.contractual,
        "tables": list(rules.tables),
        "simulate_s": round(simulated, 1),
    }
    defs = build_definitions(data_root, f"sqlite:///{workdir / 'mlflow.db'}")
    (workdir / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(workdir / "dagster")) as instance:
        result = run_all(defs, instance, concise=True)
        row["pipeline_s"] = round(time.perf_counter() - started - simulated, 1)
        if not result.success:
            row["error"] = "the pipeline failed: " + "; ".join(
                f"{e.step_key}: {_first_line(e.message)}"
                for run in result.runs
                for e in run.all_events
                if e.is_step_failure and e.step_key
            )
            return row
        scored = result.output_for_node("scored_customers")
        drivers = result.output_for_node("touchpoint_drivers")
        model = result.output_for_node("churn_model")
        plan = result.output_for_node("feature_plan")
        resources = defs.resources
        assert resources is not None  # build_definitions always binds the resources
        days = bucketed_table(
            resources["data_root"], "touchpoint_days", resources["settings"].buckets
        ).collect()
        known = result.output_for_node("customers")
    truth = pl.read_parquet(data_root / "truth" / "customers.parquet")
    rows = scored.join(truth, on="customer_id", how="inner")
    y = rows["churns_in_horizon"].cast(pl.Int8).to_numpy()
    measured = classification_metrics(y, rows["churn_probability"].to_numpy())
    oracle = classification_metrics(y, rows["true_churn_probability"].to_numpy())
    observable = _auc(y, rows["observable_churn_probability"].to_numpy())
    frame = rows.select("customer_id").with_columns(
        cutoff=pl.lit(plan.scoring_cutoff).cast(pl.Datetime("us", "UTC"))
    )
    forward_baselines = {
        "recency_rule": _auc(y, recency_days(frame, days, known)),
        "frequency": _auc(y, -purchase_summary(frame, days, known)["frequency"].to_numpy()),
    }
    flagged = set(drivers.filter(pl.col("flagged"))["touchpoint"].to_list())
    planted = set(rules.drivers)
    row |= {
        "scored": scored.height,
        "judged": rows.height,
        "churn_rate": round(float(y.mean()), 4),
        "forward_auc": round(measured["roc_auc"], 4),
        "oracle_auc": round(oracle["roc_auc"], 4),
        "gap": round(oracle["roc_auc"] - measured["roc_auc"], 4),
        # the oracle with each customer's episodes drawn from what the data shows (demo.observable)
        "observable_auc": round(observable, 4),
        "observable_gap": round(observable - measured["roc_auc"], 4),
        "ece": round(measured["ece"], 4),
        "predicted_rate": round(float(rows["churn_probability"].mean()), 4),
        "found": sorted(planted & flagged),
        "missed": sorted(planted - flagged),
        "decoys_flagged": sorted(flagged - planted),
        # every touchpoint's part of the at-risk customers' excess risk (the flag rule's figure)
        "shares": {
            t: round(v, 4)
            for t, v in drivers.select("touchpoint", "share_of_total")
            .sort("share_of_total", descending=True)
            .iter_rows()
        },
        "forward_baselines": {k: round(v, 4) for k, v in forward_baselines.items()},
        "best_forward_baseline": max(forward_baselines.values()),
        "backtest_auc": round(model.metrics["backtest_roc_auc"], 4),
        "backtest_baselines": {b: round(m["roc_auc"], 4) for b, m in model.baselines.items()},
        "form": model.form,
        "trees": model.trees,
    }
    row["best_backtest_baseline"] = max(row["backtest_baselines"].values())
    return row


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n")[0]


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def _child(seed: int, customers: int, replicates: int, keep: Path | None, out: Any) -> None:
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix=f"truth-{seed}-") as scratch:
        workdir = Path(scratch) if keep is None else keep / f"world_{seed}"
        if keep is not None:
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(parents=True)
        try:
            out.put(score_world(seed, customers, workdir, replicates))
        except Exception:  # the world's failure is a result of the suite, not the suite's end
            out.put({"seed": seed, "customers": customers, "error": traceback.format_exc()})


def run_suite(
    seeds: list[int],
    sizes: list[int],
    replicates: int = REPLICATES,
    log=print,
    keep: Path | None = None,
) -> list[dict[str, Any]]:
    """Every world in a spawned child of its own, one after another (the pipeline uses both
    cores already); `keep`: leave each world's data root, Dagster and MLflow stores there
    (world_<seed>/), for benchmarks.truth_defaults to train variants on."""
    context = mp.get_context("spawn")
    rows = []
    for seed, customers in zip(seeds, sizes, strict=True):
        started = time.perf_counter()
        queue = context.Queue()
        child = context.Process(target=_child, args=(seed, customers, replicates, keep, queue))
        child.start()
        row = queue.get()
        child.join()
        row["wall_s"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        log(_line(row))
    return rows


def _line(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"world {row['seed']} ({row['customers']:,} customers): {row['error'].strip()}"
    return (
        f"world {row['seed']} ({row['customers']:,} customers, {row['wall_s']:.0f}s): forward "
        f"{row['forward_auc']:.3f}, oracle {row['oracle_auc']:.3f}, gap {row['gap']:+.3f} "
        f"(observable {row['observable_auc']:.3f}, {row['observable_gap']:+.3f}), ECE "
        f"{row['ece']:.3f}; found {row['found']}, missed {row['missed']}, decoys "
        f"{row['decoys_flagged']}; best baseline {row['best_forward_baseline']:.3f} forward, "
        f"{row['best_backtest_baseline']:.3f} backtest ({row['backtest_auc']:.3f})"
    )


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean and worst case over the worlds that ran, and how many met each bar."""
    ran = [r for r in rows if "error" not in r]
    if not ran:
        return {"worlds": len(rows), "failed": len(rows)}
    gaps, eces = np.array([r["gap"] for r in ran]), np.array([r["ece"] for r in ran])
    observable_gaps = np.array([r["observable_gap"] for r in ran])
    return {
        "worlds": len(rows),
        "failed": len(rows) - len(ran),
        "mean_gap": round(float(gaps.mean()), 4),
        "worst_gap": round(float(gaps.max()), 4),
        "mean_observable_gap": round(float(observable_gaps.mean()), 4),
        "worst_observable_gap": round(float(observable_gaps.max()), 4),
        "mean_ece": round(float(eces.mean()), 4),
        "worst_ece": round(float(eces.max()), 4),
        "all_planted_found": sum(not r["missed"] for r in ran),
        "no_decoy_flagged": sum(not r["decoys_flagged"] for r in ran),
        "beats_forward_baseline": sum(r["forward_auc"] > r["best_forward_baseline"] for r in ran),
        "beats_backtest_baseline": sum(
            r["backtest_auc"] > r["best_backtest_baseline"] for r in ran
        ),
        "ece_within_003": int((eces <= 0.03).sum()),
    }


def table(rows: list[dict[str, Any]], totals: dict[str, Any]) -> str:
    """The per-world table and the summary line, in Markdown."""
    head = (
        "| world | customers | drivers (how they hurt); business | forward AUC | oracle | gap "
        "| observable oracle | gap to it | ECE | planted found | missed | decoys flagged "
        "| best baseline fwd / backtest (model) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['seed']} | {r['customers']:,} | {_rules(r)} | failed: "
                f"{r['error'].strip().splitlines()[-1][:120]} ||||||||| |"
            )
            continue
        lines.append(
            f"| {r['seed']} | {r['customers']:,} | {_rules(r)} | {r['forward_auc']:.3f} | "
            f"{r['oracle_auc']:.3f} | {r['gap']:+.3f} | {r['observable_auc']:.3f} | "
            f"{r['observable_gap']:+.3f} | {r['ece']:.3f} | "
            f"{', '.join(r['found']) or '-'} | {', '.join(r['missed']) or '-'} | "
            f"{', '.join(r['decoys_flagged']) or '-'} | {r['best_forward_baseline']:.3f} / "
            f"{r['best_backtest_baseline']:.3f} ({r['backtest_auc']:.3f}) |"
        )
    n, failed = totals["worlds"] - totals["failed"], totals["failed"]
    tail = (
        f"\n\nOver {n} worlds ({failed} failed): mean gap {totals.get('mean_gap', 0):+.3f}, "
        f"worst {totals.get('worst_gap', 0):+.3f} (to the observable oracle "
        f"{totals.get('mean_observable_gap', 0):+.3f} and "
        f"{totals.get('worst_observable_gap', 0):+.3f}); "
        f"ECE mean {totals.get('mean_ece', 0):.3f}, worst "
        f"{totals.get('worst_ece', 0):.3f} ({totals.get('ece_within_003', 0)} of {n} within 0.03); "
        f"every planted touchpoint found in {totals.get('all_planted_found', 0)} of {n}, no decoy "
        f"flagged in {totals.get('no_decoy_flagged', 0)} of {n}; the model beats the best baseline "
        f"in {totals.get('beats_forward_baseline', 0)} of {n} forward and "
        f"{totals.get('beats_backtest_baseline', 0)} of {n} in the backtest."
    )
    return head + "\n".join(lines) + tail


def _rules(row: dict[str, Any]) -> str:
    """The world's drivers and what kind of business it is, short enough for a table cell (the
    whole draw is `rules` in truth.json)."""
    if "harms" not in row:
        return ""
    business = "contractual" if row["contractual"] else "purchases only"
    missing = [t for t in ("support", "surveys") if t not in row["tables"]]
    return ", ".join(row["harms"]) + f"; {business}" + "".join(f", no {t}" for t in missing)


def write_readme_table(text: str, readme: Path = README) -> None:
    """Replace the table between the markers in benchmarks/README.md."""
    body = readme.read_text()
    start, end = body.index(TABLE_START) + len(TABLE_START), body.index(TABLE_END)
    readme.write_text(body[:start] + "\n" + text + "\n" + body[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the pipeline on worlds with drawn rules")
    parser.add_argument("--worlds", type=int, default=12, help="how many drawn worlds")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED, help="the first world's seed")
    parser.add_argument(
        "--customers", type=int, nargs=2, default=(5_000, 8_000), help="the smallest and largest"
    )
    parser.add_argument(
        "--replicates", type=int, default=REPLICATES, help="simulated paths per oracle"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "truth.json")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--keep", type=Path, default=None, help="keep each world's folders here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    seeds = list(range(args.first_seed, args.first_seed + args.worlds))
    sizes = world_sizes(args.worlds, *args.customers)
    rows = run_suite(seeds, sizes, args.replicates, keep=args.keep)
    totals = summary(rows) | {"wall_s": round(time.perf_counter() - started, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"summary": totals, "worlds": rows}, indent=2))
    text = table(rows, totals)
    print(text)
    print(f"\n{totals['wall_s'] / 60:.1f} min; written to {args.out}")
    if args.readme:
        write_readme_table(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
