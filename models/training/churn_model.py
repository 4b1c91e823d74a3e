"""One training run (asset `churn_model`): the rolling-origin backtest chooses the model's form,
trees and calibration (`models.training.backtest`); the model that scores is refit on every
labelled cutoff; it is tracked in MLflow and registered as `challenger`, then promoted to
`champion` only if the gate passes its backtest against the champion's and the best baseline's.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import polars as pl

from models.calibration import CalibratedModel, model_input
from models.explain.shap_attributions import explain
from models.tracking import (
    CHALLENGER,
    CHAMPION,
    IncompatibleModel,
    Tracking,
    aliased_version,
    champion_version,
    load_version,
    log_child_runs,
    log_document,
    log_model_run,
    model_document,
)
from models.training.backtest import Log, run_backtest, scoring_model
from models.training.plots import attribution_plots, holdout_plots
from models.training.promotion import GateConfig, GateDecision, acceptable, decide
from models.training.train import (
    SearchTrial,
    TrainConfig,
    data_fingerprint,
    search_hyperparameters,
    time_split,
)

if TYPE_CHECKING:
    from distributed import Client


@dataclass(frozen=True)
class ChurnModel:
    """What a training run produced and decided, as the asset store keeps it (JSON)."""

    run_id: str
    version: str  # the challenger's registered version
    features: list[str]
    metrics: dict[str, float]  # the challenger's backtest: backtest_roc_auc, backtest_ece, ...
    backtest: list[dict[str, Any]]  # per judged cutoff: rows, churn and predicted rate, AUC, ECE
    baselines: dict[str, dict[str, float]]  # each baseline's mean backtest metrics
    promoted: bool
    gate_reasons: list[str]  # why the challenger was not promoted; empty when it was
    champion_version: str | None  # the champion after this run (None: no model passed the gate)
    champion_metrics: dict[str, float] | None  # that champion's backtest metrics
    champion_failures: list[str]  # what makes that champion unfit to score (empty: fit)
    fingerprint: dict[str, str | int]
    seed: int
    form: str  # xgboost, or linear+xgboost (`models.training.train.FORMS`)
    trees: int
    calibration: str
    dagster_run_id: str  # the run that trained it: only that run's `champion` step promotes it
    previous_champion: str | None  # the champion before this run
    training_key: str  # the snapshots' content and the settings (`training_key`)

    def promoted_in(self, run_ids: Collection[str]) -> bool:
        """Whether one of the Dagster runs `run_ids` trained this model and the gate passed it:
        the run that scores with it makes it champion at its end."""
        return self.promoted and self.dagster_run_id in run_ids

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChurnModel:
        missing = [f.name for f in fields(cls) if f.name not in data]
        if missing:
            raise ValueError(
                f"the stored churn_model lacks {missing}: an older release stored it; train again "
                "(the weekly_retraining job, or `make run`) before scoring"
            )
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def champion_backtest(tracking: Tracking, version: str | None) -> dict[str, float] | None:
    """The current champion's backtest metrics, as its run recorded them; None if there is none,
    if this release cannot load it (an older release's format: it cannot score), or if it recorded
    no backtest (an older release judged on one holdout). The challenger is then judged alone, on
    the gate's absolute bounds."""
    if version is None:
        return None
    try:
        load_version(tracking, version)
    except IncompatibleModel:
        return None
    run_id = tracking.client().get_model_version(tracking.model_name, version).run_id
    if run_id is None:
        return None
    recorded = tracking.client().get_run(run_id).data.metrics
    if "backtest_roc_auc" not in recorded or "backtest_ece" not in recorded:
        return None
    return {"roc_auc": recorded["backtest_roc_auc"], "ece": recorded["backtest_ece"]}


def best_baseline(baselines: Mapping[str, Mapping[str, float]]) -> tuple[str, float] | None:
    """The baseline that ranks best on the backtest (the base rate ranks nobody)."""
    ranked = {b: m["roc_auc"] for b, m in baselines.items() if b != "base_rate"}
    return max(ranked.items(), key=lambda item: item[1]) if ranked else None


CHURN_MODEL_DOCUMENT = "churn_model.json"
ATTRIBUTION_SAMPLE_ROWS = 5_000


def _newest_attributions(
    model: CalibratedModel, snapshots: pl.DataFrame, features: list[str], seed: int
) -> tuple[np.ndarray, pd.DataFrame]:
    """SHAP values of the refit model on (a sample of) the newest cutoff's customers, for the
    plots logged with the run."""
    newest = snapshots.filter(pl.col("cutoff") == pl.col("cutoff").max())
    sample = newest.sample(min(ATTRIBUTION_SAMPLE_ROWS, newest.height), seed=seed)
    X = model_input(sample, features)
    return explain(model, X)[0], X


def training_key(
    snapshots: pl.DataFrame,
    features: list[str],
    config: TrainConfig,
    seed: int,
    search_trials: int,
    params: Mapping[str, Any],
) -> str:
    """One hash of what decides a training run: every snapshot value of the features and labels,
    the hyperparameters, the seed, the run's parameters, and the versions of this package and of
    the libraries that train. Equal keys train the same model, so it is trained once."""
    frame = snapshots.sort("cutoff", "customer_id").select("cutoff", "customer_id", *features)
    rows = frame.with_columns(snapshots.sort("cutoff", "customer_id")["churned"]).hash_rows(seed=0)
    settings = {
        "features": features,
        "config": config.params(),
        "seed": seed,
        "search_trials": search_trials,
        "params": {k: str(v) for k, v in params.items()},
        "versions": {p: metadata.version(p) for p in ("touchpoint-churn", "polars", "xgboost")},
    }
    digest = hashlib.sha256(rows.to_numpy().tobytes())
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def unchanged_model(tracking: Tracking, key: str) -> ChurnModel | None:
    """The record of the model last trained under this key, when it is the champion or the
    challenger the gate turned down: training again would only repeat it. A challenger the gate
    passed but a killed run never promoted is trained again, so the new run promotes it."""
    for alias in (CHAMPION, CHALLENGER):
        version = aliased_version(tracking, alias)
        if version is None:
            continue
        document = model_document(tracking, version, CHURN_MODEL_DOCUMENT)
        if document is None or document.get("training_key") != key:
            continue
        if alias == CHALLENGER and document.get("promoted"):
            return None
        try:
            return ChurnModel.from_json(document)
        except ValueError:  # recorded by an older release: train again
            return None
    return None


def version_tags(summary: Mapping[str, float], decision: GateDecision) -> dict[str, str]:
    """A registered version's tags, for the registry's lists: the backtest rounded for display
    (full precision stays in the run's metrics) and the gate's verdict, with its reasons when it
    rejected the version."""
    tags = {
        "backtest_roc_auc": f"{summary['roc_auc']:.4f}",
        "backtest_ece": f"{summary['ece']:.4f}",
        "gate": "passed" if decision.promote else "rejected",
    }
    if not decision.promote:
        tags["gate_reasons"] = "; ".join(decision.reasons)
    return tags


def version_description(
    *,
    as_of: datetime,
    fingerprint: Mapping[str, str | int],
    features: int,
    form: str,
    trees: int,
    calibration: str,
    summary: Mapping[str, float],
    judged: list[str],
    baseline: tuple[str, float] | None,
    decision: GateDecision,
    previous: str | None,
) -> str:
    """What a registered version (and its run) says in the MLflow UI, in markdown: what it was
    trained on, what it is, how its backtest went, and the gate's verdict with its reasons."""
    cutoffs = str(fingerprint["cutoffs"]).split(",")
    overlap = int(summary.get("label_overlap_days", 0))
    backtest = (
        f"Backtest over {len(judged)} cutoffs ({', '.join(judged)}): ROC AUC "
        f"{summary['roc_auc']:.4f} ({summary['roc_auc_min']:.3f} to {summary['roc_auc_max']:.3f}), "
        f"ECE {summary['ece']:.4f}"
        + (f"; best baseline {baseline[0]} {baseline[1]:.4f}" if baseline else "")
        + (
            f"; training labels overlap the judged horizons by up to {overlap} days"
            if overlap
            else ""
        )
        + "."
    )
    if decision.promote:
        verdict = (
            "**Gate: passed.** It becomes `champion` when its run has published its outputs"
            + (f" (replacing v{previous})." if previous else ".")
        )
    else:
        verdict = (
            "**Gate: rejected:** "
            + "; ".join(decision.reasons)
            + (f". `champion` stays v{previous}." if previous else ". There is no champion yet.")
        )
    return "\n\n".join(
        [
            f"Trained as of {as_of:%Y-%m-%d} on {len(cutoffs)} labelled cutoffs ({cutoffs[0]} to "
            f"{cutoffs[-1]}): {int(fingerprint['rows']):,} rows, {features} features.",
            f"Model: {form}, {trees} trees, {calibration} calibration, refit on every labelled "
            "cutoff.",
            backtest,
            verdict,
        ]
    )


def train_and_register(
    snapshots: pl.DataFrame,
    features: list[str],
    days: pl.DataFrame,
    customers: pl.DataFrame,
    *,
    config: TrainConfig,
    gate: GateConfig,
    seed: int,
    search_trials: int,
    horizon_days: int,
    as_of: datetime,
    tracking: Tracking,
    touchpoints: Mapping[str, str],
    params: Mapping[str, Any],
    tags: Mapping[str, str],
    log: Log,
    client: Client | None = None,
) -> tuple[ChurnModel, dict[str, bytes]]:
    """Backtest, refit on every labelled cutoff, let the gate decide on promotion, and log and
    register the challenger with its verdict.

    `params` and `tags` go to the MLflow run beside the model's own (the horizon; the Dagster run
    and asset); `as_of` (the feature plan's) names the run; `touchpoints` maps each feature to its
    touchpoint, for the attribution plot. Every model (search draws, backtest folds, the refit)
    trains on `client`'s Dask cluster when one is given (`models.training.cluster.dask_client`),
    in this process otherwise.
    Returns the result and its plots (PNG bytes by name): the newest backtest cutoff's, and the
    refit model's SHAP attributions."""
    key = training_key(snapshots, features, config, seed, search_trials, params)
    if reused := unchanged_model(tracking, key):
        log.info(
            f"the snapshots and settings are those model v{reused.version} was trained on: "
            "its record is reused and no new version is registered"
        )
        return reused, {}
    started = time.perf_counter()

    def took(since: float) -> str:
        return f"{time.perf_counter() - since:.1f}s"

    trials: list[SearchTrial] = []
    if search_trials > 0:
        cutoffs = sorted(snapshots["cutoff"].unique().to_list())
        log.info(f"searching {search_trials} hyperparameter draws on the latest cutoff")
        split = time_split(snapshots, cutoffs, None)
        config, trials = search_hyperparameters(
            split, features, config, search_trials, seed, client
        )
        log.info(f"search done in {took(started)}")
    backtest = run_backtest(
        snapshots,
        features,
        days,
        customers,
        config=config,
        seed=seed,
        horizon_days=horizon_days,
        log=log,
        client=client,
    )
    summary, baselines = backtest.summary(), backtest.baseline_summary()
    step = time.perf_counter()
    model = scoring_model(snapshots, features, config, seed, backtest, client)
    labelled = snapshots["cutoff"].n_unique()
    log.info(
        f"refit on all {labelled} labelled cutoffs ({snapshots.height:,} rows) in {took(step)}"
    )
    metrics = {f"backtest_{k}": v for k, v in summary.items()}
    fingerprint = data_fingerprint(snapshots, features)
    step = time.perf_counter()
    figures = {
        **holdout_plots(backtest.newest_labels, backtest.newest),
        **attribution_plots(*_newest_attributions(model, snapshots, features, seed), touchpoints),
    }
    log.info(f"plots (backtest curves, SHAP by feature and touchpoint) in {took(step)}")
    baseline_metrics = {
        f"baseline_{b}_backtest_{k}": v for b, m in baselines.items() for k, v in m.items()
    }
    per_cutoff = backtest.per_cutoff()

    previous = champion_version(tracking)
    champion_metrics = champion_backtest(tracking, previous)
    run_tag = tags.get("dagster.run_id", "")
    if previous is not None and champion_metrics is None:
        log.warning(
            f"champion v{previous} cannot be compared (this release cannot load it, or it "
            "recorded no backtest): the challenger is judged on the gate's bounds alone"
        )
    challenger = {"roc_auc": summary["roc_auc"], "ece": summary["ece"]}
    baseline = best_baseline(baselines)
    decision = decide(challenger, champion_metrics, gate, baseline)
    current = challenger if decision.promote else champion_metrics

    logged = {
        **config.params(),
        "seed": seed,
        "form": backtest.form,
        "trees": backtest.trees,
        "calibration": backtest.calibration,
        "backtest_cutoffs": ",".join(r["cutoff"] for r in per_cutoff),
        **fingerprint,
        **params,
        "features": len(features),
    }
    step = time.perf_counter()
    run_id, version = log_model_run(
        tracking,
        model,
        model_input(snapshots.head(5), features),
        params=logged,
        metrics={**metrics, **baseline_metrics},
        tags={**tags, "kind": "training"},
        figures=figures,
        documents={
            "data_fingerprint.json": fingerprint,
            "features.json": {"features": features},
            "backtest.json": {
                "per_cutoff": per_cutoff,
                "scores": [asdict(s) for s in backtest.scores],
            },
        },
        steps={
            f"backtest_cutoff_{k}": [r[k] for r in per_cutoff]
            for k in ("roc_auc", "expected_roc_auc", "ece", "churn_rate", "predicted_rate")
        },
        run_name=f"train {as_of:%Y-%m-%d}",
        description=version_description(
            as_of=as_of,
            fingerprint=fingerprint,
            features=len(features),
            form=backtest.form,
            trees=backtest.trees,
            calibration=backtest.calibration,
            summary=summary,
            judged=[r["cutoff"] for r in per_cutoff],
            baseline=baseline,
            decision=decision,
            previous=previous,
        ),
        version_tags=version_tags(summary, decision),
    )
    baseline_runs = {
        f"baseline {b}": ({"baseline": b}, {f"backtest_{k}": v for k, v in m.items()})
        for b, m in baselines.items()
    }
    log_child_runs(tracking, run_id, baseline_runs, "baseline")
    trial_runs = {
        f"search trial {i + 1}": (
            {**t.config.params(), "seed": seed, "best_iteration": t.best_iteration},
            {"validation_logloss": t.validation_logloss},
        )
        for i, t in enumerate(trials)
    }
    log_child_runs(tracking, run_id, trial_runs, "search_trial")
    log.info(f"logged to MLflow and registered as v{version} in {took(step)}")
    outcome = (
        "promoted to champion"
        if decision.promote
        else f"not promoted ({'; '.join(decision.reasons)}); champion stays v{previous}"
    )
    log.info(
        f"model v{version}: backtest ROC AUC {summary['roc_auc']:.3f} "
        f"({summary['roc_auc_min']:.3f}-{summary['roc_auc_max']:.3f}), ECE {summary['ece']:.3f}; "
        f"{outcome}; trained in {took(started)}"
    )
    result = ChurnModel(
        run_id=run_id,
        version=version,
        features=features,
        metrics=metrics,
        backtest=per_cutoff,
        baselines=baselines,
        promoted=decision.promote,
        gate_reasons=decision.reasons,
        champion_version=version if decision.promote else previous,
        champion_metrics=current,
        champion_failures=acceptable(current, gate) if current else ["no champion"],
        fingerprint=fingerprint,
        seed=seed,
        form=backtest.form,
        trees=backtest.trees,
        calibration=backtest.calibration,
        dagster_run_id=run_tag,
        previous_champion=previous,
        training_key=key,
    )
    log_document(tracking, run_id, CHURN_MODEL_DOCUMENT, result.to_json())
    return result, figures
