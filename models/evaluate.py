"""Holdout metrics: only ever computed on a later period than the model was trained on."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def classification_metrics(y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    if len(np.unique(y_true)) < 2:
        raise ValueError("the holdout has a single class: metrics are undefined; use more customers or a longer history")
    return {
        "roc_auc": float(roc_auc_score(y_true, probability)),
        "pr_auc": float(average_precision_score(y_true, probability)),
        "brier": float(brier_score_loss(y_true, probability)),
        "base_rate": float(np.mean(y_true)),
        "n": float(len(y_true)),
    }
