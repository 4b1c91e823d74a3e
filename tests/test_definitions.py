"""The Dagster project as a whole: what it defines, the webserver that shows it, and the
local/production switch."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from pipelines.config import DeploymentError, deployment
from pipelines.definitions import build_definitions

REPO = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_keys.txt"
SCHEDULES = {"daily_scoring_schedule", "weekly_retraining_schedule"}
SENSORS = {"landing_files_sensor"}


def graph_lines(defs) -> list[str]:
    """Every asset key and asset check key, one a line, sorted: what the snapshot holds."""
    graph = defs.resolve_asset_graph()
    assets = [f"asset {k.to_user_string()}" for k in graph.get_all_asset_keys()]
    checks = [f"check {k.asset_key.to_user_string()}:{k.name}" for k in graph.asset_check_keys]
    return sorted(assets + checks)


def test_asset_and_check_keys_match_the_checked_in_snapshot(tmp_path):
    """An accidental change to the graph shows up here; an intended one updates
    tests/snapshots/asset_keys.txt."""
    defs = build_definitions(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}")
    defs.validate_loadable(defs)
    actual = graph_lines(defs)
    expected = SNAPSHOT.read_text().split("\n")[:-1]
    assert actual == expected, (
        "the asset graph changed; if intended, write these lines to "
        "tests/snapshots/asset_keys.txt:\n" + "\n".join(actual)
    )


def automation(
    defs: dg.Definitions,
) -> tuple[list[dg.ScheduleDefinition], list[dg.SensorDefinition]]:
    """The schedules and sensors as Dagster resolves them."""
    repository = defs.get_repository_def()
    return list(repository.schedule_defs), list(repository.sensor_defs)


def test_jobs_schedules_and_sensor_are_defined_and_off_locally(tmp_path):
    defs = build_definitions(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}")
    schedule_defs, sensor_defs = automation(defs)
    schedules = {s.name: s for s in schedule_defs}
    assert set(schedules) == SCHEDULES and {s.name for s in sensor_defs} == SENSORS
    assert {s.job_name for s in schedules.values()} == {"daily_scoring", "weekly_retraining"}
    assert all(s.default_status.value == "STOPPED" for s in [*schedule_defs, *sensor_defs])
    scoring = {
        k.to_user_string()
        for k in defs.resolve_job_def("daily_scoring").asset_layer.executable_asset_keys
    }
    assert {
        "scored_customers",
        "scoring_features",
        "clickstream",
    } <= scoring and "churn_model" not in scoring
    retraining = {
        k.to_user_string()
        for k in defs.resolve_job_def("weekly_retraining").asset_layer.executable_asset_keys
    }
    assert "churn_model" in retraining and "scored_customers" not in retraining


def test_the_environment_chooses_local_or_production():
    local = deployment({})
    assert (local.name, local.tracking_uri, local.schedule_status.value) == (
        "local",
        "sqlite:///.mlflow/mlflow.db",
        "STOPPED",
    )
    production = {
        "TOUCHPOINT_CHURN_ENV": "production",
        "MLFLOW_TRACKING_URI": "https://mlflow.internal",
        "TOUCHPOINT_CHURN_DATA": "/srv/churn",
    }
    prod = deployment(production, installed=lambda module: True)
    assert (prod.tracking_uri, prod.data_root, prod.sensor_status.value) == (
        "https://mlflow.internal",
        "/srv/churn",
        "RUNNING",
    )
    with pytest.raises(
        DeploymentError,
        match=r"needs dagster-postgres: install the production extra.*\.\[production\]",
    ):
        deployment(production, installed=lambda module: module != "dagster_postgres")
    with pytest.raises(DeploymentError, match="MLFLOW_TRACKING_URI"):
        deployment({"TOUCHPOINT_CHURN_ENV": "production", "MLFLOW_TRACKING_URI": "sqlite:///x.db"})
    with pytest.raises(DeploymentError, match="local, production"):
        deployment({"TOUCHPOINT_CHURN_ENV": "staging"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())["data"]


WORKSPACE_QUERY = """{
  assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes {
    schedules { name scheduleState { status } }
    sensors { name sensorState { status } } } } }
}"""


@pytest.mark.e2e
@pytest.mark.slow
def test_the_webserver_serves_the_definitions_the_code_builds(tmp_path):
    """Start dagster-webserver on a free port, as `make dev` starts the UI, and ask it what it sees:
    the code location it loads from the environment is the one `build_definitions` builds (which
    the tests above hold to the snapshot and to automation off), every asset, check, schedule and
    sensor, in the state the code gives it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TOUCHPOINT_CHURN_DATA": str(tmp_path / "data"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "TOUCHPOINT_CHURN_ENV": "local",
    }
    port = _free_port()
    webserver = Path(sys.executable).parent / "dagster-webserver"
    # its own process group, so it and its code server child can be stopped together
    process = subprocess.Popen(
        [str(webserver), "-m", "pipelines.definitions", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if process.poll() is not None:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    pytest.fail(f"dagster-webserver exited: {stderr[-2000:]}")
                assert time.monotonic() < deadline, "dagster-webserver did not answer within 90 s"
                time.sleep(0.5)
        data = _graphql(port, WORKSPACE_QUERY)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    seen = sorted(
        [f"asset {'/'.join(n['assetKey']['path'])}" for n in data["assetNodes"]]
        + [
            f"check {'/'.join(n['assetKey']['path'])}:{c['name']}"
            for n in data["assetNodes"]
            for c in n["assetChecksOrError"]["checks"]
        ]
    )
    defs = build_definitions(tmp_path / "data", env["MLFLOW_TRACKING_URI"])
    assert seen == graph_lines(defs)
    (repository,) = data["repositoriesOrError"]["nodes"]
    schedule_defs, sensor_defs = automation(defs)
    assert {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]} == {
        s.name: s.default_status.value for s in schedule_defs
    }
    assert {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]} == {
        s.name: s.default_status.value for s in sensor_defs
    }


