"""SHAP attributions, the touchpoint driver table, the scored list and the report."""

import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from features.families import is_theme_feature
from features.feature import FeatureDef
from features.feature_plan import FeaturePlan
from features.ingest.buckets import bucket_keys, by_bucket
from features.ingest.contract import CUSTOMERS
from features.ingest.pseudonyms import real_ids, with_real_ids
from features.ingest.read import ingest_table
from features.labels import uses_cancellations
from features.touchpoint_days import latest_touch
from features.voice.referrals import (
    recommender_ratings,
    referral_rate,
    referrals_by_month,
    referred_churn,
)
from models.calibration import CalibratedModel
from models.explain.attribution import attribution_of, reason_touchpoints, top_touchpoints
from models.explain.churn_report import headline, render_report
from models.explain.playbook import Playbook
from models.explain.published_outputs import publish, stamp
from models.explain.scored_customers import (
    CSV_DATETIME,
    by_value_at_risk,
    export_list,
    monthly_spend,
    reasons,
    scored_list,
)
from models.explain.shap_attributions import score_and_explain
from models.explain.touchpoint_drivers import (
    driver_table,
    feature_summary,
    feature_sums,
    phase_table,
    still_engaged,
)
from models.explain.voice_report import referral_section, voice_section
from models.explain.what_if import what_if_table
from models.tracking import (
    load_champion,
    load_version,
    run_plots,
    version_run_id,
)
from models.training.churn_model import ChurnModel
from pipelines.checks import drift, freshness
from pipelines.config import QualityBounds
from pipelines.jobs import training_runs
from pipelines.metadata import figure, preview
from pipelines.resources import ChurnSettings, DataRoot, MlflowTracking

OWNERS = ["team:retention"]


# the scoring model's plots the report shows, from its MLflow run
REPORT_PLOTS = ("calibration.png", "lift.png")


def scoring_model(
    context: dg.AssetExecutionContext, mlflow_tracking: MlflowTracking, churn_model: ChurnModel
) -> tuple[CalibratedModel, str]:
    """The model this run scores with, and its version: the one `churn_model` trained in this run
    when the gate passed it (promoted once the run's outputs are published), else the champion."""
    tracking = mlflow_tracking.tracking()
    if churn_model.promoted_in(training_runs(context.run)):
        return load_version(tracking, churn_model.version), churn_model.version
    return load_champion(tracking)


def bucket_scans(data_root: DataRoot, asset: str, buckets: int) -> list[pl.LazyFrame]:
    """A scan of each stored bucket of `asset`, in bucket order, for a step that reads them one
    at a time; a bucket not stored stops it (`DataRoot.stored_bucket`)."""
    return [pl.scan_parquet(data_root.stored_bucket(asset, key)) for key in bucket_keys(buckets)]


def scored_by(context: dg.AssetExecutionContext) -> str:
    """The registered model version behind the stored `shap_attributions` (its materialization's
    `champion_version`): what scored the probabilities an output is built from, even when that
    output is rebuilt alone, after the champion has moved on."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("shap_attributions"))
    materialization = event.asset_materialization if event is not None else None
    version = materialization.metadata.get("champion_version") if materialization else None
    if version is None:
        raise ValueError(
            "shap_attributions has no recorded champion_version: materialize shap_attributions "
            "again (the daily_scoring job) before the outputs built from it"
        )
    return str(version.value)


def shap_attributions_asset(
    partitions: dg.PartitionsDefinition, policy: dg.BackfillPolicy
) -> dg.AssetsDefinition:
    """SHAP values one partition per customer bucket, like the scoring features they explain."""

    @dg.asset(
        name="shap_attributions",
        partitions_def=partitions,
        backfill_policy=policy,
        deps=["scoring_features"],
        group_name="explain",
        kinds={"xgboost", "polars"},
        owners=OWNERS,
    )
    def shap_attributions(
        context: dg.AssetExecutionContext,
        mlflow_tracking: MlflowTracking,
        data_root: DataRoot,
        churn_model: ChurnModel,
    ) -> dg.MaterializeResult:
        """Churn probability and exact TreeSHAP values (log-odds) per customer and feature, from
        the model this run scores with (`scoring_model`), one bucket of customers at a time."""
        champion, version = scoring_model(context, mlflow_tracking, churn_model)
        started, rows = time.perf_counter(), 0
        for bucket in context.partition_keys:
            scoring = pl.read_parquet(data_root.stored_bucket("scoring_features", bucket))
            frame = explained(context, champion, version, scoring)
            data_root.write_bucket("shap_attributions", bucket, frame)
            rows += frame.height
        seconds = time.perf_counter() - started
        context.log.info(
            f"scored and explained {rows:,} customers with champion v{version} in {seconds:.1f}s"
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "champion_version": version,
                "rows_per_second": rows / max(seconds, 1e-9),
            },
        )

    return shap_attributions


def unheard_themes(features: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The comment themes among the model's `features` that the scoring table's `columns` lack:
    themes the champion learned that this month's comments no longer form. Nobody wrote in them,
    so they count as no comments (0.0)."""
    return [name for name in features if name not in columns and is_theme_feature(name)]


