"""The what-if: a flagged touchpoint's friction removed, the customers re-scored by the model."""

from __future__ import annotations

import polars as pl
from polars.testing import assert_frame_equal

from features.families import is_theme_feature
from models.explain.what_if import no_friction_values, what_if_table
from pipelines.assets.explain import unheard_themes
from pipelines.notebook import champion, settings


def test_the_no_friction_end_follows_the_side_where_a_feature_lowers_risk():
    features = pl.DataFrame(
        {
            "errors": [0.0, 0.0, 1.0, 3.0, 8.0, None],
            "score": [1.0, 2.0, 3.0, 4.0, 5.0, 5.0],
            "constant": [2.0] * 6,
        }
    )
    # more errors raise risk, a higher score lowers it
    shap = pl.DataFrame(
        {
            "errors": [-0.1, -0.1, 0.1, 0.3, 0.8, 0.0],
            "score": [0.4, 0.2, 0.0, -0.2, -0.4, -0.4],
            "constant": [0.0] * 6,
        }
    )
    targets = no_friction_values(features, shap, ["errors", "score", "constant"])
    assert targets == {"errors": (0.0, True), "score": (5.0, False)}


def test_removing_a_flagged_touchpoints_friction_lowers_churn_and_the_report_says_so(
    pipeline_run,
):
    estimate = pipeline_run.output("friction_what_if")
    flagged = pipeline_run.output("touchpoint_drivers").filter(pl.col("flagged"))
    assert set(estimate["touchpoint"]) == set(flagged["touchpoint"])
    assert (estimate["churn_rate_without_friction"] < estimate["churn_rate_now"]).all()
    assert (estimate["value_at_risk_without_friction"] < estimate["value_at_risk_now"]).all()
    html = (pipeline_run.data_root / "outputs" / "report.html").read_text()
    assert "What removing this friction is worth" in html
    assert "not a causal effect" in html


def test_the_what_if_read_bucket_by_bucket_equals_one_pass_over_every_customer(pipeline_run):
    """The asset re-scores one bucket at a time; the same customers in one part give the same
    table (the no-friction values come from every bucket at once either way)."""
    model, _, _ = champion(pipeline_run.defs)
    drivers = pipeline_run.output("touchpoint_drivers")
    registry = pipeline_run.output("feature_plan").registry(settings(pipeline_run.defs).catalogue())
    features, shap = (pipeline_run.output(a) for a in ("scoring_features", "shap_attributions"))
    whole = what_if_table(
        model,
        [features.lazy()],
        [shap.lazy()],
        registry,
        drivers["touchpoint"].to_list(),
        pipeline_run.output("scored_customers").select("customer_id", "monthly_value"),
    )
    assert whole.height > 0
    stored = pipeline_run.output("friction_what_if")
    assert_frame_equal(
        whole.filter(pl.col("touchpoint").is_in(stored["touchpoint"].implode())),
        stored,
        rel_tol=1e-9,
    )


def test_a_theme_the_champion_knows_and_the_scoring_table_lacks_counts_as_no_comments(
    pipeline_run,
):
    """This month's comments may no longer form a theme the champion learned; the what-if, like
    the SHAP step, scores such a theme as nobody having written in it, instead of failing."""
    model, _, _ = champion(pipeline_run.defs)
    themes = [n for n in model.feature_names if is_theme_feature(n)]
    features, shap = (pipeline_run.output(a) for a in ("scoring_features", "shap_attributions"))
    assert themes and unheard_themes(model.feature_names, features.drop(themes[0]).columns) == [
        themes[0]
    ]
    registry = pipeline_run.output("feature_plan").registry(settings(pipeline_run.defs).catalogue())
    scan = features.drop(themes[0]).lazy().with_columns(pl.lit(0.0).alias(themes[0]))
    estimate = what_if_table(
        model,
        [scan],
        [shap.lazy()],
        registry,
        pipeline_run.output("touchpoint_drivers")["touchpoint"].to_list(),
        pipeline_run.output("scored_customers").select("customer_id", "monthly_value"),
    )
    assert estimate.height > 0
