"""What a run builds, decided once from the data (asset `feature_plan`): `as_of`, the cutoffs, and
which features this catalogue and data support. Training, scoring, attribution and the report all
read the plan, so they agree on the features, and none decides them again from the raw tables.

A feature is a pure function of the cutoff returning a Polars expression over one source as known
strictly before the cutoff (`features.feature`); the families that generate them from the catalogue
are in `features.families`. The registry is rebuilt from the plan wherever it is needed: features
hold functions, so the plan stores what decides them (the touchpoints touched, the ticket
touchpoints, the surveys answered, the subscription plans), and the same plan gives the same
registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from features import families
from features.catalogue import Catalogue
from features.feature import FeatureDef
from features.purchases import BgnbdParams, fit_purchase_models
from features.touchpoint_days import DAY, LAST_TOUCH, PURCHASES, latest_touch, touches_column
from features.training_sample import in_sample
from features.voice.themes import Theme, corpus_fingerprint, documents, fit_themes

Frame = pl.DataFrame | pl.LazyFrame


MIN_CUTOFFS = 3  # two to train on, one to judge


class NotEnoughHistory(ValueError):
    """The inputs do not span enough time to train and validate by time."""


@dataclass(frozen=True)
class FeatureSet:
    """Which features the data supports: touch features for the touchpoints touched at all, support
    features for the touchpoints with tickets, survey features for the (touchpoint, survey type)
    pairs answered, one indicator per subscription plan, the customer-value family where anyone
    bought, and the monthly value where the customers table has one."""

    touched: tuple[str, ...]
    support_touchpoints: tuple[str, ...]
    survey_pairs: tuple[tuple[str, str], ...]
    subscription_plans: tuple[str, ...]
    purchases: bool = True
    monthly_value: bool = True
    # what customers wrote, as themes (features.voice.themes): the disappointment and ticket themes
    # become features, every theme is read by the voice_themes asset
    voice: tuple[Theme, ...] = ()
    # the fingerprint of the texts the themes were fitted on (`corpus_fingerprint`)
    voice_corpus: str | None = None

    def registry(self, catalogue: Catalogue, horizon_days: int) -> list[FeatureDef]:
        return build_registry(
            catalogue,
            self.support_touchpoints,
            self.survey_pairs,
            self.subscription_plans,
            self.touched,
            purchases=self.purchases,
            monthly_value=self.monthly_value,
            horizon_days=horizon_days,
            voice=self.voice,
        )


@dataclass(frozen=True)
class FeaturePlan:
    """What a run builds. `labelled` are the monthly cutoffs (midnights UTC) whose horizon is
    complete by `as_of`: the model trains on all of them, and its backtest judges the newest. It
    is empty when the history is too short to train by time (`training_problem` says why): the
    features can still be built and scored with a champion trained before, so only training
    stops. `training_sample` names the hash buckets of the customers the training snapshots hold
    when the labelled rows exceed the training budget (`features.training_sample`); None: every
    customer."""

    as_of: datetime
    horizon_days: int
    scoring_cutoff: datetime
    features: FeatureSet
    catalogue: str  # the fingerprint of the catalogue the features were decided with
    labelled: tuple[datetime, ...]
    training_problem: str | None = None
    training_sample: tuple[int, ...] | None = None
    bgnbd: tuple[tuple[datetime, BgnbdParams | None], ...] = ()

    def purchase_models(self) -> dict[datetime, BgnbdParams | None]:
        """Each labelled and the scoring cutoff's BG/NBD model parameters (None: no fit)."""
        return dict(self.bgnbd)

    def trains_on(self) -> pl.Expr:
        """True for the customers whose snapshots the model trains on."""
        return in_sample(pl.col("customer_id"), self.training_sample)

    def registry(self, catalogue: Catalogue) -> list[FeatureDef]:
        """The features, from the catalogue the plan was made with: another catalogue would name
        other features than the plan's tables hold."""
        if catalogue.fingerprint != self.catalogue:
            raise ValueError(
                f"the touchpoint catalogue ({catalogue.source}) changed since the feature plan was "
                "made: materialize feature_plan again (any run that builds features does)"
            )
        return self.features.registry(catalogue, self.horizon_days)

    def labelled_cutoffs(self) -> tuple[datetime, ...]:
        if not self.labelled:
            raise NotEnoughHistory(self.training_problem or "no labelled cutoffs")
        return self.labelled

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON values: what the asset store keeps and the UI shows."""
        return {
            "as_of": self.as_of.isoformat(),
            "horizon_days": self.horizon_days,
            "scoring_cutoff": self.scoring_cutoff.isoformat(),
            "labelled_cutoffs": [c.isoformat() for c in self.labelled],
            "training_problem": self.training_problem,
            "training_sample": None if self.training_sample is None else list(self.training_sample),
            "catalogue": self.catalogue,
            "touched": list(self.features.touched),
            "support_touchpoints": list(self.features.support_touchpoints),
            "survey_pairs": [list(pair) for pair in self.features.survey_pairs],
            "subscription_plans": list(self.features.subscription_plans),
            "purchases": self.features.purchases,
            "monthly_value": self.features.monthly_value,
            "voice": [t.to_json() for t in self.features.voice],
            "voice_corpus": self.features.voice_corpus,
            "bgnbd": [[c.isoformat(), None if p is None else list(p)] for c, p in self.bgnbd],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeaturePlan:
        when = datetime.fromisoformat
        return cls(
            as_of=when(data["as_of"]),
            horizon_days=int(data["horizon_days"]),
            scoring_cutoff=when(data["scoring_cutoff"]),
            features=FeatureSet(
                touched=tuple(data["touched"]),
                support_touchpoints=tuple(data["support_touchpoints"]),
                survey_pairs=tuple((t, s) for t, s in data["survey_pairs"]),
                subscription_plans=tuple(data["subscription_plans"]),
                purchases=bool(data["purchases"]),
                monthly_value=bool(data["monthly_value"]),
                voice=tuple(Theme.from_json(t) for t in data.get("voice", [])),
                voice_corpus=data.get("voice_corpus"),
            ),
            catalogue=data["catalogue"],
            labelled=tuple(when(c) for c in data["labelled_cutoffs"]),
            training_problem=data["training_problem"],
            training_sample=None
            if data.get("training_sample") is None
            else tuple(data["training_sample"]),
            bgnbd=tuple(
                (when(c), None if p is None else (p[0], p[1], p[2], p[3]))
                for c, p in data.get("bgnbd", [])
            ),
        )


def plan_features(
    customers: pl.DataFrame,
    days: Frame,
    support: Frame,
    surveys: Frame,
    catalogue: Catalogue,
    horizon_days: int,
    max_cutoffs: int,
    as_of: datetime | None = None,
    earlier: FeaturePlan | None = None,
) -> FeaturePlan:
    """The plan for these tables: `as_of` (default: the latest moment they know about), the
    newest `max_cutoffs` monthly cutoffs whose `horizon_days` label window is complete, and the
    features they support, with the themes of what customers wrote before the newest labelled
    cutoff (before `as_of` without one): the model is judged at that cutoff, so its themes hold
    nothing written after it, and every run within a month draws the same themes. They are the
    `earlier` plan's when it fitted them on the same texts (`corpus_fingerprint`). The cutoffs'
    BG/NBD models are added once the cutoffs are final (`with_purchase_models`).

    Reads a few columns and sums of the event tables and customer-days, so they can be lazy scans
    of every bucket: the plan never holds a whole table."""
    days = days.lazy()
    bounds = days.select(pl.col(DAY).min(), pl.col(LAST_TOUCH).max()).collect()
    as_of = latest_timestamp(customers, bounds) if as_of is None else as_of
    first_day = bounds[DAY].item()
    labelled: tuple[datetime, ...] = ()
    problem = None
    try:
        if not isinstance(first_day, datetime):
            raise NotEnoughHistory("no touches at all: there is no history to train on")
        labelled = choose_cutoffs(first_day, as_of, horizon_days, max_cutoffs)
    except NotEnoughHistory as err:
        problem = str(err)
    texts = documents(surveys, support, catalogue)
    before = labelled[-1] if labelled else as_of
    corpus = corpus_fingerprint(texts, before)
    voice = (
        earlier.features.voice
        if earlier is not None and earlier.features.voice_corpus == corpus
        else fit_themes(texts, before)
    )
    features = feature_set(customers, days, support, surveys, catalogue)
    return FeaturePlan(
        as_of=as_of,
        horizon_days=horizon_days,
        scoring_cutoff=scoring_cutoff(as_of),
        features=replace(features, voice=voice, voice_corpus=corpus),
        catalogue=catalogue.fingerprint,
        labelled=labelled,
        training_problem=problem,
    )


def with_purchase_models(plan: FeaturePlan, bought: pl.DataFrame) -> FeaturePlan:
    """The plan with the BG/NBD model of each labelled and the scoring cutoff, fitted once on
    every customer's days with a purchase (`bought`: customer_id, day, purchases and their value),
    so every bucket's purchase figures come from the same four parameters."""
    if not plan.features.purchases:
        return plan
    models = fit_purchase_models(bought, [*plan.labelled, plan.scoring_cutoff])
    return replace(plan, bgnbd=tuple(sorted(models.items())))


