"""Feature families, generated per touchpoint from the catalogue.

Each function returns FeatureDefs whose `expr(cutoff)` either aggregates a source's rows per
customer (tickets, survey answers) or reads a table with one row per customer (the windows over
customer-days, the customers table). Names read as sentences: `<touchpoint>_<what>_<window>`
(`checkout_payment_errors_30d`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

import polars as pl

from features import purchases
from features.catalogue import (
    OTHER,
    PHASE_LABELS,
    PHASES,
    Catalogue,
    Touchpoint,
    touchpoints_for_event,
)
from features.feature import CUSTOMER_VALUE, JOURNEY, PROFILE, SOURCE_TIME, FeatureDef
from features.ingest.contract import SURVEY_SCALES
from features.touchpoint_days import (
    ABANDONED_CHECKOUTS,
    FRICTION_EVENTS,
    LAST_TOUCH,
    friction_pairs,
    last_touchpoint_code,
    touches_column,
    touchpoint_codes,
)
from features.voice.bands import BAND_LABELS, CUT_POINTS, DISAPPOINTMENT, TICKET
from features.voice.themes import Theme
from features.windows import ACTIVE_DAYS, EXIT_DAYS, WINDOWS_DAYS, last_day_column, window_column

SLOW_FIRST_RESPONSE_HOURS = 24.0
# how a reason names each survey type; its scale is the contract's (SURVEY_SCALES)
SURVEY_NAMES = {
    "nps": "NPS",
    "csat": "CSAT",
    "ces": "effort score (CES)",
    "repurchase": "would-buy-again",
}
UTC_US = pl.Datetime("us", "UTC")


def _since(column: str, cutoff: datetime, days: int) -> pl.Expr:
    return pl.col(column) >= cutoff - timedelta(days=days)


def _count(condition: pl.Expr) -> pl.Expr:
    return condition.sum().cast(pl.Float64)


def _window(column: str, days: int) -> pl.Expr:
    """A day column summed over the `days` days before the cutoff (`features.windows`)."""
    return pl.col(window_column(column, days)).cast(pl.Float64)


def _days(delta: pl.Expr) -> pl.Expr:
    """A duration in days. Never negative: ingest quarantines the rows that would make one, and
    a duration below zero would read as "faster than instant" to the model."""
    return (delta.dt.total_microseconds() / 86_400e6).clip(lower_bound=0.0)


def _hours(delta: pl.Expr) -> pl.Expr:
    """A duration in hours, never negative (as `_days`)."""
    return (delta.dt.total_microseconds() / 3_600e6).clip(lower_bound=0.0)


def _band_of(survey_type: str) -> str:
    """The scores a survey type's disappointed band holds, in words: "scores 0-6"."""
    return f"scores {SURVEY_SCALES[survey_type][0]}-{CUT_POINTS[survey_type][0]}"


def _number_of(one: str, many: str) -> str:
    """A count in a reason template that agrees with its noun: "1 touch", "3 touches"."""
    return f"{{value:.0f}} {{value:{one}|{many}}}"


def _changed_by(unit: str, units: str) -> str:
    """A signed change in a reason template, said as a direction: "dropped by 2 points"."""
    size = f"{{size:.0f}} {{size:{unit}|{units}}}"
    return f"{{value:dropped by {size}|did not change|rose by {size}}}"


