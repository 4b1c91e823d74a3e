"""The bench's simulated worlds: a demo world of a given size, generated once into
benchmarks/.data/ in chunks, each in a child process of its own, so the simulator's memory is not
counted against the pipeline's and a million customers fit.
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import shutil
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection, wait
from pathlib import Path

import numpy as np

from demo.landing import write_world
from demo.simulator import WorldConfig, chunks, simulate
from features.ingest.contract import EVENT_TABLES

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
