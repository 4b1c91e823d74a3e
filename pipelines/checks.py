"""Asset checks: bad data is stopped before it poisons what follows.

Blocking (a failure stops every downstream asset in the run):
- `input_schema` and `quarantine_share` on each validated table: a table off its contract, a
  batch that is mostly rejects, or many files that cannot be read at all mean the upstream export
  broke; features built from what is left would silently describe a fraction of the customers. One
  unreadable daily file among many is set aside and the run goes on.
- `label_rate` on training_snapshots: a cutoff with (almost) no churners or no stayers is a broken
  label or population, and a model trained on it would be promoted on meaningless metrics. A churn
  rate that is merely unusual (a cohort's 80%) only warns: no bound fits every business.
- `feature_null_rates` on training_snapshots and scoring_features: a feature missing for every
  row means its source went missing, and every score would be off. Missing much more often than
  in training, or for nearly everyone, only warns: a cohort that aged, a shop of one-time buyers.

Not blocking (severity WARN: shown in the UI, nothing stopped):
- `events_before_signup` on each event table: such events are kept by choice (see
  `features.ingest.quality.before_signup`); many of them mean the signup dates are wrong.
- `event_freshness` on touchpoint_days (against the clock, or a pinned `as_of`): stale data
  still gives a correct list as of its latest event; stopping would leave retention teams with
  yesterday's list instead of a flagged one.
- `feature_drift` on scoring_features: drift says the champion may be ageing, which the weekly
  retraining answers; the champion is still the best model we have for today's list.

Checks on a table stored by customer bucket read the buckets stored when they run (`stored_files`),
not an input loaded whole: an event table does not fit in memory at scale, and a run over some
buckets (a cluster's backfill runs one per bucket) checks them beside the others' latest.

The model's own checks (the champion gate on churn_model) live with the model; `definitions.py`
loads checks from this module and from `pipelines/assets/model.py` alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple, cast

import dagster as dg
import polars as pl

from features.feature_plan import MIN_CUTOFFS, FeaturePlan
from features.ingest.contract import CONTRACTS, EVENT_TABLES, TableContract
from features.ingest.file_quarantine import read_table_log
from features.ingest.quality import EVENT_TIME, before_signup, quarantine_share, schema_problems
from features.quality import (
    degenerate_labels,
    event_age_hours,
    label_rate_problems,
    label_rates,
    null_problems,
    null_shares,
)
from features.touchpoint_days import latest_touch
from features.windows import WINDOWS_DAYS
from models.drift import DRIFT_ROWS, drift_table, shared_numeric_features
from pipelines.config import QualityBounds
from pipelines.metadata import figure, preview
from pipelines.partitions import stored_buckets, stored_files, stored_parts, stored_table
from pipelines.resources import ChurnSettings, DataRoot

LABEL = "churned"


def _schema_check(contract: TableContract) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=contract.name,
        name="input_schema",
        blocking=True,
        description=(
            f"The validated {contract.name} table has the contract's columns, types, required "
            "values and unique ids (a file without a required column is set aside whole and "
            "counted by quarantine_share)."
        ),
    )
    def _check(data_root: DataRoot, settings: ChurnSettings) -> dg.AssetCheckResult:
        found = (
            p
            for files in stored_buckets(data_root, contract.name, settings.buckets)
            for p in schema_problems(files, contract)
        )
        problems = list(dict.fromkeys(found))
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems) or "the table matches the contract",
            metadata={"problems": dg.MetadataValue.json(problems)},
        )

    return _check


def _quarantine_check(contract: TableContract) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=contract.name,
        name="quarantine_share",
        blocking=True,
        description=(
            f"The shares of {contract.name} rows and files sent to quarantine stay under "
            "QualityBounds.max_quarantine_share and max_set_aside_file_share."
        ),
    )
    def _check(
        data_root: DataRoot, settings: ChurnSettings, quality: QualityBounds
    ) -> dg.AssetCheckResult:
        accepted = (
            pl.scan_parquet(stored_files(data_root, contract.name, settings.buckets))
            .select(pl.len())
            .collect()
            .item()
        )
        path = data_root.folder("quarantine") / f"{contract.name}.parquet"
        rows = pl.scan_parquet(path).select(pl.len()).collect().item() if path.exists() else 0
        files, set_aside = read_table_log(data_root.set_aside_log(contract.name))
        rows += sum(f.rows for f in set_aside)
        share = quarantine_share(accepted, rows)
        file_share = len(set_aside) / files if files else 0.0
        problems = []
        if share > quality.max_quarantine_share:
            problems.append(
                f"{share:.2%} of rows quarantined (bound {quality.max_quarantine_share:.0%}): "
                f"see {path} for the reasons and fix the upstream export"
            )
        if file_share > quality.max_set_aside_file_share:
            problems.append(
                f"{len(set_aside)} of {files} files could not be read at all "
                f"(bound {quality.max_set_aside_file_share:.0%}): "
                + "; ".join(f"{f.file}: {f.reason}" for f in set_aside)
            )
        shown_files = f", {len(set_aside)} of {files} files set aside" if set_aside else ""
        return dg.AssetCheckResult(
            passed=not problems,
            description="; ".join(problems)
            or f"{share:.2%} of rows quarantined{shown_files} (bounds "
            f"{quality.max_quarantine_share:.0%} of rows, "
            f"{quality.max_set_aside_file_share:.0%} of files)",
            metadata={
                "share": figure(share),
                "rows_quarantined": rows,
                "rows_accepted": accepted,
                "files_set_aside": len(set_aside),
                "quarantine_file": dg.MetadataValue.path(str(path)),
            },
        )

    return _check


def _before_signup_check(contract: TableContract) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=contract.name,
        name="events_before_signup",
        blocking=False,
        additional_ins={"customers": dg.AssetIn("customers")},
        description=(
            f"Warns about {contract.name} rows dated before their customer's signup: kept, "
            "since a clickstream often stitches pre-signup visits to the account, but many of "
            "them mean the signup dates are wrong."
        ),
    )
    def _check(
        data_root: DataRoot, settings: ChurnSettings, customers: pl.DataFrame
    ) -> dg.AssetCheckResult:
        rows, early, examples = 0, 0, []
        for files in stored_buckets(data_root, contract.name, settings.buckets):
            columns = [contract.id_column, "customer_id", EVENT_TIME[contract.name]]
            scan = pl.scan_parquet(files).select(columns)
            found = before_signup(scan, customers, contract.name)
            height = scan.select(pl.len()).collect().item()
            rows, early = rows + height, early + found.height
            examples += found[contract.id_column].head(5 - len(examples)).to_list()
        when = EVENT_TIME[contract.name]
        share = early / rows if rows else 0.0
        return dg.AssetCheckResult(
            passed=not early,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"{early:,} of {rows:,} rows ({share:.2%}) have {when} before "
                "the customer's signup_at; kept (see events_before_signup's description)"
                if early
                else f"no {when} before its customer's signup_at"
            ),
            metadata={
                "rows_before_signup": early,
                "share": figure(share),
                "examples": dg.MetadataValue.json(examples),
            },
        )

    return _check


table_checks = [
    *(
        make(CONTRACTS[t])
        for t in ("customers", "clickstream", "support", "surveys")
        for make in (_schema_check, _quarantine_check)
    ),
    *(_before_signup_check(CONTRACTS[t]) for t in EVENT_TABLES),
]


class Verdict(NamedTuple):
    """A rule's outcome, its sentence and its metadata: what a check records, and what the
    report's data-health banner reads."""

    passed: bool
    description: str
    metadata: dict[str, Any]


