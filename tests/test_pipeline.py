"""Every asset materialized on a small simulated world, checked against the simulator's truth."""

from __future__ import annotations

import re
import zipfile

import mlflow
import polars as pl
from mlflow import MlflowClient
from mlflow.models import get_model_info
from polars.testing import assert_series_equal
from sklearn.metrics import roc_auc_score

from demo.simulator import PLANTED_DRIVERS
from features.catalogue import load_catalogue
from features.ingest.contract import PII_COLUMNS
from models.explain.attribution import reason_touchpoints
from pipelines.cli import run_all

SCORED_COLUMNS = [
    "customer_id",
    "churn_probability",
    "risk_tier",
    "plan",
    "monthly_value",
    "value_at_risk",
    "touchpoint_1",
    "reason_1",
    "touchpoint_2",
    "reason_2",
    "touchpoint_3",
    "reason_3",
    "suggested_action",
    "action_owner",
    "as_of",
    "model_version",
]


def test_scored_list_covers_every_active_customer_most_value_at_risk_first(pipeline_run):
    scored = pl.read_parquet(pipeline_run.data_root / "outputs" / "scored_customers.parquet")
    truth = pl.read_parquet(pipeline_run.data_root / "truth" / "customers.parquet")
    assert scored.columns == SCORED_COLUMNS
    csv = (pipeline_run.data_root / "outputs" / "scored_customers.csv").read_text()
    assert pl.read_csv(csv.encode()).height == scored.height
    assert not re.search(r"\d\.\d{4}", csv)  # rounded for reading: 0.785, not 0.7847582420701676
    # on the "All customers" sheet (the second), a header row, then one per customer
    with zipfile.ZipFile(pipeline_run.data_root / "outputs" / "scored_customers.xlsx") as xlsx:
        assert xlsx.read("xl/worksheets/sheet2.xml").decode().count("<row ") == scored.height + 1
    # exactly the customers active at as_of
    assert set(scored["customer_id"]) == set(truth["customer_id"])
    assert scored["churn_probability"].is_between(0, 1).all()
    assert set(scored["risk_tier"]) <= {"high", "medium", "low"}
    expected_value_at_risk = scored["churn_probability"] * scored["monthly_value"]
    assert_series_equal(
        scored["value_at_risk"],
        expected_value_at_risk,
        check_names=False,
        abs_tol=1e-9,
        rel_tol=0.0,
    )
    high = scored.filter(pl.col("risk_tier") == "high")
    assert high.height > 0
    # what a reason may name: a catalogue touchpoint, or the customer's purchase history
    catalogue = reason_touchpoints(load_catalogue())
    # every top-tier customer gets a reason; reasons fill from the first, each naming one of them
    assert (
        high["reason_1"].is_not_null().all()
        and (high["reason_1"].str.len_chars() > 0).all()
        and high["touchpoint_1"].is_in(catalogue).all()
    )
    for k in (2, 3):
        given = scored.filter(pl.col(f"touchpoint_{k}").is_not_null())
        assert (
            given[f"touchpoint_{k - 1}"].is_not_null().all()
            and given[f"touchpoint_{k}"].is_in(catalogue).all()
        )
        assert (given[f"reason_{k}"].str.len_chars() > 0).all()
    # a suggested action for the high and medium tiers only
    acting = pl.col("risk_tier").is_in(["high", "medium"])
    assert scored.filter(acting)["suggested_action"].is_not_null().all()
    assert (
        scored.filter(~acting)["suggested_action"].is_null().all()
        and scored.filter(~acting)["action_owner"].is_null().all()
    )
    known = scored.filter(pl.col("value_at_risk").is_not_null())
    assert known["value_at_risk"].is_sorted(descending=True)


def test_every_reason_is_a_touchpoint_that_raises_that_customers_risk_materially(pipeline_run):
    """Not any positive SHAP: at least MIN_REASON_LOG_ODDS, the customer's own value in the
    sentence."""
    from models.explain.attribution import MIN_REASON_LOG_ODDS, attribute

    shap = pipeline_run.output("shap_attributions")
    registry = pipeline_run.output("feature_plan").registry(load_catalogue())
    by_name = {d.name: d for d in registry}
    features = [c for c in shap.columns if c in by_name]
    attribution = attribute(
        shap["customer_id"].to_list(), features, shap.select(features).to_numpy(), by_name
    )
    touchpoint_shap = pl.DataFrame(
        attribution.touchpoint_shap, schema=attribution.touchpoints
    ).insert_column(0, shap["customer_id"])
    scored = pipeline_run.output("scored_customers").join(touchpoint_shap, on="customer_id")
    named = 0
    for k in (1, 2, 3):
        for row in scored.filter(pl.col(f"touchpoint_{k}").is_not_null()).iter_rows(named=True):
            assert row[row[f"touchpoint_{k}"]] >= MIN_REASON_LOG_ODDS, (
                row["customer_id"],
                k,
                row[f"touchpoint_{k}"],
            )
            named += 1
    low = scored.filter(pl.col("risk_tier") == "low")
    print(
        f"\n{named:,} reasons for {scored.height:,} customers; "
        f"{low['touchpoint_1'].is_not_null().sum():,} of {low.height:,} low-tier customers have one"
    )
    assert named > 0