def touchpoint_features(catalogue: Catalogue, t: Touchpoint) -> list[FeatureDef]:
    """Volume, recency, trend, being the last touch, and the friction events this touchpoint
    claims."""
    column = touches_column(t.name)
    code = touchpoint_codes(catalogue)[t.name]
    defs = [
        FeatureDef(
            f"{t.name}_touches_{d}d",
            t.name,
            t.phase,
            "volume",
            "windows",
            f"Touches at {t.label} in the {d} days before the cutoff.",
            f"{_number_of('touch', 'touches')} at {t.label} in the last {d} days",
            lambda c, d=d: _window(column, d),
            raises_risk_when="low",
        )
        for d in WINDOWS_DAYS
    ]
    defs += [
        FeatureDef(
            f"{t.name}_days_since_last",
            t.name,
            t.phase,
            "recency",
            "windows",
            f"Days since the last day with a touch at {t.label} "
            "(1 = the day before the cutoff; empty if never).",
            f"{_number_of('day', 'days')} since the last touch at {t.label}",
            lambda c: _days(pl.lit(c, dtype=UTC_US) - pl.col(last_day_column(column))),
            fill=None,
            reason_missing=f"never touched {t.label}",
        ),
        FeatureDef(
            f"{t.name}_touches_trend_30d",
            t.name,
            t.phase,
            "trend",
            "windows",
            f"Touches at {t.label} in the last 30 days over the monthly average of the 60 days "
            "before (1 = steady, below 1 = fading; both counts smoothed by one).",
            f"{{value:.0%}} as many touches at {t.label} in the last 30 days "
            "as in an average month before",
            lambda c: (
                (_window(column, 30) + 1) / ((_window(column, 90) - _window(column, 30)) / 2 + 1)
            ),
            fill=1.0,
            raises_risk_when="low",
        ),
        FeatureDef(
            f"{t.name}_was_last_touch",
            t.name,
            t.phase,
            "journey",
            "windows",
            f"1 if the customer's last touch before the cutoff was at {t.label}.",
            f"the last contact before going quiet {{value:was|was not}} at {t.label}",
            lambda c: (last_touchpoint_code(pl.col(LAST_TOUCH)) == code).cast(pl.Float64),
        ),
    ]
    for friction in friction_pairs(catalogue):
        if friction.touchpoint != t.name:
            continue
        event = FRICTION_EVENTS[friction.event_type]
        defs += [
            FeatureDef(
                f"{t.name}_{event.word}_{d}d",
                t.name,
                t.phase,
                "friction",
                "windows",
                f"{event.many.capitalize()} at {t.label} in the {d} days before the cutoff.",
                f"{_number_of(event.one, event.many)} at {t.label} in the last {d} days",
                lambda c, d=d, column=friction.column: _window(column, d),
            )
            for d in WINDOWS_DAYS
        ]
    if t.name in touchpoints_for_event(catalogue, "checkout_start"):
        defs += [
            FeatureDef(
                f"{t.name}_abandoned_checkouts_{d}d",
                t.name,
                t.phase,
                "friction",
                "windows",
                f"Checkouts started in the last {d} days without a purchase the same day.",
                f"{_number_of('checkout', 'checkouts')} started and abandoned in the last {d} days",
                lambda c, d=d: _window(ABANDONED_CHECKOUTS, d),
            )
            for d in (30, 90)
        ]
    return defs


