"""The rolling-origin backtest: train on what was known before each of several cutoffs, score that
cutoff, and compare with what happened in its horizon; it chooses the model's form, its number of
trees and its calibration, and its figures are what the gate, MLflow and the report quote.

A fold judges one labelled cutoff. Strict folds train only on cutoffs whose labels were complete
by the judged cutoff (cutoff + horizon before it), which is how the model is used: it scores today
with labels that ended a horizon ago. That needs two horizons of history and more; with less, the
folds train on every earlier cutoff, whose labels reach past the judged one (`label_overlap_days`
says how far), and the backtest says so. Each fold also reports the ROC AUC its probabilities
imply (`expected_roc_auc`), so the estimate the report gives for today's list can be checked
against what happened at every fold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl

from models.calibration import METHODS, CalibratedModel, Calibration, fit_calibration, model_input
from models.training.baselines import baseline_probabilities
from models.training.evaluate import classification_metrics, expected_roc_auc
from models.training.train import (
    FORMS,
    TimeSplit,
    TrainConfig,
    fit_booster,
    fit_linear,
    fit_on_all,
    time_split,
)

if TYPE_CHECKING:
    from distributed import Client

MAX_FOLDS = 3
# a form must rank this much better on average to be chosen over plain XGBoost
FORM_MARGIN = 0.001
# the ranking figures averaged over the folds beside ROC AUC: how the top of the list does
RANKING = ("pr_auc", "lift_top10", "capture_top10")


class Log(Protocol):
    def info(self, msg: str) -> object: ...

    def warning(self, msg: str) -> object: ...


@dataclass(frozen=True)
class Fold:
    judged: datetime
    training: tuple[datetime, ...]  # fit on all but the last, stop early on the last
    label_overlap_days: int  # how far the newest training label reaches past `judged` (0: strict)


def plan_folds(
    cutoffs: Sequence[datetime], horizon_days: int, max_folds: int = MAX_FOLDS
) -> list[Fold]:
    """The newest labelled cutoffs as folds, strict where the history allows (see the module)."""
    cutoffs, horizon = sorted(cutoffs), timedelta(days=horizon_days)
    strict = [
        Fold(e, tuple(c for c in cutoffs if c + horizon <= e), 0)
        for e in reversed(cutoffs)
        if sum(c + horizon <= e for c in cutoffs) >= 2
    ][:max_folds]
    if strict:
        return sorted(strict, key=lambda f: f.judged)
    overlapping = []
    for e in reversed(cutoffs):
        earlier = tuple(c for c in cutoffs if c < e)
        if len(earlier) >= 2:
            overlapping.append(Fold(e, earlier, (earlier[-1] + horizon - e).days))
    if not overlapping:
        raise ValueError(
            f"the backtest needs at least three labelled cutoffs, the history gives {len(cutoffs)}"
            ": add older events or lower horizon_days"
        )
    return sorted(overlapping[:max_folds], key=lambda f: f.judged)


@dataclass(frozen=True)
class FoldScore:
    """One form's model at one fold: how it ranked, and how each calibration held."""

    judged: str
    form: str
    rows: int
    churn_rate: float
    trees: int
    roc_auc: float
    pr_auc: float
    lift_top10: float  # the riskiest tenth's churn rate over the base rate
    capture_top10: float  # the share of all churners the riskiest tenth holds
    expected_roc_auc: float  # what its (uncalibrated) probabilities imply
    ece: dict[str, float]  # per calibration method
    brier: dict[str, float]  # per calibration method
    predicted_rate: dict[str, float]  # mean probability per calibration method
    label_overlap_days: int


