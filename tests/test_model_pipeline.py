"""The trained model against the simulator's oracle and the baselines, and the promotion gate end
to end."""

from __future__ import annotations

import shutil

import dagster as dg
import numpy as np
import polars as pl
import pytest
from mlflow import MlflowClient

from models.calibration import fit_calibration, model_input
from models.training.backtest import plan_folds
from models.training.evaluate import classification_metrics
from models.training.train import TrainConfig, fit_booster, time_split
from pipelines.definitions import build_definitions
from pipelines.partitions import every_bucket_tags


def _newest_fold_with_oracle(pipeline_run):
    """The backtest's newest fold again, as churn_model ran it (same folds, form, calibration and
    seed): its labels and probabilities at the judged cutoff, and the simulator's true
    probabilities there."""
    out = pipeline_run.output("churn_model")
    snapshots = pipeline_run.output("training_snapshots")
    fold = plan_folds(sorted(snapshots["cutoff"].unique().to_list()), 90)[-1]
    split = time_split(snapshots, fold.training, fold.judged)
    model = fit_booster(split, out.features, TrainConfig(), out.seed, out.form)
    validation = model.margin(model_input(split.validation, out.features))
    calibration = fit_calibration(
        validation, split.validation["churned"].to_numpy(), out.calibration
    )
    truth = pl.read_parquet(pipeline_run.data_root / "truth" / "probabilities_at_cutoffs.parquet")
    # in the holdout's order, as the backtest scored it: the ECE's equal-count bins cut ties
    # (isotonic probabilities repeat) by row order
    rows = split.holdout.join(
        truth, on=["customer_id", "cutoff"], how="inner", maintain_order="left"
    )
    assert rows.height == split.holdout.height, (
        "the simulator must record a true probability for every judged customer"
    )
    probability = calibration.apply(model.margin(model_input(rows, out.features)))
    return rows["churned"].to_numpy(), probability, rows["true_churn_probability"].to_numpy()


def test_the_backtest_reproduces_its_logged_figures_and_is_calibrated(pipeline_run):
    y, probability, _ = _newest_fold_with_oracle(pipeline_run)
    logged = pipeline_run.output("churn_model").backtest[-1]
    measured = classification_metrics(y, probability)
    assert measured["ece"] == pytest.approx(logged["ece"])
    assert probability.mean() == pytest.approx(logged["predicted_rate"])
    print(
        f"\nnewest backtest cutoff: ECE {measured['ece']:.4f}, Brier {measured['brier']:.4f}, "
        f"mean predicted {probability.mean():.3f} vs observed {y.mean():.3f}"
    )
    assert measured["ece"] < 0.03


def test_backtest_auc_is_within_003_of_the_oracle_on_the_same_customers(pipeline_run):
    y, probability, oracle = _newest_fold_with_oracle(pipeline_run)
    model_auc, oracle_auc = (
        classification_metrics(y, probability)["roc_auc"],
        classification_metrics(y, oracle)["roc_auc"],
    )
    print(f"\nnewest backtest cutoff ROC AUC {model_auc:.3f}, oracle {oracle_auc:.3f}")
    assert model_auc >= oracle_auc - 0.03


def test_model_beats_every_baseline_and_they_are_all_logged(pipeline_run):
    out = pipeline_run.output("churn_model")
    assert set(out.baselines) == {
        "base_rate",
        "recency_rule",
        "frequency",
        "logistic_regression",
        "bgnbd",
    }
    print(
        "\n"
        + ", ".join(f"{b} {m['roc_auc']:.3f}" for b, m in out.baselines.items())
        + f"; model {out.metrics['backtest_roc_auc']:.3f}"
    )
    for name, metrics in out.baselines.items():
        assert out.metrics["backtest_roc_auc"] > metrics["roc_auc"], name
    client = MlflowClient(pipeline_run.tracking_uri)
    run = client.get_run(out.run_id)
    children = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{out.run_id}'"
    )
    assert {c.info.run_name for c in children} == {f"baseline {b}" for b in out.baselines}
    assert {a.path for a in client.list_artifacts(out.run_id, "plots")} == {
        f"plots/{p}.png"
        for p in (
            "roc",
            "precision_recall",
            "calibration",
            "lift",
            "shap_summary",
            "touchpoint_attribution",
        )
    }
    assert (
        run.data.params["seed"] == "42"
        and run.data.params["feature_schema_sha256"] == out.fingerprint["feature_schema_sha256"]
    )
    assert run.data.params["latest_cutoff"] == out.fingerprint["latest_cutoff"]
    per_cutoff = client.get_metric_history(out.run_id, "backtest_cutoff_roc_auc")
    assert [m.value for m in sorted(per_cutoff, key=lambda m: m.step)] == [
        r["roc_auc"] for r in out.backtest
    ]


