"""The loading API notebooks use reads what the pipeline stored."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from models.explain.scored_customers import select_customers
from pipelines.notebook import champion, data_root, definitions, load, logged_plots, published


def test_assets_and_the_champion_load_in_one_line_each(pipeline_run):
    scored = load("scored_customers", pipeline_run.defs)
    assert isinstance(scored, pl.DataFrame)
    assert scored.equals(pipeline_run.output("scored_customers"))
    assert (
        load("feature_plan", pipeline_run.defs).as_of == pipeline_run.output("feature_plan").as_of
    )
    model, version, run = champion(pipeline_run.defs)
    assert version == pipeline_run.output("churn_model").champion_version
    assert list(model.feature_names) == pipeline_run.output("churn_model").features
    assert "backtest_roc_auc" in run.data.metrics


def test_the_published_list_and_the_logged_plots_load(pipeline_run):
    listed = published("scored_customers", pipeline_run.defs)
    assert listed.height == pipeline_run.output("scored_customers").height
    _, _, run = champion(pipeline_run.defs)
    plots = logged_plots(run, pipeline_run.defs)
    assert {"calibration.png", "lift.png", "shap_summary.png"} <= set(plots)
    assert all(png.startswith(b"\x89PNG") for png in plots.values())


def test_the_default_data_root_and_store_are_the_repositorys_wherever_the_kernel_runs(
    monkeypatch, tmp_path
):
    monkeypatch.delenv("TOUCHPOINT_CHURN_DATA", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # a kernel starts in notebooks/, not where `make` runs
    repo = Path(__file__).parents[1]
    assert data_root(definitions()) == repo / "data"
    tracking = (definitions().resources or {})["mlflow_tracking"]
    assert tracking.tracking_uri == f"sqlite:///{repo / '.mlflow' / 'mlflow.db'}"
    assert data_root(definitions(tmp_path / "elsewhere")) == tmp_path / "elsewhere"


def test_the_retention_lead_filters_by_tier_touchpoint_and_owner():
    scored = pl.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "risk_tier": ["high", "medium", "medium", "low"],
            "touchpoint_1": ["checkout", "pricing", "checkout", None],
            "touchpoint_2": [None, "checkout", None, None],
            "action_owner": ["payments", "sales", "payments", None],
        }
    )
    assert select_customers(scored)["customer_id"].to_list() == ["a", "b", "c"]
    assert select_customers(scored, ["medium"], touchpoint="checkout")["customer_id"].to_list() == [
        "b",
        "c",
    ]
    assert select_customers(scored, owner="sales")["customer_id"].to_list() == ["b"]
    assert select_customers(scored, ["low"], touchpoint="checkout").is_empty()