def support_features(t: Touchpoint) -> list[FeatureDef]:
    """Support quality as the customer lived it: waits count until the cutoff when nobody
    answered."""
    here = pl.col("touchpoint") == t.name

    def answered(c: datetime) -> pl.Expr:
        return pl.col("first_response_at").is_not_null() & (pl.col("first_response_at") < c)

    def resolved(c: datetime) -> pl.Expr:
        return pl.col("resolved_at").is_not_null() & (pl.col("resolved_at") < c)

    def waited_hours(c: datetime, until: pl.Expr, done: pl.Expr) -> pl.Expr:
        # an open ticket has waited until the cutoff so far: open-ended, never "fast"
        return _hours(
            pl.when(done).then(until).otherwise(pl.lit(c, dtype=UTC_US)) - pl.col("opened_at")
        )

    def first_response_hours(c: datetime) -> pl.Expr:
        return waited_hours(c, pl.col("first_response_at"), answered(c))

    def recent(c: datetime, days: int) -> pl.Expr:
        return here & _since("opened_at", c, days)

    defs = []
    for d in WINDOWS_DAYS:
        defs += [
            FeatureDef(
                f"{t.name}_tickets_{d}d",
                t.name,
                t.phase,
                "support_quality",
                "support",
                f"Tickets opened with {t.label} in the {d} days before the cutoff.",
                f"{_number_of('ticket', 'tickets')} with {t.label} in the last {d} days",
                lambda c, d=d: _count(recent(c, d)),
            ),
            FeatureDef(
                f"{t.name}_unanswered_tickets_{d}d",
                t.name,
                t.phase,
                "support_quality",
                "support",
                f"Tickets from the last {d} days with no first response from {t.label} "
                "by the cutoff.",
                f"{_number_of('ticket', 'tickets')} still waiting "
                f"for a first answer from {t.label}",
                lambda c, d=d: _count(recent(c, d) & ~answered(c)),
            ),
            FeatureDef(
                f"{t.name}_first_response_hours_max_{d}d",
                t.name,
                t.phase,
                "support_quality",
                "support",
                f"Longest wait for a first response (hours) over the last {d} days' tickets; "
                "unanswered ones count until the cutoff.",
                f"waited {_number_of('hour', 'hours')} for a first answer from {t.label}",
                lambda c, d=d: first_response_hours(c).filter(recent(c, d)).max(),
                fill=None,
                reason_missing=f"no tickets with {t.label} in the last {d} days",
            ),
        ]
    return defs + [
        FeatureDef(
            f"{t.name}_slow_or_unanswered_tickets_30d",
            t.name,
            t.phase,
            "support_quality",
            "support",
            "Tickets from the last 30 days that waited over "
            f"{SLOW_FIRST_RESPONSE_HOURS:.0f} hours for a first response (or still wait).",
            f"{_number_of('ticket', 'tickets')} with {t.label} "
            "waited over a day for a first answer",
            lambda c: _count(recent(c, 30) & (first_response_hours(c) > SLOW_FIRST_RESPONSE_HOURS)),
        ),
        FeatureDef(
            f"{t.name}_resolution_hours_max_90d",
            t.name,
            t.phase,
            "support_quality",
            "support",
            "Longest time to resolution (hours) over the last 90 days' tickets; "
            "unresolved ones count until the cutoff.",
            f"a ticket with {t.label} took {_number_of('hour', 'hours')} "
            "to resolve (or is still open)",
            lambda c: (
                waited_hours(c, pl.col("resolved_at"), resolved(c)).filter(recent(c, 90)).max()
            ),
            fill=None,
            reason_missing=f"no tickets with {t.label} in the last 90 days",
        ),
        FeatureDef(
            f"{t.name}_unresolved_tickets",
            t.name,
            t.phase,
            "support_quality",
            "support",
            "Tickets still unresolved at the cutoff.",
            f"{_number_of('unresolved ticket', 'unresolved tickets')} with {t.label}",
            lambda c: _count(here & ~resolved(c)),
        ),
        FeatureDef(
            f"{t.name}_reopened_90d",
            t.name,
            t.phase,
            "support_quality",
            "support",
            "Times the last 90 days' tickets were reopened.",
            f"tickets with {t.label} reopened {_number_of('time', 'times')} in the last 90 days",
            lambda c: pl.col("reopened").filter(recent(c, 90)).fill_null(0).sum().cast(pl.Float64),
        ),
        FeatureDef(
            f"{t.name}_escalated_tickets_90d",
            t.name,
            t.phase,
            "support_quality",
            "support",
            "Escalated tickets opened in the 90 days before the cutoff.",
            f"{_number_of('escalated ticket', 'escalated tickets')} with {t.label} "
            "in the last 90 days",
            lambda c: _count(recent(c, 90) & pl.col("escalated").fill_null(False)),
        ),
        FeatureDef(
            f"{t.name}_channel_switches_30d",
            t.name,
            t.phase,
            "support_quality",
            "support",
            "Tickets in the last 30 days repeating the previous ticket's category "
            "on another channel within a week.",
            f"chased the same issue on {_number_of('other channel', 'other channels')} "
            "within a week",
            lambda c: _count(recent(c, 30) & pl.col("channel_switch")),
        ),
    ]


