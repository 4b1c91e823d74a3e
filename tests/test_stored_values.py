"""What the asset store keeps as JSON comes back as the same typed value: the feature plan and the
model result pass between runs (daily scoring reads what weekly retraining stored)."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from features.catalogue import DEFAULT_CATALOGUE, load_catalogue
from features.feature_plan import FeaturePlan, FeatureSet, NotEnoughHistory
from models.training.churn_model import ChurnModel
from pipelines.resources import FrameStore

CATALOGUE = load_catalogue()


def _plan(labelled: tuple[datetime, ...]) -> FeaturePlan:
    return FeaturePlan(
        as_of=datetime(2026, 11, 1, 23, 5, 7, 123456, tzinfo=UTC),
        horizon_days=90,
        scoring_cutoff=datetime(2026, 11, 2, tzinfo=UTC),
        features=FeatureSet(
            touched=("checkout", "pricing"),
            support_touchpoints=("customer_service",),
            survey_pairs=(("customer_service", "ces"), ("feedback_survey", "nps")),
            subscription_plans=("basic", "pro"),
        ),
        catalogue=CATALOGUE.fingerprint,
        labelled=labelled,
        training_problem=None if labelled else "the inputs span 40 days",
    )


MODEL = ChurnModel(
    run_id="abc",
    version="3",
    features=["checkout_payment_errors_30d"],
    metrics={"backtest_roc_auc": 0.78},
    backtest=[{"cutoff": "2026-08-01", "roc_auc": 0.78, "label_overlap_days": 0}],
    baselines={"bgnbd": {"roc_auc": 0.6}},
    promoted=False,
    gate_reasons=["ROC AUC 0.500 is below the floor 0.600"],
    champion_version=None,
    champion_metrics=None,
    champion_failures=["no champion"],
    fingerprint={"rows": 10, "latest_cutoff": "2026-08-01"},
    seed=42,
    form="linear+xgboost",
    trees=7,
    calibration="platt",
    dagster_run_id="run-1",
    previous_champion=None,
    training_key="0" * 64,
)


@pytest.mark.parametrize(
    "labelled",
    [tuple(datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 8)), ()],
)
def test_the_feature_plan_survives_json(labelled):
    plan = _plan(labelled)
    assert FeaturePlan.from_json(plan.to_json()) == plan
    assert [d.name for d in plan.registry(CATALOGUE)] == [
        d.name for d in FeaturePlan.from_json(plan.to_json()).registry(CATALOGUE)
    ]


def test_a_plan_without_training_cutoffs_stops_training_only_and_says_why():
    plan = _plan(())
    assert plan.registry(CATALOGUE)  # scoring can still build every feature
    with pytest.raises(NotEnoughHistory, match="the inputs span 40 days"):
        plan.labelled_cutoffs()


def test_a_plan_refuses_another_catalogue(tmp_path):
    edited = tmp_path / "touchpoints.toml"
    edited.write_text(
        DEFAULT_CATALOGUE.read_text().replace('label = "referrals"', 'label = "word of mouth"')
    )
    other = load_catalogue(edited)
    assert other.fingerprint != CATALOGUE.fingerprint
    with pytest.raises(ValueError, match="catalogue .* changed since the feature plan was made"):
        _plan(()).registry(other)


def test_the_model_result_survives_json_and_an_older_one_says_to_retrain():
    assert ChurnModel.from_json(MODEL.to_json()) == MODEL
    older = {k: v for k, v in MODEL.to_json().items() if k not in ("backtest", "form")}
    with pytest.raises(ValueError, match=r"lacks \['backtest', 'form'\].*train again"):
        ChurnModel.from_json(older)


def test_the_store_hands_back_the_type_the_input_asks_for(tmp_path):
    store = FrameStore(base_dir=str(tmp_path))

    @dg.asset
    def feature_plan() -> FeaturePlan:
        return _plan(())

    @dg.asset
    def churn_model() -> ChurnModel:
        return MODEL

    @dg.asset
    def reader(feature_plan: FeaturePlan, churn_model: ChurnModel) -> None:
        assert feature_plan == _plan(()) and churn_model == MODEL

    result = dg.materialize([feature_plan, churn_model, reader], resources={"io_manager": store})
    assert result.success
    assert (tmp_path / "feature_plan.json").is_file() and (tmp_path / "churn_model.json").is_file()
