"""`make run` as a scheduler runs it: twice on the same folder, and killed by its process group at
several points. The outputs a reader sees are always one run's whole set, a killed run promotes
nothing, and the next run recovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from demo.landing import write_world
from demo.simulator import WorldConfig, simulate
from models.explain.published_outputs import published_run

REPO = Path(__file__).resolve().parents[1]
WORLD = WorldConfig(customers=1_000, seed=5, end=datetime(2026, 11, 2, tzinfo=UTC))
MODEL = "touchpoint-churn"
# where a run is killed: while training, once its model is registered and judged, while writing
# its outputs
KILL_AT = ("refit on all", ": backtest ROC AUC", "scored and explained")


def _env(root: Path, seed: int) -> dict[str, str]:
    return {
        **os.environ,
        "TOUCHPOINT_CHURN_DATA": str(root / "data"),
        "DAGSTER_HOME": str(root / "dagster"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "TOUCHPOINT_CHURN_SEED": str(seed),
    }


def _command() -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", "run"]


def _run(root: Path, seed: int) -> str:
    done = subprocess.run(
        _command(), cwd=REPO, env=_env(root, seed), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _kill_when(root: Path, seed: int, line: str) -> None:
    """Start a run in its own process group and kill the group when its log shows `line`."""
    process = subprocess.Popen(
        _command(),
        cwd=REPO,
        env=_env(root, seed),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    seen = []
    for text in process.stdout:
        seen.append(text)
        if line in text:
            os.killpg(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"never saw {line!r}:\n{''.join(seen[-20:])}"


def _published(root: Path) -> dict[str, bytes]:
    """The published set's files (not its `history` link, which every set shares)."""
    outputs = root / "data" / "outputs"
    return {p.name: p.read_bytes() for p in sorted(outputs.iterdir()) if p.is_file()}


def _manifest(root: Path) -> dict:
    return json.loads((root / "data" / "outputs" / "manifest.json").read_text())


def _client(root: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{root / 'mlflow.db'}")


def _versions(root: Path) -> int:
    return len(_client(root).search_model_versions(f"name='{MODEL}'"))


def _champion(root: Path) -> str:
    return str(_client(root).get_model_version_by_alias(MODEL, "champion").version)


def _first_run(root: Path) -> None:
    write_world(simulate(WORLD), root / "data", WORLD)
    (root / "dagster").mkdir()
    _run(root, seed=1)
    assert _manifest(root)["carried_over"] == {}
    assert published_run(root / "data") is not None
    assert _versions(root) == 1 and _champion(root) == "1"


@pytest.mark.e2e
@pytest.mark.slow
def test_a_rerun_on_the_same_folder_gives_the_same_outputs_and_no_new_version(tmp_path):
    _first_run(tmp_path)
    first, first_run = _published(tmp_path), published_run(tmp_path / "data")
    again = _run(tmp_path, seed=1)
    assert "reused" in again
    assert _versions(tmp_path) == 1
    # every byte, the spreadsheet and the manifest included; only the set's folder is new
    assert _published(tmp_path) == first
    assert published_run(tmp_path / "data") != first_run


@pytest.mark.heavy
def test_killed_runs_leave_the_last_whole_set_and_promote_nothing(tmp_path):
    _first_run(tmp_path)
    published, files = published_run(tmp_path / "data"), _published(tmp_path)
    # another seed retrains; each run is killed before it can publish
    for seed, line in enumerate(KILL_AT, start=2):
        _kill_when(tmp_path, seed, line)
        assert published_run(tmp_path / "data") == published, f"killed at {line!r}"
        assert _published(tmp_path) == files
        assert _champion(tmp_path) == "1", f"killed at {line!r}"

    recovered = _run(tmp_path, seed=9)
    # each start marks failed the run the kill before it left STARTED
    assert recovered.count("marked failed") == 1
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        assert not instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        assert len(failed) == len(KILL_AT)
    assert published_run(tmp_path / "data") != published
    assert _manifest(tmp_path)["carried_over"] == {}
