"""Customer buckets as Dagster partitions: each bucket's run computes and stores its own customers,
even when two buckets run at once in two processes (the failure dagster-dask's executor has: two
concurrent runs both reporting success while only one computed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from demo.landing import write_world
from demo.simulator import WorldConfig, simulate
from features.catalogue import load_catalogue
from features.ingest.buckets import bucket_keys, by_bucket, customer_bucket
from features.touchpoint_days import DAY, fold_touchpoint_days
from pipelines.cli import run_all
from pipelines.config import SETTINGS_FILE
from pipelines.definitions import build_definitions
from pipelines.partitions import BUCKETED, bucketed_table
from pipelines.resources import DataRoot

REPO = Path(__file__).resolve().parents[1]
WORLD = WorldConfig(customers=600, seed=5, end=datetime(2026, 11, 2, tzinfo=UTC))

# one bucket's customer-days in a process of its own, on the instance in DAGSTER_HOME
ONE_BUCKET = """
import sys
import dagster as dg
from pipelines.definitions import build_definitions
data_root, tracking_uri, bucket = sys.argv[1:]
defs = build_definitions(data_root, tracking_uri)
run = defs.resolve_implicit_global_asset_job_def().execute_in_process(
    instance=dg.DagsterInstance.get(),
    asset_selection=[dg.AssetKey("touchpoint_days")],
    partition_key=bucket,
)
sys.exit(0 if run.success else 1)
"""


def test_bucket_keys_sort_as_numbers_and_cover_every_bucket():
    assert bucket_keys(1) == ["00"]
    assert bucket_keys(3) == ["00", "01", "02"]
    keys = bucket_keys(120)
    assert len(keys) == 120 and keys == sorted(keys) and keys[-1] == "119" and keys[0] == "000"


def test_a_step_reading_a_bucket_not_stored_says_what_to_materialize(tmp_path):
    data_root = DataRoot(path=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="materialize every bucket of shap_attributions"):
        data_root.stored_bucket("shap_attributions", "01")
    data_root.write_bucket("shap_attributions", "01", pl.DataFrame({"customer_id": ["a"]}))
    assert data_root.stored_bucket("shap_attributions", "01").is_file()


def test_rows_split_by_bucket_once_land_where_customer_bucket_puts_them():
    frame = pl.DataFrame({"customer_id": [f"C{i}" for i in range(50)], "n": range(50)})
    parts = by_bucket(frame, 3)
    assert list(parts) == bucket_keys(3)
    assert sum(p.height for p in parts.values()) == 50
    for key, part in parts.items():
        assert part.columns == frame.columns
        assert set(part.select(customer_bucket(pl.col("customer_id"), 3)).to_series()) <= {int(key)}
    assert by_bucket(frame.head(1), 40)["39"].is_empty()


def test_every_per_customer_table_is_bucketed_and_the_deployment_picks_the_backfill(tmp_path):
    for deployment, policy in (
        ("local", dg.BackfillPolicy.single_run()),
        ("production", dg.BackfillPolicy.multi_run(1)),
    ):
        defs = build_definitions(tmp_path, "sqlite:///x.db", deployment_name=deployment)
        graph = defs.resolve_asset_graph()
        bucketed = {
            key.to_user_string()
            for key in graph.get_all_asset_keys()
            if graph.get(key).partitions_def
            == graph.get(dg.AssetKey("touchpoint_days")).partitions_def
        }
        assert bucketed == set(BUCKETED)
        for name in BUCKETED:
            assert graph.get(dg.AssetKey(name)).backfill_policy == policy, (deployment, name)


# Each child's run also runs touchpoint_days' checks, which read the buckets stored so far: they
# once loaded every bucket through the IO manager and failed while the other child had not yet
# written its own (a cluster's one-bucket backfill runs would have failed the same way).
@pytest.mark.e2e
@pytest.mark.slow
def test_two_buckets_run_at_once_in_two_processes_store_distinct_whole_results(
    tmp_path, monkeypatch
):
    data_root = tmp_path / "data"
    write_world(simulate(WORLD), data_root, WORLD)
    (data_root / SETTINGS_FILE).write_text("buckets = 2\n")
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    defs = build_definitions(data_root, tracking_uri)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        validated = run_all(
            defs, instance, assets=["customers", "clickstream", "support", "surveys"]
        )
        assert validated.success

    env = {"DAGSTER_HOME": str(home), "PATH": str(Path(sys.executable).parent)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", ONE_BUCKET, str(data_root), tracking_uri, bucket],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for bucket in bucket_keys(2)
    ]
    outputs = [child.communicate(timeout=300)[0].decode() for child in children]
    for child, output in zip(children, outputs, strict=True):
        assert child.returncode == 0, output[-3000:]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("touchpoint_days")) == {"00", "01"}
    root = DataRoot(path=str(data_root))
    stored = {b: pl.read_parquet(root.bucket_files("touchpoint_days", b)) for b in ("00", "01")}
    customers = {b: set(days["customer_id"]) for b, days in stored.items()}
    assert customers["00"] and customers["01"] and not customers["00"] & customers["01"]
    for bucket, days in stored.items():
        assert days.select(
            customer_bucket(pl.col("customer_id"), 2).unique()
        ).to_series().to_list() == [int(bucket)]

    # together they are what one process folds from every event at once
    clickstream, support, surveys = (
        bucketed_table(root, table, 2) for table in ("clickstream", "support", "surveys")
    )
    whole = fold_touchpoint_days(clickstream, support, surveys, load_catalogue())
    together = pl.concat(stored.values())
    keys = ["customer_id", DAY]
    # counts exactly; the day's purchase value up to the last bits of a float sum, whose order a
    # parallel group-by does not fix
    assert_frame_equal(
        together.sort(keys),
        whole.select(together.columns).sort(keys),
        check_exact=False,
        rel_tol=1e-12,
        abs_tol=1e-9,
    )
