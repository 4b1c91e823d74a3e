"""`python -m pipelines.cli demo|run|real|forget`: what `make demo`, `make run`, `make real` and
`make forget` call.

Each runs every asset through Dagster on the instance in DAGSTER_HOME, so the runs show up in
`make dev` afterwards, and end by saying where to look. Event files already ingested on that
instance (same content) are not processed again.

When something fails, the log names the failed step in one line and the end says what failed and
why (a failed check's own description, an error's message); `--verbose` (`make run VERBOSE=1`)
logs Dagster's full errors with their stack traces instead.

The runs are the named jobs the schedules launch, so the UI's run list keeps their history under
those names: one `ingest_<table>_files` run per new landing file, then `weekly_retraining` (the
tables, snapshots and a model), then `daily_scoring` (the scored list, drivers and report).

Dagster, the definitions and the numeric stack are imported inside the commands, so `--help` and
a mistyped flag answer at once.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import dagster as dg
    from dagster_shared.error import SerializableErrorInfo

CLI_TAG = "touchpoint_churn/cli"  # the runs this CLI launched in its own process
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


def concise_console_logger() -> dg.LoggerDefinition:
    """Dagster's console logger, failures in one line each (built on first use: defining it
    imports Dagster)."""
    import dagster as dg

    @dg.logger(
        config_schema=dg.colored_console_logger.config_schema,
        description="Dagster's console logger, failures in one line each.",
    )
    def concise(init_context: dg.InitLoggerContext) -> logging.Logger:
        log = dg.colored_console_logger.logger_fn(init_context)
        log.addFilter(first_paragraph)
        return log

    # @dg.logger made it a LoggerDefinition; pyright sees the bare function, as the config_schema
    # passed (typed Any) matches both of dg.logger's overloads
    return cast(dg.LoggerDefinition, concise)


@dataclass(frozen=True)
class PipelineResult:
    """The runs of one `run_all`, read as one: what a single run's result offered (success, each
    asset's output, the checks, the failed steps), over the runs in the order they ran."""

    runs: tuple[dg.ExecuteInProcessResult, ...]

    @property
    def success(self) -> bool:
        return all(r.success for r in self.runs)

    @property
    def run_ids(self) -> list[str]:
        return [r.run_id for r in self.runs]

    @property
    def run_id(self) -> str:
        """The last run's id."""
        return self.runs[-1].run_id

    @property
    def job_names(self) -> list[str]:
        return [r.job_def.name for r in self.runs]

    def output_for_node(self, node: str) -> Any:
        """The node's output from the latest run that holds it."""
        for run in reversed(self.runs):
            if run.job_def.has_node_named(node):
                return run.output_for_node(node)
        raise KeyError(f"no run of {self.job_names} materialized {node}")

    def get_asset_check_evaluations(self) -> list[dg.AssetCheckEvaluation]:
        return [e for r in self.runs for e in r.get_asset_check_evaluations()]

    def get_step_failure_events(self) -> list[dg.DagsterEvent]:
        return [e for r in self.runs for e in r.get_step_failure_events()]

    def asset_materializations_for_node(self, node: str) -> list[dg.AssetMaterialization]:
        return [
            m
            for r in self.runs
            if r.job_def.has_node_named(node)
            for m in r.asset_materializations_for_node(node)
        ]


RETRAINING_JOB, SCORING_JOB = "weekly_retraining", "daily_scoring"  # pipelines/jobs.py