def _warning(verdict: Verdict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=verdict.passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=verdict.description,
        metadata=verdict.metadata,
    )


@dg.asset_check(
    asset="touchpoint_days",
    name="event_freshness",
    blocking=False,
    description=(
        "The latest event is at most QualityBounds.max_event_age_hours old: against the clock, "
        "or against as_of when the run settings pin one (a replay of history)."
    ),
)
def event_freshness(
    data_root: DataRoot, quality: QualityBounds, settings: ChurnSettings
) -> dg.AssetCheckResult:
    days = stored_table(data_root, "touchpoint_days", settings.buckets)
    return _warning(freshness(quality, settings, latest_touch(days)))


def freshness(quality: QualityBounds, settings: ChurnSettings, latest: datetime | None) -> Verdict:
    """The freshness rule's verdict, its sentence and its metadata: what the check records and the
    report's data-health banner says."""
    pinned = settings.as_of_timestamp()
    age = event_age_hours(latest, datetime.now(UTC) if pinned is None else pinned)
    passed = age is not None and age <= quality.max_event_age_hours
    since = "ago" if pinned is None else f"before as_of {pinned:%Y-%m-%d %H:%M}"
    description = (
        f"latest event {latest:%Y-%m-%d %H:%M} UTC, {max(age, 0):.0f} h {since} "
        f"(bound {quality.max_event_age_hours:.0f} h)"
        if age is not None
        else "no events"
    )
    metadata = {
        "latest_event": str(latest),
        "age_hours": figure(age if age is not None else float("nan")),
    }
    return Verdict(passed, description, metadata)