def explained(
    context: dg.AssetExecutionContext,
    champion: CalibratedModel,
    version: str,
    scoring_features: pl.DataFrame,
) -> pl.DataFrame:
    """One bucket's customers with their probability, base value and SHAP value per feature."""
    features = champion.feature_names
    missing = sorted(set(features) - set(scoring_features.columns))
    unheard = unheard_themes(features, scoring_features.columns)
    if unheard:
        context.log.warning(
            f"the champion (v{version}) knows {len(unheard)} comment themes this run's feature "
            f"plan does not ({', '.join(unheard[:3])}); they count as no comments until "
            "weekly_retraining trains on the current themes"
        )
        scoring_features = scoring_features.with_columns(pl.lit(0.0).alias(n) for n in unheard)
        missing = sorted(set(missing) - set(unheard))
    if missing:
        raise ValueError(
            f"the champion (v{version}) needs features the scoring table lacks: {missing[:5]}; "
            "retrain with the current catalogue"
        )
    # calibrated probabilities and TreeSHAP of the booster in log-odds, in batches so memory
    # stays flat
    probability, values, base = score_and_explain(champion, scoring_features, features)
    frame = pl.DataFrame(values, schema=features).insert_column(
        0, pl.Series("customer_id", scoring_features["customer_id"])
    )
    frame = frame.insert_column(1, pl.Series("churn_probability", probability))
    return frame.insert_column(2, pl.Series("base_value", base))


