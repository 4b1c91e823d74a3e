"""What the data can tell of each customer's episodes: the oracle's second figure.

The oracle (`demo.simulator`) knows who is in an episode at `as_of`. A customer in one who has been
quiet since it began shows nothing of it, so no model can know what the oracle knows. The
observable oracle keeps everything else the oracle knows (activity, the customer's own rates, the
hazard's window) but draws the episodes from their posterior given every week the world recorded:
each kind of episode is a two-state chain (start and end chances a week), and a forward filter
over the customer's weeks of frictions gives the chance of being in it at the end. A gap to the
observable oracle is what a better model could still close; the rest is hidden.

The demo's own three kinds (payment, pricing, service) change more than one count; their
likelihoods take the other two kinds as calm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from scipy.stats import binom, poisson

from demo.mechanics import Mechanics
from demo.rates import (
    BAD_TICKET,
    CHECKOUT_SHARE,
    EXTRA_TICKETS_IN_EPISODE,
    FAILED_PAYMENT_IN_EPISODE,
    NEWSLETTER_IN_EPISODE,
    NEWSLETTER_OPENS,
    PAYMENT_RETRIES,
    PLAN_COMPARISONS,
    PRICING_EXIT_IN_EPISODE,
    SESSION_FRICTIONS,
    TOUCHPOINT_OF,
    WEEKLY_FRICTIONS,
    Latent,
)

Week = tuple[dict[str, np.ndarray], np.ndarray]  # a week's frictions, and who was there
_MOST_EXTRA = 12  # retries or plan comparisons summed over in a week; more has no mass left


def recorded_weeks(weekly: pl.DataFrame, n: int) -> list[Week]:
    """The world's customer-weeks (customer, week and the counts, one frame) as the filter reads
    them: per week, every count over all `n` customers and who was there."""
    return [
        (
            {c: _spread(week, c, n) for c in week.columns if c not in ("customer", "week")},
            _spread(week.with_columns(present=1), "present", n) > 0,
        )
        for week in weekly.partition_by("week", maintain_order=True)
    ]


def _spread(week: pl.DataFrame, column: str, n: int) -> np.ndarray:
    """A column of one week's rows as an array over every customer (0 where absent)."""
    values = np.zeros(n, dtype=np.int64)
    values[week["customer"].to_numpy()] = week[column].to_numpy()
    return values


def episode_posteriors(
    mech: Mechanics, latent: Latent, weeks: Sequence[Week]
) -> dict[str, np.ndarray]:
    """Per kind of episode (its touchpoint), each customer's chance of being in one after the
    last recorded week, given the frictions of every week they were there."""
    posteriors = {}
    for touchpoint in mech.troubles:
        chance = np.zeros(latent.activity.size)
        for frictions, present in weeks:
            # the week's episodes move first, then its frictions are drawn (demo.simulator._advance)
            moved = chance * (1 - mech.trouble_exit) + (1 - chance) * mech.trouble_start
            calm, troubled = _likelihoods(mech, latent, touchpoint, frictions)
            seen = moved * troubled
            total = seen + (1 - moved) * calm
            updated = np.divide(seen, total, out=moved.copy(), where=total > 0)
            chance = np.where(present, updated, 0.0)
        posteriors[touchpoint] = chance
    return posteriors


def _likelihoods(
    mech: Mechanics, latent: Latent, touchpoint: str, week: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The week's frictions' likelihood for a calm customer and for one in an episode."""
    sessions = week["sessions"]
    if touchpoint == "pricing":
        exits = week["pricing_exits"]
        troubled = np.sum(
            [
                poisson.pmf(c, PLAN_COMPARISONS)
                * binom.pmf(exits - c, np.maximum(sessions - c, 0), PRICING_EXIT_IN_EPISODE)
                for c in range(_MOST_EXTRA)
            ],
            axis=0,
        )
        return binom.pmf(exits, sessions, latent.pricing_exit_rate), troubled
    if touchpoint == "customer_service":
        tickets, bad = week["tickets"], week["bad_tickets"]
        usual, badly = BAD_TICKET
        in_episode = latent.ticket_rate + EXTRA_TICKETS_IN_EPISODE
        return (
            poisson.pmf(tickets, latent.ticket_rate)
            * binom.pmf(bad, tickets, np.where(latent.bad_service, badly, usual)),
            poisson.pmf(tickets, in_episode) * binom.pmf(bad, tickets, badly),
        )
    if touchpoint == "checkout":
        checkouts, errors = week["checkouts"], week["payment_errors"]
        retried = np.sum(
            [
                poisson.pmf(r, PAYMENT_RETRIES)
                * binom.pmf(checkouts - r, np.maximum(sessions - r, 0), CHECKOUT_SHARE)
                for r in range(_MOST_EXTRA)
            ],
            axis=0,
        )
        return (
            binom.pmf(checkouts, sessions, CHECKOUT_SHARE)
            * binom.pmf(errors, checkouts, latent.payment_error_rate),
            retried * binom.pmf(errors, checkouts, FAILED_PAYMENT_IN_EPISODE),
        )
    calm = troubled = np.ones(sessions.size)
    for column in mech.extra_columns:
        if TOUCHPOINT_OF[column] != touchpoint:
            continue
        count = week[column]
        if column in SESSION_FRICTIONS:
            usual, episode = SESSION_FRICTIONS[column]
            tries = np.maximum(sessions, count)
            calm, troubled = (
                calm * binom.pmf(count, tries, usual),
                troubled * binom.pmf(count, tries, episode),
            )
        elif column in WEEKLY_FRICTIONS:
            usual, episode = WEEKLY_FRICTIONS[column]
            calm, troubled = (
                calm * poisson.pmf(count, usual),
                troubled * poisson.pmf(count, episode),
            )
        else:  # the newsletter's opens, a twentieth as many in an episode
            opens = NEWSLETTER_OPENS * np.sqrt(latent.activity)
            calm, troubled = (
                calm * poisson.pmf(count, opens),
                troubled * poisson.pmf(count, NEWSLETTER_IN_EPISODE * opens),
            )
    return calm, troubled