def feature_set(
    customers: Frame, days: Frame, support: Frame, surveys: Frame, catalogue: Catalogue
) -> FeatureSet:
    """The features these tables support. Reads a few small columns and sums, so it can be taken
    over all data (lazy scans of it) when features are built part by part."""
    counted = [touches_column(name) for name in catalogue.names]
    touches = days.lazy().select(pl.col(counted).sum()).collect()
    support_touchpoints = (
        support.lazy().select(catalogue.support_touchpoint().alias("touchpoint")).unique().collect()
    )
    survey_pairs = (
        surveys.lazy()
        .select(catalogue.survey_touchpoint().alias("touchpoint"), "survey_type")
        .unique()
        .collect()
    )
    plans = customers.lazy().select(pl.col("plan").drop_nulls().unique()).collect()
    bought = days.lazy().select((pl.col(PURCHASES) > 0).any()).collect().item()
    valued = customers.lazy().select(pl.col("monthly_value").is_not_null().any()).collect().item()
    return FeatureSet(
        touched=tuple(
            n for n, c in zip(catalogue.names, counted, strict=True) if touches[c].item()
        ),
        support_touchpoints=tuple(sorted(support_touchpoints["touchpoint"].to_list())),
        survey_pairs=tuple(sorted(survey_pairs.iter_rows())),
        subscription_plans=tuple(sorted(plans["plan"].to_list())),
        purchases=bool(bought),
        monthly_value=bool(valued),
    )


