"""Metrics, calibration, the time split and the promotion gate on small synthetic data."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from models.calibration import Calibration, choose_calibration, fit_calibration
from models.training.evaluate import (
    classification_metrics,
    expected_calibration_error,
    lift_and_capture,
)
from models.training.promotion import GateConfig, decide
from models.training.train import time_split


def _world(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True probabilities (about 10% churn) and outcomes drawn from them."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-(rng.normal(-2.6, 1.0, n))))
    return p, (rng.random(n) < p).astype(int)


def test_ece_is_small_for_true_probabilities_and_large_for_doubled_ones():
    p, y = _world()
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, np.minimum(2 * p, 1)) > 0.05


def test_lift_and_capture_on_a_perfect_ranking():
    y = np.array([1] * 10 + [0] * 90)
    out = lift_and_capture(y, -np.arange(100.0))  # the ten churners ranked first
    assert out["capture_top10"] == 1.0 and out["lift_top10"] == pytest.approx(10.0)
    assert out["capture_top5"] == 0.5 and out["capture_top20"] == 1.0


def test_metrics_refuse_a_single_class_holdout():
    with pytest.raises(ValueError, match="single class"):
        classification_metrics(np.zeros(10), np.full(10, 0.1))


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_repairs_overconfident_margins_and_survives_json(method):
    p, y = _world()
    margin = 3 * np.log(p / (1 - p))  # right order, three times too confident
    assert expected_calibration_error(y, 1 / (1 + np.exp(-margin))) > 0.03
    calibration = fit_calibration(margin[:10_000], y[:10_000], method)
    assert expected_calibration_error(y[10_000:], calibration.apply(margin[10_000:])) < 0.02
    assert Calibration.from_json(calibration.to_json()) == calibration


def test_calibration_choice_is_cross_validated_and_refuses_too_few_churners():
    p, y = _world(5_000)
    calibration, scores = choose_calibration(np.log(p / (1 - p)), y, seed=1)
    best = min(scores, key=scores.__getitem__)
    assert set(scores) == {"platt", "isotonic"} and calibration.method == best
    with pytest.raises(ValueError, match="too few to calibrate"):
        choose_calibration(np.zeros(100), np.r_[np.ones(2), np.zeros(98)].astype(int), seed=1)


def test_time_split_needs_two_training_cutoffs_and_never_mixes_the_holdout():
    c = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3)]
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "cutoff": c,
            "split": ["train", "train", "holdout"],
            "churned": [0, 1, 0],
        }
    )
    split = time_split(frame)
    assert (
        split.fit["cutoff"].to_list() == [c[0]]
        and split.validation["cutoff"].to_list() == [c[1]]
        and split.holdout["cutoff"].to_list() == [c[2]]
    )
    with pytest.raises(ValueError, match="at least two training cutoffs"):
        time_split(frame.filter(pl.col("cutoff") != c[0]))


def test_gate_keeps_the_champion_against_a_worse_or_miscalibrated_challenger():
    gate = GateConfig(auc_tolerance=0.01, max_ece=0.05, min_roc_auc=0.6)
    champion = {"roc_auc": 0.75, "ece": 0.02}
    assert decide({"roc_auc": 0.745, "ece": 0.02}, champion, gate).promote  # within tolerance
    worse = decide({"roc_auc": 0.70, "ece": 0.02}, champion, gate)
    assert not worse.promote and "worse than the champion" in worse.reasons[0]
    assert not decide({"roc_auc": 0.80, "ece": 0.08}, champion, gate).promote
    # no champion: still needs the floor
    assert not decide({"roc_auc": 0.51, "ece": 0.01}, None, gate).promote
    assert decide({"roc_auc": 0.70, "ece": 0.01}, None, gate).promote


def test_a_champion_logged_in_another_format_is_named_and_not_compared(tmp_path):
    """An older release logged the XGBoost flavour; scoring and the gate must say so, not crash
    in MLflow."""
    import mlflow
    import xgboost as xgb
    from mlflow.exceptions import MlflowException
    from mlflow.xgboost import log_model as log_xgboost_model

    from models.tracking import IncompatibleModel, Tracking, load_version
    from models.training.churn_model import champion_on_holdout

    tracking = Tracking(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_tracking_uri(tracking.tracking_uri)
    X, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 2
    # artifacts beside the store, not in the working directory
    with mlflow.start_run(experiment_id=tracking.experiment_id()):
        log_xgboost_model(
            xgb.XGBClassifier(n_estimators=2).fit(X, y),
            name="model",
            registered_model_name=tracking.model_name,
            pip_requirements=[],
        )
    with pytest.raises(
        IncompatibleModel, match="version 1 .* cannot score or be compared: train a new challenger"
    ):
        load_version(tracking, "1")
    with pytest.raises(MlflowException):  # a version that is not there is not "another format"
        load_version(tracking, "2")
    holdout = pl.DataFrame({f"f{i}": X[:, i] for i in range(3)})
    assert champion_on_holdout(tracking, "1", holdout, y) is None
