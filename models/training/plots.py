"""Plots logged with every training run, as PNG bytes: the holdout's ROC, precision-recall,
calibration and lift of the model against its baselines, and its SHAP attributions (a beeswarm of
the top features, and by touchpoint)."""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping

import matplotlib

if "ipykernel" not in sys.modules:  # a notebook that imports this keeps its inline plots
    matplotlib.use("Agg")  # no display on servers, in Dagster's workers and in tests
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap
from sklearn.metrics import precision_recall_curve, roc_curve

from models.training.evaluate import calibration_bins


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _axes(title: str, xlabel: str, ylabel: str):
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return fig, ax


def holdout_plots(
    y: np.ndarray, scores: dict[str, np.ndarray], model: str = "model"
) -> dict[str, bytes]:
    """{file name: PNG} for the holdout; `scores` maps each name (the model and each baseline) to
    probabilities."""
    y = np.asarray(y)
    plots = {}
    fig, ax = _axes("ROC (holdout)", "false positive rate", "true positive rate")
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, lw=2 if name == model else 1, label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.legend(fontsize=7)
    plots["roc.png"] = _png(fig)

    fig, ax = _axes("Precision-recall (holdout)", "recall", "precision")
    for name, p in scores.items():
        precision, recall, _ = precision_recall_curve(y, p)
        ax.plot(recall, precision, lw=2 if name == model else 1, label=name)
    ax.legend(fontsize=7)
    plots["precision_recall.png"] = _png(fig)

    fig, ax = _axes(
        "Calibration (holdout, equal-count bins)",
        "predicted churn probability",
        "observed churn rate",
    )
    predicted, observed, _ = calibration_bins(
        y.astype(float), np.asarray(scores[model], dtype=float)
    )
    top = max(predicted.max(), observed.max()) * 1.05
    ax.plot([0, top], [0, top], ":", color="grey")
    ax.plot(predicted, observed, "o-", label=model)
    ax.legend(fontsize=7)
    plots["calibration.png"] = _png(fig)

    fig, ax = _axes(
        "Cumulative lift (holdout)",
        "share of customers contacted, riskiest first",
        "lift over random",
    )
    share = np.arange(1, y.size + 1) / y.size
    for name, p in scores.items():
        caught = np.cumsum(y[np.argsort(-np.asarray(p), kind="stable")]) / y.sum()
        ax.plot(share, caught / share, lw=2 if name == model else 1, label=name)
    ax.axhline(1.0, ls=":", color="grey")
    ax.set_xlim(0.01, 1)
    ax.legend(fontsize=7)
    plots["lift.png"] = _png(fig)
    return plots


def attribution_plots(
    values: np.ndarray, X: pd.DataFrame, touchpoint_of: Mapping[str, str], top: int = 20
) -> dict[str, bytes]:
    """{file name: PNG}: shap's beeswarm of the `top` features, and mean |SHAP| summed by
    touchpoint (what the driver table rolls up), for the rows given."""
    plots = {}
    shap.summary_plot(values, X, max_display=top, show=False, plot_size=(7, 6))
    fig = plt.gcf()
    fig.suptitle("SHAP values (log-odds) of the top features")
    plots["shap_summary.png"] = _png(fig)

    weight = np.abs(values).mean(axis=0)
    by_touchpoint: dict[str, float] = {}
    for name, w in zip(X.columns, weight, strict=True):
        key = touchpoint_of.get(str(name), "other")
        by_touchpoint[key] = by_touchpoint.get(key, 0.0) + float(w)
    ranked = sorted(by_touchpoint.items(), key=lambda item: item[1])[-top:]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(ranked) + 1))
    ax.barh([t for t, _ in ranked], [w for _, w in ranked], color="#4c72b0")
    ax.set(
        title="Mean |SHAP| by touchpoint", xlabel="mean |SHAP| (log-odds), summed over its features"
    )
    plots["touchpoint_attribution.png"] = _png(fig)
    return plots
