"""What the simulator knows about each customer, and the rates its frictions come at, calm and in
an episode: read by the simulator that draws them and by the filter that reads them back
(`demo.observable`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from demo.mechanics import FRICTIONS

# the touchpoint each counted friction is at
TOUCHPOINT_OF = {column: tp for (tp, _), column in FRICTIONS.items()}
# friction counts drawn per session: (chance in a session, chance in an episode)
SESSION_FRICTIONS = {
    "failed_searches": (0.06, 0.5),
    "cart_removals": (0.07, 0.5),
    "site_exits": (0.03, 0.4),
    "return_requests": (0.02, 0.3),
}
# drawn per week: (rate, rate in an episode)
WEEKLY_FRICTIONS = {
    "downgrades": (0.003, 0.25),
    "low_csat_chatbot": (0.004, 0.35),
    "low_csat_returns": (0.004, 0.35),
}
NEWSLETTER_OPENS = 0.8  # a week, times the square root of activity
NEWSLETTER_IN_EPISODE = 0.05  # the share of those opens left in an episode
# the demo's own three kinds of episode (mechanics.DEMO_TROUBLES)
PAYMENT_RETRIES = 0.8  # extra checkouts a week in a payment episode, each its own session
FAILED_PAYMENT_IN_EPISODE = 0.7  # a checkout's chance to fail then
PLAN_COMPARISONS = (
    0.7  # visits a week to compare plans in a pricing episode, each ending in an exit
)
PRICING_EXIT_IN_EPISODE = 0.5  # a browsing session's chance to leave from the pricing page then
EXTRA_TICKETS_IN_EPISODE = 0.5  # a week, in a service episode
BAD_TICKET = (0.05, 0.9)  # a ticket's chance to go badly: usually, and in an episode or for the
# customers whose service is always bad
CHECKOUT_SHARE = 0.4  # a browsing session's chance to reach checkout


@dataclass(frozen=True)
class Latent:
    """What the simulator knows about each customer and the pipeline must infer."""

    activity: np.ndarray
    payment_error_rate: np.ndarray
    bad_service: np.ndarray
    ticket_rate: np.ndarray
    pricing_exit_rate: np.ndarray

    def tile(self, k: int) -> Latent:
        return Latent(*(np.tile(v, k) for v in asdict(self).values()))