@dg.asset_check(
    asset="training_snapshots",
    name="label_rate",
    blocking=True,
    description=(
        "At least three cutoffs with QualityBounds.min_label_class churners and stayers "
        "(training_snapshots leaves the others out; blocks when fewer remain); a churn rate "
        "outside min_label_rate..max_label_rate only warns."
    ),
)
def label_rate(
    data_root: DataRoot, quality: QualityBounds, settings: ChurnSettings
) -> dg.AssetCheckResult:
    snapshots = stored_table(data_root, "training_snapshots", settings.buckets)
    rates = label_rates(snapshots.select("customer_id", "cutoff", LABEL).collect())
    broken = degenerate_labels(rates, quality.min_label_class)
    if rates.height < MIN_CUTOFFS:
        broken.append(
            f"{rates.height} cutoffs have at least {quality.min_label_class} churners and stayers; "
            f"training needs {MIN_CUTOFFS}: add history, or a longer horizon_days"
        )
    problems = broken or label_rate_problems(rates, quality.min_label_rate, quality.max_label_rate)
    # churn_rate is a Float64 mean per cutoff: floats (None only with no cutoffs at all, where
    # formatting the description fails anyway)
    low = cast(float, rates["churn_rate"].min())
    high = cast(float, rates["churn_rate"].max())
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR if broken else dg.AssetCheckSeverity.WARN,
        description="; ".join(problems)
        or f"churn rate {low:.1%}-{high:.1%} across {rates.height} cutoffs",
        metadata={
            "by_cutoff": preview(rates, rows=24),
            "min_rate": figure(low),
            "max_rate": figure(high),
        },
    )


def _null_result(
    shares: dict[str, float],
    problems: dict[str, tuple[str, bool]],
    reference: dict[str, float] | None,
) -> dg.AssetCheckResult:
    table = pl.DataFrame({"feature": list(shares), "missing_share": list(shares.values())})
    if reference is not None:
        table = table.with_columns(
            training_missing_share=pl.Series([reference.get(f) for f in shares], dtype=pl.Float64)
        )
    stops = any(blocks for _, blocks in problems.values())
    return dg.AssetCheckResult(
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR if stops else dg.AssetCheckSeverity.WARN,
        description="; ".join(f"{f}: {p}" for f, (p, _) in problems.items())
        or f"{len(shares)} features within bounds",
        metadata={
            "failing_features": dg.MetadataValue.json({f: p for f, (p, _) in problems.items()}),
            "most_missing": preview(table.sort("missing_share", descending=True), rows=15),
        },
    )


