"""Production mode run for real on one machine, and the cluster's instance file checked without one.

The production stack: Debian's PostgreSQL and an MLflow tracking server (Postgres backend store,
proxied artifacts in a local folder) on 127.0.0.1, then the pipeline as production runs it:
`python -m pipelines.cli run` (what `make run` calls) trains and promotes a champion into the
server's registry, and `dagster-daemon run`, on the instance of `dagster.production.yaml`, runs the
landing sensor on a newly dropped file and a queued `daily_scoring` run. Each server runs in its
own process group and is stopped by its PID in the fixture's teardown, also when the test fails.

No Kubernetes runs here (none installs from the registries we reach), so `dagster.kubernetes.yaml`
is checked against the schemas of Dagster's instance, dagster-k8s's run launcher and the queued
run coordinator, and both are built from it, with the one call that reads a cluster's credentials
left out.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import kubernetes
import psycopg2
import pytest
import yaml

from demo.landing import write_world
from demo.simulator import WorldConfig, simulate
from pipelines.config import DeploymentError, deployment
from pipelines.definitions import build_definitions
from pipelines.jobs import TRAINS
from pipelines.partitions import every_bucket_tags

REPO = Path(__file__).resolve().parents[1]
# A small world whose model passes the champion gate at its seed, its end pinned like the other
# tests' worlds, without the oracle (two thirds of the simulation; nothing here reads it). Its
# newest clickstream file (the world's last two days) is held back and dropped into landing/ once
# the daemon runs, as a new day's export would be.
WORLD = WorldConfig(
    customers=1_500, seed=5, end=datetime(2026, 11, 2, tzinfo=UTC), truth_replicates=0
)
NEW_FILE = "clickstream/clickstream_2026-11.parquet"
MODEL = "touchpoint-churn"  # models.tracking.Tracking.model_name
PASSWORD = "production-test"
# for one run (or the CLI's whole pipeline): under a minute on an idle 2-core machine; the bound
# leaves room for one shared with other work
WAIT_S = 420


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (not on PATH: /usr/lib/postgresql/<v>/bin),
    or of any `postgres` on PATH."""
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(versions[-1]).parent if versions else None


def missing(what: str) -> None:
    """Skip, or fail in CI, where `make test` should have installed it (as the report test does
    for Chromium)."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} in CI: `make test` should have installed Debian's postgresql package")
    pytest.skip(
        f"{what}: `make test` installs Debian's postgresql package when it can (apt-get needs root)"
    )


@dataclass
class Server:
    """A process in its own process group (so what it spawns stops with it), its log in a file."""

    name: str
    process: subprocess.Popen
    log: Path

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} log ---\n{self.log.read_text(errors='replace')[-chars:]}"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the group, wait for the process, then kill what is left of its group: the
        daemon's code server and a run it launched outlive the daemon otherwise."""
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:  # the whole group is gone
            return
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


def start(
    name: str, command: list[str], log: Path, user: str | None = None, **kw: object
) -> Server:
    out: IO[bytes] = log.open("wb")
    process = subprocess.Popen(
        command,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        process_group=0,
        user=user,
        **kw,  # type: ignore[arg-type]
    )
    out.close()
    return Server(name, process, log)


