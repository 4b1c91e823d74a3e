"""Asset checks: each one fails on the bad data it exists for, and passes on good data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

from features.catalogue import load_catalogue
from features.feature_plan import FeaturePlan, FeatureSet
from features.ingest.contract import CLICKSTREAM, SUPPORT, SURVEYS
from features.ingest.file_quarantine import write_table_log
from features.ingest.read import QuarantinedFile
from features.quality import informative_cutoffs
from features.touchpoint_days import fold_touchpoint_days
from models.drift import drift_table, established, psi, psi_table, shared_numeric_features
from pipelines.checks import (
    event_freshness,
    feature_drift,
    label_rate,
    scoring_null_rates,
    table_checks,
)
from pipelines.config import QualityBounds
from pipelines.resources import ChurnSettings, DataRoot

QUALITY = QualityBounds()


def _population(
    rng: np.random.Generator,
    n: int,
    shift: float = 0.0,
    busier: float = 1.0,
    older_by_days: float = 0.0,
    buys_more: float = 1.0,
) -> pl.DataFrame:
    tenure = rng.uniform(100, 700, n) + older_by_days
    return pl.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "profile_tenure_days": tenure,
            # a whole history's value grows with the customer's age
            "customer_value_total_order_value": rng.uniform(1.8, 2.2, n) * tenure,
            "customer_value_purchase_rate_30d": rng.gamma(2.0, 0.5, n) * buys_more,
            "pricing_touches_30d": rng.poisson(3.0, n).astype(np.float64),
            "checkout_payment_errors_30d": rng.poisson(0.3 * busier, n).astype(np.float64),
            "customer_service_first_response_hours_max_90d": np.where(
                rng.random(n) < 0.4, np.nan, rng.gamma(2.0, 10.0, n) + shift
            ),
            "profile_monthly_value": rng.lognormal(3.0, 0.5, n),
        }
    ).with_columns(pl.col(pl.Float64).fill_nan(None))


def _training(rng: np.random.Generator, n: int = 4000, churn_rate: float = 0.1) -> pl.DataFrame:
    return _population(rng, n).with_columns(
        churned=pl.Series((rng.random(n) < churn_rate).astype(np.int8)),
        # three monthly cutoffs, as training needs
        cutoff=pl.Series(["2026-01-01", "2026-02-01", "2026-03-01"] * (n // 3 + 1))
        .head(n)
        .str.to_datetime(time_zone="UTC"),
    )


def test_psi_is_near_zero_for_the_same_population_and_large_for_a_shifted_one():
    rng = np.random.default_rng(0)
    reference = rng.normal(0, 1, 5000)
    assert psi(reference, rng.normal(0, 1, 5000)) < 0.02
    assert psi(reference, rng.normal(1, 1, 5000)) > 0.25
    with_missing = np.where(rng.random(5000) < 0.5, np.nan, rng.normal(0, 1, 5000))
    assert psi(reference, with_missing) > 0.25  # a feature going missing is drift too


# the features the check's frames hold, and more: the check compares those the registry knows
DRIFT_PLAN = FeaturePlan(
    as_of=datetime(2026, 6, 1, 12, tzinfo=UTC),
    horizon_days=90,
    scoring_cutoff=datetime(2026, 6, 2, tzinfo=UTC),
    features=FeatureSet(
        touched=("checkout", "pricing"),
        support_touchpoints=("customer_service",),
        survey_pairs=(),
        subscription_plans=("basic",),
    ),
    catalogue=load_catalogue().fingerprint,
    labelled=(),
)


def drift(scoring: pl.DataFrame, training: pl.DataFrame) -> dg.AssetCheckResult:
    with TemporaryDirectory() as folder:
        return run_check(
            feature_drift,
            data_root=stored(Path(folder), scoring_features=scoring, training_snapshots=training),
            quality=QUALITY,
            settings=ONE_BUCKET,
            feature_plan=DRIFT_PLAN,
        )


def test_drift_check_fails_on_a_drifted_scoring_population_and_names_the_drifted_features():
    rng = np.random.default_rng(1)
    training = _training(rng)
    same = drift(_population(rng, 2000), training)
    assert same.passed, same.description
    drifted = drift(_population(rng, 2000, shift=30.0, busier=6.0), training)
    assert not drifted.passed
    assert drifted.severity == dg.AssetCheckSeverity.WARN
    assert set(metadata(drifted, "drifted_features")) == {
        "customer_service_first_response_hours_max_90d",
        "checkout_payment_errors_30d",
    }
    assert "checkout_payment_errors_30d" in metadata(drifted, "worst_features")


def test_drift_check_leaves_out_what_ages_by_construction_and_reports_a_shift_in_a_rate():
    """Scoring is 90 days and more after the newest training cutoff: every customer who stayed
    is 90 days older and has bought more by then, which is no drift; buying twice as often is."""
    rng = np.random.default_rng(3)
    training = _training(rng)
    later = _population(rng, 2000, older_by_days=92.0)
    assert drift(later, training).passed, drift(later, training).description
    table = psi_table(
        training, [later], ["profile_tenure_days", "customer_value_total_order_value"]
    )
    assert (table["psi"] > QUALITY.psi_threshold).all()  # what the check would have said
    buying = drift(_population(rng, 2000, older_by_days=92.0, buys_more=2.0), training)
    assert not buying.passed
    assert metadata(buying, "drifted_features") == ["customer_value_purchase_rate_30d"]
    compared = metadata(buying, "features_compared")
    assert compared == 5  # of the frames' 7 numeric features, tenure and the order value aged


def test_drift_check_compares_established_customers_on_both_sides():
    """A world that stopped signing customers up (the demo's, 12 weeks before its end) has no
    one new at as_of: their short windows are not a drift in everyone's behaviour."""
    rng = np.random.default_rng(4)
    newcomers = _population(rng, 800).with_columns(
        profile_tenure_days=pl.lit(30.0), pricing_touches_30d=pl.lit(0.0)
    )
    known = _training(rng)
    newest = known.filter(pl.col("cutoff") == pl.col("cutoff").max())["cutoff"]
    training = pl.concat(
        [known, newcomers.with_columns(churned=pl.lit(0, pl.Int8), cutoff=newest.head(800))]
    )
    assert established(training, 90).height == 4000
    assert drift(_population(rng, 2000), training).passed
    everyone = psi_table(
        training.filter(pl.col("cutoff") == pl.col("cutoff").max()),
        [_population(rng, 2000)],
        ["pricing_touches_30d"],
    )
    assert everyone["psi"].item() > QUALITY.psi_threshold


def test_scoring_null_check_stops_a_feature_missing_far_more_than_in_training(tmp_path):
    rng = np.random.default_rng(2)
    training = _training(rng)
    scoring = _population(rng, 2000)

    def check(scoring_features: pl.DataFrame) -> dg.AssetCheckResult:
        root = stored(tmp_path, scoring_features=scoring_features, training_snapshots=training)
        return run_check(scoring_null_rates, data_root=root, quality=QUALITY, settings=ONE_BUCKET)

    assert check(scoring).passed
    # e.g. the clickstream export went missing
    broken = scoring.with_columns(pricing_touches_30d=pl.lit(None, pl.Float64))
    result = check(broken)
    assert not result.passed and list(metadata(result, "failing_features")) == [
        "pricing_touches_30d"
    ]
    assert result.severity == dg.AssetCheckSeverity.ERROR
    # a feature missing by design, missing more often (a population that moved): warns only
    moved = scoring.with_columns(
        pricing_touches_30d=pl.when(pl.int_range(pl.len()) < 1200)
        .then(None)
        .otherwise(pl.col("pricing_touches_30d"))
    )
    result = check(moved)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN


def test_label_rate_check_stops_a_broken_label_and_only_warns_on_an_unusual_one(tmp_path):
    rng = np.random.default_rng(3)

    def check(training_snapshots: pl.DataFrame) -> dg.AssetCheckResult:
        root = stored(tmp_path, training_snapshots=training_snapshots)
        return run_check(label_rate, data_root=root, quality=QUALITY, settings=ONE_BUCKET)

    assert check(_training(rng)).passed
    everyone_churns = _training(rng).with_columns(churned=pl.lit(1, pl.Int8))
    result = check(everyone_churns)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert "1,334 churners among 1,334 customers" in str(result.description)
    # a cohort of one-time buyers: 95% churn is unusual, not broken
    cohort = _training(rng, churn_rate=0.95)
    result = check(cohort)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "outside 0.5%-90.0%" in str(result.description)
    assert check(_training(rng, churn_rate=0.8)).passed


def test_freshness_is_judged_against_the_clock_or_against_a_pinned_as_of(tmp_path):
    latest = datetime(1997, 12, 30, 18, tzinfo=UTC)
    clicks = pl.DataFrame(
        {
            "event_id": ["E1", "E2"],
            "customer_id": ["A", "B"],
            "ts": [latest - timedelta(days=40), latest],
            "event_type": ["purchase", "purchase"],
        }
    ).with_columns(
        pl.lit(None).cast(CLICKSTREAM.schema[c]).alias(c)
        for c in ("session_id", "page", "channel", "value")
    )
    days = fold_touchpoint_days(
        clicks.select(CLICKSTREAM.schema.names()),
        SUPPORT.empty(),
        SURVEYS.empty(),
        load_catalogue(),
    )
    root = stored(tmp_path, touchpoint_days=days)
    stale = run_check(event_freshness, data_root=root, quality=QUALITY, settings=ChurnSettings())
    assert not stale.passed and " h ago " in str(stale.description)
    # a replay of history as of the next midnight: 6 hours old then, within the bound
    replay = ChurnSettings(as_of="1997-12-31T00:00:00Z")
    fresh = run_check(event_freshness, data_root=root, quality=QUALITY, settings=replay)
    assert fresh.passed, fresh.description
    assert "6 h before as_of 1997-12-31 00:00" in str(fresh.description)


def run_check(check: dg.AssetChecksDefinition, **inputs: object) -> dg.AssetCheckResult:
    """A check called directly, as Dagster would call it, with its resources and inputs."""
    result = check(**inputs)
    assert isinstance(result, dg.AssetCheckResult)
    return result


def stored(root: Path, **tables: pl.DataFrame) -> DataRoot:
    """A data root holding each table as its asset stores it: one customer bucket of a bucketed
    table, which is what the checks on those read."""
    data_root = DataRoot(path=str(root))
    for asset, frame in tables.items():
        data_root.write_bucket(asset, "00", frame)
    return data_root


ONE_BUCKET = ChurnSettings(buckets=1)


def metadata(result: dg.AssetCheckResult, key: str) -> Any:
    """A check result's metadata value as the check put it there (a list, a markdown table)."""
    return result.metadata[key].value


def _table_check(asset: str, name: str) -> dg.AssetChecksDefinition:
    (found,) = [
        c for c in table_checks if c.check_key == dg.AssetCheckKey(dg.AssetKey(asset), name)
    ]
    return found


def test_schema_check_stops_a_table_off_its_contract(tmp_path):
    check = _table_check("clickstream", "input_schema")
    good = stored(tmp_path / "good", clickstream=CLICKSTREAM.empty())
    assert run_check(check, data_root=good, settings=ONE_BUCKET).passed
    bad = stored(tmp_path / "bad", clickstream=CLICKSTREAM.empty().drop("ts"))
    result = run_check(check, data_root=bad, settings=ONE_BUCKET)
    assert not result.passed
    assert "differ from the contract" in str(result.description)


def test_schema_check_counts_missing_values_and_repeated_ids_without_loading_the_table(tmp_path):
    rows = pl.DataFrame(
        {
            "event_id": ["E1", "E2", "E2", "E3"],
            "customer_id": ["C1", None, "C1", "C2"],
            "ts": [datetime(2026, 3, 1, tzinfo=UTC)] * 4,
            "event_type": "page_view",
            "channel": "web",
        }
    )
    table = rows.select(
        pl.col(c).cast(t) if c in rows.columns else pl.lit(None, t).alias(c)
        for c, t in CLICKSTREAM.schema.items()
    )
    root = stored(tmp_path, clickstream=table)
    check = _table_check("clickstream", "input_schema")
    result = run_check(check, data_root=root, settings=ONE_BUCKET)
    assert not result.passed
    assert metadata(result, "problems") == [
        "1 rows lack required customer_id",
        "1 repeated event_id values",
    ]
    # a file written without column statistics is read for its missing values instead
    table.write_parquet(root.asset_file("clickstream", "00"), statistics=False)
    again = run_check(check, data_root=root, settings=ONE_BUCKET)
    assert metadata(again, "problems") == metadata(result, "problems")


def test_quarantine_share_check_stops_only_when_many_files_are_set_aside(tmp_path):
    unreadable = QuarantinedFile("2026-03-02.csv", 120, "the file is empty")
    accepted = pl.DataFrame({"event_id": [f"E{i}" for i in range(10_000)]})
    root = stored(tmp_path, clickstream=accepted)
    check = _table_check("clickstream", "quarantine_share")
    write_table_log(root.set_aside_log("clickstream"), 30, [unreadable])
    one_of_thirty = run_check(check, data_root=root, settings=ONE_BUCKET, quality=QUALITY)
    assert one_of_thirty.passed
    assert "1 of 30 files set aside" in str(one_of_thirty.description)
    write_table_log(root.set_aside_log("clickstream"), 3, [unreadable])
    one_of_three = run_check(check, data_root=root, settings=ONE_BUCKET, quality=QUALITY)
    assert not one_of_three.passed
    assert "2026-03-02.csv: the file is empty" in str(one_of_three.description)


def test_quarantine_share_check_stops_a_mostly_rejected_table(tmp_path):
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    pl.DataFrame({"_reason": ["missing required ts"] * 10}).write_parquet(
        quarantine / "clickstream.parquet"
    )
    accepted = pl.DataFrame({"event_id": [f"E{i}" for i in range(90)]})
    root = stored(tmp_path, clickstream=accepted)
    check = _table_check("clickstream", "quarantine_share")
    # 10% > 5%
    assert not run_check(check, data_root=root, settings=ONE_BUCKET, quality=QUALITY).passed
    assert run_check(
        check,
        data_root=root,
        settings=ONE_BUCKET,
        quality=QualityBounds(max_quarantine_share=0.2),
    ).passed


def test_every_check_ran_on_the_demo_world_and_the_blocking_ones_passed(pipeline_run):
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in pipeline_run.result.get_asset_check_evaluations()
    }
    graph = pipeline_run.defs.resolve_asset_graph()
    assert set(evaluations) == {
        (k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys
    }
    blocking = {
        (k.asset_key.to_user_string(), k.name)
        for k in graph.asset_check_keys
        if graph.get_check_spec(k).blocking
    }
    assert blocking and all(evaluations[k].passed for k in blocking), {
        k: evaluations[k].description for k in blocking if not evaluations[k].passed
    }
    # the features that age by construction are left out, and the demo world's lack of newcomers
    # at the end is compared away: its own data does not drift
    drift = evaluations[("scoring_features", "feature_drift")]
    print(f"\ndrift on the demo world: {drift.description}")
    assert drift.passed, drift.description
    assert drift.metadata["features_compared"].value > 100


def test_psi_of_a_population_read_in_parts_equals_the_whole_populations():
    """The drift check bins the scoring features bucket by bucket; counts add up."""
    rng = np.random.default_rng(5)
    training = _training(rng)
    later = _population(rng, 2000, shift=3.0).with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0)
        .then(None)
        .otherwise(pl.col("checkout_payment_errors_30d"))
        .alias("checkout_payment_errors_30d")
    )
    features = shared_numeric_features(training, later, exclude=["churned"])
    whole = psi_table(training, [later], features)
    parts = psi_table(training, [later[:500], later[500:501], later[501:]], features)
    assert_frame_equal(parts, whole, rel_tol=1e-12)
    assert (
        whole.filter(pl.col("feature") == "checkout_payment_errors_30d")["actual_missing"].item()
        > 0
    )


