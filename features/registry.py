"""The feature registry: every feature knows its touchpoint, phase, family and how to explain itself.

A feature is a pure function of the cutoff returning a Polars aggregation over one source table
(already restricted to rows strictly before the cutoff). Its reason template is the sentence a
retention agent reads when the feature drives a customer's risk, filled with the customer's value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from features.catalogue import Catalogue, touchpoints_for_event

WINDOWS_DAYS = (7, 30, 90)
PROFILE = "profile"
SOURCE_TIME = {"touches": "ts", "support": "opened_at", "surveys": "ts", "customers": "signup_at"}
SURVEY_SCALE_TOP = {"nps": 10, "csat": 5, "ces": 7, "repurchase": 10}
FRICTION_EVENTS = {
    # event type -> (words for the count, optional extra filter on the event)
    "payment_error": ("payment errors", None),
    "exit_intent": ("exits with intent to leave", None),
    "remove_from_cart": ("items removed from the cart", None),
    "unsubscribe": ("unsubscribes", None),
    "plan_downgrade": ("plan downgrades", None),
    "return_request": ("return requests", None),
    "search": ("searches that found nothing", pl.col("value") == 0),
}
FRICTION_NAMES = {"payment_error": "payment_errors", "exit_intent": "exit_intents", "remove_from_cart": "cart_removals",
                  "unsubscribe": "unsubscribes", "plan_downgrade": "downgrades", "return_request": "returns",
                  "search": "failed_searches"}


@dataclass(frozen=True)
class FeatureDef:
    name: str
    touchpoint: str
    phase: str
    family: str  # volume | recency | friction | support_quality | survey_voice | profile
    source: str  # touches | support | surveys | customers
    description: str
    reason: str  # str.format template over {value}
    expr: Callable[[datetime], pl.Expr]
    fill: float | None = 0.0  # value for a customer with no rows in the source (None: unknown)
    raises_risk_when: str = "high"  # which end of the feature a reason is worth saying for

    def explain(self, value: float | None) -> str:
        if value is None:
            return self.reason.replace("{value:.0f}", "no").replace("{value:.1f}", "no")
        return self.reason.format(value=value)


def _window(column: str, cutoff: datetime, days: int) -> pl.Expr:
    return pl.col(column) >= cutoff - timedelta(days=days)


def _count(condition: pl.Expr) -> pl.Expr:
    return condition.sum().cast(pl.Float64)


def _days_since(column: str, condition: pl.Expr, cutoff: datetime) -> pl.Expr:
    last = pl.col(column).filter(condition).max()
    return (pl.lit(cutoff, dtype=pl.Datetime("us", "UTC")) - last).dt.total_microseconds() / 86_400e6


def _touchpoint_features(catalogue: Catalogue, touchpoint: str, phase: str, label: str) -> list[FeatureDef]:
    here = pl.col("touchpoint") == touchpoint
    defs = [
        FeatureDef(
            f"{touchpoint}_touches_{d}d", touchpoint, phase, "volume", "touches",
            f"Touches at {label} in the {d} days before the cutoff.",
            f"{{value:.0f}} touches at {label} in the last {d} days",
            lambda c, d=d: _count(here & _window("ts", c, d)),
            raises_risk_when="low",
        )
        for d in WINDOWS_DAYS
    ]
    defs.append(
        FeatureDef(
            f"{touchpoint}_days_since_last", touchpoint, phase, "recency", "touches",
            f"Days since the last touch at {label} (empty if never).",
            f"{{value:.0f}} days since the last touch at {label}",
            lambda c: _days_since("ts", here, c), fill=None,
        )
    )
    for event_type, (words, extra) in FRICTION_EVENTS.items():
        if touchpoint not in touchpoints_for_event(catalogue, event_type):
            continue
        condition = here & (pl.col("event_type") == event_type)
        if extra is not None:
            condition = condition & extra.fill_null(False)
        defs += [
            FeatureDef(
                f"{touchpoint}_{FRICTION_NAMES[event_type]}_{d}d", touchpoint, phase, "friction", "touches",
                f"{words.capitalize()} at {label} in the {d} days before the cutoff.",
                f"{{value:.0f}} {words} at {label} in the last {d} days",
                lambda c, d=d, condition=condition: _count(condition & _window("ts", c, d)),
            )
            for d in WINDOWS_DAYS
        ]
    return defs


def _support_features(touchpoint: str, phase: str, label: str) -> list[FeatureDef]:
    here = pl.col("touchpoint") == touchpoint

    def answered_by(c: datetime) -> pl.Expr:
        return pl.col("first_response_at").is_not_null() & (pl.col("first_response_at") < c)

    def response_hours(c: datetime) -> pl.Expr:
        # an unanswered ticket has waited until the cutoff so far: open-ended, never "fast"
        until = pl.when(answered_by(c)).then(pl.col("first_response_at")).otherwise(pl.lit(c, dtype=pl.Datetime("us", "UTC")))
        return (until - pl.col("opened_at")).dt.total_microseconds() / 3_600e6

    def resolved_by(c: datetime) -> pl.Expr:
        return pl.col("resolved_at").is_not_null() & (pl.col("resolved_at") < c)

    defs = []
    for d in WINDOWS_DAYS:
        defs += [
            FeatureDef(f"{touchpoint}_tickets_{d}d", touchpoint, phase, "support_quality", "support",
                       f"Tickets opened via {label} in the {d} days before the cutoff.",
                       f"{{value:.0f}} tickets with {label} in the last {d} days",
                       lambda c, d=d: _count(here & _window("opened_at", c, d))),
            FeatureDef(f"{touchpoint}_unanswered_tickets_{d}d", touchpoint, phase, "support_quality", "support",
                       f"Tickets from the last {d} days with no first response from {label} by the cutoff.",
                       f"{{value:.0f}} support tickets still waiting for a first answer from {label}",
                       lambda c, d=d: _count(here & _window("opened_at", c, d) & ~answered_by(c))),
            FeatureDef(f"{touchpoint}_first_response_hours_max_{d}d", touchpoint, phase, "support_quality", "support",
                       f"Longest wait for a first response (hours) over the last {d} days' tickets; unanswered ones count until the cutoff.",
                       f"waited {{value:.0f}} hours for a first answer from {label}",
                       lambda c, d=d: response_hours(c).filter(here & _window("opened_at", c, d)).max(), fill=None),
        ]
    return defs + [
        FeatureDef(f"{touchpoint}_unresolved_tickets", touchpoint, phase, "support_quality", "support",
                   "Tickets still unresolved at the cutoff.",
                   f"{{value:.0f}} unresolved tickets with {label}",
                   lambda c: _count(here & ~resolved_by(c))),
        FeatureDef(f"{touchpoint}_escalated_tickets_90d", touchpoint, phase, "support_quality", "support",
                   "Escalated tickets opened in the 90 days before the cutoff.",
                   f"{{value:.0f}} escalated tickets with {label} in the last 90 days",
                   lambda c: _count(here & _window("opened_at", c, 90) & pl.col("escalated").fill_null(False))),
    ]


def _survey_features(touchpoint: str, phase: str, label: str, survey_type: str) -> list[FeatureDef]:
    here = (pl.col("touchpoint") == touchpoint) & (pl.col("survey_type") == survey_type)
    top = SURVEY_SCALE_TOP[survey_type]
    name = survey_type.upper() if survey_type in ("nps", "csat", "ces") else "would-buy-again"
    return [
        FeatureDef(f"{touchpoint}_{survey_type}_last", touchpoint, phase, "survey_voice", "surveys",
                   f"Last {name} score given about {label} before the cutoff.",
                   f"rated {label} {{value:.0f}} of {top} ({name})",
                   lambda c: pl.col("score").sort_by("ts").filter(here.sort_by(pl.col("ts"))).last(), fill=None, raises_risk_when="low"),
    ] + [
        FeatureDef(f"{touchpoint}_{survey_type}_mean_{d}d", touchpoint, phase, "survey_voice", "surveys",
                   f"Mean {name} score about {label} in the {d} days before the cutoff.",
                   f"average {name} of {{value:.1f}} of {top} about {label} in the last {d} days",
                   lambda c, d=d: pl.col("score").filter(here & _window("ts", c, d)).mean(), fill=None, raises_risk_when="low")
        for d in WINDOWS_DAYS
    ]


def _profile_features() -> list[FeatureDef]:
    return [
        FeatureDef("profile_tenure_days", PROFILE, PROFILE, "profile", "customers",
                   "Days from signup to the cutoff.", "customer for {value:.0f} days",
                   lambda c: (pl.lit(c, dtype=pl.Datetime("us", "UTC")) - pl.col("signup_at")).dt.total_microseconds() / 86_400e6,
                   fill=None),
        FeatureDef("profile_monthly_value", PROFILE, PROFILE, "profile", "customers",
                   "Monthly value of the customer's plan.", "pays {value:.0f} a month",
                   lambda c: pl.col("monthly_value"), fill=None),
    ]


def build_registry(catalogue: Catalogue, support_touchpoints: list[str], survey_pairs: list[tuple[str, str]]) -> list[FeatureDef]:
    """All features for a catalogue, plus support and survey features for the touchpoints the data
    has tickets and answers for (the same inputs always give the same registry)."""
    defs: list[FeatureDef] = []
    for t in catalogue.touchpoints:
        defs += _touchpoint_features(catalogue, t.name, t.phase, t.label)
        if t.name in support_touchpoints:
            defs += _support_features(t.name, t.phase, t.label)
        for touchpoint, survey_type in sorted(survey_pairs):
            if touchpoint == t.name and survey_type in SURVEY_SCALE_TOP:
                defs += _survey_features(t.name, t.phase, t.label, survey_type)
    defs += _profile_features()
    names = [d.name for d in defs]
    assert len(names) == len(set(names)), "feature names must be unique"
    return defs


def registry_table(registry: list[FeatureDef]) -> pl.DataFrame:
    """The registry as data: what the pipeline stores beside the features, and the data dictionary."""
    return pl.DataFrame(
        [
            {"feature": d.name, "touchpoint": d.touchpoint, "phase": d.phase, "family": d.family, "source": d.source,
             "description": d.description, "reason": d.reason, "raises_risk_when": d.raises_risk_when}
            for d in registry
        ]
    )
