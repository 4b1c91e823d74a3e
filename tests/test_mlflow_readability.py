"""What a user sees in MLflow: the experiment opens as a machine-learning one, runs and versions
say what they are, and logging a model keeps MLflow's routine noise out of the run log."""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from mlflow import MlflowClient

from models.calibration import CalibratedModel, Calibration
from models.tracking import (
    EXPERIMENT_KIND_TAG,
    MACHINE_LEARNING,
    Tracking,
    load_version,
    log_model_run,
    quiet_mlflow_logs,
    run_url,
)
from models.training.churn_model import version_description, version_tags
from models.training.promotion import GateDecision

SUMMARY = {
    "roc_auc": 0.76912345,
    "roc_auc_min": 0.7561,
    "roc_auc_max": 0.7843,
    "ece": 0.01326789,
    "label_overlap_days": 0.0,
}
FINGERPRINT = {"rows": 27_882, "cutoffs": "2026-01-01,2026-02-01,2026-03-01"}


def _tiny_model() -> tuple[CalibratedModel, pd.DataFrame]:
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 3)), columns=["a", "b", "c"])
    classifier = xgb.XGBClassifier(n_estimators=2).fit(X, np.arange(60) % 2)
    return CalibratedModel(classifier, Calibration("none"), None), X


@pytest.mark.slow
def test_a_logged_model_is_named_described_tagged_and_quiet(tmp_path, capfd):
    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}")
    model, X = _tiny_model()
    capfd.readouterr()
    run_id, version = log_model_run(
        tracking,
        model,
        X,
        params={"seed": 1},
        metrics={"backtest_roc_auc": 0.5},
        tags={"kind": "training"},
        run_name="train 2026-11-01",
        description="Trained as of 2026-11-01.",
        version_tags={"gate": "passed"},
    )
    noise = capfd.readouterr().err
    for message in (
        "Creating initial MLflow database tables",
        "CloudPickle",
        "Validating input example",
        "Downloading artifacts",
        "Successfully registered model",
        "Created version",
    ):
        assert message not in noise
    client = MlflowClient(tracking.tracking_uri)
    experiment = client.get_experiment_by_name(tracking.experiment)
    assert experiment is not None
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MACHINE_LEARNING == "custom_model_development"
    run = client.get_run(run_id)
    assert run.info.run_name == f"train 2026-11-01 v{version}" == "train 2026-11-01 v1"
    assert run.data.tags["mlflow.note.content"] == "Trained as of 2026-11-01."
    registered = client.get_model_version(tracking.model_name, version)
    assert registered.description == "Trained as of 2026-11-01."
    assert registered.tags == {"gate": "passed"} and registered.run_id == run_id
    assert registered.aliases == ["challenger"]
    # logged as code, not pickled, and it still loads as the model it was
    assert "python_model.pkl" not in {a.path for a in client.list_artifacts(run_id)}
    loaded = load_version(tracking, version)
    assert np.allclose(loaded.predict_proba(X), model.predict_proba(X))


def test_an_experiment_an_earlier_release_created_gets_the_kind_tag(tmp_path):
    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = tracking.client()
    created = client.create_experiment(tracking.experiment)  # as earlier releases did: no tags
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(created).tags
    assert tracking.experiment_id() == created
    assert client.get_experiment(created).tags[EXPERIMENT_KIND_TAG] == MACHINE_LEARNING


def test_links_to_a_run_open_the_uis_machine_learning_pages(tmp_path):
    """MLflow 3.17's UI ignores the kind tag for its GenAI/"Model training" switch; the link sets
    it."""
    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert run_url(tracking, "abc").endswith(
        f"http://127.0.0.1:5000/#/experiments/{tracking.experiment_id()}/runs/abc"
        "?workflowType=machine_learning)"
    )


def test_a_version_says_what_it_was_trained_on_and_what_the_gate_decided():
    rejected = GateDecision(False, ["ROC AUC 0.500 is below the floor 0.600"])
    assert version_tags(SUMMARY, rejected) == {
        "backtest_roc_auc": "0.7691",
        "backtest_ece": "0.0133",
        "gate": "rejected",
        "gate_reasons": "ROC AUC 0.500 is below the floor 0.600",
    }
    assert version_tags(SUMMARY, GateDecision(True))["gate"] == "passed"
    assert "gate_reasons" not in version_tags(SUMMARY, GateDecision(True))

    def describe(decision: GateDecision, previous: str | None) -> str:
        return version_description(
            as_of=datetime(2026, 11, 1, 23, 26),
            fingerprint=FINGERPRINT,
            features=180,
            form="xgboost",
            trees=69,
            calibration="platt",
            summary=SUMMARY,
            judged=["2026-02-01", "2026-03-01"],
            baseline=("logistic_regression", 0.7301),
            decision=decision,
            previous=previous,
        )

    text = describe(rejected, "3")
    for part in (
        "as of 2026-11-01",
        "3 labelled cutoffs (2026-01-01 to 2026-03-01)",
        "27,882 rows",
        "180 features",
        "xgboost, 69 trees, platt calibration",
        "Backtest over 2 cutoffs (2026-02-01, 2026-03-01)",
        "ROC AUC 0.7691",
        "ECE 0.0133",
        "best baseline logistic_regression 0.7301",
        "**Gate: rejected:** ROC AUC 0.500 is below the floor 0.600",
        "`champion` stays v3",
    ):
        assert part in text
    assert "**Gate: passed.**" in describe(GateDecision(True), None)


def test_mlflow_routine_messages_are_dropped_unless_verbose():
    def shown(name: str, message: str) -> bool:
        record = logging.LogRecord(name, logging.INFO, __file__, 1, message, None, None)
        return bool(logging.getLogger(name).filter(record))

    tables = "Creating initial MLflow database tables..."
    assert not shown("mlflow.store.db.utils", tables)
    assert not shown("mlflow.pyfunc", "Validating input example against model signature")
    assert shown("mlflow.store.db.utils", "Something else went wrong")
    assert shown("mlflow.pyfunc", "Failed to validate serving input example")
    try:
        quiet_mlflow_logs(False)  # `--verbose`
        assert shown("mlflow.store.db.utils", tables)
    finally:
        quiet_mlflow_logs()
