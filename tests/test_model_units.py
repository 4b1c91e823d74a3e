"""Metrics, calibration, the time split and the promotion gate on small synthetic data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest

from models.calibration import CalibratedModel, Calibration, fit_calibration
from models.linear_base import fit_linear_base
from models.training.backtest import plan_folds
from models.training.evaluate import (
    classification_metrics,
    expected_calibration_error,
    expected_roc_auc,
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


def test_no_calibration_is_the_margins_own_probability_and_one_class_cannot_be_calibrated():
    margin = np.array([-2.0, 0.0, 1.5])
    none = fit_calibration(margin, np.array([0, 1, 0]), "none")
    assert np.allclose(none.apply(margin), 1 / (1 + np.exp(-margin)))
    with pytest.raises(ValueError, match="only 0s"):
        fit_calibration(margin, np.zeros(3, dtype=int), "platt")


def test_the_roc_auc_true_probabilities_imply_is_the_one_they_deliver():
    p, y = _world()
    assert expected_roc_auc(p) == pytest.approx(classification_metrics(y, p)["roc_auc"], abs=0.01)
    assert expected_roc_auc(np.full(1000, 0.3)) == pytest.approx(0.5)  # nobody told apart
    # overconfident probabilities promise more ranking than they deliver
    overconfident = 1 / (1 + np.exp(-3 * np.log(p / (1 - p))))
    delivered = classification_metrics(y, overconfident)["roc_auc"]
    assert expected_roc_auc(overconfident) > delivered + 0.05


def test_time_split_needs_two_training_cutoffs_and_never_mixes_the_judged_one():
    c = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3)]
    frame = pl.DataFrame({"customer_id": ["a", "b", "c"], "cutoff": c, "churned": [0, 1, 0]})
    split = time_split(frame, c[:2], c[2])
    assert (
        split.fit["cutoff"].to_list() == [c[0]]
        and split.validation["cutoff"].to_list() == [c[1]]
        and split.holdout["cutoff"].to_list() == [c[2]]
    )
    with pytest.raises(ValueError, match="at least two cutoffs"):
        time_split(frame, c[1:2], c[2])
    with pytest.raises(ValueError, match="is not after the training cutoffs"):
        time_split(frame, c[1:], c[1])


def test_backtest_folds_are_strict_where_the_history_allows_and_say_how_far_they_overlap():
    months = [datetime(2026, m, 1, tzinfo=UTC) for m in range(1, 9)]
    strict = plan_folds(months, 90)
    assert [f.judged.month for f in strict] == [6, 7, 8]
    assert all(f.label_overlap_days == 0 for f in strict)
    assert all(c + timedelta(days=90) <= f.judged for f in strict for c in f.training)
    assert [c.month for c in strict[-1].training] == [1, 2, 3, 4, 5]
    # a year of a cohort with a half-year horizon: six labelled cutoffs, no strict fold possible
    short = plan_folds(months[1:7], 180)
    assert [f.judged.month for f in short] == [5, 6, 7]
    assert [c.month for c in short[-1].training] == [2, 3, 4, 5, 6]
    assert short[-1].label_overlap_days == (months[5] + timedelta(days=180) - months[6]).days
    with pytest.raises(ValueError, match="at least three labelled cutoffs"):
        plan_folds(months[:2], 90)


def test_a_linear_base_carries_a_trend_past_the_training_range_that_trees_cannot():
    """Churn rises with age; training sees ages up to 180 days, scoring sees 360. The trees alone
    give the oldest age they saw, the linear base carries the trend on."""
    import xgboost as xgb

    rng = np.random.default_rng(4)
    age = rng.uniform(10, 180, 20_000)

    def risk(a):
        return 1 / (1 + np.exp(-(-6 + 1.2 * np.log1p(a))))

    X = pd.DataFrame({"age": age, "noise": rng.normal(size=age.size)})
    y = (rng.random(age.size) < risk(age)).astype(int)
    old = pd.DataFrame({"age": np.full(2000, 360.0), "noise": rng.normal(size=2000)})
    trees = xgb.XGBClassifier(n_estimators=50, max_depth=2).fit(X, y)
    linear = fit_linear_base(X, y, seed=0)
    hybrid = xgb.XGBClassifier(n_estimators=50, max_depth=2)
    hybrid.fit(X, y, base_margin=linear.margin(X))
    model = CalibratedModel(hybrid, Calibration("none"), linear)
    truth = risk(360.0)
    trees_miss = truth - trees.predict_proba(old)[:, 1].mean()
    hybrid_miss = abs(model.predict_proba(old)[:, 1].mean() - truth)
    assert trees_miss > 0.1 and hybrid_miss < trees_miss / 3, (trees_miss, hybrid_miss)
    contributions = linear.contributions(old)
    assert np.allclose(contributions.sum(axis=1) + linear.intercept, linear.margin(old))


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
    # a model that ranks worse than a simple rule is not worth its complexity
    lost = decide({"roc_auc": 0.70, "ece": 0.01}, None, gate, baseline=("bgnbd", 0.72))
    assert not lost.promote and "worse than the bgnbd baseline's 0.720" in lost.reasons[0]
    assert decide({"roc_auc": 0.715, "ece": 0.01}, None, gate, baseline=("bgnbd", 0.72)).promote


def test_a_champion_logged_in_another_format_is_named_and_not_compared(tmp_path):
    """An older release logged the XGBoost flavour; scoring and the gate must say so, not crash
    in MLflow."""
    import mlflow
    import xgboost as xgb
    from mlflow.exceptions import MlflowException
    from mlflow.xgboost import log_model as log_xgboost_model

    from models.tracking import IncompatibleModel, Tracking, load_version
    from models.training.churn_model import champion_backtest

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
    assert champion_backtest(tracking, "1") is None
