"""What the simulated customers write and how they came: survey comments, ticket text and
referrals, planted so tests can check that the pipeline hears what was said.

Each friction has its planted complaint (a failing card at checkout, tickets nobody answers at
customer service, prices at the pricing page); decoy touchpoints have complaints of their own that
never touch the hazard; good experiences bring delight. The noise real comments have is here too:
most answers have no comment, some comments are a word or two, some mix two topics, some have
typos. Customers who refer others are the ones spared the latent troubles, so referred customers
churn less without the hazard knowing about referrals.

Everything here draws from its own random stream (`voice_rng`), after the world is simulated, so
planting the voice leaves every click, ticket, answer and label of the world as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from features.voice.bands import DELIGHT, answer_band

# the stream's key beside the world's seed: "voice" in ASCII, far from the chunk numbers
_STREAM = 0x766F696365


def voice_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _STREAM]))


@dataclass(frozen=True)
class Theme:
    """A planted theme: its name, the terms a label naming it holds, and how customers phrase it."""

    name: str
    terms: tuple[str, ...]
    phrases: tuple[str, ...]


def _said(subjects: tuple[str, ...], sayings: tuple[str, ...]) -> tuple[str, ...]:
    """Every subject with every saying: people name the same trouble in their own combination of
    the same few words, not in a handful of fixed sentences."""
    return tuple(f"{subject} {saying}".strip() for subject in subjects for saying in sayings)


PLANTED_COMPLAINTS = {
    "checkout": Theme(
        "card declined",
        ("card", "declined", "payment"),
        _said(
            ("my card", "the card", "payment", "the payment", "my payment"),
            ("was declined", "declined again", "failed", "keeps failing", "did not go through"),
        ),
    ),
    "customer_service": Theme(
        "no reply",
        ("reply", "waited", "answer", "ticket"),
        _said(
            ("no reply", "no answer", "nobody answered", "waited days", "still waiting"),
            ("to my ticket", "from support", "to my emails", "", "again"),
        ),
    ),
    "pricing": Theme(
        "too expensive",
        ("expensive", "price", "cheaper"),
        _said(
            ("too expensive", "the price is too high", "price went up", "cheaper elsewhere"),
            ("for what it does", "for me", "compared to others", "for a small team", ""),
        ),
    ),
}
DECOY_COMPLAINTS = {
    "website": Theme(
        "slow site",
        ("slow", "loading", "site"),
        _said(
            ("the site is slow", "pages keep loading", "slow loading", "the website was slow"),
            ("today", "on my phone", "all the time", ""),
        ),
    ),
    "search": Theme(
        "no results",
        ("search", "results", "nothing"),
        _said(
            ("search finds nothing", "no results", "useless search results", "found nothing"),
            ("for my query", "again", "when i search", ""),
        ),
    ),
    "newsletter": Theme(
        "too many emails",
        ("emails", "newsletter", "inbox"),
        _said(
            ("too many emails", "the newsletter every day", "my inbox is full", "stop the emails"),
            ("from you", "every week", "please", ""),
        ),
    ),
    "feedback_survey": Theme(
        "hard to use",
        ("confusing", "hard", "menus"),
        _said(
            ("the app is confusing", "hard to find anything", "confusing menus", "hard to use"),
            ("for a beginner", "on the app", "since the update", ""),
        ),
    ),
}
# every complaint tied to a touchpoint: what a disappointed answer there writes about, and what a
# comment mixes in as its second topic
_COMPLAINTS = {**PLANTED_COMPLAINTS, **DECOY_COMPLAINTS}
DELIGHTS = {
    "checkout": Theme(
        "quick checkout",
        ("quick", "easy", "smooth"),
        ("quick checkout", "paying was smooth", "easy to pay", "smooth and quick"),
    ),
    "customer_service": Theme(
        "helpful support",
        ("helpful", "friendly", "solved"),
        ("very helpful", "solved my problem", "friendly agent", "helpful and friendly support"),
    ),
    "pricing": Theme(
        "good value",
        ("value", "worth", "fair"),
        ("good value for money", "worth every cent", "fair price", "great value"),
    ),
    "website": Theme(
        "easy to find",
        ("find", "clear", "layout"),
        ("easy to find what i need", "clear layout", "clear and easy to find things"),
    ),
    "search": Theme(
        "found it",
        ("found", "exactly", "first"),
        ("found exactly what i wanted", "first result was the one", "found it right away"),
    ),
    "newsletter": Theme(
        "useful tips",
        ("tips", "useful", "ideas"),
        ("useful tips every week", "love the ideas", "the tips are useful"),
    ),
    "feedback_survey": Theme(
        "love the product",
        ("love", "great", "recommend"),
        ("love the product", "great product", "would recommend it to friends"),
    ),
}
# what disappoints there without any friction the hazard counts: a touchpoint has more than one
# complaint, and the one that drives churn must stand out from the one that does not
BACKGROUND_COMPLAINTS = {
    "checkout": Theme(
        "no paypal",
        ("paypal", "invoice", "shipping"),
        _said(
            ("no paypal", "no option to pay by invoice", "the shipping costs"),
            ("at checkout", "is annoying", "really", ""),
        ),
    ),
    "customer_service": Theme(
        "rude agent",
        ("rude", "agent", "unfriendly"),
        _said(
            ("rude agent", "the agent was unfriendly", "rude staff"), ("on the phone", "", "again")
        ),
    ),
    "pricing": Theme(
        "confusing plans",
        ("plans", "compare", "tiers"),
        _said(
            ("confusing plans", "hard to compare the plans", "too many tiers"),
            ("on the pricing page", "", "honestly"),
        ),
    ),
}
# the share of the disappointed after a friction who write about the background complaint instead
_BACKGROUND_AFTER_FRICTION = 0.15
OK_TEXT = Theme(
    "fine",
    ("fine", "okay", "nothing"),
    ("it was fine", "okay", "nothing special", "does the job", "average"),
)
# what customers wrap a comment in, whatever its theme
OPENERS = ("honestly", "well", "to be honest", "again", "today", "as usual", "hi")
CLOSERS = {
    "disappointment": ("very disappointed", "please fix it", "not happy", "thinking of leaving"),
    "ok": ("that's all", "nothing more", "no complaints"),
    "delight": ("thanks", "keep it up", "love it", "well done"),
}
# what a comment of a word or two says: no theme, the themes' catch-all
SHORT = ("bad", "meh", "terrible", "no", "ok", "good", "great", "...", "n/a", "why")
TICKET_SUBJECTS = {
    "billing": ("question about my invoice", "charged twice this month", "need a copy of a bill"),
    "delivery": ("where is my order", "parcel not arrived yet", "wrong address on the delivery"),
    "product": ("how does the export work", "feature request for reports", "product question"),
    "account": ("cannot log in", "reset my password please", "change the email on my account"),
    "technical": ("error when uploading a file", "the app crashes on start", "sync is broken"),
    "other": ("general question", "please call me back", "question"),
}
# the theme of a ticket text written about a ticket nobody answered: a follow-up
FOLLOW_UP = PLANTED_COMPLAINTS["customer_service"]

# chance an answer in each band has a comment, and what shapes its noise
_COMMENT_CHANCE = {"disappointment": 0.55, "ok": 0.2, "delight": 0.35}
_SHORT_CHANCE = 0.12
_MIXED_CHANCE = 0.12
_REPEAT_CHANCE = 0.35  # a second phrase on the same theme
_WRAP_CHANCE = 0.3  # an opener, and (drawn apart) a closer
_TYPO_CHANCE = 0.15
_TICKET_TEXT_CHANCE = 0.7
# answers the voice adds beside the world's CES and NPS
_CHECKOUT_CSAT_AFTER_ERROR = 0.15  # a failed payment asks for a CSAT...
_CHECKOUT_CSAT_AFTER_SUCCESS = 0.03  # ...and so does a small share of the others
_REPURCHASE_AFTER_EXIT = 0.1  # leaving the pricing page asks "would you buy again?"
_REPURCHASE_WEEKLY = 0.01  # and so does a weekly sample of everyone
_DECOY_CSAT_WEEKLY = 0.01  # each decoy touchpoint's CSAT, unrelated to any friction
VOICE_SCHEMA = pl.Schema(
    {
        "source": pl.String(),
        "id": pl.String(),
        "customer_id": pl.String(),
        "touchpoint": pl.String(),
        "band": pl.String(),
        "theme": pl.String(),
        "second_theme": pl.String(),
    }
)


def _theme(rng: np.random.Generator, touchpoint: str, band: str, friction: bool) -> Theme | None:
    if band == "ok":
        return OK_TEXT
    background = BACKGROUND_COMPLAINTS.get(touchpoint)
    if band == "disappointment" and background is not None:
        if not friction or rng.random() < _BACKGROUND_AFTER_FRICTION:
            return background
    return (DELIGHTS if band == "delight" else _COMPLAINTS).get(touchpoint)


def _typo(rng: np.random.Generator, text: str) -> str:
    """Swap two letters or drop one in a word of four letters or more."""
    words = text.split(" ")
    long = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not long:
        return text
    i = long[rng.integers(len(long))]
    word, at = words[i], int(rng.integers(1, len(words[i]) - 1))
    words[i] = (
        word[:at] + word[at + 1] + word[at] + word[at + 2 :]
        if rng.random() < 0.5
        else word[:at] + word[at + 1 :]
    )
    return " ".join(words)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[rng.integers(len(options))]


def _written(rng: np.random.Generator, theme: Theme, band: str) -> tuple[str, str | None]:
    """A comment on `theme` in `band`, put together from its phrases the way people write: one or
    two of them, sometimes wrapped in words any comment has, sometimes with a second topic, now
    and then a typo. Also the second topic's theme."""
    parts = [_pick(rng, theme.phrases)]
    if rng.random() < _REPEAT_CHANCE:
        parts.append(_pick(rng, theme.phrases))
    second = None
    if rng.random() < _MIXED_CHANCE:
        others = [t for t in _COMPLAINTS.values() if t != theme]
        other = others[rng.integers(len(others))]
        second = other.name
        parts.append(f"and {_pick(rng, other.phrases)}")
    if rng.random() < _WRAP_CHANCE:
        parts.insert(0, _pick(rng, OPENERS))
    if rng.random() < _WRAP_CHANCE:
        parts.append(_pick(rng, CLOSERS[band]))
    text = ", ".join(parts)
    if rng.random() < _TYPO_CHANCE:
        text = _typo(rng, text)
    if rng.random() < 0.3:
        ending = [".", "!", "!!", " :(" if band == "disappointment" else "!"]
        text = text[0].upper() + text[1:] + str(rng.choice(ending))
    return text, second


