"""`make bench` works: one tiny run, checked for its keys (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from benchmarks.bench import (
    HORIZON_DAYS,
    TRAIN_CUTOFFS,
    bucket_count,
    build_all_cutoffs,
    scan_bucket,
    validate,
    world,
    world_size,
)
from demo.simulator import WorldConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
@pytest.mark.slow
def test_bench_runs_on_a_tiny_world(tmp_path):
    out = tmp_path / "latest.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench",
            "--events",
            "60000",
            "--repeats",
            "1",
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(out),
        ],
        check=True,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.read_text())
    assert result["events"] > 40_000 and result["cutoffs"] >= 2
    assert result["feature_build_s"] > 0 and result["scan_floor_s"] > 0
    assert result["feature_vs_scan_ratio"] > 0 and result["feature_events_per_s"] > 0
    required = (
        "events",
        "customers",
        "feature_build_s",
        "scan_floor_s",
        "feature_vs_scan_ratio",
        "train_s",
        "shap_rows_per_s",
        "score_s",
        "peak_rss_gb",
        "holdout_auc",
    )
    assert all(key in result for key in required)
    assert (
        result["scoring_rows"] > 0
        and result["shap_rows_per_s"] > 0
        and result["shap_tree_explainer_rows_per_s"] > 0
    )
    assert (
        result["shap_values_finite"]
        and 0 <= result["holdout_auc"] <= 1
        and result["peak_rss_gb"] > 0
    )
    breakdown = result["feature_bucket_breakdown"]
    assert breakdown["bucket_events"] > 0 and breakdown["seconds"]["scan floor"] > 0
    # the one difference
    timed_alone = {
        step: s
        for step, s in breakdown["seconds"].items()
        if not step.startswith("features and labels")
    }
    assert len(timed_alone) == 6 and all(s > 0 for s in timed_alone.values())

    # a re-run never reads an earlier run's work files (a renamed bucket file once doubled the
    # training rows)
    world_root = next((tmp_path / "data").glob("world_*"))
    for folder in ("days", "snapshots"):
        (world_root / "work" / folder / "bucket=00.parquet").write_bytes(b"left by an older run")
    shared, _ = build_all_cutoffs(
        world_root / "validated", world_root / "work", TRAIN_CUTOFFS, HORIZON_DAYS
    )
    written = [f"{bucket:02d}.parquet" for bucket in range(shared.buckets)]
    assert [
        sorted(p.name for p in (world_root / "work" / folder).iterdir())
        for folder in ("days", "snapshots")
    ] == [written, written]
    assert (
        pl.scan_parquet(world_root / "work" / "snapshots" / "*.parquet")
        .select(pl.len())
        .collect()
        .item()
        == result["feature_rows"]
    )


def test_world_size_picks_the_activity_that_gives_the_events_asked_for():
    assert world_size(60_000, None) == (210, 1.0)
    assert world_size(None, 5_000) == (5_000, 1.0)
    customers, sessions_per_week = world_size(100_000_000, 1_000_000)
    assert customers == 1_000_000 and 0.13 < sessions_per_week < 0.15
    with pytest.raises(ValueError, match="change --events or --customers"):
        world_size(1_000_000, 1_000_000)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_chunked_world_is_generated_in_children_and_validated_into_buckets(tmp_path):
    config = WorldConfig(
        customers=300,
        weeks=20,
        seed=5,
        dirty_rows=False,
        truth_replicates=0,
        end=datetime(2026, 3, 23, tzinfo=UTC),
    )
    landing = world(tmp_path, config, chunk_size=100, workers=2)
    landed = json.loads((landing / "world.json").read_text())
    assert landed["customers"] == 300 and len(landed["chunks"]) == 3
    assert all(chunk["peak_rss_gb"] > 0 for chunk in landed["chunks"])

    rows = validate(landing, tmp_path / "validated", buckets=2)
    assert rows == {
        table: landed[table] for table in ("customers", "clickstream", "support", "surveys")
    }
    assert bucket_count(tmp_path / "validated") == 2
    assert sorted(p.name for p in (tmp_path / "validated" / "clickstream").iterdir()) == [
        "bucket=00",
        "bucket=01",
    ]
    for table in ("clickstream", "support", "surveys"):
        assert scan_bucket(tmp_path / "validated", table).collect().height == rows[table]
