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
NEWSLETTER_OPENS = 0.8  # a week, times the square root of activity; a twentieth in an episode


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