def test_a_cutoff_without_enough_churners_and_stayers_is_left_out_of_the_labels():
    cutoffs = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 2, 3)]
    labels = pl.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(30)],
            "cutoff": [c for c in cutoffs for _ in range(10)],
            # January: everyone churns; February and March: 4 churners, 6 stayers
            "churned": [1] * 10 + [1, 1, 1, 1, 0, 0, 0, 0, 0, 0] * 2,
        }
    ).with_columns(pl.col("churned").cast(pl.Int8))
    kept, notes = informative_cutoffs(labels, 3)
    assert kept["cutoff"].unique().sort().to_list() == cutoffs[1:]
    assert kept.height == 20
    assert len(notes) == 1 and notes[0].startswith("cutoff 2026-01-01: 10 churners")


def test_the_drift_check_bins_whole_buckets_up_to_its_sample_of_customers(monkeypatch):
    """Past DRIFT_ROWS customers the check stops taking buckets: the later ones change nothing."""
    import models.drift

    rng = np.random.default_rng(6)
    training = _training(rng)
    buckets = [_population(rng, 1000).lazy(), _population(rng, 1000).lazy()]
    shifted = _population(rng, 1000, shift=30.0, busier=6.0).lazy()
    registry = DRIFT_PLAN.registry(load_catalogue())
    whole = drift_table(registry, training.lazy(), buckets, 10, 90)
    monkeypatch.setattr(models.drift, "DRIFT_ROWS", 2000)
    sampled = drift_table(registry, training.lazy(), [*buckets, shifted], 10, 90)
    assert_frame_equal(sampled, whole)
    monkeypatch.setattr(models.drift, "DRIFT_ROWS", 3000)
    assert not drift_table(registry, training.lazy(), [*buckets, shifted], 10, 90).equals(whole)