def test_instance_files_keep_local_state_in_sqlite_and_production_state_in_postgres():
    import yaml

    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    production = yaml.safe_load((REPO / "dagster.production.yaml").read_text())
    assert list(local["storage"]) == ["sqlite"]
    database = production["storage"]["postgres"]["postgres_db"]
    assert {k: v["env"] for k, v in database.items() if isinstance(v, dict)} == {
        "hostname": "DAGSTER_PG_HOST",
        "port": "DAGSTER_PG_PORT",
        "db_name": "DAGSTER_PG_DB",
        "username": "DAGSTER_PG_USERNAME",
        "password": "DAGSTER_PG_PASSWORD",
    }


def test_run_settings_come_from_the_data_roots_file_and_the_environment_wins(tmp_path):
    from pipelines.config import run_settings
    from pipelines.definitions import churn_settings
    from pipelines.resources import ChurnSettings

    (tmp_path / "touchpoint_churn.toml").write_text("horizon_days = 180\nas_of = 1998-01-01\n")
    fields = ChurnSettings.model_fields
    from_file = churn_settings(run_settings(tmp_path, fields, environ={}), "the file")
    assert (from_file.horizon_days, from_file.as_of) == (180, "1998-01-01")
    environ = {"TOUCHPOINT_CHURN_AS_OF": "1997-10-01", "TOUCHPOINT_CHURN_TRAIN_CUTOFFS": "4"}
    both = churn_settings(run_settings(tmp_path, fields, environ=environ), "both")
    assert (both.horizon_days, both.as_of, both.train_cutoffs) == (180, "1997-10-01", 4)
    defs = build_definitions(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert defs.resources is not None and defs.resources["settings"].horizon_days == 180

    (tmp_path / "touchpoint_churn.toml").write_text("horizon = 180\n")
    with pytest.raises(
        DeploymentError, match="horizon is not a setting; the settings are .*horizon_days"
    ):
        run_settings(tmp_path, fields, environ={})
    with pytest.raises(DeploymentError, match="horizon_days: Input should be a valid integer"):
        churn_settings({"horizon_days": "half a year"}, "the environment")