@dg.asset_check(
    asset="training_snapshots",
    name="feature_null_rates",
    blocking=True,
    description=(
        "No feature is missing for more than QualityBounds.max_null_share of the training rows."
    ),
)
def training_null_rates(
    data_root: DataRoot, quality: QualityBounds, settings: ChurnSettings
) -> dg.AssetCheckResult:
    training_snapshots = stored_table(data_root, "training_snapshots", settings.buckets)
    shares = null_shares(
        training_snapshots,
        shared_numeric_features(training_snapshots, training_snapshots, exclude=[LABEL]),
    )
    return _null_result(shares, null_problems(shares, quality.max_null_share), None)


@dg.asset_check(
    asset="scoring_features",
    name="feature_null_rates",
    blocking=True,
    additional_deps=["training_snapshots"],
    description=(
        "No feature is missing for nearly everyone in the scoring population "
        "(QualityBounds.max_null_share; blocks), nor much more often than in training "
        "(QualityBounds.max_null_increase; warns)."
    ),
)
def scoring_null_rates(
    data_root: DataRoot, quality: QualityBounds, settings: ChurnSettings
) -> dg.AssetCheckResult:
    scoring_features = stored_table(data_root, "scoring_features", settings.buckets)
    training_snapshots = stored_table(data_root, "training_snapshots", settings.buckets)
    features = shared_numeric_features(training_snapshots, scoring_features, exclude=[LABEL])
    shares, reference = (
        null_shares(scoring_features, features),
        null_shares(training_snapshots, features),
    )
    return _null_result(
        shares,
        null_problems(shares, quality.max_null_share, reference, quality.max_null_increase),
        reference,
    )


@dg.asset_check(
    asset="scoring_features",
    name="feature_drift",
    blocking=False,
    additional_ins={"feature_plan": dg.AssetIn("feature_plan")},
    additional_deps=["training_snapshots"],
    description=(
        "Population stability index of each feature, the newest training cutoff vs the "
        f"scoring population (whole buckets of at least {DRIFT_ROWS:,} customers, a hash "
        "sample), both over the customers known for at least the longest touch "
        f"window ({max(WINDOWS_DAYS)} days), leaving out the features that age by construction "
        "(tenure, the whole history's counts: models.drift.drift_features); fails above "
        "QualityBounds.psi_threshold."
    ),
)
def feature_drift(
    data_root: DataRoot,
    quality: QualityBounds,
    settings: ChurnSettings,
    feature_plan: FeaturePlan,
) -> dg.AssetCheckResult:
    scoring_features = stored_parts(data_root, "scoring_features", settings.buckets)
    training_snapshots = stored_table(data_root, "training_snapshots", settings.buckets)
    return _warning(drift(quality, settings, scoring_features, training_snapshots, feature_plan))


def drift(
    quality: QualityBounds,
    settings: ChurnSettings,
    scoring_features: list[pl.LazyFrame],
    training_snapshots: pl.LazyFrame,
    feature_plan: FeaturePlan,
) -> Verdict:
    """The drift rule's verdict, its sentence and its metadata: what the check records and the
    report's data-health banner says. The scoring features are one scan per bucket."""
    table = drift_table(
        feature_plan.registry(settings.catalogue()),
        training_snapshots,
        scoring_features,
        quality.psi_bins,
        max(WINDOWS_DAYS),
    )
    drifted = table.filter(pl.col("psi") > quality.psi_threshold)["feature"].to_list()
    worst = float(cast(float | None, table["psi"].max()) or 0.0)  # psi is a Float64 column
    description = (
        f"{len(drifted)} of {table.height} features drifted "
        f"(PSI > {quality.psi_threshold}): {', '.join(drifted[:10])}"
        if drifted
        else f"no feature drifted (max PSI {worst:.3f} over {table.height} features)"
    )
    metadata = {
        "drifted_features": dg.MetadataValue.json(drifted),
        "max_psi": figure(worst),
        "features_compared": table.height,
        "worst_features": preview(table.with_columns(pl.col(pl.Float64).round(3)), rows=15),
    }
    return Verdict(not drifted, description, metadata)
