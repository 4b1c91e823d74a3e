"""Worlds whose rules are drawn from their seed (`demo.mechanics.draw`), sized to churn as much as
a business could: the truth suite's worlds.

A drawn rule set alone can leave a world where hardly anyone leaves (two rare frictions, a steep
decay), which scores a pipeline on noise. So each world also draws the share of customers it
loses in a horizon (6% to 20%) and scales its drivers' weights until a quick pilot of its rules
loses about that many.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import numpy as np

from demo import mechanics
from demo.mechanics import Mechanics
from demo.simulator import WorldConfig, pilot_churn_rate

CHURN_RANGE = (0.06, 0.20)


def drawn_world(seed: int, customers: int, end: datetime, **config: object) -> WorldConfig:
    """A world of `customers` ending at `end` with rules drawn from `seed`, sized to the churn it
    drew; other WorldConfig fields pass through."""
    rules = mechanics.draw(seed)
    target = float(
        np.random.default_rng(np.random.SeedSequence([seed, 0x636875726E])).uniform(*CHURN_RANGE)
    )
    world = WorldConfig(customers=customers, seed=seed, end=end, mechanics=rules, **config)  # type: ignore[arg-type]
    return replace(world, mechanics=sized(world, target))


def sized(world: WorldConfig, target: float) -> Mechanics:
    """The world's rules with the drivers' weights scaled (by at most 3 either way) so that a pilot
    loses about `target` of its customers in a horizon; if the drivers cannot reach it, the base
    hazard makes up the rest. Churn is the touchpoints' doing first, as the pipeline assumes."""
    rules = world.mechanics

    def scaled(log_scale: float) -> Mechanics:
        return replace(
            rules,
            harms=tuple(
                replace(h, weight=round(h.weight * float(np.exp(log_scale)), 3))
                for h in rules.harms
            ),
        )

    def with_base(base: float) -> Mechanics:
        return replace(strongest, base=round(base, 3))

    strongest = _solve(world, scaled, target, (-1.1, 1.1))
    if pilot_churn_rate(replace(world, mechanics=strongest)) >= target * 0.9:
        return strongest
    return _solve(world, lambda b: with_base(rules.base + b), target, (0.0, 4.0))


def _solve(
    world: WorldConfig, rules_at: Callable[[float], Mechanics], target: float, bounds: tuple
) -> Mechanics:
    """Bisection on a knob the pilot's churn rises with, to within 10% of the target."""
    low, high = bounds
    for _ in range(7):
        middle = (low + high) / 2
        rate = pilot_churn_rate(replace(world, mechanics=rules_at(middle)))
        if abs(rate / target - 1) < 0.1:
            return rules_at(middle)
        low, high = (middle, high) if rate < target else (low, middle)
    return rules_at(
        high if pilot_churn_rate(replace(world, mechanics=rules_at(high))) < target else low
    )
