"""SHAP attributions add up, roll up to touchpoints, and flag only touchpoints that raise risk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import xgboost as xgb
from polars.testing import assert_frame_equal

from features.catalogue import load_catalogue
from features.feature import FeatureDef
from models.explain.attribution import MIN_REASON_LOG_ODDS, attribute, top_touchpoints
from models.explain.playbook import load_playbook
from models.explain.scored_customers import for_csv, reasons, scored_list
from models.explain.shap_attributions import explain, score_and_explain, shap_values
from models.explain.touchpoint_drivers import (
    ACTIVE_DAYS,
    FlagRule,
    driver_table,
    feature_summary,
    feature_sums,
    still_engaged,
)


def _feature(name: str, touchpoint: str, reason: str = "{value:.0f} things") -> FeatureDef:
    return FeatureDef(
        name, touchpoint, "purchase", "friction", "windows", name, reason, lambda c: pl.lit(0)
    )


def _registry(*features: FeatureDef) -> dict[str, FeatureDef]:
    return {f.name: f for f in features}


def test_shap_values_add_up_to_the_model_margin():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=list("abcd"))
    y = (X["a"] + 0.5 * X["b"] + rng.normal(size=600) > 0.5).astype(int)
    model = xgb.XGBClassifier(
        n_estimators=200, max_depth=3, early_stopping_rounds=10, eval_metric="logloss"
    )
    model.fit(X[:400], y[:400], eval_set=[(X[400:], y[400:])], verbose=False)
    assert model.best_iteration < 199  # early stopping kept fewer trees than were grown
    values, base = shap_values(model, X)
    margin = np.log(model.predict_proba(X)[:, 1] / model.predict_proba(X)[:, 0])
    np.testing.assert_allclose(values.sum(axis=1) + base, margin, atol=1e-4)


def test_a_model_with_a_linear_base_is_explained_whole_and_exactly():
    """The linear base's part of each feature joins TreeSHAP's: a row's contributions and base
    value still add up to its margin, and a feature only the linear part uses gets its share."""
    from models.calibration import CalibratedModel, Calibration
    from models.linear_base import fit_linear_base

    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(800, 3)), columns=list("abc"))
    y = (X["a"] + 0.8 * X["b"] + rng.normal(size=800) > 0).astype(int).to_numpy()
    linear = fit_linear_base(X, y, seed=0)
    booster = xgb.XGBClassifier(n_estimators=20, max_depth=2, colsample_bytree=1.0)
    booster.fit(X[["a", "b", "c"]], y, base_margin=linear.margin(X))
    model = CalibratedModel(booster, Calibration("none"), linear)
    values, base = explain(model, X)
    np.testing.assert_allclose(values.sum(axis=1) + base, model.margin(X), atol=1e-4)
    trees_only, _ = shap_values(booster, X, linear.margin(X))
    np.testing.assert_allclose(values - trees_only, linear.contributions(X), atol=1e-5)
    assert np.abs(linear.contributions(X)[:, 0]).mean() > 0.1  # the linear part explains `a` too


def test_scoring_and_explaining_in_batches_equals_one_call():
    """Batches keep memory flat; they must not change a probability or a SHAP value."""
    from models.calibration import CalibratedModel, fit_calibration

    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(500, 4)), columns=list("abcd"))
    y = (X["a"] - X["c"] + rng.normal(size=500) > 0).astype(int).to_numpy()
    booster = xgb.XGBClassifier(n_estimators=40, max_depth=3).fit(X, y)
    model = CalibratedModel(
        booster, fit_calibration(booster.predict(X, output_margin=True), y, "platt")
    )
    probability, values, base = score_and_explain(
        model, pl.from_pandas(X), list("abcd"), batch_rows=77
    )
    whole_values, whole_base = shap_values(booster, X)
    np.testing.assert_array_equal(probability, model.predict_proba(X)[:, 1])
    np.testing.assert_array_equal(values, whole_values)
    np.testing.assert_array_equal(base, whole_base)


def test_touchpoints_sum_their_features_and_only_risk_raisers_are_flagged():
    registry = _registry(
        _feature("checkout_errors", "checkout"),
        _feature("checkout_visits", "checkout"),
        _feature("newsletter_opens", "newsletter"),
        _feature("profile_tenure_days", "profile"),
    )
    features = list(registry)
    # customers 0-2 are at risk because of checkout; newsletter protects everyone; profile is large
    # but not a touchpoint
    shap = np.array(
        [
            [1.0, 0.2, -0.3, 0.9],
            [0.8, 0.1, -0.2, 0.8],
            [1.2, 0.0, -0.1, 0.7],
            [-0.3, -0.1, -0.4, -0.5],
        ]
    )
    attribution = attribute(["a", "b", "c", "d"], features, shap, registry)
    np.testing.assert_allclose(attribution.touchpoint_shap[:, 0], shap[:, 0] + shap[:, 1])
    drivers = driver_table(
        attribution.touchpoints,
        attribution.touchpoint_shap,
        top_touchpoints(attribution, load_catalogue().names),
        load_catalogue(),
        FlagRule(share_threshold=0.1),
    )
    row = {r["touchpoint"]: r for r in drivers.iter_rows(named=True)}
    assert row["checkout"]["flagged"] and row["checkout"]["direction"] == "raises risk"
    assert not row["newsletter"]["flagged"] and row["newsletter"]["direction"] == "lowers risk"
    assert not row["profile"]["flagged"]
    assert row["checkout"]["churn_contribution"] == np.mean([1.2, 0.9, 1.2])


def test_in_a_purchase_only_business_lapsed_buyers_do_not_name_the_drivers():
    """Lapsed buyers' risk is their silence at the touchpoints they no longer visit; the drivers
    are what raises risk for the customers still there."""
    registry = _registry(
        _feature("newsletter_opens", "newsletter"),
        _feature("checkout_errors", "checkout"),
    )
    # a and b have lapsed (silent at the newsletter); c and d are active, with checkout errors
    shap = np.array([[2.0, 0.0], [2.0, 0.0], [0.1, 1.0], [0.0, 1.2]])
    attribution = attribute(["a", "b", "c", "d"], list(registry), shap, registry)
    features = pl.DataFrame(
        {"customer_id": ["d", "c", "b", "a"], ACTIVE_DAYS: [3.0, 5.0, 0.0, 0.0]}
    )
    engaged = still_engaged(attribution.customer_ids, features, cancellations=False)
    assert engaged is not None and engaged.tolist() == [False, False, True, True]
    assert still_engaged(attribution.customer_ids, features, cancellations=True) is None

    def flagged(engaged: np.ndarray | None) -> list[str]:
        top = top_touchpoints(attribution, load_catalogue().names)
        rule = FlagRule(share_threshold=0.2, bootstrap_samples=50)
        table = driver_table(
            attribution.touchpoints,
            attribution.touchpoint_shap,
            top,
            load_catalogue(),
            rule,
            engaged,
        )
        return table.filter(pl.col("flagged"))["touchpoint"].to_list()

    assert flagged(None)[0] == "newsletter"
    assert flagged(engaged) == ["checkout"]


def test_reasons_name_touchpoints_and_use_the_customers_own_values():
    registry = _registry(
        _feature(
            "checkout_payment_errors_30d",
            "checkout",
            "{value:.0f} payment errors at checkout in the last 30 days",
        ),
        _feature(
            "pricing_exit_intents_30d",
            "pricing",
            "{value:.0f} {value:exit|exits} from the pricing page",
        ),
    )
    shap = np.array([[0.9, 0.4], [-0.2, 0.6], [-0.1, -0.3]])
    attribution = attribute(["a", "b", "c"], list(registry), shap, registry)
    values = np.array([[3.0, 1.0], [0.0, 4.0], [0.0, 0.0]])
    out = reasons(
        attribution,
        top_touchpoints(attribution, load_catalogue().names),
        values,
        registry,
        load_playbook(),
    )
    rows = {r["customer_id"]: r for r in out.iter_rows(named=True)}
    assert (rows["a"]["touchpoint_1"], rows["a"]["reason_1"]) == (
        "checkout",
        "3 payment errors at checkout in the last 30 days",
    )
    assert (rows["a"]["touchpoint_2"], rows["a"]["reason_2"]) == (
        "pricing",
        "1 exit from the pricing page",
    )
    assert rows["b"]["touchpoint_1"] == "pricing" and rows["b"]["touchpoint_2"] is None
    assert rows["c"]["touchpoint_1"] is None  # nothing raises this customer's risk
    assert rows["a"]["suggested_action"].startswith("Contact the customer about the failed payment")


def test_a_touchpoint_raising_risk_by_a_sliver_is_no_reason():
    """A reason needs a material contribution: the tiny positive SHAP most touchpoints have for most
    customers ("0 touches at chatbot") is noise, not something to call a customer about."""
    registry = _registry(
        _feature("checkout_errors", "checkout"),
        _feature("chatbot_visits", "chatbot"),
        _feature("pricing_exits", "pricing"),
    )
    sliver = MIN_REASON_LOG_ODDS / 2
    shap = np.array(
        [
            # checkout and pricing (just at the minimum) are reasons, chatbot is not
            [
                1.5,
                sliver,
                MIN_REASON_LOG_ODDS,
            ],
            # a low-risk customer: positive everywhere, material nowhere
            [
                sliver,
                sliver / 2,
                sliver,
            ],
        ]
    )
    attribution = attribute(["a", "b"], list(registry), shap, registry)
    top = top_touchpoints(attribution, load_catalogue().names)
    assert top.tolist() == [[0, 2, -1], [-1, -1, -1]]
    drivers = {
        r["touchpoint"]: r
        for r in driver_table(
            attribution.touchpoints, attribution.touchpoint_shap, top, load_catalogue(), FlagRule()
        ).iter_rows(named=True)
    }
    assert (
        drivers["chatbot"]["customers_affected"] == 0
        and drivers["checkout"]["customers_affected"] == 1
    )


def _scored(probability: list[float]) -> pl.DataFrame:
    """The scored list of one customer per probability, each with 2 checkout errors as the
    reason."""
    ids = [str(i) for i in range(len(probability))]
    registry = _registry(_feature("checkout_errors", "checkout"))
    attribution = attribute(ids, list(registry), np.full((len(ids), 1), 1.0), registry)
    why = reasons(
        attribution,
        top_touchpoints(attribution, load_catalogue().names),
        np.full((len(ids), 1), 2.0),
        registry,
        load_playbook(),
    )
    customers = pl.DataFrame(
        {"customer_id": ids, "plan": ["basic"] * len(ids), "monthly_value": [30.0] * len(ids)}
    )
    return scored_list(ids, np.array(probability), customers, why)


def test_low_tier_customers_keep_their_reasons_but_get_no_suggested_action():
    rows = {r["risk_tier"]: r for r in _scored([0.7, 0.3, 0.03]).iter_rows(named=True)}
    # the reason stays: it says why the risk is what it is
    assert rows["low"]["reason_1"] == "2 things"
    assert rows["low"]["suggested_action"] is None and rows["low"]["action_owner"] is None
    assert rows["medium"]["suggested_action"] and rows["high"]["action_owner"] == "payments"


def test_the_csv_rounds_probabilities_and_money():
    rounded = for_csv(_scored([0.7847582420701676])).row(0, named=True)
    assert (rounded["churn_probability"], rounded["value_at_risk"]) == (0.785, 23.54)


def test_a_touchpoint_whose_interval_spans_zero_is_not_flagged():
    """One customer with a huge push and many with small pulls: a large mean share, but unstable."""
    registry = _registry(
        _feature("checkout_errors", "checkout"),
        _feature("search_fails", "search"),
        _feature("pricing_exits", "pricing"),
    )
    rng = np.random.default_rng(1)
    n = 60
    shap = np.column_stack(
        [
            rng.normal(0.8, 0.1, n),  # checkout: steadily raises risk
            np.r_[np.full(1, 30.0), np.full(n - 1, -0.4)]
            + rng.normal(0, 0.05, n),  # search: one outlier
            np.full(n, 0.0) + rng.normal(0, 0.01, n),
        ]
    )
    attribution = attribute([str(i) for i in range(n)], list(registry), shap, registry)
    drivers = {
        r["touchpoint"]: r
        for r in driver_table(
            attribution.touchpoints,
            attribution.touchpoint_shap,
            top_touchpoints(attribution, load_catalogue().names),
            load_catalogue(),
            FlagRule(share_threshold=0.1),
        ).iter_rows(named=True)
    }
    assert (
        drivers["search"]["share_of_total"] >= 0.1 and drivers["search"]["churn_contribution"] > 0
    )
    assert drivers["search"]["ci_low"] <= 0 and not drivers["search"]["flagged"]
    assert drivers["checkout"]["flagged"] and drivers["checkout"]["ci_low"] > 0.7


def test_two_seeds_on_the_same_data_flag_the_same_touchpoints(pipeline_run):
    """Drivers are a property of the data, not of the training seed."""
    from models.calibration import model_input
    from models.training.train import TrainConfig, fit_booster, time_split

    snapshots, scoring = (
        pipeline_run.output("training_snapshots"),
        pipeline_run.output("scoring_features"),
    )
    registry = pipeline_run.output("feature_plan").registry(load_catalogue())
    by_name = {d.name: d for d in registry}
    features = [d.name for d in registry]
    cutoffs = sorted(snapshots["cutoff"].unique().to_list())
    split = time_split(snapshots, cutoffs, None)
    flagged = []
    for seed in (1, 2):
        model = fit_booster(split, features, TrainConfig(), seed)
        values, _ = explain(model, model_input(scoring, features))
        attribution = attribute(scoring["customer_id"].to_list(), features, values, by_name)
        drivers = driver_table(
            attribution.touchpoints,
            attribution.touchpoint_shap,
            top_touchpoints(attribution, load_catalogue().names),
            load_catalogue(),
            FlagRule(seed=seed),
        )
        flagged.append(set(drivers.filter(pl.col("flagged"))["touchpoint"]))
    print(f"\nflagged with seed 1: {sorted(flagged[0])}; with seed 2: {sorted(flagged[1])}")
    assert flagged[0] == flagged[1] and flagged[0]


def test_xgboost_treeshap_equals_shap_treeexplainer():
    """We use XGBoost's own TreeSHAP; shap's TreeExplainer gives the same values (it calls the same
    routine for XGBoost), so the choice is about speed and one less layer, not accuracy."""
    import shap

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(400, 6)), columns=[f"f{i}" for i in range(6)])
    y = (X["f0"] - X["f2"] + rng.normal(size=400) > 0).astype(int)
    model = xgb.XGBClassifier(n_estimators=60, max_depth=4).fit(X, y)
    ours, base = shap_values(model, X)
    explainer = shap.TreeExplainer(model)
    np.testing.assert_allclose(ours, explainer.shap_values(X), atol=1e-5)
    np.testing.assert_allclose(base, explainer.expected_value, atol=1e-5)


def test_the_feature_summary_of_buckets_equals_the_whole_tables():
    """The report sums each bucket's SHAP values rather than loading every customer's; a bucket's
    touchpoint sums are its rows of the whole table's, exactly."""
    registry = _registry(
        _feature("checkout_errors", "checkout"),
        _feature("checkout_exits", "checkout"),
        _feature("search_fails", "search"),
    )
    shap = np.random.default_rng(2).normal(0, 1, (300, 3)).astype(np.float32)
    ids = [str(i) for i in range(300)]
    whole = attribute(ids, list(registry), shap, registry)
    parts = [
        attribute(ids[a:b], list(registry), shap[a:b], registry) for a, b in ((0, 120), (120, 300))
    ]
    np.testing.assert_array_equal(
        np.vstack([p.touchpoint_shap for p in parts]), whole.touchpoint_shap
    )
    summary = feature_summary(feature_sums(whole))
    assert summary["feature"].to_list()[0] in registry
    assert_frame_equal(
        feature_summary(pl.concat([feature_sums(p) for p in parts])), summary, rel_tol=1e-12
    )
