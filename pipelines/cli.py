"""`python -m pipelines.cli demo|run`: what `make demo` and `make run` call.

Both run every asset through Dagster on the instance in DAGSTER_HOME, so the runs show up in
`make dev` afterwards, and end by saying where to look. Event files already ingested on that
instance (same content) are not processed again.

When something fails, the log names the failed step in one line and the end says what failed and
why (a failed check's own description, an error's message); `--verbose` (`make run VERBOSE=1`)
logs Dagster's full errors with their stack traces instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import cast

import dagster as dg
from dagster_shared.error import SerializableErrorInfo

from pipelines.config import DeploymentError
from pipelines.partitions import apply, ingest_job_name, landing_changes

VERBOSE_HINT = (
    "Dagster's full errors and stack traces: `make run VERBOSE=1` "
    "(or `python -m pipelines.cli --verbose run`)"
)


def first_paragraph(record: logging.LogRecord) -> bool:
    """Cut an error record to its first paragraph: Dagster appends the whole error and its stack
    trace to every failure event (the step's, then the run's), and `failure_report` says why
    anyway."""
    if record.levelno >= logging.ERROR and isinstance(record.msg, str):
        record.msg = record.msg.split("\n\n", 1)[0]
    return True


@dg.logger(
    config_schema=dg.colored_console_logger.config_schema,
    description="Dagster's console logger, failures in one line each.",
)
def concise_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    log = dg.colored_console_logger.logger_fn(init_context)
    log.addFilter(first_paragraph)
    return log


def run_all(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    assets: list[str] | None = None,
    concise: bool = False,
) -> dg.ExecuteInProcessResult:
    """Materialize every asset (or the named ones) in this process, logging at INFO (`concise`:
    failures in one line each).

    Event files are ingested first, as the landing sensor would: new files become partitions and
    each partition not yet processed (or whose stored result is gone) runs once; files seen before
    are not read again. Then one run materializes the unpartitioned assets (and their checks),
    which it returns; a failed ingestion run stops there and is returned instead (what follows
    would only fail on the file it could not store). Failures are in the result, not raised.
    """
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

    # @dg.logger made it a LoggerDefinition; pyright sees the bare function, as the config_schema
    # passed (typed Any) matches both of dg.logger's overloads
    console = cast(dg.LoggerDefinition, concise_console_logger)

    def logged(job: dg.JobDefinition) -> dg.JobDefinition:
        return job.with_logger_defs({"console": console}) if concise else job

    assert defs.resources is not None  # build_definitions always binds the resources
    tables, _ = landing_changes(instance, defs.resources["data_root"], defs.resources["io_manager"])
    apply(instance, tables)
    for table in tables:
        job = logged(defs.resolve_job_def(ingest_job_name(table.table)))
        for key in table.unprocessed:
            ingested = job.execute_in_process(
                instance=instance, run_config=quiet, partition_key=key, raise_on_error=False
            )
            if not ingested.success:
                return ingested
    job = logged(defs.resolve_implicit_global_asset_job_def())
    partitioned = {a.key for a in defs.resolve_all_asset_specs() if a.partitions_def is not None}
    selection = (
        [dg.AssetKey(a) for a in assets]
        if assets
        else [a.key for a in defs.resolve_all_asset_specs() if a.key not in partitioned]
    )
    return job.execute_in_process(
        instance=instance, run_config=quiet, asset_selection=selection, raise_on_error=False
    )


def _cause(error: SerializableErrorInfo) -> str:
    """The message worth reading in an error chain: the first that is not Dagster wrapping the
    next."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error.message.strip()


def check_lines(evaluations: Iterable[dg.AssetCheckEvaluation]) -> list[str]:
    """One line per check that did not pass, with its description: that is where a check says
    why."""
    return [
        f"  {'blocking check' if e.blocking else 'check'} "
        f"{e.asset_key.to_user_string()}:{e.check_name} "
        f"{'failed' if e.severity == dg.AssetCheckSeverity.ERROR else 'warns'}: "
        f"{e.description or 'no description'}"
        for e in evaluations
        if not e.passed
    ]


def failure_report(result: dg.ExecuteInProcessResult) -> str:
    """What stopped a run and why, in a few lines: failed checks by their descriptions, failed steps
    by their error's message (a failed blocking check's own step failure only repeats its name)."""
    steps = [
        f"  step {event.step_key} failed: {_cause(event.step_failure_data.error)}"
        for event in result.get_step_failure_events()
        if event.step_failure_data.error is not None
        and event.step_failure_data.error.cls_name != "DagsterAssetCheckFailedError"
    ]
    return "\n".join(
        [
            "",
            "touchpoint-churn: stopped; nothing downstream of a failure was built.",
            *check_lines(result.get_asset_check_evaluations()),
            *steps,
            f"  {VERBOSE_HINT}",
        ]
    )


