"""MLflow: log a trained model with its metrics, plots, baselines and data fingerprint; register it
as `challenger`; promote it to `champion`; load the champion by alias.

The registered artifact is a pyfunc holding two files: the XGBoost booster (`booster.ubj`, which
TreeSHAP explains in log-odds) and the calibration mapping (`calibration.json`, which turns log-odds
into the probabilities scoring reports). `load_champion` returns both as one `CalibratedModel`.
The pyfunc is logged as code (`models/churn_pyfunc.py`, MLflow's "models from code"), not pickled.

What a user sees in the MLflow UI is set here too: the experiment is a classic ML one (its kind
tag), runs and versions carry names and descriptions, and MLflow's messages that tell someone
running the pipeline nothing are kept out of the run log (`quiet_mlflow_logs`).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import urlparse

import mlflow
import mlflow.artifacts
import mlflow.pyfunc
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.pyfunc.model import PythonModel

from models.calibration import CalibratedModel, Calibration
from models.linear_base import LinearBase

CHAMPION = "champion"
CHALLENGER = "challenger"
# listing requirements explicitly saves MLflow ~5 s of inferring them on every log
PIP_REQUIREMENTS = [
    f"xgboost=={xgb.__version__}",
    f"mlflow=={mlflow.__version__}",
    f"pandas=={pd.__version__}",
    f"numpy=={np.__version__}",
]
# the file MLflow logs as the model's code: it sets a `ChurnPyfunc` as the model
PYFUNC_CODE = Path(__file__).with_name("churn_pyfunc.py")

# Without this tag MLflow 3 opens an experiment on its GenAI overview (traces, token usage); this
# value is the UI's "Machine learning" kind (ExperimentKind.CUSTOM_MODEL_DEVELOPMENT in its bundle),
# which opens on the runs
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MACHINE_LEARNING = "custom_model_development"
NOTE_TAG = "mlflow.note.content"  # the description the UI shows on an experiment or a run
EXPERIMENT_NOTE = (
    "Training runs of the touchpoint-churn model: one `train <as of> v<version>` run per "
    "registered version (its backtest, plots and model), with each baseline's backtest as a "
    "nested `baseline <name>` run. The registered model's `champion` alias is what scoring uses."
)
MODEL_DESCRIPTION = (
    "Calibrated churn probability per customer (XGBoost, optionally on a linear base, and a "
    "calibration map), explained by TreeSHAP. Scoring loads the `champion` alias; `challenger` is "
    "the newest version. Each version's description and tags say what it was trained on and "
    "what the promotion gate decided."
)

# MLflow's messages that tell someone running the pipeline nothing they can act on, by logger
# and message start: the tables a new local store creates, and the check that the input example
# fits the signature (it raises when it does not). `quiet_mlflow_logs(False)` (`--verbose`) keeps
# them.
QUIET_MESSAGES = {
    "mlflow.store.db.utils": (
        "Creating initial MLflow database tables",
        "Updating database tables",
    ),
    "mlflow.pyfunc": ("Validating input example against model signature",),
}
# MLflow's download bars, drawn as it reads back the model it just logged and loads the champion
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


class QuietMlflow(logging.Filter):
    set_progress_bar = False  # whether quiet_mlflow_logs turned MLflow's download bars off

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(QUIET_MESSAGES.get(record.name, ()))


QUIET = QuietMlflow()


def quiet_mlflow_logs(quiet: bool = True) -> None:
    """Drop QUIET_MESSAGES from MLflow's log, and its download bars unless
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR is set, or keep everything (`quiet=False`).

    Quiet from import on; the CLI's `--verbose` calls it with False."""
    for name in QUIET_MESSAGES:
        logging.getLogger(name).removeFilter(QUIET)
        if quiet:
            logging.getLogger(name).addFilter(QUIET)
    if quiet and PROGRESS_BAR not in os.environ:
        os.environ[PROGRESS_BAR] = "false"
        QUIET.set_progress_bar = True
    elif not quiet and QUIET.set_progress_bar:
        del os.environ[PROGRESS_BAR]
        QUIET.set_progress_bar = False


quiet_mlflow_logs()


@dataclass(frozen=True)
class Tracking:
    tracking_uri: str
    experiment: str = "touchpoint-churn"
    model_name: str = "touchpoint-churn"

    def artifact_location(self) -> str | None:
        """Beside a local SQLite store, so that artifacts never land in the working directory."""
        parsed = urlparse(self.tracking_uri)
        if parsed.scheme == "sqlite":
            return (
                (Path(self.tracking_uri.removeprefix("sqlite:///")).parent / "artifacts")
                .resolve()
                .as_uri()
            )
        return None

    def ensure_local_store(self) -> None:
        if urlparse(self.tracking_uri).scheme == "sqlite":
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(
                parents=True, exist_ok=True
            )

    def client(self) -> MlflowClient:
        self.ensure_local_store()
        return MlflowClient(self.tracking_uri)

    def experiment_id(self) -> str:
        """The experiment, created as a machine-learning one; an experiment an earlier release
        created without the kind tag gets it (the UI would open it on the GenAI overview)."""
        client = self.client()
        found = client.get_experiment_by_name(self.experiment)
        if found is None:
            return client.create_experiment(
                self.experiment,
                artifact_location=self.artifact_location(),
                tags={EXPERIMENT_KIND_TAG: MACHINE_LEARNING, NOTE_TAG: EXPERIMENT_NOTE},
            )
        if EXPERIMENT_KIND_TAG not in found.tags:
            client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MACHINE_LEARNING)
        return found.experiment_id

    def ensure_registered_model(self) -> None:
        client = self.client()
        try:
            client.get_registered_model(self.model_name)
        except MlflowException as e:
            if e.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
                raise
            client.create_registered_model(self.model_name, description=MODEL_DESCRIPTION)


