"""Privacy by design: with a pseudonym key, a real customer id is only in the landing folder and the
retention list; `forget` erases a customer from every file of the data root, Dagster's storage
and the MLflow store, and logs the erasure without the id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from demo.landing import write_world
from demo.simulator import WorldConfig, simulate
from features.ingest.pseudonyms import KEY_VARIABLE, pseudonym

REPO = Path(__file__).resolve().parents[1]
WORLD = WorldConfig(customers=1_000, seed=8, end=datetime(2026, 11, 2, tzinfo=UTC))
KEY = "test-key-not-a-secret"
# what a customer wrote into a survey comment
EMAIL, PHONE = "jane.leak@example.org", "+44 20 7946 0958"


def _cli(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "TOUCHPOINT_CHURN_DATA": str(root / "data"),
        "DAGSTER_HOME": str(root / "dagster"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        KEY_VARIABLE: KEY,
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _holds(path: Path, needle: str) -> bool:
    """Whether a file holds the needle, looking inside what compresses it: Parquet's columns, a
    zip's members (xlsx)."""
    data = path.read_bytes()
    if data.startswith(b"PAR1"):
        # JSON lines: every column as text, lists (the themes' examples) too
        return needle in pl.read_parquet(path).write_ndjson()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return any(needle.encode() in archive.read(name) for name in archive.namelist())
    return needle.encode() in data


def _holding(root: Path, needle: str) -> list[str]:
    """Every file under root that holds the needle."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and _holds(p, needle)
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_pseudonyms_everywhere_but_the_list_and_a_forgotten_customer_is_gone(tmp_path):
    world = simulate(WORLD)
    comment = f"card declined again, call me on {PHONE} or write to {EMAIL}"
    surveys = world.surveys.with_columns(
        comment=pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit(comment))
        .otherwise(pl.col("comment"))
    )
    write_world(replace(world, surveys=surveys), tmp_path / "data", WORLD)
    (tmp_path / "dagster").mkdir()
    (tmp_path / "mlflow").mkdir()
    _cli(tmp_path, "run")
    # contact details written into a comment stay in the landing folder, scrubbed everywhere else
    for needle in (EMAIL, PHONE):
        assert {h.split("/")[1] for h in _holding(tmp_path, needle)} == {"landing"}, needle
    assert _holding(tmp_path / "data" / "assets", "[email]")
    listed = pl.read_csv(tmp_path / "data" / "outputs" / "scored_customers.csv")
    customer = listed["customer_id"][0]
    assert customer.startswith("C")  # the retention list holds the real id

    # only the landing folder and the retention list (its output set, and the set's dated copy in
    # the history) hold the real id, and the demo's truth/, which the simulator writes beside the
    # landing folder
    holding = _holding(tmp_path, customer)
    assert holding, "the id should be in landing/"
    published = {"output_sets", "output_history"}
    assert {h.split("/")[1] for h in holding} <= {"landing", "truth", *published}, holding
    assert not [h for h in holding if h.split("/")[1] in published and "scored_customers" not in h]
    assert [h for h in holding if h.startswith("data/output_history/")]
    assert _holding(tmp_path / "data" / "assets", pseudonym(customer, KEY))

    said = _cli(tmp_path, "forget", "--customer", customer)
    assert "erased" in said
    for needle in (customer, pseudonym(customer, KEY)):
        assert _holding(tmp_path, needle) == [], needle
    (record,) = (tmp_path / "data" / "erasures.jsonl").read_text().splitlines()
    assert sum(json.loads(record)["rows_removed"].values()) > 0
    # the rebuilt list has everyone else
    assert pl.read_csv(tmp_path / "data" / "outputs" / "scored_customers.csv").height == (
        listed.height - 1
    )