def summary(data_root: Path, result: dg.ExecuteInProcessResult, tracking_uri: str) -> str:
    model = result.output_for_node("churn_model")
    drivers = result.output_for_node("touchpoint_drivers")
    scored = result.output_for_node("scored_customers")
    out = data_root / "outputs"
    flagged = ", ".join(drivers.filter(drivers["flagged"])["touchpoint"].to_list()) or "none"
    m = model.metrics
    warnings = check_lines(result.get_asset_check_evaluations())
    return "\n".join(
        [
            "",
            "touchpoint-churn: done.",
            f"  holdout ROC AUC {m['holdout_roc_auc']:.3f}, PR AUC {m['holdout_pr_auc']:.3f}, "
            f"Brier {m['holdout_brier']:.4f}, ECE {m['holdout_ece']:.3f} "
            f"(churn rate {m['holdout_base_rate']:.1%}, {int(m['holdout_n']):,} customers)",
            f"  touchpoints driving churn: {flagged}",
            f"  scored list:   {out / 'scored_customers.csv'} "
            f"(and .parquet; {scored.height:,} customers)",
            f"  driver table:  {out / 'touchpoint_drivers.csv'} (and .parquet)",
            f"  report:        {out / 'report.html'}",
            f"  quarantine:    {data_root / 'quarantine'}",
            f"  MLflow run:    {model.run_id} (model version {model.version}, "
            + (
                "promoted to champion"
                if model.promoted
                else (
                    f"not promoted: {'; '.join(model.gate_reasons)}; "
                    f"scored with champion v{model.champion_version}"
                )
            )
            + f") in {tracking_uri}; `make mlflow` to browse",
            *warnings,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.cli",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="log Dagster's full errors with stack traces, and raise setup errors with theirs",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="generate the demo world into the data root's landing folder, then run everything",
    )
    demo.add_argument(
        "--customers",
        type=int,
        default=None,
        help="customers in the simulated world (default: the demo's 20,000)",
    )
    demo.add_argument(
        "--seed", type=int, default=None, help="the world's seed (default: the demo's)"
    )
    sub.add_parser("run", help="run everything on what is in the data root's landing folder")
    args = parser.parse_args(argv)

    try:
        return _run(args)
    except (DeploymentError, CannotStart) as err:  # a setup the user can fix: the message says how
        if args.verbose:
            raise
        print(f"touchpoint-churn: {err}", file=sys.stderr)
        return 2


class CannotStart(ValueError):
    """The run cannot start as asked; the message says what to change."""


def write_demo_world(data_root: Path, customers: int | None, seed: int | None) -> None:
    """The demo world into the data root's landing folder, its truth beside it. The demo package
    lives in a checkout of the repository, beside the product, and is imported for this alone."""
    try:
        from demo.landing import DemoFolderError, check_landing_is_the_demos, write_world
        from demo.simulator import WorldConfig, simulate
    except ModuleNotFoundError as err:
        if err.name != "demo":  # the demo is there, but something it imports is not
            raise
        raise CannotStart(
            "the demo runs from a checkout of the repository (`make demo`); "
            "this installation holds the product only"
        ) from err
    try:
        check_landing_is_the_demos(data_root)  # before simulating, which takes a while
        started = time.perf_counter()
        defaults = WorldConfig()
        config = WorldConfig(
            customers=customers or defaults.customers, seed=defaults.seed if seed is None else seed
        )
        counts = write_world(simulate(config), data_root, config)
    except DemoFolderError as err:
        raise CannotStart(str(err)) from err
    print(
        f"demo world written to {data_root / 'landing'} in {time.perf_counter() - started:.1f}s: "
        f"{counts}; ground truth in {data_root / 'truth'}"
    )


def _run(args: argparse.Namespace) -> int:
    from pipelines.definitions import defs  # reads the environment; imported after argument errors

    assert defs.resources is not None  # build_definitions always binds the resources
    data_root = Path(defs.resources["data_root"].path)
    tracking_uri = defs.resources["mlflow_tracking"].tracking_uri
    if args.command == "demo":
        write_demo_world(data_root, args.customers, args.seed)
    result = run_all(defs, dg.DagsterInstance.get(), concise=not args.verbose)
    if not result.success:
        print(failure_report(result), file=sys.stderr)
        return 1
    print(summary(data_root, result, tracking_uri))
    return 0


if __name__ == "__main__":
    sys.exit(main())
