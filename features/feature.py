"""What a feature is: a named, explained, pure function of the cutoff, owned by one touchpoint."""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import polars as pl

PROFILE = "profile"
JOURNEY = "journey"
# the customer's purchase history: context for a reason ("no purchase for 140 days"), not a
# touchpoint to fix, so it is never flagged as a driver
CUSTOMER_VALUE = "customer_value"
# the column each source's rows are cut on; "windows" (features/windows.py) and "purchases"
# (features/purchases.py) are built per cutoff from the customer-days
SOURCE_TIME = {"support": "opened_at", "surveys": "ts", "customers": "signup_at"}
# sources with one row per customer: their features are read from the row, not aggregated over rows
PER_CUSTOMER = ("customers", "windows", "purchases")
# sources built per cutoff from the customer-days, for many cutoffs at once
PER_CUTOFF = ("windows", "purchases")
FAMILIES = (
    "volume",
    "recency",
    "trend",
    "friction",
    "support_quality",
    "survey_voice",
    "voice_themes",
    "journey",
    "profile",
    "customer_value",
)


class _ReasonFormatter(string.Formatter):
    """`str.format` for reason templates, plus word choices, so a sentence reads right for every
    value.

    A format spec with `|` picks words instead of printing the number. Two choices
    (`{value:touch|touches}`, `{value:a|not a}`) take the first when the value, as a whole number,
    is 1 or -1: the singular of a count, the true side of a 0/1 indicator. Three choices
    (`{value:dropped by {size:.0f} {size:point|points}|did not change|rose by ...}`) go by its sign,
    since "changed by -2 points" leaves the reader to work out the direction; `size` is the value
    without its sign. A value of None renders the template for the dictionary: numbers as N, choices
    as all their options.
    """

    def format_field(self, value: float | None, format_spec: str) -> str:
        if "|" not in format_spec:
            return "N" if value is None else super().format_field(value, format_spec)
        choices = format_spec.split("|")
        if len(choices) not in (2, 3):
            raise ValueError(
                "a word choice has two options (one|other) or three (below|zero|above), "
                f"got {format_spec!r}"
            )
        if value is None:
            return "/".join(choices) if len(choices) == 2 else " / ".join(choices)
        shown = round(value)
        if len(choices) == 2:
            return choices[0] if abs(shown) == 1 else choices[1]
        return choices[(shown > 0) - (shown < 0) + 1]


_REASON = _ReasonFormatter()


@dataclass(frozen=True)
class FeatureDef:
    name: str
    touchpoint: str
    phase: str
    family: str  # one of FAMILIES
    source: str  # a key of SOURCE_TIME, or "windows"
    description: str
    # template over {value} and {size} (= |value|), with word choices (_ReasonFormatter)
    reason: str
    expr: Callable[[datetime], pl.Expr]
    fill: float | None = 0.0  # value for a customer with no rows in the source (None: unknown)
    raises_risk_when: str = "high"  # which end of the feature a reason is worth saying for
    reason_missing: str | None = None  # the sentence for a missing value; needed where fill is None
    # other features of the same customer the reason names, as {name} in the template
    reason_context: tuple[str, ...] = ()
    # grows with the time since a moment the customer passed once (signup, the first purchase) or
    # sums the whole history: it moves between a training cutoff and as_of by construction, so the
    # drift check leaves it out (models.drift.drift_features)
    ages: bool = False

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family {self.family!r} is not one of {FAMILIES}")
        if self.source not in (*SOURCE_TIME, *PER_CUSTOMER):
            raise ValueError(f"{self.name}: source {self.source!r} is not a feature source")

    def explain(
        self, value: float | None, context: Mapping[str, float | None] | None = None
    ) -> str:
        """The sentence an agent reads, filled with the customer's value (and, for a template
        that names them, the customer's values of the `reason_context` features).

        A missing value has its own sentence: a number's place filled with "no" reads as the
        opposite ("no days since the last touch" sounds like today, and means never).
        """
        if value is None:
            if self.reason_missing is None:
                raise ValueError(
                    f"{self.name} has no sentence for a missing value (reason_missing); "
                    f"it should never be missing, its fill is {self.fill}"
                )
            return self.reason_missing
        others = {name: (context or {}).get(name) for name in self.reason_context}
        if any(v is None for v in others.values()):
            missing = sorted(k for k, v in others.items() if v is None)
            raise ValueError(f"{self.name}'s reason names {missing}, which this customer lacks")
        return _REASON.format(self.reason, value=value, size=abs(value), **others)

    def reason_pattern(self) -> str:
        """The reason template as the dictionary shows it: N for the number, choices as their
        options."""
        return _REASON.format(
            self.reason, value=None, size=None, **dict.fromkeys(self.reason_context)
        )