def build_registry(
    catalogue: Catalogue,
    support_touchpoints: Sequence[str],
    survey_pairs: Iterable[tuple[str, str]],
    subscription_plans: Sequence[str] = (),
    touched: Sequence[str] | None = None,
    *,
    horizon_days: int,
    purchases: bool = True,
    monthly_value: bool = True,
    voice: Sequence[Theme] = (),
) -> list[FeatureDef]:
    """Touch features for the catalogue's touchpoints the data has any touch at (`touched`; None:
    all, a catalogue's full dictionary), support and survey features for the touchpoints it has
    tickets and answers for, and one indicator per subscription plan (the same inputs give the same
    registry). A touchpoint nobody touched is one this business does not have (a table left out,
    say): its features would be empty for every customer, which the null-rate checks rightly
    stop."""
    defs: list[FeatureDef] = []
    pairs = sorted(survey_pairs)
    for t in catalogue.touchpoints:
        if touched is None or t.name in touched:
            defs += families.touchpoint_features(catalogue, t)
        if t.name in support_touchpoints:
            defs += families.support_features(t)
        for touchpoint, survey_type in pairs:
            if touchpoint == t.name:
                defs += families.survey_features(t, survey_type)
        defs += families.voice_features(t, [v for v in voice if v.touchpoint == t.name])
    defs += families.journey_features(catalogue)
    defs += families.profile_features(sorted(subscription_plans), monthly_value)
    if purchases:
        defs += families.customer_value_features(horizon_days)
    names = [d.name for d in defs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(
            f"two features share a name: {duplicates}; rename a touchpoint in the catalogue"
        )
    return defs


def latest_timestamp(customers: pl.DataFrame, days: pl.DataFrame) -> datetime:
    """The latest moment the inputs know about: the default `as_of`."""
    candidates = [latest_touch(days), customers["signup_at"].max(), customers["churned_at"].max()]
    return max(c for c in candidates if isinstance(c, datetime))


def scoring_cutoff(as_of: datetime) -> datetime:
    """The midnight that ends `as_of`'s day: scoring sees every touch up to and including `as_of`'s
    day (features are built from whole days)."""
    return datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC) + timedelta(days=1)


def month_start_at_or_before(moment: datetime) -> datetime:
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def previous_month(moment: datetime) -> datetime:
    year, month = (moment.year - 1, 12) if moment.month == 1 else (moment.year, moment.month - 1)
    return datetime(year, month, 1, tzinfo=UTC)


def choose_cutoffs(
    first_event: datetime,
    as_of: datetime,
    horizon_days: int,
    max_cutoffs: int,
    min_history_days: int = 30,
) -> tuple[datetime, ...]:
    """The newest `max_cutoffs` month starts whose horizon ends by `as_of` and that follow at
    least `min_history_days` of history, oldest first: what the model trains on. At least three,
    so the backtest can judge one on two earlier ones."""
    horizon = timedelta(days=horizon_days)
    cutoffs, cutoff = [], month_start_at_or_before(as_of - horizon)
    while len(cutoffs) < max_cutoffs and cutoff - first_event >= timedelta(days=min_history_days):
        cutoffs.append(cutoff)
        cutoff = previous_month(cutoff)
    if len(cutoffs) < MIN_CUTOFFS:
        span = (as_of - first_event).days
        needed = horizon_days + min_history_days + 31 * MIN_CUTOFFS
        raise NotEnoughHistory(
            f"the inputs span {span} days ({first_event:%Y-%m-%d} to {as_of:%Y-%m-%d}), which "
            f"give {len(cutoffs)} monthly cutoffs with a complete {horizon_days}-day horizon; "
            f"training by time needs {MIN_CUTOFFS}, about {needed} days of history. Add older "
            "events or lower horizon_days."
        )
    return tuple(sorted(cutoffs))
