"""The promotion gate: a new model replaces the champion only if its backtest is at least as good.

"As good" means ranking (mean backtest ROC AUC no worse than the champion's minus a tolerance, and
no worse than the best baseline's minus the same tolerance) and probabilities (mean expected
calibration error within a bound), plus a floor on ROC AUC so a useless first model is never made
champion just because there was none before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field

from models.training.config_part import ConfigPart


class GateConfig(ConfigPart):
    """The gate's bounds; a pydantic model so the model asset's Dagster config inherits them."""

    auc_tolerance: float = Field(
        default=0.01,
        description="How much lower than the champion's (or a baseline's) backtest ROC AUC a "
        "challenger may be and "
        "still be promoted.",
    )
    max_ece: float = Field(
        default=0.05,
        description="Largest mean backtest expected calibration error a champion may have.",
    )
    min_roc_auc: float = Field(
        default=0.60, description="Least mean backtest ROC AUC any champion must have."
    )


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)  # why not, when not


def acceptable(metrics: dict[str, float], gate: GateConfig) -> list[str]:
    """What makes a model unfit to score on its own, whatever the champion (empty when fit)."""
    reasons = []
    if metrics["roc_auc"] < gate.min_roc_auc:
        reasons.append(
            f"ROC AUC {metrics['roc_auc']:.3f} is below the floor {gate.min_roc_auc:.3f}"
        )
    if metrics["ece"] > gate.max_ece:
        reasons.append(
            f"expected calibration error {metrics['ece']:.3f} exceeds the bound {gate.max_ece:.3f}"
        )
    return reasons


def decide(
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    gate: GateConfig,
    baseline: tuple[str, float] | None = None,
) -> GateDecision:
    """Promote the challenger or not, from its backtest metrics, the champion's (None: there is
    none, or it cannot be compared) and the best baseline's backtest ROC AUC (name, value): a
    model that ranks worse than a simple rule, beyond the tolerance, is not worth its complexity."""
    reasons = acceptable(challenger, gate)
    if champion is not None and challenger["roc_auc"] < champion["roc_auc"] - gate.auc_tolerance:
        reasons.append(
            f"ROC AUC {challenger['roc_auc']:.3f} is worse than the champion's "
            f"{champion['roc_auc']:.3f} by more than {gate.auc_tolerance:.3f}"
        )
    if baseline is not None and challenger["roc_auc"] < baseline[1] - gate.auc_tolerance:
        reasons.append(
            f"ROC AUC {challenger['roc_auc']:.3f} is worse than the "
            f"{baseline[0].replace('_', ' ')} baseline's {baseline[1]:.3f} "
            f"by more than {gate.auc_tolerance:.3f}"
        )
    return GateDecision(promote=not reasons, reasons=reasons)