def _comments(rng: np.random.Generator, answers: pl.DataFrame) -> tuple[pl.Series, pl.DataFrame]:
    """A comment (or none) for each answer, from its touchpoint and band; the truth of each."""
    comments: list[str | None] = []
    truth: list[tuple] = []
    for response_id, customer_id, band, touchpoint, friction in answers.select(
        "response_id", "customer_id", answer_band().alias("band"), "touchpoint", "_friction"
    ).iter_rows():
        place = touchpoint or "feedback_survey"
        theme = _theme(rng, place, band, friction)
        if theme is None or rng.random() >= _COMMENT_CHANCE[band]:
            comments.append(None)
            continue
        if rng.random() < _SHORT_CHANCE:
            text, name, second = str(rng.choice(SHORT)), None, None
        else:
            (text, second), name = _written(rng, theme, band), theme.name
        comments.append(text)
        truth.append(("surveys", response_id, customer_id, place, band, name, second))
    return pl.Series("comment", comments, dtype=pl.String), pl.DataFrame(
        truth, schema=VOICE_SCHEMA, orient="row"
    )


def ticket_texts(rng: np.random.Generator, tickets: pl.DataFrame) -> tuple[pl.Series, pl.DataFrame]:
    """Each ticket's text: its category's subject, or a follow-up about an earlier ticket nobody
    answered where the customer's service is bad and this is not the week's first ticket."""
    texts: list[str | None] = []
    truth: list[tuple] = []
    for ticket_id, customer_id, category, bad, rank in tickets.select(
        "ticket_id", "customer_id", "category", "_bad", "_rank"
    ).iter_rows():
        if rng.random() >= _TICKET_TEXT_CHANCE:
            texts.append(None)
            continue
        if bad and rank > 0:
            text, second = _written(rng, FOLLOW_UP, "disappointment")
            name = FOLLOW_UP.name
        else:
            subjects = TICKET_SUBJECTS[category]
            text, name, second = subjects[rng.integers(len(subjects))], category, None
        texts.append(text)
        truth.append(
            ("support", ticket_id, customer_id, "customer_service", "ticket", name, second)
        )
    return pl.Series("text", texts, dtype=pl.String), pl.DataFrame(
        truth, schema=VOICE_SCHEMA, orient="row"
    )


