"""`make bench` works: one tiny run, checked for its keys (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_bench_runs_on_a_tiny_world(tmp_path):
    out = tmp_path / "latest.json"
    subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench.py"), "--events", "60000", "--repeats", "1", "--data", str(tmp_path / "data"), "--out", str(out)],
        check=True, cwd=REPO, capture_output=True, text=True,
    )
    result = json.loads(out.read_text())
    assert result["events"] > 40_000 and result["cutoffs"] >= 2
    assert result["feature_build_s"] > 0 and result["scan_floor_s"] > 0
    assert result["feature_vs_scan_ratio"] > 0 and result["feature_events_per_s"] > 0
    required = ("events", "customers", "feature_build_s", "scan_floor_s", "feature_vs_scan_ratio", "train_s",
                "shap_rows_per_s", "score_s", "peak_rss_gb", "holdout_auc")
    assert all(key in result for key in required)
    assert result["scoring_rows"] > 0 and result["shap_rows_per_s"] > 0 and result["shap_tree_explainer_rows_per_s"] > 0
    assert result["shap_values_finite"] and 0 <= result["holdout_auc"] <= 1 and result["peak_rss_gb"] > 0