def test_backtest_auc_beats_the_bar_and_the_top_flagged_touchpoint_is_planted(pipeline_run):
    metrics = pipeline_run.output("churn_model").metrics
    drivers = pl.read_parquet(pipeline_run.data_root / "outputs" / "touchpoint_drivers.parquet")
    flagged = drivers.filter(pl.col("flagged")).sort("churn_contribution", descending=True)
    print(
        f"\nbacktest ROC AUC {metrics['backtest_roc_auc']:.3f} over "
        f"{int(metrics['backtest_folds'])} cutoffs; flagged {flagged['touchpoint'].to_list()}"
    )
    assert metrics["backtest_roc_auc"] > 0.70
    assert flagged.height > 0 and flagged["touchpoint"][0] in PLANTED_DRIVERS
    # precision 1 and recall 1: no decoy flagged
    assert set(flagged["touchpoint"]) == set(PLANTED_DRIVERS)
    assert {
        "touchpoint",
        "phase",
        "churn_contribution",
        "share_of_total",
        "flagged",
        "customers_affected",
    } <= set(drivers.columns)


def test_scores_rank_the_customers_who_really_churn_next(pipeline_run):
    """Against the future the pipeline never saw: who churns in the horizon after as_of."""
    scored = pl.read_parquet(pipeline_run.data_root / "outputs" / "scored_customers.parquet")
    truth = pl.read_parquet(pipeline_run.data_root / "truth" / "customers.parquet").join(
        scored, on="customer_id"
    )
    auc = roc_auc_score(truth["churns_in_horizon"], truth["churn_probability"])
    oracle = roc_auc_score(truth["churns_in_horizon"], truth["true_churn_probability"])
    print(f"\nAUC on the real future {auc:.3f} (oracle {oracle:.3f})")
    assert auc > 0.70


def test_mlflow_holds_the_run_and_the_champion(pipeline_run):
    model = pipeline_run.output("churn_model")
    client = MlflowClient(pipeline_run.tracking_uri)
    champion = client.get_model_version_by_alias("touchpoint-churn", "champion")
    assert str(champion.version) == model.version and champion.run_id == model.run_id
    run = client.get_run(model.run_id)
    assert run.data.metrics["backtest_roc_auc"] == model.metrics["backtest_roc_auc"]
    assert run.data.params["horizon_days"] == "90"
    mlflow.set_tracking_uri(pipeline_run.tracking_uri)
    assert get_model_info("models:/touchpoint-churn@champion").signature is not None


def test_report_is_written_with_its_chart(pipeline_run):
    html = (pipeline_run.data_root / "outputs" / "report.html").read_text()
    assert (
        "<svg" in html
        and "Moments that matter" in html
        and "http" not in html.split("<body>")[1].split("xmlns")[0]
    )
    # one name per count: tiers by probability, "riskier than baseline" for the driver figures
    assert (
        "riskier than baseline</b>" in html
        and "at-risk customers" not in html
        and "customers at risk" not in html
    )
    assert "A baseline with no signal in this data collapses to the base rate" in html


def test_no_personal_data_in_anything_the_pipeline_wrote(pipeline_run):
    written = [p for p in pipeline_run.data_root.rglob("*.parquet") if "landing" not in p.parts]
    assert written
    for path in written:
        assert not {c.lower() for c in pl.read_parquet_schema(path)} & set(PII_COLUMNS), path
    assert (
        "@example.com"
        not in (pipeline_run.data_root / "outputs" / "scored_customers.csv").read_text()
    )


def test_quarantine_accounts_for_every_row_and_rerunning_is_safe(pipeline_run):
    def ingest_counts():
        counts = {}
        for table in ("customers", "clickstream", "support", "surveys"):
            event = pipeline_run.instance.get_latest_materialization_event(
                pipeline_run.defs.resolve_assets_def(table).key
            )
            meta = event.asset_materialization.metadata
            counts[table] = (
                meta["rows_in"].value,
                meta["dagster/row_count"].value,
                meta["rows_quarantined"].value,
            )
        return counts

    first = ingest_counts()
    for rows_in, accepted, quarantined in first.values():
        assert rows_in == accepted + quarantined
    # the demo world plants a few bad rows: they are in quarantine with reasons, not lost
    reasons = pl.read_parquet(pipeline_run.data_root / "quarantine" / "customers.parquet")[
        "_reason"
    ].to_list()
    assert sorted(reasons) == [
        "missing required customer_id",
        "signup_at is not a valid timestamp: 'last tuesday'",
    ]
    assert first["clickstream"][2] == 2 and first["surveys"][2] == 1

    assert run_all(pipeline_run.defs, pipeline_run.instance, assets=list(first)).success
    assert ingest_counts() == first


def test_each_planted_driver_has_a_feature_that_predicts_the_newest_cutoff(pipeline_run):
    """Univariate ROC AUC at the newest labelled cutoff, each feature read in the direction it
    raises risk."""
    registry = pipeline_run.output("feature_plan").registry(load_catalogue())
    snapshots = pipeline_run.output("training_snapshots")
    holdout = snapshots.filter(pl.col("cutoff") == pl.col("cutoff").max())
    best: dict[str, tuple[float, str]] = {}
    for d in registry:
        values = holdout[d.name].fill_null(
            holdout[d.name].median() if holdout[d.name].null_count() < holdout.height else 0.0
        )
        score = values if d.raises_risk_when == "high" else -values
        auc = roc_auc_score(holdout["churned"], score)
        if auc > best.get(d.touchpoint, (0.0, ""))[0]:
            best[d.touchpoint] = (auc, d.name)
    for touchpoint, (auc, name) in sorted(best.items(), key=lambda kv: -kv[1][0]):
        print(f"{touchpoint:18s} {auc:.3f}  {name}")
    for driver in PLANTED_DRIVERS:
        assert best[driver][0] > 0.6, (driver, best[driver])
    assert (pipeline_run.data_root / "outputs" / "feature_dictionary.md").read_text().count(
        "| `"
    ) == len(registry)