class ChurnPyfunc(PythonModel):
    """Serves calibrated churn probabilities; `.model` is the `CalibratedModel` (booster +
    calibration). Logged as code (PYFUNC_CODE); versions an earlier release logged pickled it, by
    this name, so it stays here."""

    def load_context(self, context) -> None:
        classifier = xgb.XGBClassifier()
        classifier.load_model(context.artifacts["booster"])
        calibration = Calibration.from_json(Path(context.artifacts["calibration"]).read_text())
        linear_path = context.artifacts.get("linear_base")  # the linear+xgboost form only
        linear = (
            LinearBase.from_json(json.loads(Path(linear_path).read_text())) if linear_path else None
        )
        self.model = CalibratedModel(classifier, calibration, linear)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        # a list of column names selects a DataFrame
        features = cast(pd.DataFrame, model_input[self.model.feature_names])
        return self.model.predict_proba(features)[:, 1]


def log_model_run(
    tracking: Tracking,
    model: CalibratedModel,
    example: pd.DataFrame,
    params: dict,
    metrics: dict[str, float],
    tags: dict[str, str],
    figures: dict[str, bytes] | None = None,
    documents: dict[str, dict] | None = None,
    steps: dict[str, list[float]] | None = None,
    *,
    run_name: str,
    description: str = "",
    version_tags: dict[str, str] | None = None,
) -> tuple[str, str]:
    """One MLflow run holding params, metrics (`steps`: a metric per backtest cutoff, logged as
    its steps, so MLflow draws them as a line), plots, JSON documents and the model; registered
    as a new version aliased `challenger` (promotion to `champion` is the gate's decision).

    The run is named `<run_name> v<version>` once the version is known; `description` is the
    run's and the version's (markdown), `version_tags` the version's.

    Returns (run id, registered version).
    """
    mlflow.set_tracking_uri(tracking.tracking_uri)
    client = tracking.client()
    with (
        mlflow.start_run(
            experiment_id=tracking.experiment_id(),
            run_name=run_name,
            tags={**tags, NOTE_TAG: description} if description else tags,
        ) as run,
        tempfile.TemporaryDirectory() as tmp,
    ):
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        for name, values in (steps or {}).items():
            for step, value in enumerate(values):
                mlflow.log_metric(name, value, step=step)
        for name, png in (figures or {}).items():
            (Path(tmp) / name).write_bytes(png)
            mlflow.log_artifact(str(Path(tmp) / name), artifact_path="plots")
        for name, document in (documents or {}).items():
            mlflow.log_dict(document, name)
        booster, calibration = Path(tmp) / "booster.ubj", Path(tmp) / "calibration.json"
        model.classifier.save_model(booster)
        calibration.write_text(model.calibration.to_json())
        artifacts = {"booster": str(booster), "calibration": str(calibration)}
        if model.linear is not None:
            linear = Path(tmp) / "linear_base.json"
            linear.write_text(json.dumps(model.linear.to_json()))
            artifacts["linear_base"] = str(linear)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=PYFUNC_CODE,
            artifacts=artifacts,
            signature=infer_signature(example, model.predict_proba(example)[:, 1]),
            # a few rows a user can call the served model with (MLflow checks they score)
            input_example=example.head(3),
            pip_requirements=PIP_REQUIREMENTS,
        )
        # registered here rather than by log_model, which prints its own lines to stderr
        tracking.ensure_registered_model()
        version = str(
            client.create_model_version(
                tracking.model_name,
                source=info.model_uri,
                run_id=run.info.run_id,
                tags=version_tags,
                description=description or None,
                model_id=info.model_id,
            ).version
        )
        client.set_tag(run.info.run_id, "mlflow.runName", f"{run_name} v{version}")
    client.set_registered_model_alias(tracking.model_name, CHALLENGER, version)
    return run.info.run_id, version


def log_child_runs(
    tracking: Tracking,
    parent_run_id: str,
    runs: dict[str, tuple[dict, dict[str, float]]],
    kind: str,
) -> None:
    """Runs nested under `parent_run_id` in the same experiment (baselines, search trials):
    {name: (params, metrics)}."""
    client = tracking.client()
    for name, (params, metrics) in runs.items():
        child = client.create_run(
            tracking.experiment_id(),
            run_name=name,
            tags={"mlflow.parentRunId": parent_run_id, "kind": kind},
        )
        for key, value in params.items():
            client.log_param(child.info.run_id, key, value)
        for key, value in metrics.items():
            client.log_metric(child.info.run_id, key, value)
        client.set_terminated(child.info.run_id)


