"""What drives churn in a simulated world: the demo world's own rules, or rules drawn from a seed.

A pipeline tuned on one world's rules fits that world, not businesses. `draw(seed)` picks, within
ranges a business could have, which touchpoints drive churn and how each hurts (a count of
frictions, a wait for an answer, a bad score, a touch that stops), how the hazard accumulates and
fades, how strongly frictions compound, which other touchpoints have friction episodes that cause
nothing (decoys), how much more new customers leave, seasonality, whether the business records
cancellations, which tables it exports and how active its customers are. `make truth` scores the
pipeline on a dozen such worlds; `demo()` is the rules the demo world has always had.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TABLES = ("customers", "clickstream", "support", "surveys")

# (touchpoint, how it hurts) -> the customer-week count the simulator keeps for it. For "missing"
# the count is the touches themselves and the hazard rises when a whole window has none.
FRICTIONS: dict[tuple[str, str], str] = {
    ("checkout", "count"): "payment_errors",
    ("customer_service", "wait"): "bad_tickets",  # answered late or never
    ("customer_service", "score"): "low_ces",
    ("pricing", "count"): "pricing_exits",
    ("search", "count"): "failed_searches",  # searches that found nothing
    ("cart", "count"): "cart_removals",
    ("website", "count"): "site_exits",  # leaving from a product page
    ("returns", "count"): "return_requests",
    ("subscription", "count"): "downgrades",
    ("chatbot", "score"): "low_csat_chatbot",
    ("returns", "score"): "low_csat_returns",
    ("newsletter", "missing"): "newsletter_opens",
}
# the touchpoints of the demo's three kinds of episode (payment, pricing, service), in the order
# their episodes are drawn
DEMO_TROUBLES = ("checkout", "pricing", "customer_service")
# the columns every world has (the demo's frictions), whatever drives it
BASE_COLUMNS = ("payment_errors", "bad_tickets", "low_ces", "pricing_exits")
_NEEDS = {"customer_service": "support", "wait": "support", "score": "surveys"}
# log-odds per friction and cap ranges by how it hurts; a missing touch is one step (cap 1)
_WEIGHTS = {"count": (0.6, 1.2), "wait": (0.8, 1.5), "score": (0.6, 1.2), "missing": (0.8, 1.6)}
_CAPS = {"count": (2, 5), "wait": (2, 4), "score": (2, 3), "missing": (1, 1)}


@dataclass(frozen=True)
class Harm:
    """One way a touchpoint hurts: each friction in the hazard's window adds `weight` log-odds a
    week, up to `cap` frictions (a missing touch: `weight` once the window has no touch)."""

    touchpoint: str
    hurt: str
    weight: float
    cap: int

    @property
    def column(self) -> str:
        return FRICTIONS[(self.touchpoint, self.hurt)]


@dataclass(frozen=True)
class Mechanics:
    harms: tuple[Harm, ...]
    # touchpoints with friction episodes: the drivers', then the decoys' (episodes that cause
    # nothing); the order is the order their episodes are drawn in
    troubles: tuple[str, ...]
    base: float = -7.5  # weekly log-odds of leaving with no friction
    compound: float = 1.2  # added when two or more drivers hurt in the same window
    window_weeks: int = 4  # how far back the hazard looks
    decay: float = 1.0  # a friction k weeks old counts decay**k
    tenure: float = 0.0  # added log-odds at signup, halving every tenure_halving_weeks
    tenure_halving_weeks: float = 26.0
    season: float = 0.0  # amplitude of a yearly wave in the log-odds
    season_phase: float = 0.0
    contractual: bool = True  # cancellations recorded; else purchases only
    tables: tuple[str, ...] = TABLES
    activity: float = 1.0  # multiplies the world's sessions per week
    trouble_start: float = 0.006  # weekly chance an episode starts
    trouble_exit: float = 0.02  # weekly chance it ends

    @property
    def drivers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.touchpoint for h in self.harms))

    @property
    def decoy_troubles(self) -> tuple[str, ...]:
        return tuple(t for t in self.troubles if t not in self.drivers)

    @property
    def extra_columns(self) -> tuple[str, ...]:
        """The friction counts beyond the demo's that this world keeps (drivers' and decoys')."""
        wanted = [h.column for h in self.harms] + [
            column for (tp, _), column in FRICTIONS.items() if tp in self.decoy_troubles
        ]
        return tuple(c for c in dict.fromkeys(wanted) if c not in BASE_COLUMNS)

    def describe(self) -> str:
        """One line: the drivers and how they hurt, then the world's other rules."""
        harms = ", ".join(f"{h.touchpoint} {h.hurt} ({h.weight:.2f} x {h.cap})" for h in self.harms)
        return (
            f"drivers: {harms}; decoy episodes: {', '.join(self.decoy_troubles) or 'none'}; "
            f"{'contractual' if self.contractual else 'purchases only'}; tables: "
            f"{', '.join(self.tables)}; window {self.window_weeks} weeks, decay {self.decay:.2f}, "
            f"compound {self.compound:.2f}, tenure {self.tenure:.2f}, season {self.season:.2f}, "
            f"activity x{self.activity:.2f}"
        )


