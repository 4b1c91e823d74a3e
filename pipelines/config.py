"""Local or production: the one place that reads the environment and picks resources.

`TOUCHPOINT_CHURN_ENV` chooses the deployment:

- `local` (default): MLflow in a SQLite file, Dagster's instance in SQLite under DAGSTER_HOME
  (`dagster.yaml`), schedules and the landing sensor off until someone turns them on in the UI,
  so a demo never runs anything by surprise.
- `production`: MLflow is the tracking server named by MLFLOW_TRACKING_URI (required),
  Dagster's instance keeps runs, events and schedules in Postgres (`dagster.production.yaml`,
  which `make` copies into DAGSTER_HOME when this variable says production), and automation
  starts switched on.
- `kubernetes`: production on a cluster: the same, with each run in a pod of its own
  (`dagster.kubernetes.yaml`, dagster-k8s's run launcher) and the run queue's limits by tag
  (docs/deployment.md).

Run settings (the horizon, `as_of`, ...) come from the data root's `touchpoint_churn.toml` and
from `TOUCHPOINT_CHURN_<SETTING>` variables (`run_settings`).
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
from pydantic import Field

ENV_VARIABLE = "TOUCHPOINT_CHURN_ENV"
DEFAULT_DATA_ROOT = "data"
DEFAULT_TRACKING_URI = "sqlite:///.mlflow/mlflow.db"
DEPLOYMENTS = ("local", "production", "kubernetes")
_LOCAL_SCHEMES = ("", "file", "sqlite")


class DeploymentError(ValueError):
    """The environment does not describe a usable deployment; the message says which variable to
    set."""


@dataclass(frozen=True)
class Deployment:
    name: str
    data_root: str
    tracking_uri: str

    @property
    def automation_on(self) -> bool:
        return self.name != "local"

    @property
    def schedule_status(self) -> dg.DefaultScheduleStatus:
        return (
            dg.DefaultScheduleStatus.RUNNING
            if self.automation_on
            else dg.DefaultScheduleStatus.STOPPED
        )

    @property
    def sensor_status(self) -> dg.DefaultSensorStatus:
        return (
            dg.DefaultSensorStatus.RUNNING if self.automation_on else dg.DefaultSensorStatus.STOPPED
        )


def importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def deployment(
    environ: Mapping[str, str] | None = None, installed: Callable[[str], bool] = importable
) -> Deployment:
    """The deployment the environment asks for, checked so a production run never tracks into a
    local file, and fails here, saying what to install, rather than in Dagster's instance loader."""
    env = os.environ if environ is None else environ
    name = env.get(ENV_VARIABLE, "local").strip().lower() or "local"
    if name not in DEPLOYMENTS:
        raise DeploymentError(f"{ENV_VARIABLE}={name!r}: use one of {', '.join(DEPLOYMENTS)}")
    data_root = env.get("TOUCHPOINT_CHURN_DATA", DEFAULT_DATA_ROOT)
    if name == "local":
        return Deployment(name, data_root, env.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI))
    tracking_uri = env.get("MLFLOW_TRACKING_URI", "")
    if urlparse(tracking_uri).scheme in _LOCAL_SCHEMES:
        raise DeploymentError(
            f"{ENV_VARIABLE}={name} needs MLFLOW_TRACKING_URI set to the MLflow "
            f"tracking server (e.g. https://mlflow.example.com), not {tracking_uri or 'nothing'!r}"
        )
    for module, package in [
        ("dagster_postgres", "dagster-postgres"),
        *([("dagster_k8s", "dagster-k8s")] if name == "kubernetes" else []),
    ]:
        if not installed(module):
            raise DeploymentError(
                f"{ENV_VARIABLE}={name} loads Dagster's instance from dagster.{name}.yaml "
                f"(Postgres{', a run pod each' if name == 'kubernetes' else ''}), which needs "
                f"{package}: install the production "
                "extra, `.venv/bin/uv pip install --python .venv/bin/python -e '.[production]'` "
                "(or `pip install -e '.[production]'`)"
            )
    return Deployment(name, data_root, tracking_uri)


SETTINGS_FILE = "touchpoint_churn.toml"
SETTINGS_PREFIX = "TOUCHPOINT_CHURN_"


def run_settings(
    data_root: str | Path, fields: Collection[str], environ: Mapping[str, str] | None = None
) -> dict[str, object]:
    """The run settings asked for without code: `<data root>/touchpoint_churn.toml`, then one
    environment variable per setting (`TOUCHPOINT_CHURN_HORIZON_DAYS=180`, what `make run
    HORIZON_DAYS=180` sets), which wins over the file. `fields` are the settings that exist; any
    other key in the file is an error naming them, so a typo never passes as a default."""
    env = os.environ if environ is None else environ
    path = Path(data_root) / SETTINGS_FILE
    values: dict[str, object] = {}
    if path.is_file():
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise DeploymentError(f"cannot read the run settings in {path}: {err}") from err
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise DeploymentError(
                f"{path}: {', '.join(unknown)} is not a setting; the settings are "
                f"{', '.join(sorted(fields))}"
            )
        # a TOML date (as_of = 1998-01-01) is the ISO text the setting takes
        values = {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}
    for name in fields:
        if (value := env.get(SETTINGS_PREFIX + name.upper(), "").strip()) != "":
            values[name] = value
    return values


class QualityBounds(dg.ConfigurableResource):
    """Where the data checks draw the line between 'unusual' and 'do not use this'."""

    max_quarantine_share: float = Field(
        default=0.05,
        description=(
            "Largest share of a table's rows that may be quarantined before ingestion is stopped."
        ),
    )
    max_set_aside_file_share: float = Field(
        default=0.2,
        description=(
            "Largest share of a table's files that may be set aside whole (unreadable, empty, "
            "a required column missing) before ingestion is stopped: one bad daily file among "
            "many only warns."
        ),
    )
    max_event_age_hours: float = Field(
        default=48.0,
        description=(
            "The latest event may be at most this old (hours) before the data counts as stale."
        ),
    )
    min_label_class: int = Field(
        default=10,
        description="Fewest churners, and fewest stayers, a training cutoff needs to be trained "
        "and judged on; training_snapshots leaves the others out.",
    )
    min_label_rate: float = Field(
        default=0.005,
        description="Lowest usual churn rate at a training cutoff; below it the check warns.",
    )
    max_label_rate: float = Field(
        default=0.9,
        description="Highest usual churn rate at a training cutoff; above it the check warns.",
    )
    max_null_share: float = Field(
        default=0.99,
        description=(
            "Largest share of rows a feature may be missing for before the check warns (many "
            "are missing by design: no tickets, no surveys); missing for every row blocks."
        ),
    )
    max_null_increase: float = Field(
        default=0.25,
        description=(
            "Largest rise of a feature's missing share from training to scoring "
            "before scoring is stopped."
        ),
    )
    psi_threshold: float = Field(
        default=0.25,
        description=(
            "Population stability index above which a feature counts as drifted "
            "(0.1 moving, 0.25 shifted)."
        ),
    )
    psi_bins: int = Field(
        default=10, description="Quantile bins of the training distribution used for the PSI."
    )