def wait_for(
    what: str, ready: Callable[[], bool], server: Server | None = None, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if server is not None and server.process.poll() is not None:
            pytest.fail(f"{server.name} exited ({server.process.returncode}) {server.tail()}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"{what} not within {timeout:.0f} s" + (f"\n{server.tail()}" if server else "")
            )
        time.sleep(0.3)


@dataclass(frozen=True)
class Postgres:
    port: int

    def dsn(self, db: str) -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/{db}"

    def rows(self, db: str, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg2.connect(self.dsn(db)) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            found = cur.fetchall()
        conn.close()
        return found


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A folder the `postgres` OS user can enter (pytest's tmp_path is root's alone)."""
    root = Path(tempfile.mkdtemp(prefix="touchpoint-churn-production-"))
    root.chmod(0o755)
    yield root
    if not os.environ.get("KEEP_PRODUCTION_TEST"):
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres(scratch: Path) -> Iterator[Postgres]:
    """Debian's PostgreSQL on 127.0.0.1 and a free port, with the databases of Dagster and MLflow.
    It refuses to run as root, so as root it runs as the `postgres` OS user."""
    bindir = postgres_bin()
    if bindir is None:
        missing("PostgreSQL is not installed")
        return
    user = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing("there is no `postgres` OS user to run PostgreSQL as (root is refused)")
        user = "postgres"
    data = scratch / "pgdata"
    data.mkdir()
    (scratch / "pgpass").write_text(PASSWORD)
    if user is not None:
        for path in (data, scratch / "pgpass"):
            shutil.chown(path, user)
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            f"--pwfile={scratch / 'pgpass'}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",  # TCP connections need DAGSTER_PG_PASSWORD, as deployed
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        user=user,
    )
    port = free_port()
    server = start(
        "postgres",
        [
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            str(data),  # its Unix socket beside its data, not in /var/run/postgresql
            # a throwaway database: durability only costs time here
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ],
        scratch / "postgres.log",
        user=user,
    )
    pg = Postgres(port)

    def accepts() -> bool:
        try:
            pg.rows("postgres", "select 1")
            return True
        except psycopg2.OperationalError:
            return False

    try:
        wait_for("PostgreSQL accepting connections", accepts, server)
        conn = psycopg2.connect(pg.dsn("postgres"))
        conn.autocommit = True  # CREATE DATABASE refuses to run in a transaction
        with conn.cursor() as cur:
            cur.execute("create database dagster")
            cur.execute("create database mlflow")
        conn.close()
        yield pg
    finally:
        server.stop(signal.SIGINT)  # PostgreSQL's fast shutdown


@dataclass(frozen=True)
class MlflowServer:
    uri: str
    wait: Callable[[], None]  # until it answers, or fail the test with its log


@pytest.fixture(scope="module")
def mlflow_server(postgres: Postgres, scratch: Path) -> Iterator[MlflowServer]:
    """`mlflow server` with its runs and registry in Postgres and its artifacts, proxied through the
    server, in a local folder (a bucket in a deployment)."""
    port = free_port()
    server = start(
        "mlflow server",
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            # psycopg2 (dagster-postgres's driver) named: SQLAlchemy's default is psycopg 3
            postgres.dsn("mlflow").replace("postgresql://", "postgresql+psycopg2://"),
            "--artifacts-destination",
            str(scratch / "mlflow-artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        scratch / "mlflow.log",
        # its GenAI job runner (online scoring of traces) is a process of its own we do not use
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    uri = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except OSError:
            return False
        import urllib.request

        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        # answered once the world is written (`production`): the server's start (its tables
        # created in Postgres) and the simulation take their time side by side
        yield MlflowServer(uri, lambda: wait_for("the MLflow /health", answers, server, WAIT_S))
    finally:
        server.stop()


@dataclass(frozen=True)
class Stack:
    postgres: Postgres
    tracking_uri: str
    env: dict[str, str]
    data_root: Path
    scratch: Path


@pytest.fixture(scope="module")
def production(postgres: Postgres, mlflow_server: MlflowServer, scratch: Path) -> Stack:
    """The environment of a production deployment on this machine: the instance file copied into
    DAGSTER_HOME, as `make` does when TOUCHPOINT_CHURN_ENV=production, and the world in the data
    root, its newest clickstream file held back."""
    write_world(simulate(WORLD), scratch / "data", WORLD)
    shutil.move(scratch / "data" / "landing" / NEW_FILE, scratch / "held_back.parquet")
    mlflow_server.wait()
    home = scratch / "dagster"
    home.mkdir()
    shutil.copy(REPO / "dagster.production.yaml", home / "dagster.yaml")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_CHURN_")},
        "TOUCHPOINT_CHURN_ENV": "production",
        "TOUCHPOINT_CHURN_DATA": str(scratch / "data"),
        "MLFLOW_TRACKING_URI": mlflow_server.uri,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_DB": "dagster",
        "DAGSTER_PG_USERNAME": "postgres",
        "DAGSTER_PG_PASSWORD": PASSWORD,
    }
    return Stack(postgres, mlflow_server.uri, env, scratch / "data", scratch)


PARTITION_TAG = "select value from run_tags where run_id = %s and key = 'dagster/partition'"


def run_status(pg: Postgres, run_id: str) -> str | None:
    found = pg.rows("dagster", "select status from runs where run_id = %s", (run_id,))
    return found[0][0] if found else None


def wait_for_run(stack: Stack, daemon: Server, run_id: str) -> None:
    wait_for(
        f"run {run_id} finished",
        lambda: run_status(stack.postgres, run_id) in {"SUCCESS", "FAILURE", "CANCELED"},
        daemon,
        timeout=WAIT_S,
    )
    status = run_status(stack.postgres, run_id)
    if status != "SUCCESS":
        errors = stack.postgres.rows(
            "dagster",
            "select event from event_logs where run_id = %s and dagster_event_type in "
            "('STEP_FAILURE', 'PIPELINE_FAILURE', 'ENGINE_EVENT') order by id",
            (run_id,),
        )
        pytest.fail(f"run {run_id}: {status}\n" + "\n".join(e[0][-1500:] for e in errors))


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.production
# several processes' imports and a training: minutes where the two cores are shared
@pytest.mark.timeout(1200)
def test_the_production_stack_runs_the_sensor_and_the_schedules_job_under_the_daemon(
    production: Stack,
):
    stack = production
    # The code location as a deployment serves it: one gRPC code server, loaded while the CLI
    # trains, which the daemon and `dagster job launch` both use (otherwise each would start and
    # load one of its own), and whose processes run the runs the daemon launches
    code_port = free_port()
    code_server = start(
        "dagster code-server",
        [
            str(Path(sys.executable).parent / "dagster"),
            "code-server",
            "start",
            "-m",
            "pipelines.definitions",
            "--location-name",
            "touchpoint_churn",
            "-h",
            "127.0.0.1",
            "-p",
            str(code_port),
        ],
        stack.scratch / "code-server.log",
        cwd=REPO,
        env=stack.env,
    )
    workspace = stack.scratch / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "grpc_server": {
                            "host": "127.0.0.1",
                            "port": code_port,
                            "location_name": "touchpoint_churn",
                        }
                    }
                ]
            }
        )
    )
    try:
        run_under_the_daemon(stack, workspace)
    finally:
        code_server.stop()


def run_under_the_daemon(stack: Stack, workspace: Path) -> None:
    pg = stack.postgres
    # 1. training: `make run` as production runs it, its runs kept in Postgres and its model in
    # the MLflow server's registry, promoted to champion
    log = stack.scratch / "cli.log"
    with log.open("wb") as out:
        trained = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "run"],
            cwd=REPO,
            env=stack.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=WAIT_S,
        )
    said = log.read_text(errors="replace")
    assert trained.returncode == 0, said[-4000:]
    assert "promoted to champion" in said, said[-4000:]

    from mlflow import MlflowClient

    client = MlflowClient(stack.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    # the registry is the server's, in Postgres, and the model's files went through the server
    assert pg.rows(
        "mlflow",
        "select version from registered_model_aliases where name = %s and alias = 'champion'",
        (MODEL,),
    ) == [(int(champion.version),)]
    assert any((stack.scratch / "mlflow-artifacts").rglob("booster.ubj"))

    # 2. a new file lands; the daemon starts (its sensor ticks at once, then each minute)
    shutil.move(stack.scratch / "held_back.parquet", stack.data_root / "landing" / NEW_FILE)
    daemon = start(
        "dagster-daemon",
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(workspace)],
        stack.scratch / "daemon.log",
        env=stack.env,
    )
    try:
        sensor_runs = """
            select r.run_id, r.pipeline_name, r.partition from runs r
            join run_tags t on t.run_id = r.run_id
            where t.key = 'dagster/sensor_name' and t.value = 'landing_files_sensor'"""
        wait_for(
            "the landing sensor launching an ingestion run",
            lambda: bool(pg.rows("dagster", sensor_runs)),
            daemon,
            timeout=WAIT_S,
        )
        ((ingest_id, job, _),) = pg.rows("dagster", sensor_runs)
        assert job == "ingest_clickstream_files"
        # one partition: the new file's content
        assert len(pg.rows("dagster", PARTITION_TAG, (ingest_id,))) == 1
        wait_for_run(stack, daemon, ingest_id)

        # 3. daily_scoring, submitted as its schedule submits it: to the instance's queued run
        # coordinator, which the daemon dequeues and launches (the schedule's cron, 06:00 UTC,
        # cannot be waited for)
        launched = subprocess.run(
            [
                str(Path(sys.executable).parent / "dagster"),
                "job",
                "launch",
                "-w",
                str(workspace),
                "-j",
                "daily_scoring",
                "--tags",
                # every customer bucket in the one run, as the schedule's request asks
                json.dumps({"touchpoint_churn/test": "production", **every_bucket_tags(1)}),
            ],
            cwd=REPO,
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=WAIT_S,
        )
        assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
        ((scoring_id,),) = pg.rows(
            "dagster",
            "select r.run_id from runs r join run_tags t on t.run_id = r.run_id "
            "where r.pipeline_name = 'daily_scoring' and t.key = 'touchpoint_churn/test'",
        )
        wait_for_run(stack, daemon, scoring_id)
    finally:
        daemon.stop()

    # runs and their event logs are in Postgres: the CLI's, the sensor's and the queued one
    statuses = dict(pg.rows("dagster", "select run_id, status from runs"))
    assert statuses[ingest_id] == statuses[scoring_id] == "SUCCESS"
    jobs = {j for (j,) in pg.rows("dagster", "select distinct pipeline_name from runs")}
    assert {"ingest_clickstream_files", "weekly_retraining", "daily_scoring"} <= jobs
    events = dict(
        pg.rows(
            "dagster",
            "select dagster_event_type, count(*) from event_logs where run_id = %s "
            "group by dagster_event_type",
            (scoring_id,),
        )
    )
    # (Dagster stores a run's events by their old names: PIPELINE_ for RUN_)
    assert events.get("PIPELINE_SUCCESS") == 1 and events.get("ASSET_MATERIALIZATION", 0) > 5
    # the run went through the queue, from which the daemon started it
    assert events.get("PIPELINE_ENQUEUED") == 1 and events.get("PIPELINE_STARTING") == 1
    # the daemon kept its state in Postgres too: its heartbeats, and the sensor's ticks
    daemons = {d for (d,) in pg.rows("dagster", "select daemon_type from daemon_heartbeats")}
    assert {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR"} <= daemons
    ticks = pg.rows("dagster", "select status from job_ticks where type = 'SENSOR'")
    assert ("SUCCESS",) in ticks
    # the scoring run scored with the champion from the server's registry, and the file the
    # sensor ingested reached it
    scored = pg.rows(
        "dagster",
        "select event from event_logs where run_id = %s and dagster_event_type = "
        "'ASSET_MATERIALIZATION' and asset_key = %s",
        (scoring_id, '["shap_attributions"]'),
    )
    assert len(scored) == 1 and f'"{champion.version}"' in scored[0][0]
    assert client.get_model_version_by_alias(MODEL, "champion").version == champion.version


# ---- the cluster's instance file, without a cluster ------------------------------------------


def kubernetes_instance(tmp_path: Path) -> dict:
    """`dagster.kubernetes.yaml` validated as Dagster validates an instance file when it loads one,
    with the variables it reads set as a deployment sets them."""
    from dagster._core.instance.config import dagster_instance_config

    shutil.copy(REPO / "dagster.kubernetes.yaml", tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    return dict(config)


def test_the_kubernetes_instance_launches_each_run_in_a_pod_and_limits_concurrency(
    tmp_path, monkeypatch
):
    import dagster as dg
    from dagster._core.launcher import RunLauncher
    from dagster._core.run_coordinator import RunCoordinator
    from dagster._serdes import ConfigurableClassData
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s import launcher as k8s_launcher
    from dagster_k8s.models import k8s_model_from_dict

    for name, value in {
        "DAGSTER_PG_HOST": "dagster-postgresql",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_DB": "dagster",
        "DAGSTER_PG_USERNAME": "dagster",
        "DAGSTER_PG_PASSWORD": "secret",
        "TOUCHPOINT_CHURN_IMAGE": "registry.example.com/touchpoint-churn:1.0",
    }.items():
        monkeypatch.setenv(name, value)
    config = kubernetes_instance(tmp_path)
    database = config["storage"]["postgres"]["postgres_db"]
    assert database["scheme"] == "postgresql+psycopg2"

    # Building the launcher loads the cluster's credentials (in-cluster by default); that one call
    # is left out, and the rest is built from the file as the daemon builds it (its config checked
    # against K8sRunLauncher's schema first).
    monkeypatch.setattr(k8s_launcher, "load_kubernetes_config", lambda **kw: None)

    def built(part: str, kind: type):
        data = config[part]
        return ConfigurableClassData(
            data["module"], data["class"], yaml.safe_dump(data.get("config", {}))
        ).rehydrate(as_type=kind)

    launcher = built("run_launcher", RunLauncher)
    assert isinstance(launcher, K8sRunLauncher)
    assert launcher.job_image == "registry.example.com/touchpoint-churn:1.0"  # from the environment
    assert (launcher.job_namespace, launcher.service_account_name) == (
        "touchpoint-churn",
        "touchpoint-churn-runs",
    )
    assert launcher.instance_config_map == "dagster-instance"
    assert launcher.postgres_password_secret == "dagster-postgresql-secret"
    assert launcher.env_config_maps == ["touchpoint-churn-env"]
    assert launcher.env_secrets == ["touchpoint-churn-secrets"]
    # the shared data root: Kubernetes objects as the launcher builds them into the pod spec
    ((mount,), (volume,)) = (
        [k8s_model_from_dict(kind, item) for item in items]
        for kind, items in [
            (kubernetes.client.V1VolumeMount, launcher.volume_mounts),
            (kubernetes.client.V1Volume, launcher.volumes),
        ]
    )
    assert (mount.name, mount.mount_path) == ("data", "/data")  # TOUCHPOINT_CHURN_DATA
    assert (volume.name, volume.persistent_volume_claim.claim_name) == (
        "data",
        "touchpoint-churn-data",
    )

    coordinator = built("run_coordinator", RunCoordinator)
    assert isinstance(coordinator, dg.QueuedRunCoordinator)
    queue = coordinator.get_run_queue_config()
    limits = {
        (limit["key"], str(limit.get("value"))): limit["limit"]
        for limit in queue.tag_concurrency_limits
    }
    assert limits == {
        # each backfill (one run per bucket) fans out 8 runs at a time
        ("dagster/backfill", "{'applyLimitPerUniqueValue': True}"): 8,
        ("dagster/sensor_name", "landing_files_sensor"): 4,
        # one run of a bucket (or of a landing file) at a time
        ("dagster/partition", "{'applyLimitPerUniqueValue': True}"): 1,
        (TRAINS, "None"): 1,  # one training run at a time, whatever its value
    }
    assert queue.max_concurrent_runs == 16
    retraining = build_definitions(tmp_path / "data", "http://mlflow").resolve_job_def(
        "weekly_retraining"
    )
    assert TRAINS in retraining.tags


def test_kubernetes_is_production_with_dagster_k8s_installed():
    environ = {
        "TOUCHPOINT_CHURN_ENV": "kubernetes",
        "MLFLOW_TRACKING_URI": "https://mlflow.internal",
    }
    cluster = deployment(environ, installed=lambda module: True)
    assert (cluster.name, cluster.sensor_status.value) == ("kubernetes", "RUNNING")
    with pytest.raises(DeploymentError, match="needs dagster-k8s: install the production extra"):
        deployment(environ, installed=lambda module: module != "dagster_k8s")
    # the Makefile copies the instance file named after the deployment
    copied = subprocess.run(
        ["make", "-s", "--no-print-directory", "-n", "instance", "TOUCHPOINT_CHURN_ENV=kubernetes"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "cp dagster.kubernetes.yaml" in copied.stdout