@dg.asset(
    group_name="explain",
    kinds={"polars"},
    owners=OWNERS,
    deps=["shap_attributions", "scoring_features"],
)
def touchpoint_drivers(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    data_root: DataRoot,
    feature_plan: FeaturePlan,
    customers: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """Which touchpoints drive abandonment across the scored customers who are still there, and
    which are flagged. Each bucket's SHAP values are rolled up to touchpoints as it is read, so
    memory holds customers x touchpoints, not customers x features."""
    catalogue = settings.catalogue()
    registry, touchpoints = feature_plan.registry(catalogue), reason_touchpoints(catalogue)
    cancellations = uses_cancellations(customers)
    names: list[str] = []
    rolled, tops, engaged = [], [], []
    for bucket in bucket_keys(settings.buckets):
        attribution = attribution_of(
            pl.read_parquet(data_root.stored_bucket("shap_attributions", bucket)), registry
        )
        if names and attribution.touchpoints != names:
            raise ValueError(
                f"shap_attributions bucket {bucket} holds other touchpoints than the buckets "
                f"before it ({attribution.touchpoints[:3]}... against {names[:3]}...): its "
                "buckets come from different models; materialize every bucket of "
                "shap_attributions again (the daily_scoring job does)"
            )
        names = attribution.touchpoints
        rolled.append(attribution.touchpoint_shap)
        tops.append(top_touchpoints(attribution, touchpoints))
        features = pl.scan_parquet(data_root.stored_bucket("scoring_features", bucket))
        engaged.append(still_engaged(attribution.customer_ids, features, cancellations))
    drivers = driver_table(
        names,
        np.vstack(rolled),
        np.vstack(tops),
        catalogue,
        settings.flag_rule(),
        None if any(e is None for e in engaged) else np.concatenate(engaged),
    )
    out = data_root.staged_outputs(context.run.run_id)
    published = stamp(drivers, feature_plan.as_of, scored_by(context))
    published.write_parquet(out / "touchpoint_drivers.parquet")
    published.write_csv(out / "touchpoint_drivers.csv", datetime_format=CSV_DATETIME)
    flagged = drivers.filter(pl.col("flagged"))["touchpoint"].to_list()
    context.log.info(f"flagged touchpoints: {flagged}")
    return dg.Output(
        drivers,
        metadata={
            "flagged": ", ".join(flagged),
            "drivers": preview(drivers, rows=30),
            "path": dg.MetadataValue.path(str(out / "touchpoint_drivers.csv")),
        },
    )


@dg.asset(
    group_name="explain",
    kinds={"polars"},
    owners=OWNERS,
    deps=["shap_attributions", "scoring_features"],
)
def scored_customers(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    data_root: DataRoot,
    feature_plan: FeaturePlan,
    customers: pl.DataFrame,
) -> dg.Output[pl.DataFrame]:
    """Every customer not churned by `as_of`: probability, tier, value at risk, top touchpoints and
    why. Built one customer bucket at a time (a customer's reasons are their own), so memory holds
    one bucket's SHAP values and features, not every customer's."""
    catalogue = settings.catalogue()
    registry, playbook = feature_plan.registry(catalogue), settings.playbook()
    # each bucket's customers joined with their own rows, not with every customer's
    placed = by_bucket(customers, settings.buckets)
    parts = [
        scored_bucket(
            pl.read_parquet(data_root.stored_bucket("shap_attributions", bucket)),
            pl.read_parquet(data_root.stored_bucket("scoring_features", bucket)),
            placed[bucket],
            registry,
            reason_touchpoints(catalogue),
            playbook,
        )
        for bucket in bucket_keys(settings.buckets)
    ]
    scored = by_value_at_risk(pl.concat(parts, how="vertical_relaxed"))
    out = data_root.staged_outputs(context.run.run_id)
    # the retention list alone holds real ids; the stored asset keeps the pseudonyms
    listed = scored
    if data_root.pseudonym_key is not None:
        landed = ingest_table(data_root.landing, CUSTOMERS).accepted["customer_id"]
        listed = with_real_ids(scored, real_ids(landed, data_root.pseudonym_key))
    as_of = feature_plan.as_of
    stamped = stamp(listed, as_of, scored_by(context))
    export_list(stamped, out, "scored_customers", as_of, settings.currency)
    tiers = dict(scored.group_by("risk_tier").len().iter_rows())
    context.log.info(f"scored {scored.height:,} customers: {tiers}")
    return dg.Output(
        scored,
        metadata={
            "dagster/row_count": scored.height,
            "risk_tiers": dg.MetadataValue.json(tiers),
            "top_of_list": preview(scored),
            "path": dg.MetadataValue.path(str(out / "scored_customers.csv")),
        },
    )


def scored_bucket(
    shap_attributions: pl.DataFrame,
    scoring_features: pl.DataFrame,
    customers: pl.DataFrame,
    registry: list[FeatureDef],
    touchpoints: list[str],
    playbook: Playbook,
) -> pl.DataFrame:
    """One bucket's part of the scored list (`models.explain.scored_customers.scored_list`); the
    registry, the touchpoints a reason may name and the playbook are the whole run's."""
    attribution = attribution_of(shap_attributions, registry)
    scored_rows = scoring_features.join(
        shap_attributions.select("customer_id"), on="customer_id", how="semi"
    )
    values = scored_rows.select(attribution.features).to_numpy().astype(np.float64)
    top = top_touchpoints(attribution, touchpoints)
    why = reasons(attribution, top, values, {d.name: d for d in registry}, playbook)
    probability = shap_attributions["churn_probability"].to_numpy()
    spend = monthly_spend(scored_rows)
    return scored_list(attribution.customer_ids, probability, customers, why, spend)


@dg.asset(
    group_name="explain",
    kinds={"xgboost", "polars"},
    owners=OWNERS,
    deps=["shap_attributions", "scoring_features"],
)
def friction_what_if(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    data_root: DataRoot,
    mlflow_tracking: MlflowTracking,
    feature_plan: FeaturePlan,
    churn_model: ChurnModel,
    touchpoint_drivers: pl.DataFrame,
    scored_customers: pl.LazyFrame,
) -> dg.Output[pl.DataFrame]:
    """Per flagged touchpoint, the churn rate and value at risk if its friction were removed: a
    model estimate, not a causal effect (`models.explain.what_if`), re-scored a bucket at a
    time."""
    model, _ = scoring_model(context, mlflow_tracking, churn_model)
    flagged = touchpoint_drivers.filter(pl.col("flagged"))["touchpoint"].to_list()
    features = bucket_scans(data_root, "scoring_features", settings.buckets)
    unheard = unheard_themes(model.feature_names, features[0].collect_schema().names())
    estimate = what_if_table(
        model,
        [scan.with_columns(pl.lit(0.0).alias(n) for n in unheard) for scan in features],
        bucket_scans(data_root, "shap_attributions", settings.buckets),
        feature_plan.registry(settings.catalogue()),
        flagged,
        scored_customers.select("customer_id", "monthly_value").collect(),
    )
    for row in estimate.iter_rows(named=True):
        context.log.info(
            f"without friction at {row['touchpoint']}: churn {row['churn_rate_now']:.1%} -> "
            f"{row['churn_rate_without_friction']:.1%}, monthly value at risk "
            f"{row['value_at_risk_now']:,.0f} -> {row['value_at_risk_without_friction']:,.0f}"
        )
    return dg.Output(estimate, metadata={"what_if": preview(estimate)})


def data_health(
    quality: QualityBounds,
    settings: ChurnSettings,
    latest: datetime | None,
    training_snapshots: pl.LazyFrame,
    scoring_features: list[pl.LazyFrame],
    feature_plan: FeaturePlan,
) -> list[str]:
    """What the freshness and drift checks warn about, for the report's banner, by the checks' own
    rules (the report cannot wait for the checks' results: they are other steps of the run);
    `latest` is the latest touch, `scoring_features` one scan per bucket."""
    warnings = []
    if not freshness(quality, settings, latest).passed:
        # no age in hours: the same data gives the same report, whatever the clock says
        seen = (
            f"the latest event is {latest:%Y-%m-%d %H:%M} UTC" if latest else "there are no events"
        )
        warnings.append(
            f"Stale data: {seen}, more than {quality.max_event_age_hours:.0f} h before this run. "
            "The list describes customers as they were then; land the newest files, or pin "
            "as_of when replaying history."
        )
    drifted = drift(quality, settings, scoring_features, training_snapshots, feature_plan)
    if not drifted.passed:
        warnings.append(
            f"Drift since training: {drifted.description}. The customers scored differ from "
            "those the model learned from; check the inputs, and retrain (the weekly_retraining "
            "job)."
        )
    return warnings


@dg.asset(
    group_name="explain",
    kinds={"html"},
    owners=OWNERS,
    deps=["shap_attributions", "scoring_features"],
)
def churn_report(
    context: dg.AssetExecutionContext,
    settings: ChurnSettings,
    data_root: DataRoot,
    mlflow_tracking: MlflowTracking,
    feature_plan: FeaturePlan,
    touchpoint_drivers: pl.DataFrame,
    scored_customers: pl.DataFrame,
    churn_model: ChurnModel,
    friction_what_if: pl.DataFrame,
    quality: QualityBounds,
    touchpoint_days: pl.LazyFrame,
    training_snapshots: pl.LazyFrame,
    voice_themes: pl.DataFrame,
    customers: pl.DataFrame,
    surveys: pl.LazyFrame,
) -> dg.MaterializeResult:
    """report.html, one offline page (`models.explain.churn_report`); its headline figures as
    metadata."""
    catalogue = settings.catalogue()
    registry = feature_plan.registry(catalogue)
    sums = pl.concat(
        feature_sums(attribution_of(shap.collect(), registry))
        for shap in bucket_scans(data_root, "shap_attributions", settings.buckets)
    )
    scoring_features = bucket_scans(data_root, "scoring_features", settings.buckets)
    tracking = mlflow_tracking.tracking()
    run_id = version_run_id(tracking, scored_by(context))
    logged = run_plots(tracking, run_id) if run_id else {}
    figures = headline(touchpoint_drivers, scored_customers, churn_model)
    html = render_report(
        touchpoint_drivers,
        phase_table(touchpoint_drivers),
        feature_summary(sums),
        scored_customers,
        churn_model,
        feature_plan.as_of,
        feature_plan.horizon_days,
        friction_what_if,
        figures,
        declared=[t.name for t in catalogue.touchpoints if t.moment_that_matters],
        plots={name: logged[name] for name in REPORT_PLOTS if name in logged},
        warnings=data_health(
            quality,
            settings,
            latest_touch(touchpoint_days),
            training_snapshots,
            scoring_features,
            feature_plan,
        ),
        currency=settings.currency,
        voice=voice_section(voice_themes, touchpoint_drivers)
        + referral_section(
            referral_rate(customers),
            referrals_by_month(customers),
            referred_churn(
                customers, training_snapshots.select("customer_id", "cutoff", "churned").collect()
            ),
            recommender_ratings(customers, surveys.drop("comment").collect(), catalogue),
        ),
    )
    path = data_root.staged_outputs(context.run.run_id) / "report.html"
    path.write_text(html)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "flagged": ", ".join(touchpoint_drivers.filter(pl.col("flagged"))["touchpoint"]),
            **{k: figure(v) if isinstance(v, float) else v for k, v in figures.items()},
        }
    )


@dg.asset(
    group_name="explain",
    kinds={"python"},
    owners=OWNERS,
    deps=[
        "touchpoint_drivers",
        "scored_customers",
        "voice_themes",
        "churn_report",
        "feature_dictionary",
    ],
)
def published_outputs(
    context: dg.AssetExecutionContext, data_root: DataRoot, feature_plan: FeaturePlan
) -> dg.MaterializeResult:
    """outputs/ switched to this run's set of outputs in one rename (`published_outputs`): a
    reader never sees a mix of two runs, and a killed run leaves the previous set whole. The set
    is then kept as its as_of day's copy in outputs/history/."""
    manifest = publish(Path(data_root.path), context.run.run_id, feature_plan.as_of)
    context.log.info(f"published {len(manifest['files'])} outputs in {data_root.path}/outputs")
    return dg.MaterializeResult(
        metadata={
            "files": dg.MetadataValue.json(manifest["files"]),
            "path": dg.MetadataValue.path(str(Path(data_root.path) / "outputs")),
        }
    )