def run_all(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    assets: Sequence[str] | None = None,
    concise: bool = False,
    daily: bool = False,
) -> PipelineResult:
    """Materialize every asset (or the named ones) in this process, logging at INFO (`concise`:
    failures in one line each), as the jobs the sensor and the schedules launch.

    Event files are ingested first, as the landing sensor would: new files become partitions and
    each partition not yet processed (or whose stored result is gone) runs once, each in its own
    `ingest_<table>_files` run; files seen before are not read again. A failed ingestion run stops
    there and is returned alone (what follows would only fail on the file it could not store).
    Then `weekly_retraining` materializes its part of the unpartitioned assets (and their checks)
    but `champion`, and `daily_scoring` the rest, tagged with the training run (TRAINED_IN), so it
    scores with a model the gate passed and promotes it last, once the outputs are published, as
    one run did. A failed run (a blocking check included) stops there, so nothing downstream of a
    failure is built, as in one run. Assets in neither job would go to a last run of Dagster's
    implicit job, so none is ever skipped. `daily`: what a scheduled day does instead, new files
    ingested and then `daily_scoring` alone, scoring with the champion.
    Failures are in the result, not raised.
    """
    import dagster as dg

    from pipelines.jobs import TRAINED_IN
    from pipelines.partitions import apply, every_bucket_tags, ingest_job_name, landing_changes

    champion = dg.AssetKey("champion")

    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    console = concise_console_logger() if concise else None

    def logged(job: dg.JobDefinition) -> dg.JobDefinition:
        return job.with_logger_defs({"console": console}) if console is not None else job

    def execute(
        job: dg.JobDefinition, tags: dict[str, str] | None = None, **kw: Any
    ) -> dg.ExecuteInProcessResult:
        return logged(job).execute_in_process(
            instance=instance,
            run_config=quiet,
            raise_on_error=False,
            tags={CLI_TAG: "1", **(tags or {})},
            **kw,
        )

    assert defs.resources is not None  # build_definitions always binds the resources
    tables, _ = landing_changes(
        instance, defs.resources["data_root"], defs.resources["settings"].buckets
    )
    apply(instance, tables)
    for table in tables:
        job = defs.resolve_job_def(ingest_job_name(table.table))
        for key in table.unprocessed:
            ingested = execute(job, partition_key=key)
            if not ingested.success:
                return PipelineResult((ingested,))
    by_file = {dg.AssetKey(f"{t.table}_files") for t in tables}
    wanted = (
        [dg.AssetKey(a) for a in assets]
        if assets
        else [a.key for a in defs.resolve_all_asset_specs() if a.key not in by_file]
    )
    runs: list[dg.ExecuteInProcessResult] = []
    left = list(wanted)
    # every run takes every customer bucket, one after another (a single-run backfill)
    buckets = every_bucket_tags(defs.resources["settings"].buckets)
    tags: dict[str, str] = {}
    for name in (SCORING_JOB,) if daily else (RETRAINING_JOB, SCORING_JOB, None):
        job = (
            defs.resolve_implicit_global_asset_job_def()
            if name is None
            else defs.resolve_job_def(name)
        )
        holds = set(job.asset_layer.selected_asset_keys)
        if name == RETRAINING_JOB:  # promotion waits for the scoring run's published outputs
            holds.discard(champion)
        mine = [k for k in left if k in holds]
        if not mine:
            continue
        runs.append(execute(job, tags={**tags, **buckets}, asset_selection=mine))
        if not runs[-1].success:
            break
        if name == RETRAINING_JOB:
            tags = {TRAINED_IN: runs[-1].run_id}  # the scoring run uses and promotes its model
        left = [k for k in left if k not in holds]
    return PipelineResult(tuple(runs))


@contextmanager
def one_cli_run(instance: dg.DagsterInstance) -> Iterator[list[str]]:
    """Hold the instance's CLI lock for a run, and first mark failed the runs a killed CLI left
    STARTED (yields their ids). A second `make run` while one is running is refused: two would
    write the same data root at once. Runs the daemon launched are not touched; Dagster's run
    monitoring watches those."""
    import dagster as dg

    lock_path = Path(instance.root_directory) / ".touchpoint-churn-cli.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            lock.seek(0)
            raise CannotStart(
                f"another run of the pipeline holds {lock_path} (pid {lock.read().strip()}); "
                "wait for it to end"
            ) from err
        lock.truncate(0)
        lock.write(str(os.getpid()))
        lock.flush()
        left = instance.get_runs(
            filters=dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING],
                tags={CLI_TAG: "1"},
            )
        )
        for run in left:
            instance.report_run_failed(
                run, "its process was killed before the run ended; marked failed by the next run"
            )
        yield [run.run_id for run in left]


