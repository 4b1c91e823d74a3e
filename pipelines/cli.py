"""`python -m pipelines.cli demo|run`: what `make demo` and `make run` call.

Both run every asset through Dagster on the instance in DAGSTER_HOME, so the runs show up in
`make dev` afterwards, and end by saying where to look. Event files already ingested on that
instance (same content) are not processed again.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dagster as dg

from features.simulator import WorldConfig, simulate, write_world
from pipelines.partitions import apply, ingest_job_name, plan_landing


def run_all(defs: dg.Definitions, instance: dg.DagsterInstance, assets: list[str] | None = None) -> dg.ExecuteInProcessResult:
    """Materialize every asset (or the named ones) in this process, logging at INFO.

    Event files are ingested first, as the landing sensor would: new files become partitions and
    each partition not yet processed (or whose stored result is gone) runs once; files seen before
    are not read again. Then one run materializes the unpartitioned assets (and their checks),
    which it returns.
    """
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    plans, _ = plan_landing(instance, defs.resources["data_root"], defs.resources["io_manager"])
    apply(instance, plans)
    for plan in plans:
        job = defs.resolve_job_def(ingest_job_name(plan.table))
        for key in plan.unprocessed:
            job.execute_in_process(instance=instance, run_config=quiet, partition_key=key)
    job = defs.resolve_implicit_global_asset_job_def()
    partitioned = {a.key for a in defs.resolve_all_asset_specs() if a.partitions_def is not None}
    selection = [dg.AssetKey(a) for a in assets] if assets else [a.key for a in defs.resolve_all_asset_specs() if a.key not in partitioned]
    return job.execute_in_process(instance=instance, run_config=quiet, asset_selection=selection)


def summary(data_root: Path, result: dg.ExecuteInProcessResult, tracking_uri: str) -> str:
    model = result.output_for_node("churn_model")
    drivers = result.output_for_node("touchpoint_drivers")
    scored = result.output_for_node("scored_customers")
    out = data_root / "outputs"
    flagged = ", ".join(drivers.filter(drivers["flagged"])["touchpoint"].to_list()) or "none"
    m = model["metrics"]
    return "\n".join(
        [
            "",
            "touchpoint-churn: done.",
            f"  holdout ROC AUC {m['holdout_roc_auc']:.3f}, PR AUC {m['holdout_pr_auc']:.3f}, Brier {m['holdout_brier']:.4f}, ECE {m['holdout_ece']:.3f} "
            f"(churn rate {m['holdout_base_rate']:.1%}, {int(m['holdout_n']):,} customers)",
            f"  touchpoints driving churn: {flagged}",
            f"  scored list:   {out / 'scored_customers.csv'} (and .parquet; {scored.height:,} customers)",
            f"  driver table:  {out / 'touchpoint_drivers.csv'} (and .parquet)",
            f"  report:        {out / 'report.html'}",
            f"  quarantine:    {data_root / 'quarantine'}",
            f"  MLflow run:    {model['run_id']} (model version {model['version']}, "
            + ("promoted to champion" if model["promoted"] else f"not promoted: {'; '.join(model['gate_reasons'])}; scored with champion v{model['champion_version']}")
            + f") in {tracking_uri}; `make mlflow` to browse",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.cli", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="generate the demo world into the data root's landing folder, then run everything")
    demo.add_argument("--customers", type=int, default=WorldConfig.customers)
    demo.add_argument("--seed", type=int, default=WorldConfig.seed)
    sub.add_parser("run", help="run everything on what is in the data root's landing folder")
    args = parser.parse_args(argv)

    from pipelines.definitions import defs  # reads the environment; imported after argument errors

    data_root = Path(defs.resources["data_root"].path)
    tracking_uri = defs.resources["mlflow_tracking"].tracking_uri
    if args.command == "demo":
        started = time.perf_counter()
        config = WorldConfig(customers=args.customers, seed=args.seed)
        counts = write_world(simulate(config), data_root, config)
        print(f"demo world written to {data_root / 'landing'} in {time.perf_counter() - started:.1f}s: {counts}; ground truth in {data_root / 'truth'}")
    result = run_all(defs, dg.DagsterInstance.get())
    print(summary(data_root, result, tracking_uri))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