@dataclass
class Backtest:
    folds: list[Fold]
    scores: list[FoldScore]
    baselines: dict[str, dict[str, dict[str, float]]]  # judged cutoff -> baseline -> metrics
    form: str = ""
    calibration: str = ""
    trees: int = 0
    # the chosen form's margins and labels at each judged cutoff, to fit the calibration on
    margins: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    newest: dict[str, np.ndarray] = field(default_factory=dict)  # model and baselines, for plots
    newest_labels: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def chosen(self) -> list[FoldScore]:
        return [s for s in self.scores if s.form == self.form]

    def per_cutoff(self) -> list[dict[str, Any]]:
        """The chosen model's figures per judged cutoff, the baselines' ROC AUC beside them."""
        return [
            {
                "cutoff": s.judged,
                "rows": s.rows,
                "churn_rate": s.churn_rate,
                "predicted_rate": s.predicted_rate[self.calibration],
                "roc_auc": s.roc_auc,
                "pr_auc": s.pr_auc,
                "lift_top10": s.lift_top10,
                "capture_top10": s.capture_top10,
                "brier": s.brier[self.calibration],
                "expected_roc_auc": s.expected_roc_auc,
                "ece": s.ece[self.calibration],
                "label_overlap_days": s.label_overlap_days,
                **{
                    f"{b}_roc_auc": m["roc_auc"]
                    for b, m in self.baselines.get(s.judged, {}).items()
                },
            }
            for s in self.chosen()
        ]

    def summary(self) -> dict[str, float]:
        """Means (and the spread) over the folds: what the gate judges and MLflow records."""
        rows = self.per_cutoff()
        auc = np.array([r["roc_auc"] for r in rows])
        ece = np.array([r["ece"] for r in rows])
        out = {
            "roc_auc": float(auc.mean()),
            "roc_auc_min": float(auc.min()),
            "roc_auc_max": float(auc.max()),
            "roc_auc_std": float(auc.std()),
            **{k: float(np.mean([r[k] for r in rows])) for k in RANKING},
            "brier": float(np.mean([r["brier"] for r in rows])),
            "ece": float(ece.mean()),
            "ece_max": float(ece.max()),
            "expected_roc_auc": float(np.mean([r["expected_roc_auc"] for r in rows])),
            "churn_rate": float(np.mean([r["churn_rate"] for r in rows])),
            "predicted_rate": float(np.mean([r["predicted_rate"] for r in rows])),
            "folds": float(len(rows)),
            "label_overlap_days": float(max(r["label_overlap_days"] for r in rows)),
        }
        return out

    def baseline_summary(self) -> dict[str, dict[str, float]]:
        """Each baseline's metrics averaged over the folds."""
        names = {b for per in self.baselines.values() for b in per}
        return {
            b: {
                k: float(np.mean([per[b][k] for per in self.baselines.values() if b in per]))
                for k in ("roc_auc", "ece", "brier", *RANKING)
            }
            for b in sorted(names)
        }


def _score(
    model: CalibratedModel, split: TimeSplit, features: list[str], fold: Fold, form: str
) -> tuple[FoldScore, np.ndarray, dict[str, np.ndarray]]:
    validation_margin = model.margin(model_input(split.validation, features))
    margin = model.margin(model_input(split.holdout, features))
    y_validation = split.validation["churned"].to_numpy()
    y = split.holdout["churned"].to_numpy()
    probability = {
        method: fit_calibration(validation_margin, y_validation, method).apply(margin)
        for method in METHODS
    }
    metrics = {method: classification_metrics(y, p) for method, p in probability.items()}
    score = FoldScore(
        judged=f"{fold.judged:%Y-%m-%d}",
        form=form,
        rows=int(y.size),
        churn_rate=float(y.mean()),
        trees=int(model.classifier.best_iteration) + 1,
        roc_auc=metrics["none"]["roc_auc"],
        pr_auc=metrics["none"]["pr_auc"],
        lift_top10=metrics["none"]["lift_top10"],
        capture_top10=metrics["none"]["capture_top10"],
        expected_roc_auc=expected_roc_auc(probability["none"]),
        ece={m: v["ece"] for m, v in metrics.items()},
        brier={m: v["brier"] for m, v in metrics.items()},
        predicted_rate={m: float(p.mean()) for m, p in probability.items()},
        label_overlap_days=fold.label_overlap_days,
    )
    return score, margin, probability


