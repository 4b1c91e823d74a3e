"""The loading API notebooks use reads what the pipeline stored."""

from __future__ import annotations

import polars as pl

from pipelines.notebook import champion, load


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