def _cause(error: SerializableErrorInfo) -> str:
    """The message worth reading in an error chain: the first that is not Dagster wrapping the
    next."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error.message.strip()


def check_lines(evaluations: Iterable[dg.AssetCheckEvaluation]) -> list[str]:
    """One line per check that did not pass, with its description: that is where a check says
    why."""
    import dagster as dg

    return [
        f"  {'blocking check' if e.blocking else 'check'} "
        f"{e.asset_key.to_user_string()}:{e.check_name} "
        f"{'failed' if e.severity == dg.AssetCheckSeverity.ERROR else 'warns'}: "
        f"{e.description or 'no description'}"
        for e in evaluations
        if not e.passed
    ]


def failure_report(result: PipelineResult) -> str:
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


def summary(data_root: Path, result: PipelineResult, tracking_uri: str) -> str:
    from models.training.evaluate import expected_roc_auc

    model = result.output_for_node("churn_model")
    drivers = result.output_for_node("touchpoint_drivers")
    scored = result.output_for_node("scored_customers")
    out = data_root / "outputs"
    flagged = ", ".join(drivers.filter(drivers["flagged"])["touchpoint"].to_list()) or "none"
    plan = result.output_for_node("feature_plan")
    m = model.metrics
    newest = model.backtest[-1]["cutoff"]
    gap = (plan.as_of.date() - datetime.fromisoformat(newest).date()).days
    expected = expected_roc_auc(scored["churn_probability"].to_numpy())
    overlap = int(m["backtest_label_overlap_days"])
    warnings = check_lines(result.get_asset_check_evaluations())
    return "\n".join(
        [
            "",
            "touchpoint-churn: done.",
            f"  backtest over {int(m['backtest_folds'])} cutoffs (newest {newest}, {gap} days "
            f"before as of {plan.as_of:%Y-%m-%d}): ROC AUC {m['backtest_roc_auc']:.3f} "
            f"({m['backtest_roc_auc_min']:.3f}-{m['backtest_roc_auc_max']:.3f}), "
            f"ECE {m['backtest_ece']:.3f}, predicted churn {m['backtest_predicted_rate']:.1%} "
            f"against {m['backtest_churn_rate']:.1%}"
            + (
                f"; training labels overlap the judged horizons by up to {overlap} days"
                if overlap
                else ""
            ),
            f"  model: {model.form}, {model.trees} trees, calibration {model.calibration}; "
            f"expected ROC AUC of this list {expected:.3f} (what its probabilities imply)",
            f"  touchpoints driving churn: {flagged}",
            f"  scored list:   {out / 'scored_customers.csv'} "
            f"(and .parquet; {scored.height:,} customers)",
            f"  driver table:  {out / 'touchpoint_drivers.csv'} (and .parquet)",
            f"  report:        {out / 'report.html'}",
            f"  quarantine:    {data_root / 'quarantine'}",
            f"  MLflow run:    {model.run_id} (model version {model.version}, "
            + (
                "reused: the snapshots and settings it was trained on are unchanged"
                if model.dagster_run_id not in result.run_ids
                else "promoted to champion"
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


ADAPTERS = ("cdnow", "olist")  # features/ingest/adapters, imported when one is used


def build_parser() -> argparse.ArgumentParser:
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
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="what to run (COMMAND --help)"
    )
    demo = sub.add_parser(
        "demo",
        help="generate the demo world into the data root's landing folder, then run everything",
        description="Generate the demo world into the data root's landing folder (refusing to "
        "replace files it did not write), its ground truth into truth/, then run everything.",
    )
    demo.add_argument(
        "--customers",
        type=int,
        default=None,
        metavar="N",
        help="customers in the simulated world (default: the demo's 20,000)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the world's seed: the same seed gives the same world, shifted to its end date "
        "(default: the demo's)",
    )
    demo.add_argument(
        "--end",
        default=None,
        metavar="DATE",
        help="the simulated year ends at this date's midnight UTC (ISO date; default: today)",
    )
    sub.add_parser(
        "run",
        help="run everything on what is in the data root's landing folder",
        description="Run everything on the files in the data root's landing/<table>/ folders "
        "(see README, 'Using your own data').",
    )
    forget = sub.add_parser(
        "forget",
        help="erase one customer from the data root (landing, quarantine, stored assets, "
        "outputs), log the erasure without the id, then run everything again",
    )
    forget.add_argument("--customer", required=True, help="the customer's real id")
    real = sub.add_parser(
        "real",
        help="map a public dataset (features/ingest/adapters) into the data root, then run "
        "everything and score the list against what really happened after --until",
    )
    real.add_argument(
        "--dataset", choices=ADAPTERS, required=True, help="which public dataset to map"
    )
    real.add_argument(
        "--datasets", type=Path, required=True, help="the folder holding the datasets"
    )
    real.add_argument(
        "--until", default=None, help="the history ends here (ISO date); default: the dataset's"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from pipelines.config import DeploymentError

    try:
        return _run(args)
    except (DeploymentError, CannotStart) as err:  # a setup the user can fix: the message says how
        if args.verbose:
            raise
        print(f"touchpoint-churn: {err}", file=sys.stderr)
        return 2


def write_real_dataset(data_root: Path, dataset: str, datasets: Path, until: str | None) -> None:
    """A public dataset mapped into the data root: the history before `until`, its settings, and
    what happened after in truth/ (which the pipeline never reads)."""
    from features.ingest.adapters import cdnow, olist

    adapter = {"cdnow": cdnow, "olist": olist}[dataset]
    ends = adapter.UNTIL if until is None else datetime.fromisoformat(until).replace(tzinfo=UTC)
    started = time.perf_counter()
    try:
        counts = adapter.write(datasets, data_root, ends)
    except FileNotFoundError as err:
        raise CannotStart(str(err)) from err
    mapped = "; ".join(
        f"{name}: {c['rows_in']:,} rows in -> {c['mapped']:,} mapped, {c['quarantined']:,} "
        "quarantined"
        for name, c in counts.items()
    )
    print(
        f"{dataset} until {ends:%Y-%m-%d} mapped into {data_root / 'landing'} in "
        f"{time.perf_counter() - started:.1f}s: {mapped}"
    )


def forward_check(data_root: Path, result: PipelineResult) -> str | None:
    """Where the data root holds what really happened after as_of (a demo world's or a public
    dataset's truth/customers.parquet), how the scored list did against it: what the backtest
    and the list's probabilities promised, set beside what happened."""
    path = data_root / "truth" / "customers.parquet"
    if not path.is_file():
        return None
    import polars as pl

    from models.training.evaluate import classification_metrics, expected_roc_auc

    truth = pl.read_parquet(path)
    if "churns_in_horizon" not in truth.columns:
        return None
    scored = result.output_for_node("scored_customers")
    rows = scored.join(truth, on="customer_id", how="inner")
    if rows.is_empty() or rows["churns_in_horizon"].n_unique() < 2:
        return None
    y, p = rows["churns_in_horizon"].to_numpy(), rows["churn_probability"].to_numpy()
    measured = classification_metrics(y, p)
    return (
        f"  forward, against what {rows.height:,} of the {scored.height:,} scored customers really "
        f"did: ROC AUC {measured['roc_auc']:.3f} (expected {expected_roc_auc(p):.3f}), "
        f"ECE {measured['ece']:.3f}, predicted churn {p.mean():.1%} against {y.mean():.1%}"
    )


class CannotStart(ValueError):
    """The run cannot start as asked; the message says what to change."""


def dagster_home_problem(home: str | None, command: str) -> str | None:
    """Why Dagster could not keep its runs in DAGSTER_HOME, said before the demo spends a minute
    writing its world: Dagster's own error is a stack trace that names no make target."""
    if home and Path(home).expanduser().is_absolute() and Path(home).expanduser().is_dir():
        return None
    state = (
        "is not set" if not home else f"({home}) is not an existing folder given by its full path"
    )
    return (
        f"DAGSTER_HOME {state}: Dagster keeps its runs there. Run through make "
        f"(`make {command}`), which sets it to .dagster/ in the repository, or point it at an "
        "existing folder (mkdir -p /some/folder && export DAGSTER_HOME=/some/folder) and run again."
    )


LANDING_TABLES = ("customers", "clickstream", "support", "surveys")  # features.ingest.contract


def landing_problem(data_root: Path) -> str | None:
    """Why a run would have nothing to work on, before Dagster starts: without a customers file
    every step would be skipped in turn, each saying so in a line of its own. None when there is
    one (what the files hold is the contract's and the checks' business)."""
    landing = data_root / "landing"

    def files(table: str) -> list[Path]:
        folder = landing / table
        if not folder.is_dir():
            return []
        return [
            p
            for p in folder.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        ]

    if files("customers"):
        return None
    empty = [t for t in LANDING_TABLES if not files(t)]
    return (
        f"nothing to run on: {landing / 'customers'} holds no file"
        + (
            f" (nor do {', '.join(t + '/' for t in empty if t != 'customers')})"
            if len(empty) > 1
            else ""
        )
        + f". Put your exports (Parquet, CSV or JSON Lines) in {landing}/customers/, "
        "clickstream/, support/ and surveys/, as data/README.md describes (README: 'Using your "
        "own data'), or set TOUCHPOINT_CHURN_DATA to the folder that holds landing/; "
        "`make demo` fills it with a simulated world instead."
    )


def write_demo_world(
    data_root: Path, customers: int | None, seed: int | None, end: str | None = None
) -> None:
    """The demo world into the data root's landing folder, its truth beside it. The demo package
    lives in a checkout of the repository, beside the product, and is imported for this alone.
    Its progress (each simulated month, each table written) is logged to stdout."""
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
        ends = None if end is None else datetime.fromisoformat(end).replace(tzinfo=UTC)
    except ValueError as err:
        raise CannotStart(f"--end {end!r}: give an ISO date, such as 2026-11-02") from err
    progress = logging.StreamHandler(sys.stdout)
    progress.setFormatter(logging.Formatter("demo: %(message)s"))
    demo_log = logging.getLogger("demo")
    demo_log.addHandler(progress)
    demo_log.setLevel(logging.INFO)
    try:
        check_landing_is_the_demos(data_root)  # before simulating, which takes a while
        started = time.perf_counter()
        defaults = WorldConfig()
        config = WorldConfig(
            customers=customers or defaults.customers,
            seed=defaults.seed if seed is None else seed,
            end=defaults.end if ends is None else ends,
        )
        print(
            f"demo: simulating {config.customers:,} customers from {config.start:%Y-%m-%d} to "
            f"{config.end:%Y-%m-%d} (seed {config.seed})",
            flush=True,
        )
        counts = write_world(simulate(config), data_root, config)
    except DemoFolderError as err:
        raise CannotStart(str(err)) from err
    except ValueError as err:  # an --end that is not a midnight UTC
        raise CannotStart(f"--end: {err}") from err
    finally:
        demo_log.removeHandler(progress)
    print(
        f"demo world written to {data_root / 'landing'} in {time.perf_counter() - started:.1f}s: "
        f"{counts}; ground truth in {data_root / 'truth'}"
    )


def forget_customer(data_root: Path, customer_id: str) -> None:
    from features.ingest.erasure import AUDIT_LOG, erase_customer
    from features.ingest.pseudonyms import KEY_VARIABLE

    erased = erase_customer(data_root, customer_id, os.environ.get(KEY_VARIABLE) or None)
    removed = sum(erased["rows_removed"].values())
    print(
        f"erased {removed:,} rows from {len(erased['rows_removed'])} files and deleted "
        f"{len(erased['files_deleted'])} unreadable files holding the id; the stored assets and "
        f"outputs are deleted and rebuilt now; logged, without the id, in {data_root / AUDIT_LOG}"
    )


def _run(args: argparse.Namespace) -> int:
    import dagster as dg

    from pipelines.config import deployment

    if args.command == "real":  # before the definitions, which read the settings file it writes
        write_real_dataset(Path(deployment().data_root), args.dataset, args.datasets, args.until)
    if args.command == "run" and (problem := landing_problem(Path(deployment().data_root))):
        raise CannotStart(problem)
    if problem := dagster_home_problem(os.environ.get("DAGSTER_HOME"), args.command):
        raise CannotStart(problem)
    from pipelines.definitions import defs  # reads the environment; imported after argument errors

    if args.verbose:  # MLflow's routine messages too (models.tracking keeps them out by default)
        from models.tracking import quiet_mlflow_logs

        quiet_mlflow_logs(False)

    assert defs.resources is not None  # build_definitions always binds the resources
    data_root = Path(defs.resources["data_root"].path)
    tracking_uri = defs.resources["mlflow_tracking"].tracking_uri
    if args.command == "demo":
        write_demo_world(data_root, args.customers, args.seed, args.end)
    instance = dg.DagsterInstance.get()
    with one_cli_run(instance) as abandoned:
        for run_id in abandoned:
            print(f"run {run_id} was left STARTED by a killed `make run`: marked failed")
        if args.command == "forget":
            forget_customer(data_root, args.customer)
        result = run_all(defs, instance, concise=not args.verbose)
    if not result.success:
        print(failure_report(result), file=sys.stderr)
        return 1
    print(summary(data_root, result, tracking_uri))
    if (forward := forward_check(data_root, result)) is not None:
        print(forward)
    return 0


if __name__ == "__main__":
    sys.exit(main())
