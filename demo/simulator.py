"""A seeded world of customer journeys whose churn follows a known hazard.

Churn is driven only by recent friction at a few planted touchpoints: in the demo world payment
errors at checkout, slow or unanswered support tickets and the low effort scores that follow them,
exit intent on the pricing page; a world with rules drawn from its seed (`demo.mechanics`) has its
own drivers, decay, decoy episodes, tenure and seasonal effects. Decoy touchpoints (newsletter,
social, ads, content, search, ...) scale with how active a customer is but never enter the
hazard. The simulator writes the landing files in the input contract, and its ground truth to a
separate folder the pipeline never reads, so tests can compare what the pipeline found with what
is true. What customers write in comments and tickets,
and how they came (referrals), is planted by `demo.voice` on its own random stream.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from demo import mechanics, voice
from demo.mechanics import DEMO_TROUBLES, Mechanics
from demo.observable import episode_posteriors, recorded_weeks
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

PLANTED_DRIVERS = mechanics.demo().drivers  # the demo world's; a drawn world has its own
DECOYS = (
    "website",
    "content",
    "search",
    "cart",
    "newsletter",
    "social_media",
    "advertising",
    "community",
    "feedback_survey",
)
# every catalogue touchpoint the simulator's events reach
TOUCHED = (
    *PLANTED_DRIVERS,
    *DECOYS,
    "chatbot",
    "returns",
    "reviews",
    "referral",
    "subscription",
)
WEEK = timedelta(days=7)
log = logging.getLogger(__name__)
# the events each counted friction beyond the demo's is seen as: (type, minutes into the session,
# page, value)
_COUNTED_IN_SESSIONS = {
    "failed_searches": (("search", (1, 8), None, 0.0),),
    "cart_removals": (
        ("add_to_cart", (10, 15), None, None),
        ("remove_from_cart", (15, 18), None, None),
    ),
    "site_exits": (
        ("product_view", (2, 10), "/products/item", None),
        ("exit_intent", (10, 12), "/products/item", None),
    ),
    "return_requests": (("return_request", (30, 60), None, None),),
}
_COUNTED_WEEKLY = {"email_open": "newsletter_opens", "plan_downgrade": "downgrades"}


def utc_midnight(moment: datetime | None = None) -> datetime:
    """The midnight UTC that starts `moment`'s day (default: today's)."""
    moment = datetime.now(UTC) if moment is None else moment.astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class WorldConfig:
    """A world of `weeks` weeks ending at `end`.

    Everything is simulated in seconds from the world's start and only turned into dates at the
    end (`_ts`), so the same seed gives the same world at any `end`: the same customers, the same
    events at the same offsets from the end, the same labels, shifted in time. The simulator has
    no weekday or seasonal effect tied to the calendar: its weeks (and the four-weekly renewals)
    count from the world's start, so they follow the offsets and start on `end`'s weekday. The
    one thing tied to the calendar is the oracle's cutoffs (`truth_at_cutoffs`), which are month
    starts because the pipeline's cutoffs are: those move with the calendar, not with the shift.
    """

    customers: int = 20_000
    weeks: int = 52
    # midnight UTC; the demo's default is today's, so its latest event is hours old whenever it
    # runs (the freshness check). Tests pin it, so that their worlds, and the pipeline's monthly
    # cutoffs over them, stay the same from day to day.
    end: datetime = field(default_factory=utc_midnight)
    sessions_per_week: float = 1.0
    horizon_days: int = 90
    seed: int = 7
    dirty_rows: bool = True  # a few invalid rows, so the demo shows its quarantine
    # Monte Carlo runs behind each customer's true churn probability; 0 skips the oracle (it takes
    # about two thirds of the simulation's time, and a benchmark world has no use for it)
    truth_replicates: int = 40
    # true probabilities also at this many latest month starts whose horizon ends in the world
    oracle_cutoffs: int = 3
    # One chunk of a larger world (see `chunks`): its event, session, ticket and response ids
    # carry the chunk number and its files a `_cNNN` suffix, so chunks fill one landing folder
    # side by side
    chunk: int | None = None
    # number of the first customer, so customer ids stay unique across chunks
    first_customer: int = 0
    # what drives churn (demo.mechanics): the demo's rules, or rules drawn from a seed
    mechanics: Mechanics = field(default_factory=mechanics.demo)

    def __post_init__(self) -> None:
        if self.end.tzinfo is None or self.end != utc_midnight(self.end):
            raise ValueError(
                f"the world's end must be a midnight UTC (the pipeline's cutoffs are), "
                f"got {self.end.isoformat()}"
            )

    @property
    def start(self) -> datetime:
        return self.end - self.weeks * WEEK


def chunks(config: WorldConfig, size: int) -> list[WorldConfig]:
    """The world as independent chunks of at most `size` customers, each simulated on its own, so
    a world of a million customers never has to fit in memory at once.

    Customers never interact in the simulator, so a chunked world is drawn from the same
    distribution as a whole one (not with the same draws). Each chunk gets its own seed from the
    world's seed and the chunk number, and numbers its customers on from the previous chunk. A world
    that fits in one chunk is the config itself, identical to simulating it whole.
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 customer, got {size}")
    if config.customers <= size:
        return [config]
    count = -(-config.customers // size)
    bounds = [config.customers * k // count for k in range(count + 1)]
    return [
        replace(
            config,
            customers=bounds[k + 1] - bounds[k],
            seed=_chunk_seed(config.seed, k),
            chunk=k,
            first_customer=config.first_customer + bounds[k],
        )
        for k in range(count)
    ]


def _chunk_seed(seed: int, chunk: int) -> int:
    """A 64-bit seed per chunk: far apart from every other chunk's, including the seed + 1..3
    streams the simulator derives from it."""
    return int(np.random.SeedSequence([seed, chunk]).generate_state(1, np.uint64)[0])


def _id_prefix(config: WorldConfig, letter: str) -> str:
    """What an event, session, ticket or response id starts with: the letter alone in a whole world,
    the letter and the chunk number (`E3-`) in a chunk."""
    return letter if config.chunk is None else f"{letter}{config.chunk}-"


def _latent(rng: np.random.Generator, n: int, config: WorldConfig) -> Latent:
    return Latent(
        activity=config.sessions_per_week * config.mechanics.activity * rng.lognormal(0.0, 0.6, n),
        payment_error_rate=np.where(rng.random(n) < 0.1, 0.1, 0.02),
        bad_service=rng.random(n) < 0.1,
        ticket_rate=0.06 * rng.gamma(2.0, 0.5, n),
        pricing_exit_rate=np.full(n, 0.02),
    )


@dataclass
class State:
    """The part of the world that carries from one week to the next."""

    alive: np.ndarray
    trouble: dict[str, np.ndarray]
    window: list[dict[str, np.ndarray]]
    joined: np.ndarray  # signup, in weeks from the world's start (negative: before it)
    week: int = 0  # the week the next step simulates

    def tile(self, k: int) -> State:
        return State(
            np.tile(self.alive, k),
            {name: np.tile(v, k) for name, v in self.trouble.items()},
            [{name: np.tile(v, k) for name, v in week.items()} for week in self.window],
            np.tile(self.joined, k),
            self.week,
        )

    def copy(self) -> State:
        return State(
            self.alive.copy(), dict(self.trouble), list(self.window), self.joined, self.week
        )


def _new_state(
    rng: np.random.Generator, mech: Mechanics, latent: Latent, joined: np.ndarray
) -> State:
    alive = np.zeros(joined.size, dtype=bool)
    trouble = {t: np.zeros(joined.size, dtype=bool) for t in mech.troubles}
    window = [_week_frictions(rng, mech, latent, trouble, alive) for _ in range(mech.window_weeks)]
    return State(alive, trouble, window, joined)


def _week_frictions(
    rng: np.random.Generator,
    mech: Mechanics,
    latent: Latent,
    trouble: dict[str, np.ndarray],
    active: np.ndarray,
) -> dict[str, np.ndarray]:
    """One week of the touchpoints that matter, for every customer (zero where inactive).

    A customer in a payment episode keeps retrying a failing payment; in a pricing episode keeps
    coming back to compare plans and leaving from the pricing page; in a service episode keeps
    opening tickets that go unanswered. An episode elsewhere makes that touchpoint's friction
    likelier (a search that finds nothing, a removal from the cart, a low CSAT) or, at the
    newsletter, stops the customer opening it.
    """
    calm = np.zeros(active.size, dtype=bool)
    payment, pricing, service = (trouble.get(t, calm) for t in DEMO_TROUBLES)
    retries = rng.poisson(PAYMENT_RETRIES * payment * active)
    # visits to compare plans, each ending in an exit
    comparing = rng.poisson(PLAN_COMPARISONS * pricing * active)
    browsing = rng.poisson(latent.activity * active)
    sessions = browsing + retries + comparing
    checkouts = rng.binomial(browsing, CHECKOUT_SHARE) + retries
    tickets = rng.poisson((latent.ticket_rate + EXTRA_TICKETS_IN_EPISODE * service) * active)
    usual, badly = BAD_TICKET
    bad_tickets = rng.binomial(tickets, np.where(service | latent.bad_service, badly, usual))
    frictions = {
        "sessions": sessions,
        "checkouts": checkouts,
        "payment_errors": rng.binomial(
            checkouts, np.where(payment, FAILED_PAYMENT_IN_EPISODE, latent.payment_error_rate)
        ),
        "pricing_exits": rng.binomial(
            browsing, np.where(pricing, PRICING_EXIT_IN_EPISODE, latent.pricing_exit_rate)
        )
        + comparing,
        "tickets": tickets,
        "bad_tickets": bad_tickets,
        "low_ces": rng.binomial(bad_tickets, 0.6),
        "high_ces": rng.binomial(tickets - bad_tickets, 0.6),
    }
    for column in mech.extra_columns:
        in_episode = trouble.get(TOUCHPOINT_OF[column], calm)
        if column in SESSION_FRICTIONS:
            usual, episode = SESSION_FRICTIONS[column]
            frictions[column] = rng.binomial(browsing, np.where(in_episode, episode, usual))
        elif column in WEEKLY_FRICTIONS:
            usual, episode = WEEKLY_FRICTIONS[column]
            frictions[column] = rng.poisson(np.where(in_episode, episode, usual) * active)
        else:  # the newsletter's opens
            rate = (
                NEWSLETTER_OPENS
                * np.sqrt(latent.activity)
                * np.where(in_episode, NEWSLETTER_IN_EPISODE, 1.0)
            )
            frictions[column] = rng.poisson(rate * active)
    if any(h.hurt == "missing" for h in mech.harms):
        frictions["active"] = active.astype(np.int64)
    return frictions


def _hazard(mech: Mechanics, state: State) -> np.ndarray:
    """Weekly churn probability from the last weeks' friction: the planted truth.

    Frictions compound: a customer hit at two driving touchpoints at once is more likely to leave
    than the two effects added up (the last straw), which an additive model cannot represent.
    """
    window, n = state.window, state.alive.size
    logit = np.full(n, mech.base)
    hurt = {tp: np.zeros(n, dtype=bool) for tp in mech.drivers}
    ages = range(len(window) - 1, -1, -1)
    for harm in mech.harms:
        if harm.hurt == "missing":
            touches = np.sum([w[harm.column] for w in window], axis=0)
            weeks_active = np.sum([w["active"] for w in window], axis=0)
            level = ((touches == 0) & (weeks_active == len(window))).astype(np.int64)
        elif mech.decay == 1.0:
            level = np.minimum(
                sum((w[harm.column] for w in window), np.zeros(n, np.int64)), harm.cap
            )
        else:
            recent = sum(
                mech.decay**age * w[harm.column] for age, w in zip(ages, window, strict=True)
            )
            level = np.minimum(recent, harm.cap)
        logit += harm.weight * level
        hurt[harm.touchpoint] |= level > 0
    logit += mech.compound * (sum(h.astype(np.int64) for h in hurt.values()) >= 2)
    if mech.tenure:
        tenure_weeks = np.maximum(state.week - state.joined, 0.0)
        logit += mech.tenure * 0.5 ** (tenure_weeks / mech.tenure_halving_weeks)
    if mech.season:
        logit += mech.season * math.sin(2 * math.pi * state.week / 52 + mech.season_phase)
    return 1.0 / (1.0 + np.exp(-logit))


def _step(
    rng: np.random.Generator,
    mech: Mechanics,
    latent: Latent,
    state: State,
    joining: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Advance one week: who leaves (decided on the weeks before), then this week's frictions."""
    n = state.alive.size
    if joining is not None:
        state.alive |= joining
    leaving = state.alive & (rng.random(n) < _hazard(mech, state))
    state.alive &= ~leaving
    return leaving, _advance(rng, mech, latent, state)


def _advance(
    rng: np.random.Generator, mech: Mechanics, latent: Latent, state: State
) -> dict[str, np.ndarray]:
    """This week's episodes and frictions for whoever is alive, and the week moves on."""
    n = state.alive.size
    for name, in_trouble in state.trouble.items():
        state.trouble[name] = (
            np.where(
                in_trouble, rng.random(n) > mech.trouble_exit, rng.random(n) < mech.trouble_start
            )
            & state.alive
        )
    frictions = _week_frictions(rng, mech, latent, state.trouble, state.alive)
    state.window = [*state.window[1:], frictions]
    state.week += 1
    return frictions


# a checkout's chance to end in a purchase, and a failed payment's
_BUYS, _BUYS_AFTER_ERROR = 0.9, 0.4


def _purchases(rng: np.random.Generator, frictions: dict[str, np.ndarray]) -> np.ndarray:
    """A week's purchases, drawn as the expander draws them: 90% of checkouts that went through,
    40% of those that failed."""
    errors = frictions["payment_errors"]
    return rng.binomial(frictions["checkouts"] - errors, _BUYS) + rng.binomial(
        errors, _BUYS_AFTER_ERROR
    )


def _simulate_forward(
    rng: np.random.Generator, mech: Mechanics, latent: Latent, state: State, horizon_days: int
) -> np.ndarray:
    """Whether each customer churns within the horizon, continuing from a copy of the given state.

    Contractual: leaves within it. Purchases only: buys nothing within it (the pipeline's label),
    a purchase in the horizon's last, partial week counting with the share of the week inside.
    """
    state = state.copy()
    weeks = round(horizon_days / 7) if mech.contractual else math.ceil(horizon_days / 7)
    churned = np.zeros(state.alive.size, dtype=bool)
    bought = np.zeros(state.alive.size, dtype=bool)
    for k in range(weeks):
        leaving, frictions = _step(rng, mech, latent, state)
        churned |= leaving
        if not mech.contractual:
            inside = min(1.0, horizon_days / 7 - k)
            bought |= rng.binomial(_purchases(rng, frictions), inside) > 0
    return churned if mech.contractual else ~bought


def _churn_probability(
    rng: np.random.Generator, mech: Mechanics, latent: Latent, state: State, horizon_days: int
) -> np.ndarray:
    """Each row's probability of what `_simulate_forward` draws, given one path of its frictions.

    Whether a customer leaves in a week, or buys, is a coin with a known bias once that week's
    frictions are drawn; counting the coins' outcomes over a few dozen paths (as the oracle once
    did) adds their noise to every probability. Low, close probabilities then rank at random, and
    the oracle's ROC AUC fell with it: 0.779 with 40 paths, 0.790 with 200, 0.798 with 800 on
    suite world 105. So each path keeps the customer alive and carries the chance instead
    (the same as drawing it, in expectation): surviving every week's hazard, and for a
    purchase-only business buying nothing in the weeks before leaving.
    """
    state = state.copy()
    contractual = mech.contractual
    weeks = round(horizon_days / 7) if contractual else math.ceil(horizon_days / 7)
    present = state.alive.copy()
    staying = np.ones(present.size)  # still there (and, purchases only, bought nothing) so far
    left_without_buying = np.zeros(present.size)
    for k in range(weeks):
        hazard = _hazard(mech, state)
        left_without_buying += staying * hazard
        staying *= 1.0 - hazard
        frictions = _advance(rng, mech, latent, state)
        if not contractual:
            inside = min(1.0, horizon_days / 7 - k)  # a purchase in a partial week counts pro rata
            errors = frictions["payment_errors"]
            staying *= (1.0 - _BUYS * inside) ** (frictions["checkouts"] - errors) * (
                1.0 - _BUYS_AFTER_ERROR * inside
            ) ** errors
    if contractual:
        return np.where(present, 1.0 - staying, 0.0)
    return np.where(present, left_without_buying + staying, 1.0)


def _observable_probability(
    rng: np.random.Generator,
    mech: Mechanics,
    latent: Latent,
    state: State,
    weekly: pl.DataFrame,
    paths: int,
    horizon_days: int,
) -> np.ndarray:
    """Each customer's churn probability over `paths` paths from `state` (the end of the world)
    whose episodes are drawn from what `weekly` (the world's customer-weeks of frictions: customer,
    week and the counts) shows (`demo.observable`): the oracle's second figure."""
    n = latent.activity.size
    weeks = recorded_weeks(weekly, n)
    tiled = state.tile(paths)
    for touchpoint, chance in episode_posteriors(mech, latent, weeks).items():
        tiled.trouble[touchpoint] = (rng.random((paths, n)) < chance).reshape(-1) & tiled.alive
    carried = _churn_probability(rng, mech, latent.tile(paths), tiled, horizon_days)
    return carried.reshape(paths, n).mean(axis=0)


# what the expander keeps on each ticket to draw its survey answers; not part of the contract
_TICKET_STATE = ("_bad", "_rank", "_opened_s")
_TRUTH_AT_CUTOFFS = pl.Schema(
    {
        "customer_id": pl.String(),
        "cutoff": pl.Datetime("us", "UTC"),
        "true_churn_probability": pl.Float64(),
    }
)


@dataclass(frozen=True)
class World:
    """The landing tables as a business would export them (the contract's columns; customers also
    carry the name, email and phone ingestion drops) and the ground truth the pipeline never
    sees."""

    customers: pl.DataFrame
    clickstream: pl.DataFrame
    support: pl.DataFrame
    surveys: pl.DataFrame
    truth: pl.DataFrame
    # customer_id, cutoff, true_churn_probability: the oracle at each month start
    truth_at_cutoffs: pl.DataFrame
    # what each comment and ticket text was written about (demo.voice.VOICE_SCHEMA)
    voice: pl.DataFrame


def _month_starts(config: WorldConfig) -> list[datetime]:
    """The latest `oracle_cutoffs` month starts whose horizon ends by the world's end: the cutoffs a
    pipeline can label, the latest of them its holdout."""
    found, moment = [], datetime(config.start.year, config.start.month, 1, tzinfo=UTC)
    while moment + timedelta(days=config.horizon_days) <= config.end:
        if moment > config.start:
            found.append(moment)
        moment = datetime(moment.year + (moment.month == 12), moment.month % 12 + 1, 1, tzinfo=UTC)
    return found[-config.oracle_cutoffs :] if config.oracle_cutoffs else []


def _oracle_at(
    rng: np.random.Generator,
    config: WorldConfig,
    latent: Latent,
    state: State,
    week: int,
    signup_week: np.ndarray,
    cutoff_seconds: float,
) -> np.ndarray:
    """Each customer's true probability of churning in (cutoff, cutoff + horizon], given alive at
    the cutoff.

    Paths from the world's state at the start of the week holding the cutoff, with the same
    dynamics (and the same joiners) as the world itself, carrying each week's chance to leave as
    `_churn_probability` does; a leaving falls anywhere in its week, so the cutoff's week splits
    into the part before the cutoff (conditioned away) and the part after (churn). NaN where no
    path is alive at the cutoff.
    """
    reps, n = config.truth_replicates, state.alive.size
    sim = state.tile(reps)
    tiled, joins = latent.tile(reps), np.tile(signup_week, reps)
    horizon = config.horizon_days * 86400
    seconds = WEEK.total_seconds()
    staying = np.ones(n * reps)  # not left before the week
    churns, left_before = np.zeros(n * reps), np.zeros(n * reps)
    for w in range(week, week + round(config.horizon_days / 7) + 2):
        sim.alive |= joins == w - 1
        hazard = np.where(sim.alive, _hazard(config.mechanics, sim), 0.0)
        start = w * seconds
        before = np.clip((cutoff_seconds - start) / seconds, 0.0, 1.0)
        inside = np.clip(
            (min(start + seconds, cutoff_seconds + horizon) - max(start, cutoff_seconds)) / seconds,
            0.0,
            1.0,
        )
        left_before += staying * hazard * before
        churns += staying * hazard * inside
        staying *= 1.0 - hazard
        _advance(rng, config.mechanics, tiled, sim)
    with np.errstate(invalid="ignore", divide="ignore"):
        alive_at_cutoff = 1.0 - left_before
        return churns.reshape(reps, n).sum(axis=0) / alive_at_cutoff.reshape(reps, n).sum(axis=0)


def simulate(config: WorldConfig | None = None) -> World:
    """The world, logging its progress (`demo.simulator` at INFO: each simulated month, the truth,
    the events) since a default world takes about a minute."""
    config = WorldConfig() if config is None else config
    mech = config.mechanics
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    n = config.customers
    latent = _latent(rng, n, config)
    pre_start = rng.random(n) < 0.4
    signup_week = np.where(pre_start, -1, rng.integers(0, max(1, config.weeks - 12), n))
    signup_at = np.where(
        pre_start,
        -rng.uniform(1, 730, n) * 86400,
        (signup_week + rng.random(n)) * WEEK.total_seconds(),
    )
    churn_seconds = np.full(n, np.nan)
    state = _new_state(rng, mech, latent, signup_at / WEEK.total_seconds())
    weekly: list[pl.DataFrame] = []
    cutoffs = (
        {int((c - config.start) / WEEK): c for c in _month_starts(config)}
        # the oracle at past cutoffs follows cancellations; a purchase-only world has the end's only
        if config.truth_replicates and mech.contractual
        else {}
    )
    # its own stream: recording the oracle leaves the world unchanged
    oracle_rng = np.random.default_rng(config.seed + 3)
    oracle: list[tuple[datetime, np.ndarray]] = []
    for week in range(config.weeks):
        if week in cutoffs:
            seconds = (cutoffs[week] - config.start).total_seconds()
            oracle.append(
                (
                    cutoffs[week],
                    _oracle_at(oracle_rng, config, latent, state, week, signup_week, seconds),
                )
            )
        leaving, frictions = _step(rng, mech, latent, state, joining=signup_week == week - 1)
        churn_seconds[leaving] = (week + rng.random(leaving.sum())) * WEEK.total_seconds()
        idx = np.flatnonzero(state.alive)
        if (
            week == config.weeks - 1
            or (config.start + (week + 1) * WEEK).month != (config.start + (week + 2) * WEEK).month
        ):
            log.info(
                "simulated to %s (week %d of %d): %s customers active, %.1fs",
                f"{config.start + (week + 1) * WEEK:%Y-%m-%d}",
                week + 1,
                config.weeks,
                f"{idx.size:,}",
                time.perf_counter() - started,
            )
        weekly.append(
            pl.DataFrame(
                {
                    "customer": idx,
                    "week": np.full(idx.size, week),
                    **{k: v[idx] for k, v in frictions.items()},
                }
            )
        )
    cw = pl.concat(weekly)

    reps, horizon = config.truth_replicates, config.horizon_days
    if reps:
        paths = _churn_probability(
            np.random.default_rng(config.seed + 1),
            mech,
            latent.tile(reps),
            state.tile(reps),
            horizon,
        )
        true_probability = paths.reshape(reps, n).mean(axis=0)
        observable = _observable_probability(
            np.random.default_rng(config.seed + 4), mech, latent, state, cw, reps, horizon
        )
    else:
        true_probability = observable = np.full(n, np.nan)
    actual = _simulate_forward(np.random.default_rng(config.seed + 2), mech, latent, state, horizon)
    alive = state.alive
    ids = np.array([f"C{i:06d}" for i in range(config.first_customer, config.first_customer + n)])
    truth = pl.DataFrame(
        {
            "customer_id": ids,
            "active_at_end": alive,
            "true_churn_probability": true_probability,
            # the same with the episodes drawn from what the data shows (demo.observable)
            "observable_churn_probability": observable,
            "churns_in_horizon": actual,
        }
    ).filter(
        # purchase-only: every customer (the pipeline's population is a part of them; those who
        # left churn for sure, since they buy nothing)
        pl.col("active_at_end") if mech.contractual else pl.lit(True)
    )

    at_cutoffs = [
        pl.DataFrame(
            {
                "customer_id": ids,
                "cutoff": pl.Series([cutoff] * n, dtype=pl.Datetime("us", "UTC")),
                "true_churn_probability": p,
            }
        ).filter(pl.Series(_alive_at(config, signup_at, churn_seconds, cutoff)))
        for cutoff, p in oracle
    ]
    truth_at_cutoffs = (
        pl.concat(at_cutoffs) if at_cutoffs else pl.DataFrame(schema=_TRUTH_AT_CUTOFFS)
    )

    log.info(
        "ground truth: %s customers active at the end, %s churn in the next %d days, %.1fs",
        f"{truth.height:,}",
        f"{int(truth['churns_in_horizon'].sum()):,}",
        config.horizon_days,
        time.perf_counter() - started,
    )
    events = _Expander(rng, config, cw, latent, ids)
    customers = _customers(rng, config, ids, signup_at, churn_seconds)
    clickstream = events.clickstream()
    # the voice draws from its own stream, after everything else: the world stays as it was
    voice_rng = voice.voice_rng(config.seed)
    ticket_text, ticket_voice = voice.ticket_texts(voice_rng, events.tickets)
    extra = voice.extra_answers(voice_rng, cw, ids, WEEK.total_seconds())
    surveys, comment_voice = voice.with_comments(voice_rng, events.surveys(extra))
    troubled = (latent.payment_error_rate > 0.02) | latent.bad_service
    world = World(
        customers=voice.acquisition(
            voice_rng, customers, troubled, voice.delighted_answers(surveys, ids)
        ),
        clickstream=clickstream,
        support=events.tickets.drop(_TICKET_STATE).with_columns(ticket_text),
        surveys=surveys,
        truth=truth,
        truth_at_cutoffs=truth_at_cutoffs,
        voice=pl.concat([comment_voice, ticket_voice]),
    )
    log.info(
        "events: %s clicks, %s tickets, %s survey answers, %.1fs",
        f"{world.clickstream.height:,}",
        f"{world.support.height:,}",
        f"{world.surveys.height:,}",
        time.perf_counter() - started,
    )
    return world


def pilot_churn_rate(config: WorldConfig, customers: int = 2_000) -> float:
    """The share of customers active a horizon before the end who leave by the end, in a quick
    world of `customers` with the same rules (weeks only: no events, no oracle), to size the
    base hazard of drawn rules."""
    rng = np.random.default_rng(config.seed)
    small = replace(config, customers=customers)
    latent = _latent(rng, customers, small)
    joined = rng.uniform(-104, config.weeks - 12, customers)
    state = _new_state(rng, config.mechanics, latent, joined)
    horizon_weeks = round(config.horizon_days / 7)
    active_then = np.zeros(customers, dtype=bool)
    left = np.zeros(customers, dtype=bool)
    for week in range(config.weeks):
        if week == config.weeks - horizon_weeks:
            active_then = state.alive.copy()
        joining = np.floor(np.maximum(joined, -1.0)) == week - 1
        leaving, _ = _step(rng, config.mechanics, latent, state, joining=joining)
        left |= leaving & active_then
    return float(left[active_then].mean()) if active_then.any() else 0.0


def _alive_at(
    config: WorldConfig, signup_at: np.ndarray, churn_seconds: np.ndarray, cutoff: datetime
) -> np.ndarray:
    """Signed up before the cutoff and not churned by it: the population the pipeline sees at that
    cutoff."""
    at = (cutoff - config.start).total_seconds()
    return (signup_at < at) & ~(churn_seconds <= at)


def _ts(config: WorldConfig, seconds: np.ndarray) -> pl.Series:
    """Seconds since the world's start (NaN for 'never') as UTC timestamps."""
    micros = np.round((config.start.timestamp() + seconds) * 1e6)
    return pl.Series(micros).fill_nan(None).cast(pl.Int64).cast(pl.Datetime("us", "UTC"))


def _customers(rng, config: WorldConfig, ids, signup_at, churn_seconds) -> pl.DataFrame:
    plan = rng.choice(["basic", "pro", "business"], ids.size, p=[0.6, 0.3, 0.1])
    price = np.select([plan == "basic", plan == "pro"], [19.0, 49.0], 149.0)
    numbers = range(config.first_customer, config.first_customer + ids.size)
    return pl.DataFrame(
        {
            "customer_id": ids,
            "name": [f"Customer {i}" for i in numbers],
            "email": [f"customer{i}@example.com" for i in numbers],
            "phone": [f"+1-555-{i:07d}" for i in numbers],
            "signup_at": _ts(config, signup_at),
            # a purchase-only business never learns who left
            "churned_at": _ts(
                config,
                churn_seconds
                if config.mechanics.contractual
                else np.full_like(churn_seconds, np.nan),
            ),
            "plan": plan,
            "country": rng.choice(["US", "GB", "DE", "FR", "BR"], ids.size),
            "monthly_value": np.round(price * rng.uniform(0.8, 1.2, ids.size), 2),
        }
    )


class _Expander:
    """Expands customer-week counts into individual events with sessions, pages and timestamps."""

    def __init__(
        self,
        rng: np.random.Generator,
        config: WorldConfig,
        cw: pl.DataFrame,
        latent: Latent,
        ids: np.ndarray,
    ):
        self.rng, self.config, self.ids = rng, config, ids
        self.cw = cw.with_row_index("cw").with_columns(
            session_offset=pl.col("sessions").cum_sum() - pl.col("sessions"),
            activity=pl.Series(latent.activity[cw["customer"].to_numpy()]),
        )
        sessions = self.cw.select(pl.col("cw").repeat_by("sessions").explode().drop_nulls())[
            "cw"
        ].to_numpy()
        self.session_cw = sessions
        self.session_start = self._week_seconds(sessions) + rng.uniform(
            0, 6.9 * 86400, sessions.size
        )
        self.tickets, self._ticket_cw = self._support()

    def _week_seconds(self, cw_idx: np.ndarray) -> np.ndarray:
        return self.cw["week"].to_numpy()[cw_idx] * WEEK.total_seconds()

    def _repeat(self, counts: np.ndarray) -> np.ndarray:
        return np.repeat(np.arange(counts.size), counts)

    def _in_sessions(self, per_cw: np.ndarray) -> np.ndarray:
        """Place `per_cw[i]` events in random sessions of customer-week i; returns session
        indices."""
        cw_idx = self._repeat(per_cw)
        offsets = self.cw["session_offset"].to_numpy()[cw_idx]
        return offsets + (
            self.rng.random(cw_idx.size) * self.cw["sessions"].to_numpy()[cw_idx]
        ).astype(np.int64)

    def _session_events(
        self,
        session: np.ndarray,
        event_type: str,
        minutes: tuple[float, float],
        page=None,
        value=None,
    ) -> dict:
        at = self.session_start[session] + self.rng.uniform(
            minutes[0] * 60, minutes[1] * 60, session.size
        )
        return {
            "session": session,
            "seconds": at,
            "event_type": event_type,
            "page": page,
            "value": value,
        }

    def _per_session(self, p: float) -> np.ndarray:
        return np.flatnonzero(self.rng.random(self.session_start.size) < p)

    def clickstream(self) -> pl.DataFrame:
        rng, cw = self.rng, self.cw
        n_sessions = self.session_start.size
        # a friction this world counts in its hazard comes from its customer-weeks alone, so the
        # events the pipeline sees are exactly the frictions the hazard saw
        kept = set(self.config.mechanics.extra_columns)
        parts = []
        views = self._repeat(1 + rng.poisson(1.5, n_sessions))
        parts.append(
            self._session_events(
                views,
                "page_view",
                (0, 5),
                page=rng.choice(["/", "/products", "/account", "/help"], views.size),
            )
        )
        parts.append(
            self._session_events(
                self._repeat(rng.poisson(1.2, n_sessions)),
                "product_view",
                (2, 10),
                page="/products/item",
            )
        )
        parts.append(
            self._session_events(self._per_session(0.15), "page_view", (1, 6), page="/blog/how-to")
        )
        parts.append(
            self._session_events(self._per_session(0.1), "page_view", (3, 6), page="/pricing")
        )
        searches = self._per_session(0.4)
        failed = (
            np.zeros(searches.size, dtype=bool)
            if "failed_searches" in kept
            else rng.random(searches.size) < 0.15
        )
        parts.append(
            self._session_events(
                searches,
                "search",
                (1, 8),
                value=np.where(failed, 0.0, rng.integers(1, 50, searches.size)),
            )
        )
        carts = self._per_session(0.35)
        parts.append(self._session_events(carts, "add_to_cart", (10, 15)))
        if "cart_removals" not in kept:
            parts.append(
                self._session_events(
                    carts[rng.random(carts.size) < 0.2], "remove_from_cart", (15, 18)
                )
            )
        parts.extend(self._counted_frictions(kept))
        parts.append(self._session_events(self._per_session(0.03), "chatbot_message", (2, 20)))

        exits = self._in_sessions(cw["pricing_exits"].to_numpy())
        parts.append(self._session_events(exits, "page_view", (25, 26), page="/pricing"))
        parts.append(self._session_events(exits, "exit_intent", (27, 28), page="/pricing"))

        checkout_cw = self._repeat(cw["checkouts"].to_numpy())
        checkout_session = self._in_sessions(cw["checkouts"].to_numpy())
        rank = np.arange(checkout_cw.size) - np.searchsorted(checkout_cw, checkout_cw)
        failed = rank < cw["payment_errors"].to_numpy()[checkout_cw]
        start = self.session_start[checkout_session] + rng.uniform(
            20 * 60, 25 * 60, checkout_session.size
        )
        parts.append(
            {
                "session": checkout_session,
                "seconds": start,
                "event_type": "checkout_start",
                "page": "/checkout",
                "value": None,
            }
        )
        parts.append(
            {
                "session": checkout_session[failed],
                "seconds": start[failed] + 30,
                "event_type": "payment_error",
                "page": "/checkout",
                "value": None,
            }
        )
        bought = np.where(
            failed,
            rng.random(failed.size) < _BUYS_AFTER_ERROR,
            rng.random(failed.size) < _BUYS,
        )
        order_value = np.round(rng.gamma(2.0, 30.0, bought.sum()), 2)
        parts.append(
            {
                "session": checkout_session[bought],
                "seconds": start[bought] + 120,
                "event_type": "purchase",
                "page": "/checkout",
                "value": order_value,
            }
        )
        abandoned = ~bought & (rng.random(bought.size) < 0.5)
        parts.append(
            {
                "session": checkout_session[abandoned],
                "seconds": start[abandoned] + 90,
                "event_type": "exit_intent",
                "page": "/checkout",
                "value": None,
            }
        )
        if "return_requests" not in kept:
            returns = checkout_session[bought][rng.random(bought.sum()) < 0.05]
            parts.append(
                self._session_events(returns, "return_request", (60 * 24 * 3, 60 * 24 * 10))
            )

        frames = [self._frame_from_sessions(p) for p in parts]
        activity = cw["activity"].to_numpy()
        for event_type, rate in {
            "email_open": 0.8 * np.sqrt(activity),
            "email_click": 0.15 * np.sqrt(activity),
            "social_visit": 0.15 * activity,
            "ad_click": np.full(activity.size, 0.1),
            "referral_visit": np.full(activity.size, 0.03),
            "community_post": 0.05 * activity,
            "review_post": np.full(activity.size, 0.02),
            "unsubscribe": np.full(activity.size, 0.002),
            "plan_downgrade": np.full(activity.size, 0.003),
        }.items():
            column = _COUNTED_WEEKLY.get(event_type)
            counts = cw[column].to_numpy() if column in kept else rng.poisson(rate)
            frames.append(self._frame_from_weeks(counts, event_type))
        if self.config.mechanics.contractual:  # a purchase-only business has no renewals
            renewals = ((cw["week"] + cw["customer"]) % 4 == 0).to_numpy().astype(np.int64)
            frames.append(self._frame_from_weeks(renewals, "subscription_renewal"))
        events = pl.concat(frames, how="vertical_relaxed").sort("ts")
        events = events.filter(pl.col("ts") < self.config.end)
        return events.with_columns(
            event_id=pl.format(_id_prefix(self.config, "E") + "{}", pl.int_range(pl.len()))
        ).select(
            "event_id", "customer_id", "ts", "event_type", "session_id", "page", "channel", "value"
        )

    def _counted_frictions(self, kept: set[str]) -> list[dict]:
        """The session events of the frictions this world counts beyond the demo's: a search
        that found nothing, an item put in the cart and taken out, a product page left with exit
        intent, a return requested."""
        parts = []
        for column, events in _COUNTED_IN_SESSIONS.items():
            if column not in kept:
                continue
            sessions = self._in_sessions(self.cw[column].to_numpy())
            for event_type, minutes, page, value in events:
                values = None if value is None else np.full(sessions.size, value)
                parts.append(self._session_events(sessions, event_type, minutes, page, values))
        return parts

    def _counted_csat(self) -> list[pl.DataFrame]:
        """The CSATs of a touchpoint whose bad scores this world counts: the low ones (1-2) the
        hazard saw, and satisfied ones (4-5) from a weekly sample."""
        rng, cw, frames = self.rng, self.cw, []
        for column in self.config.mechanics.extra_columns:
            if not column.startswith("low_csat_"):
                continue
            low = self._repeat(cw[column].to_numpy())
            high = self._repeat(rng.binomial(1, 0.03, cw.height))
            at = np.concatenate([low, high])
            frames.append(
                pl.DataFrame(
                    {
                        "customer_id": self.ids[cw["customer"].to_numpy()[at]],
                        "ts": _ts(
                            self.config,
                            self._week_seconds(at) + rng.uniform(0, 6.9 * 86400, at.size),
                        ),
                        "survey_type": "csat",
                        "score": np.concatenate(
                            [rng.integers(1, 3, low.size), rng.integers(4, 6, high.size)]
                        ).astype(np.float64),
                        "touchpoint": TOUCHPOINT_OF[column],
                        "_friction": np.arange(at.size) < low.size,
                    }
                )
            )
        return frames

    def _frame_from_sessions(self, part: dict) -> pl.DataFrame:
        session = part["session"]
        cw_idx = self.session_cw[session]
        return pl.DataFrame(
            {
                "customer_id": self.ids[self.cw["customer"].to_numpy()[cw_idx]],
                "ts": _ts(self.config, part["seconds"]),
                "event_type": part["event_type"],
                "session_id": pl.Series(session)
                .cast(pl.String)
                .str.replace(r"^", _id_prefix(self.config, "S")),
                "page": part["page"]
                if not isinstance(part["page"], type(None))
                else pl.Series([None] * session.size, dtype=pl.String),
                "channel": "web",
                "value": pl.Series(part["value"], dtype=pl.Float64)
                if part["value"] is not None
                else pl.Series([None] * session.size, dtype=pl.Float64),
            }
        )

    def _frame_from_weeks(self, per_cw: np.ndarray, event_type: str) -> pl.DataFrame:
        cw_idx = self._repeat(per_cw)
        seconds = self._week_seconds(cw_idx) + self.rng.uniform(0, 6.9 * 86400, cw_idx.size)
        return pl.DataFrame(
            {
                "customer_id": self.ids[self.cw["customer"].to_numpy()[cw_idx]],
                "ts": _ts(self.config, seconds),
                "event_type": event_type,
                "session_id": pl.Series([None] * cw_idx.size, dtype=pl.String),
                "page": pl.Series([None] * cw_idx.size, dtype=pl.String),
                "channel": "email"
                if event_type.startswith("email") or event_type == "unsubscribe"
                else "web",
                "value": pl.Series([None] * cw_idx.size, dtype=pl.Float64),
            }
        )

    def _support(self) -> tuple[pl.DataFrame, np.ndarray]:
        rng, cw = self.rng, self.cw
        ticket_cw = self._repeat(cw["tickets"].to_numpy())
        rank = np.arange(ticket_cw.size) - np.searchsorted(ticket_cw, ticket_cw)
        bad = rank < cw["bad_tickets"].to_numpy()[ticket_cw]
        opened = self._week_seconds(ticket_cw) + rng.uniform(0, 6.5 * 86400, ticket_cw.size)
        unanswered = bad & (rng.random(ticket_cw.size) < 0.4)
        first_hours = np.where(
            bad, rng.uniform(30, 120, ticket_cw.size), rng.uniform(0.2, 8, ticket_cw.size)
        )
        first = np.where(unanswered, np.nan, opened + first_hours * 3600)
        resolve_hours = np.where(
            bad, rng.uniform(24, 200, ticket_cw.size), rng.uniform(1, 48, ticket_cw.size)
        )
        resolved = np.where(
            unanswered | (bad & (rng.random(ticket_cw.size) < 0.3)),
            np.nan,
            first + resolve_hours * 3600,
        )
        end = (self.config.end - self.config.start).total_seconds()
        first, resolved = (
            np.where(first < end, first, np.nan),
            np.where(resolved < end, resolved, np.nan),
        )
        tickets = pl.DataFrame(
            {
                "ticket_id": [
                    f"{_id_prefix(self.config, 'T')}{i:07d}" for i in range(ticket_cw.size)
                ],
                "customer_id": self.ids[cw["customer"].to_numpy()[ticket_cw]],
                "opened_at": _ts(self.config, opened),
                "channel": rng.choice(
                    ["phone", "email", "chat", "form"], ticket_cw.size, p=[0.3, 0.35, 0.25, 0.1]
                ),
                "category": rng.choice(
                    ["billing", "delivery", "product", "account", "technical", "other"],
                    ticket_cw.size,
                ),
                "first_response_at": _ts(self.config, first),
                "resolved_at": _ts(self.config, resolved),
                "reopened": np.where(
                    bad, rng.poisson(0.5, ticket_cw.size), rng.poisson(0.05, ticket_cw.size)
                ),
                "escalated": np.where(
                    bad, rng.random(ticket_cw.size) < 0.3, rng.random(ticket_cw.size) < 0.03
                ),
            }
        ).with_columns(
            _bad=pl.Series(bad),
            _rank=pl.Series(rank),
            _opened_s=pl.Series(opened),
        )
        return tickets, ticket_cw

    def surveys(self, extra: pl.DataFrame) -> pl.DataFrame:
        """The CES after tickets, a weekly NPS sample, and the `extra` answers (customer_id,
        seconds from the world's start, survey_type, score, touchpoint, _friction), without
        comments; `_friction` (not in the contract) says which answers follow a friction."""
        rng, cw, t = self.rng, self.cw, self.tickets
        bad, rank = t["_bad"].to_numpy(), t["_rank"].to_numpy()
        n_bad = cw["bad_tickets"].to_numpy()[self._ticket_cw]
        # exactly the responses the hazard counted: the first low_ces bad and high_ces good tickets
        # of each week
        answered = np.where(
            bad,
            rank < cw["low_ces"].to_numpy()[self._ticket_cw],
            rank - n_bad < cw["high_ces"].to_numpy()[self._ticket_cw],
        )
        ces_score = np.where(bad, rng.integers(1, 4, bad.size), rng.integers(5, 8, bad.size))[
            answered
        ]
        ces = pl.DataFrame(
            {
                "customer_id": t["customer_id"].filter(pl.Series(answered)),
                "ts": _ts(
                    self.config,
                    t["_opened_s"].to_numpy()[answered] + rng.uniform(3600, 86400, answered.sum()),
                ),
                "survey_type": "ces",
                "score": ces_score.astype(np.float64),
                "touchpoint": "customer_service",
                "_friction": bad[answered],
            }
        )
        nps_cw = self._repeat(rng.binomial(1, 0.04, cw.height))
        nps = pl.DataFrame(
            {
                "customer_id": self.ids[cw["customer"].to_numpy()[nps_cw]],
                "ts": _ts(
                    self.config,
                    self._week_seconds(nps_cw) + rng.uniform(0, 6.9 * 86400, nps_cw.size),
                ),
                "survey_type": "nps",
                "score": rng.integers(0, 11, nps_cw.size).astype(np.float64),
                "touchpoint": pl.Series([None] * nps_cw.size, dtype=pl.String),
                "_friction": False,
            }
        )
        added = extra.with_columns(ts=_ts(self.config, extra["seconds"].to_numpy())).select(
            ces.columns
        )
        responses = (
            pl.concat([ces, nps, added, *self._counted_csat()])
            .filter(pl.col("ts") < self.config.end)
            .sort("ts", maintain_order=True)
        )
        return responses.with_columns(
            response_id=pl.format(_id_prefix(self.config, "R") + "{}", pl.int_range(pl.len()))
        ).select(
            "response_id", "customer_id", "ts", "survey_type", "score", "touchpoint", "_friction"
        )