def survey_features(t: Touchpoint, survey_type: str) -> list[FeatureDef]:
    """What the customer said about this touchpoint: last and mean scores, the latest change, and
    the NPS category or the share of low-effort CES answers."""
    if survey_type not in SURVEY_NAMES:
        return []
    name, top = SURVEY_NAMES[survey_type], SURVEY_SCALES[survey_type][1]
    low = CUT_POINTS[survey_type][0]
    here = (pl.col("touchpoint") == t.name) & (pl.col("survey_type") == survey_type)
    prefix = f"{t.name}_{survey_type}"
    never_rated = f"never rated {t.label} ({name})"

    def scores_in_order() -> pl.Expr:
        # answers are sorted by time once (features.snapshots.feature_sources), and a group keeps
        # its rows' order
        return pl.col("score").filter(here)

    def last() -> pl.Expr:
        return scores_in_order().last()

    defs = (
        [
            FeatureDef(
                f"{prefix}_last",
                t.name,
                t.phase,
                "survey_voice",
                "surveys",
                f"Last {name} given about {t.label} before the cutoff.",
                f"rated {t.label} {{value:.0f}} of {top} ({name})",
                lambda c: last(),
                fill=None,
                raises_risk_when="low",
                reason_missing=never_rated,
            ),
            FeatureDef(
                f"{prefix}_change",
                t.name,
                t.phase,
                "survey_voice",
                "surveys",
                f"Change between the last two {name} answers about {t.label}.",
                f"{name} about {t.label} {_changed_by('point', 'points')}",
                lambda c: last() - scores_in_order().slice(-2, 1).first(),
                fill=None,
                raises_risk_when="low",
                reason_missing=f"fewer than two {name} answers about {t.label}",
            ),
        ]
        + [
            FeatureDef(
                f"{prefix}_mean_{d}d",
                t.name,
                t.phase,
                "survey_voice",
                "surveys",
                f"Mean {name} about {t.label} in the {d} days before the cutoff.",
                f"average {name} of {{value:.1f}} of {top} about {t.label} in the last {d} days",
                lambda c, d=d: pl.col("score").filter(here & _since("ts", c, d)).mean(),
                fill=None,
                raises_risk_when="low",
                reason_missing=f"no {name} answers about {t.label} in the last {d} days",
            )
            for d in (30, 90)
        ]
        + [
            # a bad experience repeated: the mean hides how many low answers a customer gave
            FeatureDef(
                f"{prefix}_disappointed_{d}d",
                t.name,
                t.phase,
                "survey_voice",
                "surveys",
                f"{name} answers about {t.label} in the disappointed band "
                f"({_band_of(survey_type)}) in the {d} days before the cutoff.",
                f"{_number_of('disappointed answer', 'disappointed answers')} about {t.label} "
                f"({name}) in the last {d} days",
                lambda c, d=d: _count(here & _since("ts", c, d) & (pl.col("score") <= low)),
            )
            for d in (30, 90)
        ]
    )
    if survey_type == "nps":
        defs += [
            FeatureDef(
                f"{prefix}_detractor",
                t.name,
                t.phase,
                "survey_voice",
                "surveys",
                f"1 if the last NPS about {t.label} was 0-6 (detractor), 0 if higher; "
                "empty if never asked.",
                f"{{value:a|not a}} detractor of {t.label} at the last NPS survey",
                lambda c: (last() <= 6).cast(pl.Float64),
                fill=None,
                reason_missing=never_rated,
            ),
            FeatureDef(
                f"{prefix}_promoter",
                t.name,
                t.phase,
                "survey_voice",
                "surveys",
                f"1 if the last NPS about {t.label} was 9-10 (promoter), 0 if lower; "
                "empty if never asked.",
                f"{{value:a|not a}} promoter of {t.label} at the last NPS survey",
                lambda c: (last() >= 9).cast(pl.Float64),
                fill=None,
                raises_risk_when="low",
                reason_missing=never_rated,
            ),
        ]
    if survey_type == "ces":
        defs.append(
            FeatureDef(
                f"{prefix}_low_effort_share_90d",
                t.name,
                t.phase,
                "survey_voice",
                "surveys",
                f"Share of the last 90 days' CES answers about {t.label} scoring 5-7 (easy).",
                f"found {t.label} easy in {{value:.0%}} of {name} answers in the last 90 days",
                lambda c: (pl.col("score").filter(here & _since("ts", c, 90)) >= 5).mean(),
                fill=None,
                raises_risk_when="low",
                reason_missing=f"no {name} answers about {t.label} in the last 90 days",
            )
        )
    return defs


