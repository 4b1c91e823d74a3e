"""`make bench` works: one small run through the Dagster assets, checked for what it reports (no
timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from benchmarks.bench import hold_back_last_day
from benchmarks.world import world, world_size
from demo.simulator import WorldConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
@pytest.mark.slow
def test_bench_runs_the_assets_and_a_daily_run(tmp_path):
    out = tmp_path / "latest.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench",
            "--customers",
            "2000",
            "--buckets",
            "2",
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
    full, daily = result["full"], result["daily"]
    assert result["buckets"] == 2 and result["events"] > 100_000
    per_bucket = ("touchpoint_days", "training_snapshots", "scoring_features", "shap_attributions")
    assert all(full["steps"][step]["peak_rss_gb"] > 0 for step in per_bucket)
    assert all(0 <= s["rise_gb"] <= s["peak_rss_gb"] for s in full["steps"].values())
    assert full["steps"]["churn_model"]["seconds"] > 0
    assert 0 < full["model"]["backtest_roc_auc"] <= 1
    # every landing file ingested once; the daily run reads the one new file alone
    landing = tmp_path / "data" / "world_2000" / "pipeline" / "landing" / "clickstream"
    assert full["steps"]["clickstream_files"]["runs"] == len(list(landing.iterdir())) - 1
    assert daily["steps"]["clickstream_files"]["runs"] == 1
    assert "support_files" not in daily["steps"]
    assert result["peak_rss_gb"] >= max(s["peak_rss_gb"] for s in full["steps"].values())


def test_world_size_picks_the_activity_that_gives_the_events_asked_for():
    assert world_size(60_000, None) == (210, 1.0)
    assert world_size(None, 5_000) == (5_000, 1.0)
    customers, sessions_per_week = world_size(100_000_000, 1_000_000)
    assert customers == 1_000_000 and 0.13 < sessions_per_week < 0.15
    with pytest.raises(ValueError, match="change --events or --customers"):
        world_size(1_000_000, 1_000_000)


@pytest.mark.slow
def test_a_chunked_world_is_generated_in_children_and_its_last_day_held_back(tmp_path):
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

    day_file = hold_back_last_day(landing, tmp_path / "pipeline")
    kept = pl.scan_parquet(tmp_path / "pipeline" / "landing" / "clickstream" / "*").collect()
    held = pl.read_parquet(day_file)
    assert kept.height + held.height == landed["clickstream"]
    assert (
        held["ts"].dt.date().n_unique() == 1
        and held.select(pl.col("ts").min()).item() > kept.select(pl.col("ts").max()).item()
    )
    for table in ("customers", "support", "surveys"):
        assert sorted(p.name for p in (tmp_path / "pipeline" / "landing" / table).iterdir()) == [
            p.name for p in sorted((landing / table).iterdir())
        ]
