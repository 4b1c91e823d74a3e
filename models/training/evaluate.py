"""Holdout metrics: only ever computed on a later period than the model was trained on.

Retention teams act on probabilities and on the top of the list, so beside ranking (ROC AUC, PR AUC)
we report calibration (Brier, expected calibration error) and what the top 5/10/20% would catch.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

TOP_FRACTIONS = (0.05, 0.10, 0.20)
CALIBRATION_BINS = 10


def _check(y_true: np.ndarray, probability: np.ndarray) -> None:
    if len(y_true) != len(probability):
        raise ValueError(f"{len(y_true)} labels but {len(probability)} probabilities")
    if len(np.unique(y_true)) < 2:
        raise ValueError(
            "the holdout has a single class: metrics are undefined; "
            "use more customers or a longer history"
        )


def calibration_bins(
    y_true: np.ndarray, probability: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean predicted, observed rate, customers) per equal-count bin of predictions.

    Equal-count bins, because with a 10% churn rate nearly every prediction falls in the first
    of ten equal-width bins, which would hide any miscalibration among the customers who matter.
    """
    order = np.argsort(probability, kind="stable")
    groups = [g for g in np.array_split(order, bins) if g.size]
    predicted = np.array([probability[g].mean() for g in groups])
    observed = np.array([y_true[g].mean() for g in groups])
    return predicted, observed, np.array([g.size for g in groups])


def expected_calibration_error(
    y_true: np.ndarray, probability: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """Customer-weighted mean gap between predicted and observed churn over equal-count bins."""
    predicted, observed, counts = calibration_bins(
        np.asarray(y_true, dtype=float), np.asarray(probability, dtype=float), bins
    )
    return float(np.sum(counts * np.abs(predicted - observed)) / counts.sum())


def lift_and_capture(
    y_true: np.ndarray, probability: np.ndarray, fractions: tuple[float, ...] = TOP_FRACTIONS
) -> dict[str, float]:
    """For the riskiest `fraction` of customers: churn rate over the base rate (lift) and share of
    all churners caught (capture)."""
    y = np.asarray(y_true, dtype=float)
    order = np.argsort(-np.asarray(probability, dtype=float), kind="stable")
    out = {}
    for fraction in fractions:
        top = y[order[: max(1, int(round(fraction * y.size)))]]
        pct = int(round(fraction * 100))
        out[f"lift_top{pct}"] = float(top.mean() / y.mean())
        out[f"capture_top{pct}"] = float(top.sum() / y.sum())
    return out


def classification_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """Ranking, calibration and top-of-list metrics of probabilities against 0/1 outcomes."""
    y_true, probability = np.asarray(y_true), np.asarray(probability, dtype=float)
    _check(y_true, probability)
    return {
        "roc_auc": float(roc_auc_score(y_true, probability)),
        "pr_auc": float(average_precision_score(y_true, probability)),
        "brier": float(brier_score_loss(y_true, probability)),
        "ece": expected_calibration_error(y_true, probability),
        **lift_and_capture(y_true, probability),
        "base_rate": float(np.mean(y_true)),
        "n": float(len(y_true)),
    }


def expected_roc_auc(probability: np.ndarray) -> float:
    """The ROC AUC a list's probabilities imply if they are right: the chance that a customer who
    leaves is ranked above one who stays, with each customer leaving with their own probability.

    No outcome is needed, so it can be taken for today's list, whose outcomes are months away; the
    backtest sets it beside the ROC AUC that happened at each of its cutoffs, which says how far
    to trust it (a model whose probabilities are off is off here too)."""
    p = np.sort(np.asarray(probability, dtype=float))
    stays = 1.0 - p
    stayers_below = np.cumsum(stays) - stays
    pairs = p.sum() * stays.sum() - np.sum(p * stays)
    return float(np.sum(p * stayers_below) / pairs) if pairs > 0 else 0.5
