"""What a feature is: a named, explained, pure function of the cutoff, owned by one touchpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import polars as pl

PROFILE = "profile"
JOURNEY = "journey"
# the column each source's rows are cut on; "windows" (features/windows.py) is built per cutoff from the customer-days
SOURCE_TIME = {"support": "opened_at", "surveys": "ts", "customers": "signup_at"}
# sources with one row per customer: their features are read from the row, not aggregated over rows
PER_CUSTOMER = ("customers", "windows")
FAMILIES = ("volume", "recency", "trend", "friction", "support_quality", "survey_voice", "journey", "profile")


@dataclass(frozen=True)
class FeatureDef:
    name: str
    touchpoint: str
    phase: str
    family: str  # one of FAMILIES
    source: str  # a key of SOURCE_TIME, or "windows"
    description: str
    reason: str  # str.format template over {value}
    expr: Callable[[datetime], pl.Expr]
    fill: float | None = 0.0  # value for a customer with no rows in the source (None: unknown)
    raises_risk_when: str = "high"  # which end of the feature a reason is worth saying for

    def explain(self, value: float | None) -> str:
        if value is None:
            return self.reason.replace("{value:.0f}", "no").replace("{value:.1f}", "no").replace("{value:.0%}", "no")
        return self.reason.format(value=value)