def test_the_experiment_run_and_version_say_what_they_are(pipeline_run):
    """What the MLflow UI shows: a machine-learning experiment (not the GenAI overview), a run
    named after what it trained, a version that says what it was trained on and how the gate
    judged it."""
    out = pipeline_run.output("churn_model")
    plan = pipeline_run.output("feature_plan")
    client = MlflowClient(pipeline_run.tracking_uri)
    run = client.get_run(out.run_id)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert run.info.run_name == f"train {plan.as_of:%Y-%m-%d} v{out.version}"
    assert run.data.tags["kind"] == "training"
    version = client.get_model_version("touchpoint-churn", out.version)
    assert version.tags == {
        "backtest_roc_auc": f"{out.metrics['backtest_roc_auc']:.4f}",
        "backtest_ece": f"{out.metrics['backtest_ece']:.4f}",
        "gate": "passed",
    }
    description = version.description or ""
    for part in (
        f"as of {plan.as_of:%Y-%m-%d}",
        f"{out.fingerprint['rows']:,} rows",
        f"{len(out.features)} features",
        f"{out.form}, {out.trees} trees, {out.calibration} calibration",
        f"ROC AUC {out.metrics['backtest_roc_auc']:.4f}",
        f"ECE {out.metrics['backtest_ece']:.4f}",
        "**Gate: passed.**",
    ):
        assert part in description
    assert run.data.tags["mlflow.note.content"] == description
    # full precision stays in the run's metrics
    assert run.data.metrics["backtest_roc_auc"] == out.metrics["backtest_roc_auc"]


def _rerun_with_shuffled_labels(pipeline_run, root, tracking_uri) -> dg.ExecuteInProcessResult:
    """churn_model (and scoring) again on a copy of the stored assets whose training labels are
    shuffled."""
    data_root = root / "data"
    shutil.copytree(pipeline_run.data_root / "assets", data_root / "assets")
    rng = np.random.default_rng(0)
    for path in (data_root / "assets" / "training_snapshots").glob("*.parquet"):
        snapshots = pl.read_parquet(path)
        shuffled = rng.permutation(snapshots["churned"].to_numpy())
        snapshots.with_columns(churned=pl.Series(shuffled, dtype=pl.Int8)).write_parquet(path)
    (root / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        return run_all_allowing_failure(build_definitions(data_root, tracking_uri), instance)


def run_all_allowing_failure(
    defs: dg.Definitions, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    job = defs.resolve_implicit_global_asset_job_def()
    assert defs.resources is not None
    return job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey("churn_model"), dg.AssetKey("shap_attributions")],
        raise_on_error=False,
        tags=every_bucket_tags(defs.resources["settings"].buckets),
    )


@pytest.mark.slow
def test_a_degraded_challenger_is_not_promoted_and_scoring_keeps_the_champion(
    pipeline_run, tmp_path
):
    champion = pipeline_run.output("churn_model").version
    result = _rerun_with_shuffled_labels(pipeline_run, tmp_path, pipeline_run.tracking_uri)
    out = result.output_for_node("churn_model")
    print(
        f"\nshuffled-label challenger v{out.version}: "
        f"ROC AUC {out.metrics['backtest_roc_auc']:.3f}; {out.gate_reasons}"
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
    rejected = client.get_model_version("touchpoint-churn", out.version)
    assert rejected.tags["gate"] == "rejected"
    assert rejected.tags["gate_reasons"] == "; ".join(out.gate_reasons) != ""
    assert "**Gate: rejected:** " + "; ".join(out.gate_reasons) in (rejected.description or "")
    assert f"`champion` stays v{champion}" in (rejected.description or "")
    check = result.get_asset_check_evaluations()[0]
    assert check.passed  # the old champion is still fit to score
    shap = result.asset_materializations_for_node("shap_attributions")[0]
    # scoring loaded the old champion by alias
    assert shap.metadata["champion_version"].value == champion


@pytest.mark.slow
def test_without_a_passing_champion_the_blocking_check_stops_scoring(pipeline_run, tmp_path):
    result = _rerun_with_shuffled_labels(
        pipeline_run, tmp_path, f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    )
    out = result.output_for_node("churn_model")
    assert not out.promoted and out.champion_version is None
    check = result.get_asset_check_evaluations()[0]
    assert not check.passed and "no champion" in str(check.description)
    assert not result.asset_materializations_for_node("shap_attributions")