def extra_answers(
    rng: np.random.Generator, weeks: pl.DataFrame, ids: np.ndarray, week_seconds: float
) -> pl.DataFrame:
    """The answers the voice adds: a CSAT after checkouts (low after a failed payment), "would
    you buy again?" after leaving the pricing page and from a weekly sample, and CSATs at the decoy
    touchpoints. `weeks` holds the world's customer-weeks (customer, week, checkouts,
    payment_errors, pricing_exits); the columns are the surveys' without ids and comments, and
    `_friction`: whether the answer follows a friction (a failed payment, an exit)."""
    n = weeks.height
    errors, checkouts = weeks["payment_errors"].to_numpy(), weeks["checkouts"].to_numpy()
    csat, ten = (1, 2, 3, 4, 5), tuple(range(11))
    parts = [
        (
            "csat",
            "checkout",
            True,
            rng.binomial(errors, _CHECKOUT_CSAT_AFTER_ERROR),
            csat,
            (5, 3, 1, 0, 0),
        ),
        (
            "csat",
            "checkout",
            False,
            rng.binomial(checkouts - errors, _CHECKOUT_CSAT_AFTER_SUCCESS),
            csat,
            (1, 1, 2, 4, 4),
        ),
        (
            "repurchase",
            "pricing",
            True,
            rng.binomial(weeks["pricing_exits"].to_numpy(), _REPURCHASE_AFTER_EXIT),
            ten,
            (3, 3, 4, 4, 4, 4, 3, 2, 1, 1, 1),
        ),
        (
            "repurchase",
            "pricing",
            False,
            rng.binomial(1, _REPURCHASE_WEEKLY, n),
            ten,
            (1, 1, 1, 1, 1, 2, 2, 4, 5, 5, 4),
        ),
        *(
            (
                "csat",
                touchpoint,
                False,
                rng.binomial(1, _DECOY_CSAT_WEEKLY, n),
                csat,
                (2, 2, 2, 3, 3),
            )
            for touchpoint in DECOY_COMPLAINTS
            if touchpoint != "feedback_survey"
        ),
    ]
    frames = []
    for survey_type, touchpoint, friction, count, scores, weights in parts:
        row = np.repeat(np.arange(n), count)
        p = np.array(weights, dtype=np.float64) / sum(weights)
        frames.append(
            pl.DataFrame(
                {
                    "customer": weeks["customer"].to_numpy()[row],
                    "seconds": (weeks["week"].to_numpy()[row] + rng.uniform(0, 0.98, row.size))
                    * week_seconds,
                    "survey_type": survey_type,
                    "score": rng.choice(np.array(scores, dtype=np.float64), row.size, p=p),
                    "touchpoint": touchpoint,
                    "_friction": friction,
                }
            )
        )
    answers = pl.concat(frames)
    return answers.with_columns(customer_id=pl.Series(ids[answers["customer"].to_numpy()])).drop(
        "customer"
    )