def demo() -> Mechanics:
    """The demo world's rules: payment errors at checkout, late or unanswered tickets and the low
    effort scores after them at customer service, exits from the pricing page."""
    return Mechanics(
        harms=(
            Harm("checkout", "count", 0.9, 4),
            Harm("customer_service", "wait", 1.2, 3),
            Harm("customer_service", "score", 0.5, 2),
            Harm("pricing", "count", 0.8, 4),
        ),
        troubles=DEMO_TROUBLES,
    )


def draw(seed: int) -> Mechanics:
    """Rules drawn from the seed (its own stream: the world's draws are untouched)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6D656368]))
    contractual = bool(rng.random() < 0.7)
    # which tables the business exports: a purchase-only shop often has no surveys, some no support
    tables = {"customers", "clickstream"}
    if rng.random() < 0.75:
        tables.add("support")
    if rng.random() < 0.75:
        tables.add("surveys")
    capable = sorted(
        {
            (tp, hurt)
            for (tp, hurt) in FRICTIONS
            if all(_NEEDS.get(k) in tables | {None} for k in (tp, hurt))
            and not (tp == "subscription" and not contractual)
        }
    )
    touchpoints = sorted({tp for tp, _ in capable})
    n_drivers = int(rng.integers(2, 5))
    drivers = [str(t) for t in rng.choice(touchpoints, n_drivers, replace=False)]
    harms = []
    for tp in drivers:
        hurts = [h for t, h in capable if t == tp]
        # customer service can hurt both ways at once, as in the demo world
        chosen = hurts if len(hurts) > 1 and rng.random() < 0.3 else [str(rng.choice(hurts))]
        for hurt in chosen:
            low, high = _WEIGHTS[hurt]
            harms.append(
                Harm(
                    tp,
                    hurt,
                    round(float(rng.uniform(low, high)), 3),
                    int(rng.integers(_CAPS[hurt][0], _CAPS[hurt][1] + 1)),
                )
            )
    others = [t for t in touchpoints if t not in drivers]
    decoys = [str(t) for t in rng.choice(others, min(len(others), int(rng.integers(1, 3))), False)]
    return Mechanics(
        harms=tuple(harms),
        troubles=(*drivers, *decoys),
        base=round(float(rng.uniform(-8.0, -6.8)), 3),
        compound=round(float(rng.uniform(0.0, 1.5)), 3),
        window_weeks=int(rng.choice([2, 4, 6, 8])),
        decay=round(float(rng.uniform(0.5, 1.0)), 3),
        tenure=round(float(rng.uniform(0.3, 1.5)), 3) if rng.random() < 0.6 else 0.0,
        tenure_halving_weeks=round(float(rng.uniform(8, 52)), 1),
        season=round(float(rng.uniform(0.1, 0.6)), 3) if rng.random() < 0.5 else 0.0,
        season_phase=round(float(rng.uniform(0, 2 * math.pi)), 3),
        contractual=contractual,
        tables=tuple(t for t in TABLES if t in tables),
        activity=round(float(np.exp(rng.uniform(np.log(0.3), np.log(2.5)))), 3),
    )
