"""Reason sentences read right for every value an agent can see: counts agree with their nouns,
changes say their direction, and a missing value says what missing means."""

from __future__ import annotations

import re

import pytest

from features.catalogue import load_catalogue
from features.feature_plan import build_registry

REGISTRY = {
    d.name: d
    for d in build_registry(
        load_catalogue(),
        ["customer_service"],
        [("customer_service", "ces"), ("feedback_survey", "nps")],
        subscription_plans=["basic"],
        horizon_days=90,
    )
}


@pytest.mark.parametrize(
    ("feature", "value", "sentence"),
    [
        ("referral_days_since_last", None, "never touched referrals"),
        ("referral_days_since_last", 1.0, "1 day since the last touch at referrals"),
        ("referral_days_since_last", 12.0, "12 days since the last touch at referrals"),
        ("chatbot_touches_90d", 1.0, "1 touch at chatbot in the last 90 days"),
        ("chatbot_touches_90d", 0.0, "0 touches at chatbot in the last 90 days"),
        (
            "pricing_exit_intents_30d",
            1.0,
            "1 exit with intent to leave at pricing page in the last 30 days",
        ),
        ("customer_service_unresolved_tickets", 1.0, "1 unresolved ticket with customer service"),
        (
            "customer_service_first_response_hours_max_30d",
            1.0,
            "waited 1 hour for a first answer from customer service",
        ),
        (
            "customer_service_first_response_hours_max_30d",
            None,
            "no tickets with customer service in the last 30 days",
        ),
        (
            "customer_service_resolution_hours_max_90d",
            None,
            "no tickets with customer service in the last 90 days",
        ),
        ("feedback_survey_nps_change", -1.0, "NPS about feedback surveys dropped by 1 point"),
        ("feedback_survey_nps_change", -2.0, "NPS about feedback surveys dropped by 2 points"),
        ("feedback_survey_nps_change", 0.0, "NPS about feedback surveys did not change"),
        ("feedback_survey_nps_change", 3.0, "NPS about feedback surveys rose by 3 points"),
        ("feedback_survey_nps_change", None, "fewer than two NPS answers about feedback surveys"),
        ("feedback_survey_nps_last", None, "never rated feedback surveys (NPS)"),
        (
            "feedback_survey_nps_promoter",
            0.0,
            "not a promoter of feedback surveys at the last NPS survey",
        ),
        (
            "feedback_survey_nps_detractor",
            1.0,
            "a detractor of feedback surveys at the last NPS survey",
        ),
        (
            "feedback_survey_nps_mean_30d",
            None,
            "no NPS answers about feedback surveys in the last 30 days",
        ),
        (
            "customer_service_ces_low_effort_share_90d",
            0.25,
            "found customer service easy in 25% of effort score (CES) answers in the last 90 days",
        ),
        (
            "returns_touches_trend_30d",
            0.67,
            "67% as many touches at returns in the last 30 days as in an average month before",
        ),
        (
            "checkout_was_last_touch",
            0.0,
            "the last contact before going quiet was not at checkout and payment",
        ),
        (
            "checkout_was_last_touch",
            1.0,
            "the last contact before going quiet was at checkout and payment",
        ),
    ],
)
def test_reason_sentences(feature, value, sentence):
    assert REGISTRY[feature].explain(value) == sentence


def test_every_feature_that_can_be_missing_says_what_missing_means():
    """Features without a fill value are missing for some customers (never touched, never asked):
    each has its own sentence, not a number's place filled with "no"."""
    for d in REGISTRY.values():
        if d.fill is None:
            said = d.explain(None)
            assert said and not re.search(r"\bno (days|hours)\b", said), (d.name, said)
        else:
            with pytest.raises(ValueError, match="no sentence for a missing value"):
                d.explain(None)


def test_no_reason_puts_a_plural_after_one():
    for d in REGISTRY.values():
        said = d.explain(1.0, dict.fromkeys(d.reason_context, 1.0))
        assert not re.search(r"(?<![\d.])1 (\w+ )?(\w+s|times)\b", said), (d.name, said)


def test_the_dictionary_shows_numbers_as_n_and_every_word_choice():
    assert (
        REGISTRY["chatbot_touches_90d"].reason_pattern()
        == "N touch/touches at chatbot in the last 90 days"
    )
    assert REGISTRY["feedback_survey_nps_change"].reason_pattern() == (
        "NPS about feedback surveys dropped by N point/points / did not change / "
        "rose by N point/points"
    )
