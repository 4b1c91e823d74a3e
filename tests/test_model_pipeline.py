"""The trained model against the simulator's oracle and the baselines, and the promotion gate end
to end."""

from __future__ import annotations

import shutil

import dagster as dg
import numpy as np
import polars as pl
import pytest
from mlflow import MlflowClient

from models.calibration import model_input
from models.tracking import Tracking, load_version
from models.training.evaluate import classification_metrics
from pipelines.definitions import build_definitions


def _holdout_with_oracle(pipeline_run):
    """Holdout rows, the registered model's probabilities on them, and the simulator's true
    probabilities at the holdout cutoff."""
    model_out = pipeline_run.output("churn_model")
    snapshots = pl.read_parquet(pipeline_run.data_root / "assets" / "training_snapshots.parquet")
    holdout = snapshots.filter(pl.col("split") == "holdout")
    truth = pl.read_parquet(pipeline_run.data_root / "truth" / "probabilities_at_cutoffs.parquet")
    rows = holdout.join(truth, on=["customer_id", "cutoff"], how="inner")
    assert rows.height == holdout.height, (
        "the simulator must record a true probability for every holdout customer"
    )
    model = load_version(Tracking(pipeline_run.tracking_uri), model_out.version)
    return (
        rows["churned"].to_numpy(),
        model.predict_proba(model_input(rows, model.feature_names))[:, 1],
        rows["true_churn_probability"].to_numpy(),
    )


def test_registered_model_reproduces_the_logged_holdout_metrics_and_is_calibrated(pipeline_run):
    y, probability, _ = _holdout_with_oracle(pipeline_run)
    logged = pipeline_run.output("churn_model").metrics
    measured = classification_metrics(y, probability)
    assert measured["roc_auc"] == pytest.approx(logged["holdout_roc_auc"]) and measured[
        "ece"
    ] == pytest.approx(logged["holdout_ece"])
    print(
        f"\nholdout ECE {measured['ece']:.4f}, Brier {measured['brier']:.4f}, "
        f"mean predicted {probability.mean():.3f} vs observed {y.mean():.3f}"
    )
    assert measured["ece"] < 0.03


def test_holdout_auc_is_within_003_of_the_oracle_on_the_same_customers(pipeline_run):
    y, probability, oracle = _holdout_with_oracle(pipeline_run)
    model_auc, oracle_auc = (
        classification_metrics(y, probability)["roc_auc"],
        classification_metrics(y, oracle)["roc_auc"],
    )
    print(f"\nholdout ROC AUC {model_auc:.3f}, oracle {oracle_auc:.3f}")
    assert model_auc >= oracle_auc - 0.03


def test_model_beats_every_baseline_and_they_are_all_logged(pipeline_run):
    out = pipeline_run.output("churn_model")
    assert set(out.baselines) == {"base_rate", "recency_rule", "logistic_regression", "bgnbd"}
    print(
        "\n"
        + ", ".join(f"{b} {m['roc_auc']:.3f}" for b, m in out.baselines.items())
        + f"; model {out.metrics['holdout_roc_auc']:.3f}"
    )
    for name, metrics in out.baselines.items():
        assert out.metrics["holdout_roc_auc"] > metrics["roc_auc"], name
    client = MlflowClient(pipeline_run.tracking_uri)
    run = client.get_run(out.run_id)
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{out.run_id}'"
    )
    assert {c.info.run_name for c in children} == {f"baseline_{b}" for b in out.baselines}
    assert {a.path for a in client.list_artifacts(out.run_id, "plots")} == {
        f"plots/{p}.png" for p in ("roc", "precision_recall", "calibration", "lift")
    }
    assert (
        run.data.params["seed"] == "42"
        and run.data.params["feature_schema_sha256"] == out.fingerprint["feature_schema_sha256"]
    )
    assert run.data.params["holdout_cutoff"] == out.fingerprint["holdout_cutoff"]


def _rerun_with_shuffled_labels(pipeline_run, root, tracking_uri) -> dg.ExecuteInProcessResult:
    """churn_model (and scoring) again on a copy of the stored assets whose training labels are
    shuffled."""
    data_root = root / "data"
    shutil.copytree(pipeline_run.data_root / "assets", data_root / "assets")
    path = data_root / "assets" / "training_snapshots.parquet"
    snapshots = pl.read_parquet(path)
    shuffled = np.random.default_rng(0).permutation(
        snapshots.filter(pl.col("split") == "train")["churned"].to_numpy()
    )
    train = snapshots.filter(pl.col("split") == "train").with_columns(
        churned=pl.Series(shuffled, dtype=pl.Int8)
    )
    pl.concat([train, snapshots.filter(pl.col("split") == "holdout")]).write_parquet(path)
    (root / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        return run_all_allowing_failure(build_definitions(data_root, tracking_uri), instance)


def run_all_allowing_failure(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey("churn_model"), dg.AssetKey("shap_attributions")],
        raise_on_error=False,
    )


def test_a_degraded_challenger_is_not_promoted_and_scoring_keeps_the_champion(
    pipeline_run, tmp_path
):
    champion = pipeline_run.output("churn_model").version
    result = _rerun_with_shuffled_labels(pipeline_run, tmp_path, pipeline_run.tracking_uri)
    out = result.output_for_node("churn_model")
    print(
        f"\nshuffled-label challenger v{out.version}: "
        f"ROC AUC {out.metrics['holdout_roc_auc']:.3f}; {out.gate_reasons}"
    )
    assert not out.promoted and out.champion_version == champion
    client = MlflowClient(pipeline_run.tracking_uri)
    assert (
        str(client.get_model_version_by_alias("touchpoint-churn", "champion").version) == champion
    )
    assert (
        str(client.get_model_version_by_alias("touchpoint-churn", "challenger").version)
        == out.version
    )
    check = result.get_asset_check_evaluations()[0]
    assert check.passed  # the old champion is still fit to score
    shap = result.asset_materializations_for_node("shap_attributions")[0]
    # scoring loaded the old champion by alias
    assert shap.metadata["champion_version"].value == champion


def test_without_a_passing_champion_the_blocking_check_stops_scoring(pipeline_run, tmp_path):
    result = _rerun_with_shuffled_labels(
        pipeline_run, tmp_path, f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    )
    out = result.output_for_node("churn_model")
    assert not out.promoted and out.champion_version is None
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and "no champion" in str(check.description)
    assert not result.asset_materializations_for_node("shap_attributions")