SAYS = "_says_"  # in the name of every theme feature: <touchpoint>_says_<theme key>_90d


def is_theme_feature(name: str) -> bool:
    return SAYS in name


def voice_features(t: Touchpoint, themes: Sequence[Theme]) -> list[FeatureDef]:
    """How often the customer's own words at this touchpoint fell in each of its disappointment
    and ticket themes (`features.voice.themes`) in the last 90 days; the catch-all theme, which
    gathers what no theme explains, is no feature."""
    defs = []
    for theme in themes:
        if theme.catch_all or theme.band not in (DISAPPOINTMENT, TICKET):
            continue
        source, wrote = ("support", "ticket") if theme.band == TICKET else ("surveys", "survey")
        said = (pl.col("touchpoint") == t.name) & (pl.col("theme") == theme.key)
        defs.append(
            FeatureDef(
                f"{t.name}{SAYS}{theme.key}_90d",
                t.name,
                t.phase,
                "voice_themes",
                source,
                f"{wrote.capitalize()} texts about {t.label} in the last 90 days in the theme "
                f"'{theme.label}' ({BAND_LABELS[theme.band]}).",
                f'wrote about "{theme.label}" at {t.label} '
                f"{{value:once|{{value:.0f}} times}} in the last 90 days ({wrote})",
                lambda c, said=said, source=source: _count(
                    said & _since(SOURCE_TIME[source], c, 90)
                ),
            )
        )
    return defs


def journey_features(catalogue: Catalogue) -> list[FeatureDef]:
    """The shape of the journey: where activity sits by phase, active days, days that end in an
    exit."""
    names = [*catalogue.names, OTHER]

    def touches_in(names: list[str]) -> pl.Expr:
        return pl.sum_horizontal(_window(touches_column(n), 90) for n in names)

    def share(phase: str) -> pl.Expr:
        total = touches_in(names)
        return pl.when(total > 0).then(
            touches_in([n for n in catalogue.names if catalogue.phase_of(n) == phase]) / total
        )

    defs = [
        FeatureDef(
            f"{JOURNEY}_{p}_share_90d",
            JOURNEY,
            p,
            "journey",
            "windows",
            f"Share of the last 90 days' touches in the {p.replace('_', ' ')} phase.",
            f"{{value:.0%}} of recent activity {PHASE_LABELS[p]}",
            lambda c, p=p: share(p),
            fill=None,
            reason_missing="no activity in the last 90 days",
        )
        for p in PHASES
    ]
    return defs + [
        FeatureDef(
            f"{JOURNEY}_days_ending_in_exit_30d",
            JOURNEY,
            JOURNEY,
            "journey",
            "windows",
            "Days in the last 30 whose last event was an exit intent.",
            f"{_number_of('day', 'days')} in the last 30 ended with an exit intent",
            lambda c: _window(EXIT_DAYS, 30),
        ),
        FeatureDef(
            f"{JOURNEY}_active_days_30d",
            JOURNEY,
            JOURNEY,
            "volume",
            "windows",
            "Days with any touch in the last 30 days.",
            "active on {value:.0f} of the last 30 days",
            lambda c: _window(ACTIVE_DAYS, 30),
            raises_risk_when="low",
        ),
    ]