def aliased_version(tracking: Tracking, alias: str) -> str | None:
    """The version an alias points at, or None when it points nowhere yet."""
    try:
        return str(tracking.client().get_model_version_by_alias(tracking.model_name, alias).version)
    except MlflowException:
        return None


def champion_version(tracking: Tracking) -> str | None:
    """The version aliased `champion`, or None before any model has passed the gate."""
    return aliased_version(tracking, CHAMPION)


class IncompatibleModel(ValueError):
    """A registered version this release cannot load as a `CalibratedModel`."""


def _load(tracking: Tracking, uri: str, version: str) -> CalibratedModel:
    mlflow.set_tracking_uri(tracking.tracking_uri)
    # a missing version or unreachable artifacts raise as they are
    loaded = mlflow.pyfunc.load_model(uri)
    try:
        model = loaded.unwrap_python_model().model
        if not isinstance(model, CalibratedModel):
            raise TypeError(f"it holds a {type(model).__name__}")
        return model
    except (MlflowException, AttributeError, TypeError) as e:  # another flavour, or another pyfunc
        raise IncompatibleModel(
            f"version {version} of registered model {tracking.model_name!r} "
            "was not logged by this release's `log_model_run` (an older release's format?), "
            "so it cannot score or be compared: train a new challenger "
            "(it replaces this one once it passes the gate) "
            f"or use a fresh MLFLOW_TRACKING_URI ({e})"
        ) from e


def load_version(tracking: Tracking, version: str) -> CalibratedModel:
    return _load(tracking, f"models:/{tracking.model_name}/{version}", version)


def load_champion(tracking: Tracking) -> tuple[CalibratedModel, str]:
    """The model currently aliased `champion` (calibrated probabilities via `.predict_proba`, the
    XGBoost booster for TreeSHAP via `.classifier`), and its version."""
    version = champion_version(tracking)
    if version is None:
        raise LookupError(
            f"registered model {tracking.model_name!r} has no `{CHAMPION}` alias: "
            "no model has passed the promotion gate yet"
        )
    return _load(tracking, f"models:/{tracking.model_name}@{CHAMPION}", version), version


def log_document(tracking: Tracking, run_id: str, name: str, document: dict) -> None:
    tracking.client().log_dict(run_id, document, name)


def model_document(tracking: Tracking, version: str, name: str) -> dict | None:
    """A JSON document logged in a registered version's run, or None when it has none."""
    client = tracking.client()
    run_id = client.get_model_version(tracking.model_name, version).run_id
    if run_id is None:
        return None
    try:
        mlflow.set_tracking_uri(tracking.tracking_uri)
        return mlflow.artifacts.load_dict(f"runs:/{run_id}/{name}")
    except (MlflowException, OSError):
        return None


def promote(tracking: Tracking, version: str) -> None:
    tracking.client().set_registered_model_alias(tracking.model_name, CHAMPION, version)


# MLflow 3.17's UI shows GenAI or machine-learning pages by a switch each browser keeps (GenAI until
# the user flips it to "Model training"), not by the experiment's kind tag; a link's `workflowType`
# parameter sets it
MACHINE_LEARNING_VIEW = "workflowType=machine_learning"
LOCAL_UI = "http://127.0.0.1:5000"  # where `make mlflow` serves the UI


def ui_path(tracking: Tracking, run_id: str | None = None) -> str:
    """The UI's address of the experiment's runs (or of one run), on its machine-learning pages."""
    run = f"/runs/{run_id}" if run_id else ""
    return f"#/experiments/{tracking.experiment_id()}{run}?{MACHINE_LEARNING_VIEW}"


def run_url(tracking: Tracking, run_id: str) -> str:
    """Where to look at a run: the UI address for a server; for a local store, the run id and the
    address `make mlflow` shows it at."""
    parsed = urlparse(tracking.tracking_uri)
    if parsed.scheme in ("http", "https"):
        server = tracking.tracking_uri.rstrip("/")
        return f"{server}/{ui_path(tracking, run_id)}"
    return (
        f"run {run_id} in {tracking.tracking_uri} "
        f"(`make mlflow`, then {LOCAL_UI}/{ui_path(tracking, run_id)})"
    )


def run_plots(tracking: Tracking, run_id: str) -> dict[str, bytes]:
    """The PNG plots a training run logged (`plots/`: ROC, calibration, lift, SHAP...), by file
    name; empty when it logged none or the store cannot be read."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path="plots",
                dst_path=tmp,
                tracking_uri=tracking.tracking_uri,
            )
        except (MlflowException, OSError):
            return {}
        return {p.name: p.read_bytes() for p in sorted(Path(folder).glob("*.png"))}


def version_run_id(tracking: Tracking, version: str) -> str | None:
    """The run that trained a registered version."""
    return tracking.client().get_model_version(tracking.model_name, version).run_id