def run_backtest(
    snapshots: pl.DataFrame,
    features: list[str],
    days: pl.DataFrame | None,
    customers: pl.DataFrame | None,
    *,
    config: TrainConfig,
    seed: int,
    horizon_days: int,
    log: Log,
    forms: Sequence[str] = FORMS,
    client: Client | None = None,
) -> Backtest:
    """Every fold, every form; then the choices: the form that ranks best on average (plain
    XGBoost unless another beats it by FORM_MARGIN), its median number of trees, and the
    calibration whose worst ECE over the folds is lowest. Baselines are fitted at every fold
    when `days` and `customers` are given. The models train on `client`'s Dask cluster when one
    is given (`fit_booster`), in this process otherwise."""
    cutoffs = sorted(snapshots["cutoff"].unique().to_list())
    folds = plan_folds(cutoffs, horizon_days)
    overlap = max(f.label_overlap_days for f in folds)
    log.info(
        f"backtest on {len(folds)} cutoffs ({', '.join(f'{f.judged:%Y-%m-%d}' for f in folds)})"
        + (
            f"; training labels overlap the judged horizon by up to {overlap} days"
            if overlap
            else ""
        )
    )
    backtest = Backtest(folds, [], {})
    probabilities: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    margins: dict[tuple[str, str], np.ndarray] = {}
    labels: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    for number, fold in enumerate(folds, 1):
        split = time_split(snapshots, fold.training, fold.judged)
        judged = f"{fold.judged:%Y-%m-%d}"
        labels[judged] = split.holdout["churned"].to_numpy()
        fitted = []
        # the linear form's base and the logistic baseline are one fit
        linear = (
            fit_linear(split.fit, features, seed)
            if (days is not None and customers is not None) or any(f != "xgboost" for f in forms)
            else None
        )
        for form in forms:
            model = fit_booster(split, features, config, seed, form, client, linear)
            score, margin, probability = _score(model, split, features, fold, form)
            backtest.scores.append(score)
            probabilities[(judged, form)], margins[(judged, form)] = probability, margin
            fitted.append(
                f"{form} ROC AUC {score.roc_auc:.3f} (implied {score.expected_roc_auc:.3f}), "
                f"ECE {score.ece['none']:.3f}, {score.trees} trees"
            )
        if days is not None and customers is not None and linear is not None:
            scores = baseline_probabilities(split, days, customers, horizon_days, linear)
            y = labels[judged]
            backtest.baselines[judged] = {
                b: classification_metrics(y, p) for b, p in scores.items()
            }
            if fold is folds[-1]:
                backtest.newest = dict(scores)
        log.info(
            f"  fold {number}/{len(folds)}, judged {judged} ({labels[judged].size:,} customers, "
            f"churn {labels[judged].mean():.1%}): {'; '.join(fitted)} "
            f"[{time.perf_counter() - started:.1f}s]"
        )
    mean_auc = {f: np.mean([s.roc_auc for s in backtest.scores if s.form == f]) for f in forms}
    best = max(forms, key=lambda f: mean_auc[f])
    plain = forms[0]
    backtest.form = best if mean_auc[best] > mean_auc[plain] + FORM_MARGIN else plain
    chosen = backtest.chosen()
    # the calibration that holds across the cutoffs: the lowest worst-case ECE, not the lowest
    # mean, since a map fitted to one churn level fails where the level moves
    worst_ece = {m: max(s.ece[m] for s in chosen) for m in METHODS}
    backtest.calibration = min(METHODS, key=lambda m: worst_ece[m])
    backtest.trees = int(np.median([s.trees for s in chosen]))
    backtest.margins = {j: (margins[(j, backtest.form)], labels[j]) for j in labels}
    newest = f"{folds[-1].judged:%Y-%m-%d}"
    backtest.newest = {
        "model": probabilities[(newest, backtest.form)][backtest.calibration],
        **backtest.newest,
    }
    backtest.newest_labels = labels[newest]
    log.info(
        f"chose {backtest.form} "
        f"({', '.join(f'{f} {a:.3f}' for f, a in mean_auc.items())} mean ROC AUC), "
        f"{backtest.trees} trees, calibration {backtest.calibration} "
        f"({', '.join(f'{m} {e:.3f}' for m, e in worst_ece.items())} worst ECE); "
        f"backtest in {time.perf_counter() - started:.1f}s"
    )
    return backtest


def scoring_model(
    snapshots: pl.DataFrame,
    features: list[str],
    config: TrainConfig,
    seed: int,
    backtest: Backtest,
    client: Client | None = None,
) -> CalibratedModel:
    """The model that scores: the backtest's form and trees refit on every labelled cutoff, with
    the chosen calibration fitted on the newest fold; on `client`'s Dask cluster if given."""
    return fit_on_all(
        snapshots,
        features,
        config,
        seed,
        backtest.form,
        backtest.trees,
        final_calibration(backtest),
        client,
    )


def final_calibration(backtest: Backtest) -> Calibration:
    """The chosen calibration for the model that scores, fitted on the newest fold's judged
    cutoff (the level closest to today's; a map fitted to an older level would be stale)."""
    margin, y = backtest.margins[f"{backtest.folds[-1].judged:%Y-%m-%d}"]
    return fit_calibration(margin, y, backtest.calibration)
