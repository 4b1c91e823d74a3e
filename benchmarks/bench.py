"""`make bench`: the pipeline's own Dagster assets, what `make run` runs, on a simulated world of a
given size, timed step by step from the runs' event logs, with each step's peak memory.

    python -m benchmarks.bench --events 10000000 --customers 100000  # make bench EVENTS= CUSTOMERS=

1. The world (`benchmarks.world`), generated once into benchmarks/.data/ and reused.
2. A fresh data root beside it (<world>/pipeline/): its landing folder holds the world's files
   (hard links), but for the last day's clickstream, which is held back in a file of its own;
   its touchpoint_churn.toml sets `buckets` to one per BUCKET_EVENTS events (--buckets).
3. The full run: `pipelines.cli.run_all` on a SQLite Dagster instance and MLflow store in that
   root, as `make run`: every landing file ingested in its own run, then weekly_retraining and
   daily_scoring over every bucket.
4. The daily run: the held-back day lands as a new file, and run_all does what a scheduled day
   does: the new file ingested, then daily_scoring with the champion.

Seconds per step come from each run's step start and success events. Memory is this process's
resident set (the runs execute in it), sampled every SAMPLE_SECONDS by a thread; a step's peak is
the highest sample inside it, and the run's peak is the kernel's high-water mark. Writes JSON
(--out) and prints a table. Nothing here is asserted in tests but that it runs and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from benchmarks.world import (
    DEFAULT_EVENTS,
    chunk_customers,
    peak_rss_gb,
    world,
    world_size,
)
from demo.simulator import WorldConfig
from features.ingest.contract import EVENT_TABLES
from pipelines.config import SETTINGS_FILE

HERE = Path(__file__).resolve().parent
BUCKET_EVENTS = 5_000_000  # about this many events per customer bucket, by default
SAMPLE_SECONDS = 0.1
PAGE_GB = os.sysconf("SC_PAGE_SIZE") / 1024**3


def rss_gb() -> float:
    """This process's resident set now, in GiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_GB


class MemorySampler:
    """(time, resident GiB) every SAMPLE_SECONDS while in use, from a thread: Polars and XGBoost
    release the GIL while they work, so the samples keep coming during a step."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self.samples.append((time.time(), rss_gb()))

    @contextmanager
    def running(self) -> Iterator[MemorySampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()

    def at(self, moment: float) -> float:
        """The last sample taken at or before `moment` (the first one, before any)."""
        before = [gb for t, gb in self.samples if t <= moment]
        return before[-1] if before else (self.samples[0][1] if self.samples else 0.0)

    def peak(self, start: float, end: float) -> float:
        """The highest sample from one interval before `start` to one after `end`: a step
        shorter than the interval still gets the samples either side of it."""
        near = [gb for t, gb in self.samples if start - SAMPLE_SECONDS <= t <= end + SAMPLE_SECONDS]
        return max(near, default=0.0)


def hold_back_last_day(world_landing: Path, root: Path) -> Path:
    """The pipeline's landing folder: the world's files, hard-linked, but the clickstream of its
    last day, which goes to <root>/held_back/ as one file, the day a daily run adds."""
    clicks = sorted((world_landing / "clickstream").glob("*.parquet"))
    last = pl.scan_parquet(clicks).select(pl.col("ts").max()).collect().item()
    day_start = datetime(last.year, last.month, last.day, tzinfo=last.tzinfo)
    held: list[pl.DataFrame] = []
    for folder in sorted(p for p in world_landing.iterdir() if p.is_dir()):
        target = root / "landing" / folder.name
        target.mkdir(parents=True)
        for file in sorted(p for p in folder.iterdir() if p.is_file()):
            if folder.name == "clickstream":
                frame = pl.read_parquet(file)
                if frame["ts"].max() >= day_start:  # type: ignore[operator]
                    held.append(frame.filter(pl.col("ts") >= day_start))
                    frame.filter(pl.col("ts") < day_start).write_parquet(target / file.name)
                    continue
            os.link(file, target / file.name)
    day_file = root / "held_back" / f"clickstream_{day_start:%Y-%m-%d}.parquet"
    day_file.parent.mkdir(parents=True)
    pl.concat(held).write_parquet(day_file)
    return day_file


def step_rows(instance: Any, run_ids: list[str], memory: MemorySampler) -> list[dict[str, Any]]:
    """One row per step of every run: the step, its seconds, its peak resident GiB and how far
    that peak rose above the resident set the step started with (what the step itself held, not
    what earlier steps left allocated)."""
    import dagster as dg

    rows = []
    for run_id in run_ids:
        started: dict[str, float] = {}
        for entry in instance.all_logs(run_id):
            event = entry.dagster_event
            if event is None or entry.step_key is None:
                continue
            if event.event_type == dg.DagsterEventType.STEP_START:
                started[entry.step_key] = entry.timestamp
            elif event.event_type in (
                dg.DagsterEventType.STEP_SUCCESS,
                dg.DagsterEventType.STEP_FAILURE,
            ):
                begin = started[entry.step_key]
                peak = memory.peak(begin, entry.timestamp)
                rows.append(
                    {
                        "step": entry.step_key,
                        "seconds": round(entry.timestamp - begin, 2),
                        "peak_rss_gb": round(peak, 2),
                        "rise_gb": round(max(peak - memory.at(begin), 0.0), 2),
                    }
                )
    return rows


def by_step(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Seconds summed, and the highest peak and rise, per step (the ingest steps run once per
    file)."""
    steps: dict[str, dict[str, float]] = defaultdict(lambda: {"runs": 0, "seconds": 0.0})
    for row in rows:
        step = steps[row["step"]]
        step["runs"] += 1
        step["seconds"] = round(step["seconds"] + row["seconds"], 2)
        step["peak_rss_gb"] = max(step.get("peak_rss_gb", 0.0), row["peak_rss_gb"])
        step["rise_gb"] = max(step.get("rise_gb", 0.0), row["rise_gb"])
    return dict(steps)