def with_comments(
    rng: np.random.Generator, surveys: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The surveys with their comments, and what each comment was written about."""
    comments, truth = _comments(rng, surveys)
    return surveys.with_columns(comments).drop("_friction"), truth


# how customers are acquired; referral's share is set per customer in `acquisition`
_CHANNELS = ("ad", "search", "social", "direct")
_CHANNEL_WEIGHTS = (0.35, 0.3, 0.15, 0.2)
_REFERRAL_SPARED = 0.22  # chance of referral for a customer spared the latent troubles
_REFERRAL_TROUBLED = 0.05  # for one with a failing card or bad service from the start
_PROMOTER_WEIGHT = 2.0  # each delighted answer makes a customer this much likelier to recommend


def acquisition(
    rng: np.random.Generator, customers: pl.DataFrame, troubled: np.ndarray, delights: np.ndarray
) -> pl.DataFrame:
    """The customers with `acquisition_channel` and `referred_by`.

    Recommenders are customers spared the latent troubles (`troubled`: a card that often fails, a
    service that often fails them), and so are most of the customers they bring: friends of
    friends get the same service. So referred customers churn less through the world's own hazard.
    Each referred customer names a recommender who signed up before them (none for the first),
    drawn in proportion to 1 + the recommender's delighted answers (`delights`): promoters are the
    ones who recommend, so what they rated highly shows in the report.
    """
    n = customers.height
    referred = rng.random(n) < np.where(troubled, _REFERRAL_TROUBLED, _REFERRAL_SPARED)
    p = np.array(_CHANNEL_WEIGHTS) / sum(_CHANNEL_WEIGHTS)
    channel = np.where(referred, "referral", rng.choice(_CHANNELS, n, p=p))
    signup = customers["signup_at"].to_physical().to_numpy()
    ids = customers["customer_id"].to_numpy()
    recommenders = np.flatnonzero(~troubled)
    recommenders = recommenders[np.argsort(signup[recommenders], kind="stable")]
    earlier = np.searchsorted(signup[recommenders], signup, side="left")
    weight = np.cumsum(1.0 + _PROMOTER_WEIGHT * delights[recommenders])
    reach = weight[np.maximum(earlier - 1, 0)]
    pick = np.searchsorted(weight, rng.random(n) * reach, side="right")
    recommender = ids[recommenders[np.minimum(pick, recommenders.size - 1)]]
    return customers.with_columns(
        acquisition_channel=pl.Series(channel, dtype=pl.String),
        referred_by=pl.when(pl.Series(referred & (earlier > 0)))
        .then(pl.Series(recommender, dtype=pl.String))
        .otherwise(None),
    )


def delighted_answers(surveys: pl.DataFrame, ids: np.ndarray) -> np.ndarray:
    """How many delighted answers each customer of `ids` gave."""
    counts = surveys.filter(answer_band() == DELIGHT).group_by("customer_id").len()
    found = dict(counts.iter_rows())
    return np.array([found.get(i, 0) for i in ids], dtype=np.float64)


def referral_truth(customers: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """What truth/referrals.json records: the referral rate over all customers and per month of
    signup, and churn in the horizon of referred customers against the others active at the end."""
    referred = pl.col("acquisition_channel") == "referral"
    by_month = (
        customers.group_by(month=pl.col("signup_at").dt.strftime("%Y-%m"))
        .agg(customers=pl.len(), referred=referred.sum())
        .sort("month")
    )
    churn = (
        truth.join(customers.select("customer_id", referred=referred), on="customer_id")
        .group_by("referred")
        .agg(customers=pl.len(), churn_rate=pl.col("churns_in_horizon").mean())
    )
    return {
        "referral_rate": float(customers.select(referred.mean()).item()),
        "by_signup_month": by_month.to_dicts(),
        "churn_in_horizon": {
            ("referred" if r["referred"] else "other"): {
                "customers": r["customers"],
                "churn_rate": r["churn_rate"],
            }
            for r in churn.to_dicts()
        },
    }
