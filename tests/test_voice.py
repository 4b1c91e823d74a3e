"""The voice of the customer without Dagster: scrubbing, bands, themes found in three languages,
themes as point-in-time features, and the referral KPI."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from demo.simulator import WorldConfig, simulate
from features.catalogue import load_catalogue
from features.families import voice_features
from features.feature_plan import plan_features
from features.ingest.scrub import scrub
from features.touchpoint_days import fold_touchpoint_days
from features.voice.bands import DELIGHT, DISAPPOINTMENT, OK, answer_band
from features.voice.referrals import (
    recommender_ratings,
    referral_rate,
    referral_trend,
    referrals_by_month,
    referred_churn,
)
from features.voice.themes import (
    DOCUMENT_SCHEMA,
    assign_themes,
    corpus_fingerprint,
    fit_themes,
    text_themes,
    theme_table,
    themes_fingerprint,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
# (planted theme's words, ways to write it) in three languages
PLANTED = {
    "late": (
        "late",
        [
            "the parcel arrived late",
            "delivery was late again",
            "late delivery, waited two weeks",
            "still late, where is my parcel",
        ],
    ),
    "kaputt": (
        "kaputt",
        [
            "Die Ware kam kaputt an",
            "Verpackung kaputt und Ware beschädigt",
            "leider kaputt geliefert",
            "alles kaputt, sehr ärgerlich",
        ],
    ),
    "nao recebi": (
        "nao recebi",
        [
            "Não recebi o produto",
            "ainda não recebi meu pedido",
            "comprei e não recebi nada",
            "não recebi, quero meu dinheiro",
        ],
    ),
}


def _docs(texts: list[str], touchpoint: str = "delivery", band: str = DISAPPOINTMENT):
    return pl.DataFrame(
        {
            "source": "surveys",
            "id": [f"R{i}" for i in range(len(texts))],
            "customer_id": [f"C{i % 7}" for i in range(len(texts))],
            "ts": [T0 + timedelta(hours=i) for i in range(len(texts))],
            "touchpoint": touchpoint,
            "band": band,
            "text": texts,
        },
        schema=DOCUMENT_SCHEMA,
    )


def _planted_corpus(per_theme: int = 40) -> tuple[pl.DataFrame, list[str]]:
    rng = np.random.default_rng(3)
    texts, truth = [], []
    for name, (_, phrases) in PLANTED.items():
        for _ in range(per_theme):
            texts.append(str(rng.choice(phrases)) + str(rng.choice(["", "!", " :(", "..."])))
            truth.append(name)
    order = rng.permutation(len(texts))
    return _docs([texts[i] for i in order]), [truth[i] for i in order]


def test_scrub_removes_emails_phone_numbers_and_long_digit_runs():
    texts = pl.DataFrame(
        {
            "t": [
                "write to ana.souza+x@mail.com.br please",
                "call +1 555 0101 222 or (11) 98765-4321",
                "card 4111111111111111 declined",
                "3 days late, R$ 12,50",
                None,
            ]
        }
    )
    scrubbed = texts.select(scrub(pl.col("t")))["t"].to_list()
    assert scrubbed[0] == "write to [email] please"
    assert scrubbed[1] == "call [phone] or [phone]"
    assert "4111" not in scrubbed[2]
    assert scrubbed[3] == "3 days late, R$ 12,50"  # short numbers are what comments are about
    assert scrubbed[4] is None


def test_bands_follow_each_survey_types_cut_points():
    answers = pl.DataFrame(
        {
            "survey_type": ["nps", "nps", "nps", "csat", "csat", "ces", "ces", "repurchase"],
            "score": [6.0, 7.0, 9.0, 2.0, 5.0, 3.0, 6.0, 10.0],
        }
    )
    assert answers.select(answer_band())["literal"].to_list() == [
        DISAPPOINTMENT,
        OK,
        DELIGHT,
        DISAPPOINTMENT,
        DELIGHT,
        DISAPPOINTMENT,
        DELIGHT,
        DELIGHT,
    ]


def test_planted_themes_are_found_in_english_german_and_portuguese():
    docs, truth = _planted_corpus()
    themes = fit_themes(docs)
    assert {t.band for t in themes} == {DISAPPOINTMENT}
    assigned = assign_themes(docs, themes).to_list()
    by_key = {t.key: t for t in themes}
    # a planted theme may be split by its phrasings, but its texts land in themes whose label
    # names it, and no theme mixes two planted ones
    for name, (word, _) in PLANTED.items():
        keys = [k for k, n in zip(assigned, truth, strict=True) if n == name]
        named = [k for k in keys if k and any(w in by_key[k].label for w in word.split())]
        assert len(named) >= 0.9 * len(keys), (name, keys)
    for key in set(assigned) - {None}:
        sources = [n for k, n in zip(assigned, truth, strict=True) if k == key]
        assert max(sources.count(n) for n in PLANTED) >= 0.9 * len(sources), (key, sources)
    table = theme_table(docs.with_columns(pl.Series("theme", assigned)), themes)
    assert table["comments"].sum() == sum(k is not None for k in assigned)
    assert table["examples"].list.len().max() == 2


def test_a_texts_theme_depends_on_its_own_words_only():
    docs, _ = _planted_corpus()
    themes = fit_themes(docs)
    together = assign_themes(docs, themes).to_list()
    alone = [assign_themes(docs.slice(i, 1), themes).item() for i in range(0, docs.height, 17)]
    assert alone == together[::17]
    # a group with no themes, or a text with none of their terms, has no theme
    other = _docs(["the parcel arrived late"], touchpoint="checkout")
    assert assign_themes(other, themes).item() is None
    assert assign_themes(_docs(["zzz qqq"]), themes).item() is None


def test_a_days_run_assigns_only_new_or_changed_texts_and_matches_assigning_all():
    docs, _ = _planted_corpus()
    themes = fit_themes(docs)
    everything = text_themes(docs, themes)
    assert everything["theme"].to_list() == assign_themes(docs, themes).to_list()
    # yesterday's texts, one of which has changed since (a file landed again with a new text)
    yesterday = text_themes(docs.head(docs.height - 5), themes)
    changed = docs.with_columns(
        text=pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("zzz qqq")).otherwise("text")
    )
    today = text_themes(changed, themes, yesterday)
    by_id = dict(zip(today["id"], today["theme"], strict=True))
    fresh = text_themes(changed, themes)
    assert by_id == dict(zip(fresh["id"], fresh["theme"], strict=True))
    assert by_id[changed["id"][0]] is None
    # a stored theme is reused, not recomputed: a marked one survives
    marked = yesterday.with_columns(theme=pl.lit("marked"))
    reused = text_themes(changed, themes, marked)
    assert (reused["theme"] == "marked").sum() == docs.height - 6
    # the fingerprint tells themes apart and survives their stored form
    assert themes_fingerprint(themes) != themes_fingerprint(themes[1:])
    stored = tuple(type(t).from_json(t.to_json()) for t in themes)
    assert themes_fingerprint(stored) == themes_fingerprint(themes)


def test_themes_learn_only_from_texts_before_the_fit_cutoff():
    docs, _ = _planted_corpus()
    cut = docs["ts"].sort()[60]
    before = fit_themes(docs, before=cut)
    assert before == fit_themes(docs.filter(pl.col("ts") < cut))
    assert fit_themes(docs, before=T0) == ()  # nothing written yet: no themes
    # the fingerprint that lets a run reuse the last plan's themes reads what the fit reads
    texts_after = docs.with_columns(
        text=pl.when(pl.col("ts") >= cut).then(pl.lit("zzz")).otherwise("text")
    )
    assert corpus_fingerprint(texts_after, cut) == corpus_fingerprint(docs, cut)
    text_before = docs.with_columns(
        text=pl.when(pl.col("ts") == docs["ts"].min()).then(pl.lit("zzz")).otherwise("text")
    )
    assert corpus_fingerprint(text_before, cut) != corpus_fingerprint(docs, cut)
    assert corpus_fingerprint(docs, cut) != corpus_fingerprint(docs, docs["ts"].sort()[61])


def test_theme_features_count_the_last_90_days_before_the_cutoff():
    docs, _ = _planted_corpus()
    themes = fit_themes(docs)
    checkout = load_catalogue().get("checkout")
    mine = tuple(
        type(t)(
            "checkout", t.band, t.key, t.label, t.terms, t.weights, t.catch_all
        )  # the same themes, as if written about checkout
        for t in themes
    )
    defs = voice_features(checkout, mine)
    assert len(defs) == sum(not t.catch_all for t in mine) > 0
    late = next(d for d in defs if "late" in d.name)
    answers = pl.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B"],
            "ts": [T0, T0 + timedelta(days=50), T0 + timedelta(days=95), T0],
            "touchpoint": "checkout",
            "theme": [late.name.removeprefix("checkout_says_").removesuffix("_90d")] * 4,
        }
    )
    cutoff = T0 + timedelta(days=91)
    counted = (
        answers.filter(pl.col("ts") < cutoff)
        .group_by("customer_id")
        .agg(late.expr(cutoff).alias("n"))
        .sort("customer_id")
    )
    # A's answer on day 0 is older than 90 days at day 91, the one on day 95 is after the cutoff
    assert counted["n"].to_list() == [1.0, 0.0]
    assert late.explain(1.0).startswith('wrote about "')
    assert late.explain(1.0).endswith("at checkout and payment once in the last 90 days (survey)")
    assert "3 times" in late.explain(3.0)


def test_referral_rate_trend_churn_and_what_recommenders_rated():
    months = [T0 + timedelta(days=31 * m) for m in range(12)]
    rows = []
    for m, signup in enumerate(months):
        for i in range(10):
            # 10% referred in the first six months, 30% in the last six
            referred = i < (1 if m < 6 else 3)
            rows.append(
                {
                    "customer_id": f"C{m}-{i}",
                    "signup_at": signup,
                    "acquisition_channel": "referral" if referred else "ad",
                    "referred_by": "C0-9" if referred else None,
                }
            )
    customers = pl.DataFrame(rows)
    assert referral_rate(customers) == 0.2
    by_month = referrals_by_month(customers)
    assert by_month.height == 12
    trend = referral_trend(by_month)
    assert trend is not None and abs(trend - 0.2) < 1e-9
    snapshots = pl.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "cutoff": T0,
            "churned": [
                not (r["acquisition_channel"] == "referral") and i % 2 == 0
                for i, r in enumerate(rows)
            ],
        }
    )
    churn = dict(referred_churn(customers, snapshots).select("acquired", "churn_rate").iter_rows())
    assert churn["referred"] == 0.0 and churn["other"] > 0.4
    surveys = pl.DataFrame(
        {
            "customer_id": ["C0-9", "C0-9", "C1-0", "C1-1"],
            "survey_type": ["nps", "csat", "nps", "csat"],
            "score": [10.0, 5.0, 2.0, 1.0],
            "touchpoint": ["checkout", "customer_service", "checkout", "customer_service"],
        }
    )
    ratings = recommender_ratings(customers, surveys, load_catalogue())
    assert ratings["touchpoint"].to_list() == ["customer_service", "checkout"]
    assert ratings["lead"].to_list() == [1.0, 0.8]
    # without the columns: nothing to say, and the report says what would show it
    plain = customers.drop("acquisition_channel", "referred_by")
    assert referral_rate(plain) is None and referrals_by_month(plain).is_empty()


def test_a_plan_keeps_the_last_plans_themes_while_their_texts_are_unchanged():
    world = simulate(WorldConfig(customers=300, seed=5, end=datetime(2026, 11, 2, tzinfo=UTC)))
    catalogue = load_catalogue()
    days = fold_touchpoint_days(world.clickstream, world.support, world.surveys, catalogue)
    tables = (world.customers, days, world.support, world.surveys, catalogue, 30, 6)
    plan = plan_features(*tables)
    assert plan.features.voice and plan.features.voice_corpus
    # the last plan's themes, marked: kept, not fitted again, while the corpus is the same
    marked = tuple(replace(t, label=f"marked {t.label}") for t in plan.features.voice)
    earlier = replace(plan, features=replace(plan.features, voice=marked))
    assert plan_features(*tables, earlier=earlier).features.voice == marked
    # a text before the fit's cutoff changed: the themes are fitted again
    first = world.surveys.filter(pl.col("comment").is_not_null())["response_id"][0]
    changed = world.surveys.with_columns(
        comment=pl.when(pl.col("response_id") == first)
        .then(pl.lit("new words"))
        .otherwise("comment")
    )
    again = plan_features(*tables[:3], changed, *tables[4:], earlier=earlier)
    assert again.features.voice_corpus != plan.features.voice_corpus
    assert again.features.voice != marked