def timed_run(
    defs: Any, instance: Any, memory: MemorySampler, label: str, daily: bool
) -> dict[str, Any]:
    """One run_all with its wall seconds and steps: as `make run` does it, or (`daily`) as a
    scheduled day does, new files ingested and daily_scoring alone."""
    from pipelines.cli import run_all

    print(f"{label}: running through Dagster", flush=True)
    earlier = set(instance.get_run_ids())
    started = time.perf_counter()
    result = run_all(defs, instance, concise=True, daily=daily)
    seconds = time.perf_counter() - started
    if not result.success:
        failures = [e.message for e in result.get_step_failure_events()]
        raise RuntimeError(f"the {label} failed: {failures}")
    # the file ingestion runs too, which run_all does not return when they succeed
    run_ids = [r for r in reversed(instance.get_run_ids()) if r not in earlier]  # oldest first
    rows = step_rows(instance, run_ids, memory)
    print(f"{label}: {len(run_ids)} runs in {seconds:.1f}s", flush=True)
    model = (
        result.output_for_node("churn_model")
        if any(r["step"] == "churn_model" for r in rows)
        else None
    )
    return {
        "wall_s": round(seconds, 1),
        "runs": len(run_ids),
        "steps": by_step(rows),
        "model": None
        if model is None
        else {"trees": model.trees, "form": model.form, **model.metrics},
    }


def table(result: dict[str, Any]) -> str:
    full, daily = result["full"], result["daily"]
    lines = [
        f"{result['events']:,} events, {result['customers']:,} customers, "
        f"{result['buckets']} buckets; full run {full['wall_s']:.0f}s, daily run "
        f"{daily['wall_s']:.0f}s ({result['daily_vs_full']:.0%}); peak RSS "
        f"{result['peak_rss_gb']:.2f} GiB",
        "",
        "| step | runs | full s | full peak GiB | full rise GiB | daily s | daily peak GiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for step, figures in full["steps"].items():
        again = daily["steps"].get(step, {})
        lines.append(
            f"| {step} | {figures['runs']:.0f} | {figures['seconds']:.1f} | "
            f"{figures['peak_rss_gb']:.2f} | {figures['rise_gb']:.2f} | "
            f"{again.get('seconds', 0.0):.1f} | "
            f"{again.get('peak_rss_gb', 0.0):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, help=f"about this many events ({DEFAULT_EVENTS:,})")
    parser.add_argument("--customers", type=int, help="this many customers")
    parser.add_argument(
        "--buckets", type=int, help=f"customer buckets (one per {BUCKET_EVENTS:,} events)"
    )
    parser.add_argument(
        "--max-training-rows", type=int, help="the training budget (ChurnSettings' default)"
    )
    parser.add_argument("--workers", type=int, default=2, help="processes generating the world")
    parser.add_argument("--data", type=Path, default=HERE / ".data")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args(argv)

    customers, sessions_per_week = world_size(args.events, args.customers)
    default_activity = sessions_per_week == WorldConfig.sessions_per_week
    world_dir = args.data / (
        f"world_{customers}" if default_activity else f"world_{customers}_spw{sessions_per_week:g}"
    )
    config = WorldConfig(
        customers=customers,
        sessions_per_week=sessions_per_week,
        dirty_rows=False,
        truth_replicates=0,
    )
    landing = world(world_dir, config, chunk_customers(sessions_per_week), args.workers)
    landed = json.loads((landing / "world.json").read_text())
    events = sum(int(landed[table]) for table in EVENT_TABLES)
    buckets = args.buckets or max(1, round(events / BUCKET_EVENTS))

    root = world_dir / "pipeline"
    shutil.rmtree(root, ignore_errors=True)
    day_file = hold_back_last_day(landing, root)
    budget = (
        "" if args.max_training_rows is None else f"max_training_rows = {args.max_training_rows}\n"
    )
    (root / SETTINGS_FILE).write_text(f"buckets = {buckets}\n{budget}")
    (root / "dagster").mkdir()
    (root / "mlflow").mkdir()
    print(
        f"{events:,} events of {customers:,} customers in {buckets} buckets; the last day's "
        f"clickstream held back ({day_file.name})",
        flush=True,
    )

    import dagster as dg

    from pipelines.definitions import build_definitions

    defs = build_definitions(root, f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    memory = MemorySampler()
    with dg.DagsterInstance.local_temp(str(root / "dagster")) as instance, memory.running():
        full = timed_run(defs, instance, memory, "full run", daily=False)
        day_file.rename(root / "landing" / "clickstream" / day_file.name)
        daily = timed_run(defs, instance, memory, "daily run", daily=True)

    result = {
        "events": events,
        "customers": customers,
        "buckets": buckets,
        "full": full,
        "daily": daily,
        "daily_vs_full": round(daily["wall_s"] / full["wall_s"], 3),
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, polars {pl.__version__}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"written to {args.out}")
    return result


if __name__ == "__main__":
    main()