# read by name where a stage needs the customer's age: the drift check compares established
# customers
TENURE_DAYS = f"{PROFILE}_tenure_days"


def profile_features(plans: list[str], monthly_value: bool = True) -> list[FeatureDef]:
    """Tenure, value and plan: context that shifts risk, not a touchpoint to fix. The monthly
    value only where the data has one (the contract makes it optional)."""
    defs = [
        FeatureDef(
            TENURE_DAYS,
            PROFILE,
            PROFILE,
            "profile",
            "customers",
            "Days from signup to the cutoff.",
            f"customer for {_number_of('day', 'days')}",
            lambda c: _days(pl.lit(c, dtype=UTC_US) - pl.col("signup_at")),
            fill=None,
            reason_missing="signup date unknown",
            ages=True,
        ),
        FeatureDef(
            "profile_monthly_value",
            PROFILE,
            PROFILE,
            "profile",
            "customers",
            "Monthly value of the customer's plan.",
            "pays {value:.0f} a month",
            lambda c: pl.col("monthly_value"),
            fill=None,
            reason_missing="monthly value unknown",
        ),
    ]
    if not monthly_value:
        defs = defs[:1]
    return defs + [
        FeatureDef(
            f"profile_plan_is_{_slug(plan)}",
            PROFILE,
            PROFILE,
            "profile",
            "customers",
            f"1 if the customer is on the {plan} plan.",
            f"{{value:on|not on}} the {plan} plan",
            lambda c, plan=plan: (pl.col("plan") == plan).cast(pl.Float64),
        )
        for plan in plans
    ]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unnamed"


# the customer-value features other stages read by name: the scored list's spend per month
TOTAL_ORDER_VALUE = f"{CUSTOMER_VALUE}_total_order_value"
DAYS_SINCE_FIRST_PURCHASE = f"{CUSTOMER_VALUE}_days_since_first_purchase"


def customer_value_features(horizon_days: int) -> list[FeatureDef]:
    """The customer's whole purchase history (RFM and beyond): how often and how much they buy,
    how long since they last did against their usual gap, and the BG/NBD model's figures. For a
    purchase-only business this is most of what is known about a customer, and the long windows
    see what the 90-day touch windows cannot."""
    since_last = f"{CUSTOMER_VALUE}_days_since_last_purchase"
    mean_gap = f"{CUSTOMER_VALUE}_mean_purchase_gap_days"

    def days_before(c: datetime, column: str) -> pl.Expr:
        return _days(pl.lit(c, dtype=UTC_US) - pl.col(column))

    def gap_mean() -> pl.Expr:
        # first to last purchase day over the gaps between them; none with a single purchase day
        span = _days(pl.col(purchases.LAST) - pl.col(purchases.FIRST))
        return pl.when(pl.col(purchases.PURCHASE_DAYS) > 1).then(
            span / (pl.col(purchases.PURCHASE_DAYS) - 1)
        )

    def feature(name: str, family: str, description: str, reason: str, expr, **kw) -> FeatureDef:
        return FeatureDef(
            f"{CUSTOMER_VALUE}_{name}",
            CUSTOMER_VALUE,
            CUSTOMER_VALUE,
            family,
            "purchases",
            description,
            reason,
            expr,
            **kw,
        )

    never = "has not bought yet"
    return [
        feature(
            "purchase_days",
            "customer_value",
            "Days with a purchase over the whole history before the cutoff.",
            f"bought on {_number_of('day', 'days')} so far",
            lambda c: pl.col(purchases.PURCHASE_DAYS).cast(pl.Float64),
            raises_risk_when="low",
            ages=True,
        ),
        *[
            feature(
                f"purchase_days_{d}d",
                "customer_value",
                f"Days with a purchase in the {d} days before the cutoff.",
                f"bought on {_number_of('day', 'days')} in the last {d} days",
                lambda c, d=d: pl.col(purchases.history_column(d)).cast(pl.Float64),
                raises_risk_when="low",
            )
            for d in purchases.HISTORY_WINDOWS_DAYS
        ],
        feature(
            "total_order_value",
            "customer_value",
            "What all the customer's orders before the cutoff were worth.",
            "spent {value:,.0f} so far",
            lambda c: pl.col(purchases.VALUE),
            raises_risk_when="low",
            ages=True,
        ),
        feature(
            "mean_order_value",
            "customer_value",
            "Mean value of the customer's orders before the cutoff.",
            "orders worth {value:,.0f} on average",
            lambda c: pl.col(purchases.VALUE) / pl.col(purchases.ORDERS),
            fill=None,
            raises_risk_when="low",
            reason_missing=never,
        ),
        feature(
            "days_since_first_purchase",
            "customer_value",
            "Days from the first purchase to the cutoff (empty before any purchase).",
            f"first bought {_number_of('day', 'days')} ago",
            lambda c: days_before(c, purchases.FIRST),
            fill=None,
            raises_risk_when="low",
            reason_missing=never,
            ages=True,
        ),
        feature(
            "days_since_last_purchase",
            "customer_value",
            "Days from the last purchase day to the cutoff (1 = the day before; empty before any).",
            f"no purchase for {_number_of('day', 'days')}",
            lambda c: days_before(c, purchases.LAST),
            fill=None,
            reason_missing=never,
        ),
        feature(
            "mean_purchase_gap_days",
            "customer_value",
            "Mean days between purchase days (empty with fewer than two).",
            f"buys every {_number_of('day', 'days')} on average",
            lambda c: gap_mean(),
            fill=None,
            reason_missing="bought on one day only",
        ),
        feature(
            "last_purchase_gap_days",
            "customer_value",
            "Days between the last two purchase days (empty with fewer than two).",
            f"{_number_of('day', 'days')} between the last two purchases",
            lambda c: _days(pl.col(purchases.LAST) - pl.col(purchases.PREVIOUS)),
            fill=None,
            reason_missing="bought on one day only",
        ),
        feature(
            "overdue",
            "customer_value",
            "Days since the last purchase over the mean gap between purchases: above 1, the next "
            "purchase is later than usual (empty with fewer than two purchase days).",
            f"no purchase for {{{since_last}:.0f}} {{{since_last}:day|days}}; "
            f"used to buy every {{{mean_gap}:.0f}} {{{mean_gap}:day|days}}",
            lambda c: days_before(c, purchases.LAST) / gap_mean(),
            fill=None,
            reason_missing="bought on one day only",
            reason_context=(since_last, mean_gap),
        ),
        feature(
            "purchase_rate_30d",
            "customer_value",
            "Purchase days per 30 days since the first purchase.",
            "bought on {value:.1f} days a month",
            lambda c: (
                pl.col(purchases.PURCHASE_DAYS)
                / (days_before(c, purchases.FIRST).clip(lower_bound=1.0) / 30.0)
            ),
            fill=None,
            raises_risk_when="low",
            reason_missing=never,
        ),
        feature(
            "bgnbd_p_alive",
            "customer_value",
            "BG/NBD probability the customer is still buying, from the purchase histories known "
            "a month before the cutoff.",
            "{value:.0%} likely to still be buying (BG/NBD)",
            lambda c: pl.col(purchases.P_ALIVE),
            fill=None,
            raises_risk_when="low",
            reason_missing="too little purchase history for the BG/NBD model",
            ages=True,
        ),
        feature(
            "bgnbd_expected_purchases",
            "customer_value",
            f"Purchase days the BG/NBD model expects in the next {horizon_days} days.",
            f"expected to buy on {{value:.1f}} days in the next {horizon_days}",
            lambda c: pl.col(purchases.EXPECTED),
            fill=None,
            raises_risk_when="low",
            reason_missing="too little purchase history for the BG/NBD model",
        ),
    ]
